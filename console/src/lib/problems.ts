// The API's code problems (`details: [{line, column, message}]` of a 400) as editor markers.

import { ApiError } from "../api/client";
import type { CodeProblem } from "../api/types";

export interface MarkerData {
  startLineNumber: number;
  startColumn: number;
  endLineNumber: number;
  endColumn: number;
  message: string;
}

function isProblem(value: unknown): value is CodeProblem {
  const p = value as CodeProblem;
  return !!p && typeof p === "object" && typeof p.line === "number" && typeof p.message === "string";
}

/** The code problems an API error carries (empty when it is another kind of error). */
export function codeProblems(error: unknown): CodeProblem[] {
  if (!(error instanceof ApiError) || error.status !== 400 || !Array.isArray(error.details)) return [];
  return error.details.filter(isProblem);
}

/**
 * A marker per problem. Lines and columns are 1-based in the API and in Monaco. The marker spans the
 * word at that column (at least one character) so it is visible.
 */
export function toMarkers(problems: CodeProblem[], lines: string[]): MarkerData[] {
  return problems.map((p) => {
    const lineNumber = Math.max(1, Math.min(p.line || 1, Math.max(lines.length, 1)));
    const text = lines[lineNumber - 1] ?? "";
    const startColumn = Math.max(1, Math.min(p.column || 1, text.length + 1));
    const word = /^\w+/.exec(text.slice(startColumn - 1));
    const endColumn = word ? startColumn + word[0].length : Math.max(startColumn + 1, text.length + 1);
    return { startLineNumber: lineNumber, startColumn, endLineNumber: lineNumber, endColumn, message: p.message };
  });
}
