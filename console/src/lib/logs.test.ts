import { describe, expect, it } from "vitest";

import type { LogEntry } from "../api/types";
import { appendCapped, logLine, matchesFilter } from "./logs";

const entry = (level: string, message: string): LogEntry => ({
  time: "2026-12-06T10:00:00Z",
  function: "greet",
  requestId: "r1",
  level,
  message,
});

describe("matchesFilter", () => {
  it("keeps entries at or above the minimum level", () => {
    expect(matchesFilter(entry("error", "x"), { level: "warning", text: "" })).toBe(true);
    expect(matchesFilter(entry("info", "x"), { level: "warning", text: "" })).toBe(false);
    expect(matchesFilter(entry("info", "x"), { level: null, text: "" })).toBe(true);
  });

  it("matches text in the message, function or request id, ignoring case", () => {
    expect(matchesFilter(entry("info", "Hello Ada"), { level: null, text: "ada" })).toBe(true);
    expect(matchesFilter(entry("info", "x"), { level: null, text: "GREET" })).toBe(true);
    expect(matchesFilter(entry("info", "x"), { level: null, text: "nope" })).toBe(false);
  });
});

describe("appendCapped", () => {
  it("keeps the newest entries", () => {
    expect(appendCapped([1, 2, 3], [4, 5], 3)).toEqual([3, 4, 5]);
    expect(appendCapped([1], [2], 3)).toEqual([1, 2]);
  });
});

describe("logLine", () => {
  it("shows a debug run's entry as level and message", () => {
    expect(logLine({ level: "info", message: "hello ada" })).toBe("INFO hello ada");
    expect(logLine("plain")).toBe("plain");
    expect(logLine([1, 2])).toBe("[1,2]");
  });
});
