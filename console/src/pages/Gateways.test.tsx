import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Gateway } from "../api/types";
import { GatewaysPage, pollInterval } from "./Gateways";

const gateway = (phase: Gateway["phase"], envPhase: Gateway["phase"] = phase): Gateway => ({
  gatewayId: "hometax",
  name: "Hometax",
  state: "Running",
  phase,
  bundle: { cpu: 0.25, memory: 256, minReplicas: 1, maxReplicas: 1 },
  promotionPipeline: { enabled: true, stages: ["dev", "staging", "prod"] },
  conditions: [],
  createdAt: "",
  updatedAt: "",
  environments: [
    {
      name: "dev",
      state: "Running",
      phase: envPhase,
      url: "http://127.0.0.1:8000/hometax/dev",
      authType: "key-auth",
      rateLimit: null,
      conditions: [
        { type: "Failed", status: true, reason: "Unschedulable", message: "no node has 64 CPUs", since: "2026-12-06T10:00:00Z" },
      ],
    },
  ],
});

afterEach(() => vi.unstubAllGlobals());

describe("pollInterval", () => {
  it("polls fast while anything moves and slowly when all settled", () => {
    expect(pollInterval([gateway("Starting")])).toBe(1000);
    expect(pollInterval([gateway("Started", "Creating")])).toBe(1000);
    expect(pollInterval([gateway("Started")])).toBe(5000);
    expect(pollInterval(undefined)).toBe(5000);
  });
});

describe("GatewaysPage", () => {
  it("lists gateways with their phases and why an environment waits", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(new Response(JSON.stringify([gateway("Starting")]), { status: 200 })));
    render(
      <MantineProvider>
        <QueryClientProvider client={new QueryClient()}>
          <MemoryRouter>
            <GatewaysPage />
          </MemoryRouter>
        </QueryClientProvider>
      </MantineProvider>,
    );
    expect(await screen.findByText("Hometax")).toBeTruthy();
    expect(screen.getByText("Starting")).toBeTruthy();
    expect(screen.getByText("Unschedulable: no node has 64 CPUs")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Stop hometax" })).toBeTruthy();
  });
});
