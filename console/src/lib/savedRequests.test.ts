import { beforeEach, describe, expect, it } from "vitest";

import { DEFAULT_REQUEST, loadRequest, parsePairs, saveRequest } from "./savedRequests";

describe("saved run requests", () => {
  beforeEach(() => localStorage.clear());

  it("are kept per gateway and function", () => {
    saveRequest("gw", "greet", { method: "GET", query: "a=1", headers: "", body: "" });
    expect(loadRequest("gw", "greet").method).toBe("GET");
    expect(loadRequest("gw", "other")).toEqual(DEFAULT_REQUEST);
    expect(loadRequest("gw2", "greet")).toEqual(DEFAULT_REQUEST);
  });

  it("fall back to the default when the stored value is damaged", () => {
    localStorage.setItem("imprun.run.gw.greet", "{not json");
    expect(loadRequest("gw", "greet")).toEqual(DEFAULT_REQUEST);
  });
});

describe("parsePairs", () => {
  it("reads name=value and Name: value lines, skipping blank and malformed ones", () => {
    expect(parsePairs("a=1\n\nb = two=2\nnonsense", "=")).toEqual({ a: "1", b: "two=2" });
    expect(parsePairs("X-Trace: abc\nAccept: application/json", ":")).toEqual({ "X-Trace": "abc", Accept: "application/json" });
  });
});
