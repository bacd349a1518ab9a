import { afterEach, describe, expect, it, vi } from "vitest";

import { api, ApiError, fnPath, session, setUnauthorizedHandler } from "./client";

function answer(status: number, body: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
  session.clear();
});

describe("api", () => {
  it("sends the session token as a bearer header, never with credentials", async () => {
    session.save("tok", "ada");
    const fetchMock = vi.fn().mockResolvedValue(answer(200, { ok: true }));
    vi.stubGlobal("fetch", fetchMock);
    await expect(api("POST", "/v1/x", { a: 1 })).resolves.toEqual({ ok: true });
    const [, init] = fetchMock.mock.calls[0];
    expect(init.headers.Authorization).toBe("Bearer tok");
    expect(init.credentials).toBe("omit");
    expect(init.body).toBe('{"a":1}');
    expect(document.cookie).toBe("");
  });

  it("turns the API's error shape into an ApiError with the request id", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(answer(500, { error: { code: "internal", message: "boom", requestId: "r-1" } })));
    const error = await api("GET", "/v1/x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 500, code: "internal", message: "boom", requestId: "r-1" });
  });

  it("signs out on a 401 to a signed-in request", async () => {
    session.save("expired", "ada");
    const handler = vi.fn();
    setUnauthorizedHandler(handler);
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(answer(401, { error: { code: "unauthorized", message: "expired" } })));
    await expect(api("GET", "/v1/x")).rejects.toThrow("expired");
    expect(handler).toHaveBeenCalledOnce();
  });

  it("says when the control plane cannot be reached", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    await expect(api("GET", "/v1/x")).rejects.toMatchObject({ code: "unavailable" });
  });
});

describe("fnPath", () => {
  it("keeps nested names' slashes and encodes each segment", () => {
    expect(fnPath("reports/daily total")).toBe("reports/daily%20total");
  });
});
