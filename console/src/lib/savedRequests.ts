// Run-panel requests saved per function (in this browser's localStorage; no secret belongs there).

export interface RunRequest {
  method: string;
  query: string; // one `name=value` per line
  headers: string; // one `Name: value` per line
  body: string; // JSON text
}

export const DEFAULT_REQUEST: RunRequest = { method: "POST", query: "", headers: "", body: "{}" };

const key = (gateway: string, fn: string) => `imprun.run.${gateway}.${fn}`;

export function loadRequest(gateway: string, fn: string, storage: Storage = localStorage): RunRequest {
  try {
    const saved = JSON.parse(storage.getItem(key(gateway, fn)) ?? "null") as Partial<RunRequest> | null;
    return saved ? { ...DEFAULT_REQUEST, ...saved } : { ...DEFAULT_REQUEST };
  } catch {
    return { ...DEFAULT_REQUEST };
  }
}

export function saveRequest(gateway: string, fn: string, request: RunRequest, storage: Storage = localStorage): void {
  storage.setItem(key(gateway, fn), JSON.stringify(request));
}

/** `a=1\nb=2` → `{a: "1", b: "2"}`; `Name: value` lines with `separator` ":". */
export function parsePairs(text: string, separator: "=" | ":"): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf(separator);
    if (at <= 0) continue;
    pairs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return pairs;
}
