import { describe, expect, it } from "vitest";

import { ApiError } from "../api/client";
import { codeProblems, toMarkers } from "./problems";

const lines = ["import imp", "", "def main(name):", '    if name = "x":', "        return 1"];

describe("codeProblems", () => {
  it("reads the problems of a 400 and nothing else", () => {
    const details = [{ line: 4, column: 13, message: "invalid syntax" }, { nonsense: true }];
    expect(codeProblems(new ApiError(400, { code: "invalid", message: "m", details }))).toEqual([details[0]]);
    expect(codeProblems(new ApiError(422, { code: "invalid", message: "m", details }))).toEqual([]);
    expect(codeProblems(new Error("x"))).toEqual([]);
  });
});

describe("toMarkers", () => {
  it("marks the word at the 1-based line and column", () => {
    const [marker] = toMarkers([{ line: 4, column: 8, message: "invalid syntax" }], lines);
    expect(marker).toEqual({ startLineNumber: 4, startColumn: 8, endLineNumber: 4, endColumn: 12, message: "invalid syntax" });
  });

  it("keeps positions inside the text", () => {
    const [past] = toMarkers([{ line: 99, column: 99, message: "m" }], lines);
    expect(past.startLineNumber).toBe(5);
    expect(past.startColumn).toBe(lines[4].length + 1);
    expect(past.endColumn).toBeGreaterThan(past.startColumn);
  });
});
