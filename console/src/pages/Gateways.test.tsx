import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Gateway } from "../api/types";
import { GatewaysPage, pollInterval } from "./Gateways";
import { environment, fakeApi, gateway, renderPage } from "./testing";

const moving = (phase: Gateway["phase"], envPhase: Gateway["phase"] = phase): Gateway =>
  gateway({
    phase,
    environments: [
      environment("dev", {
        phase: envPhase,
        conditions: [
          { type: "Failed", status: true, reason: "Unschedulable", message: "no node has 64 CPUs", since: "2026-12-06T10:00:00Z" },
        ],
      }),
    ],
  });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("pollInterval", () => {
  it("polls fast while anything moves and slowly when all settled", () => {
    expect(pollInterval([moving("Starting")])).toBe(1000);
    expect(pollInterval([moving("Started", "Creating")])).toBe(1000);
    expect(pollInterval([moving("Started")])).toBe(5000);
    expect(pollInterval(undefined)).toBe(5000);
  });
});

describe("GatewaysPage", () => {
  it("lists gateways with their phases and why an environment waits", async () => {
    fakeApi({ "GET /v1/api-gateways": [moving("Starting")] });
    renderPage(<GatewaysPage />);
    expect(await screen.findByText("Hometax")).toBeTruthy();
    expect(screen.getByText("Starting")).toBeTruthy();
    expect(screen.getByText("Unschedulable: no node has 64 CPUs")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Stop hometax" })).toBeTruthy();
  });
});

describe("creating a gateway", () => {
  const createdPost = async (sent: { method: string; body: unknown }[]) => {
    fireEvent.click(screen.getByRole("button", { name: "Create" }));
    await waitFor(() => expect(sent.some((s) => s.method === "POST")).toBe(true));
    return sent.find((s) => s.method === "POST")?.body;
  };

  it("asks for the shared tier alone by default, without sizing", async () => {
    const sent = fakeApi({ "GET /v1/api-gateways": [], "POST /v1/api-gateways": gateway() });
    renderPage(<GatewaysPage />);
    fireEvent.click(await screen.findByRole("button", { name: "Create gateway" }));
    fireEvent.change(screen.getByLabelText(/^Name/), { target: { value: "Hometax" } });
    expect((screen.getByLabelText("Shared") as HTMLInputElement).checked).toBe(true);
    expect(screen.queryByLabelText("CPU per replica")).toBeNull();
    expect(screen.getByText(/idle gateway costs nothing/)).toBeTruthy();
    expect(await createdPost(sent)).toEqual({ name: "Hometax", bundle: { tier: "shared" } });
  });

  it("sends the sizing with the dedicated tier", async () => {
    const sent = fakeApi({ "GET /v1/api-gateways": [], "POST /v1/api-gateways": gateway() });
    renderPage(<GatewaysPage />);
    fireEvent.click(await screen.findByRole("button", { name: "Create gateway" }));
    fireEvent.change(screen.getByLabelText(/^Name/), { target: { value: "Hometax" } });
    fireEvent.click(screen.getByLabelText("Dedicated"));
    fireEvent.change(screen.getByLabelText("Memory (MiB)"), { target: { value: "512" } });
    fireEvent.change(screen.getByLabelText("Max replicas"), { target: { value: "3" } });
    expect(await createdPost(sent)).toEqual({
      name: "Hometax",
      bundle: { tier: "dedicated", cpu: 0.25, memory: 512, minReplicas: 1, maxReplicas: 3 },
    });
  });
});
