// What the page tests share: a gateway as the API answers it, the providers a page needs, and a
// fetch that answers from a table and records what the page sent.

import { MantineProvider } from "@mantine/core";
import { Notifications } from "@mantine/notifications";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import { vi } from "vitest";

import type { Environment, Gateway } from "../api/types";

export function environment(name: string, overrides: Partial<Environment> = {}): Environment {
  return {
    name,
    state: "Running",
    phase: "Started",
    url: `http://127.0.0.1:8000/hometax/${name}`,
    authType: "key-auth",
    rateLimit: null,
    conditions: [],
    tier: "shared",
    loadedOn: [],
    ...overrides,
  };
}

export function gateway(overrides: Partial<Gateway> = {}): Gateway {
  return {
    gatewayId: "hometax",
    name: "Hometax",
    state: "Running",
    phase: "Started",
    bundle: { tier: "shared", cpu: 0.5, memory: 256, minReplicas: 1, maxReplicas: 1 },
    promotionPipeline: { enabled: true, stages: ["dev", "staging", "prod"] },
    conditions: [],
    createdAt: "",
    updatedAt: "",
    environments: [environment("dev")],
    ...overrides,
  };
}

export interface Sent {
  method: string;
  path: string;
  body: unknown;
}

/** An answer other than 200 OK in `fakeApi`'s table. */
export class Answer {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

/** Stubs `fetch`: answers `"METHOD /path"` from `answers` (a body, or an `Answer`), 404 otherwise. */
export function fakeApi(answers: Record<string, unknown>): Sent[] {
  const sent: Sent[] = [];
  const answer = async (path: string, init: RequestInit = {}) => {
    const method = init.method ?? "GET";
    sent.push({ method, path, body: init.body === undefined ? undefined : JSON.parse(String(init.body)) });
    const key = `${method} ${path}`;
    if (!(key in answers)) {
      return new Response(JSON.stringify({ error: { code: "not_found", message: `nothing at ${key}` } }), { status: 404 });
    }
    const found = answers[key];
    const { status, body } = found instanceof Answer ? found : new Answer(200, found);
    return new Response(JSON.stringify(body), { status });
  };
  vi.stubGlobal("fetch", vi.fn(answer));
  return sent;
}

/** Renders `page` at `path` (matched by `route`) inside the providers the console gives it. */
export function renderPage(page: ReactElement, { path = "/", route = "*" }: { path?: string; route?: string } = {}) {
  return render(
    <MantineProvider env="test">
      <Notifications />
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <MemoryRouter initialEntries={[path]}>
          <Routes>
            <Route path={route} element={page} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}
