// Client-side filters of the live log view (the API filters by function and time; level and text here).

import type { LogEntry } from "../api/types";

export const LEVELS = ["debug", "info", "warning", "error"] as const;

export interface LogFilter {
  level: string | null; // minimum level
  text: string;
}

function rank(level: string): number {
  const i = LEVELS.indexOf(level.toLowerCase() as (typeof LEVELS)[number]);
  return i < 0 ? LEVELS.length : i;
}

export function matchesFilter(entry: LogEntry, filter: LogFilter): boolean {
  if (filter.level && rank(entry.level) < rank(filter.level)) return false;
  const text = filter.text.trim().toLowerCase();
  if (text && !`${entry.function} ${entry.message} ${entry.requestId}`.toLowerCase().includes(text)) return false;
  return true;
}

/** Appends entries, keeping at most `limit` (the newest). */
export function appendCapped<T>(list: T[], more: T[], limit: number): T[] {
  const next = list.concat(more);
  return next.length > limit ? next.slice(next.length - limit) : next;
}

/** A debug run's log entry (`{time, level, message}`) as one line. */
export function logLine(entry: unknown): string {
  if (entry && typeof entry === "object" && "message" in entry) {
    const e = entry as { time?: string; level?: string; message: unknown };
    const time = e.time ? new Date(e.time).toLocaleTimeString() : "";
    return `${time} ${(e.level ?? "").toUpperCase()} ${String(e.message)}`.trim();
  }
  return typeof entry === "string" ? entry : JSON.stringify(entry);
}
