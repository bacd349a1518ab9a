// The one HTTP seam of the console: every request to the control plane goes through `api()`.
// The session token lives in sessionStorage (never a cookie), so the browser never sends a console
// credential to another port of the same host — the data plane, where tenant code runs.

const TOKEN_KEY = "imprun.token";
const USER_KEY = "imprun.username";

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: unknown;
  requestId?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  readonly requestId: string | undefined;

  constructor(status: number, body: ApiErrorBody) {
    super(body.message);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code;
    this.details = body.details;
    this.requestId = body.requestId;
  }
}

export const session = {
  token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  username(): string | null {
    return sessionStorage.getItem(USER_KEY);
  },
  save(token: string, username: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, username);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
  },
};

let onUnauthorized: () => void = () => {};

/** Called when the API answers 401 to a signed-in request (the token expired). */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

/** The error an API response carries, in the API's `{"error": {...}}` shape (or a stand-in). */
export async function errorFrom(response: Response): Promise<ApiError> {
  let body: ApiErrorBody = { code: "internal", message: `${response.status} ${response.statusText}` };
  try {
    const parsed = (await response.json()) as { error?: ApiErrorBody };
    if (parsed && typeof parsed === "object" && parsed.error?.message) body = parsed.error;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, body);
}

export function authHeaders(): Record<string, string> {
  const token = session.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      signal,
    });
  } catch (exc) {
    if (exc instanceof DOMException && exc.name === "AbortError") throw exc;
    throw new ApiError(0, {
      code: "unavailable",
      message: `the control plane could not be reached (${String(exc)})`,
    });
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && headers.Authorization) onUnauthorized();
    throw error;
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string, signal?: AbortSignal) => api<T>("GET", path, undefined, signal);
export const post = <T>(path: string, body?: unknown) => api<T>("POST", path, body ?? {});
export const patch = <T>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const put = <T>(path: string, body: unknown) => api<T>("PUT", path, body);
export const del = <T>(path: string) => api<T>("DELETE", path);

export const enc = encodeURIComponent;

/** A function name keeps its `/` (nested names) in URLs; each segment is encoded. */
export function fnPath(name: string): string {
  return name.split("/").map(enc).join("/");
}
