import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Gateway } from "../api/types";
import { GatewayPage } from "./Gateway";
import { Answer, environment, fakeApi, gateway, renderPage } from "./testing";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const openEnvironments = (g: Gateway, answers: Record<string, unknown> = {}) => {
  const sent = fakeApi({ "GET /v1/api-gateways/hometax": g, ...answers });
  renderPage(<GatewayPage />, { path: "/gateways/hometax?tab=environments", route: "/gateways/:gw" });
  return sent;
};

const row = (name: string) => screen.getByTestId("environment-table").querySelector(`[data-environment="${name}"]`) as HTMLElement;

const dedicated = (g: Gateway): Gateway => ({
  ...g,
  bundle: { ...g.bundle, tier: "dedicated" },
  environments: g.environments.map((e) => ({ ...e, tier: "dedicated", loadedOn: [] })),
});

describe("the environments of a gateway", () => {
  it("show the shared replicas each is loaded on, or that it is idle", async () => {
    openEnvironments(
      gateway({
        environments: [
          environment("dev", {
            loadedOn: [
              { replica: "k3v9x2aq", node: "4f1c" },
              { replica: "p7d2m0zt-long-replica-id", node: "9a0b" },
            ],
          }),
          environment("staging"),
        ],
      }),
    );
    expect(await screen.findByRole("columnheader", { name: "Loaded on" })).toBeTruthy();
    expect(within(row("dev")).getByText("k3v9x2aq")).toBeTruthy();
    expect(within(row("dev")).getByText("p7d2m0zt")).toBeTruthy();
    expect(within(row("staging")).getByText("idle (not loaded)")).toBeTruthy();
    expect(screen.getByText("shared tier")).toBeTruthy();
  });

  it("say a dedicated environment runs on its own replicas", async () => {
    openEnvironments(dedicated(gateway()));
    expect(await screen.findByText("dedicated tier")).toBeTruthy();
    expect(within(row("dev")).getByText("own replicas")).toBeTruthy();
  });
});

describe("moving a gateway to the other tier", () => {
  const move = async (from: Gateway, to: "shared" | "dedicated", answers: Record<string, unknown> = {}) => {
    const sent = openEnvironments(from, { "PATCH /v1/api-gateways/hometax": from, ...answers });
    fireEvent.click(await screen.findByRole("button", { name: `Move hometax to the ${to} tier` }));
    fireEvent.click(await screen.findByRole("button", { name: `Move to ${to}` }));
    await waitFor(() => expect(sent.some((s) => s.method === "PATCH")).toBe(true));
    return sent.filter((s) => s.method === "PATCH");
  };

  it("sends the current bundle with the dedicated tier", async () => {
    const patches = await move(gateway(), "dedicated");
    expect(patches).toEqual([
      {
        method: "PATCH",
        path: "/v1/api-gateways/hometax",
        body: { bundle: { tier: "dedicated", cpu: 0.5, memory: 256, minReplicas: 1, maxReplicas: 1 } },
      },
    ]);
  });

  it("moves back to shared without the custom resources shared replicas cannot hold", async () => {
    const from = dedicated(gateway());
    from.bundle = { ...from.bundle, cpu: 2, resources: { gpu_node: 1 } };
    const patches = await move(from, "shared");
    expect(patches[0].body).toEqual({ bundle: { tier: "shared", cpu: 2, memory: 256, minReplicas: 1, maxReplicas: 1 } });
  });

  it("says why the API refused the move", async () => {
    await move(gateway(), "dedicated", {
      "PATCH /v1/api-gateways/hometax": new Answer(403, { error: { code: "quota_exceeded", message: "the bundle is over your CPU quota" } }),
    });
    expect(await screen.findByText("the bundle is over your CPU quota")).toBeTruthy();
  });
});
