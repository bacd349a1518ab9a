// Server-Sent Events over fetch (EventSource cannot send an Authorization header).

export interface SseMessage {
  event: string;
  id: string | null;
  data: string;
}

/** Splits a growing text buffer into complete SSE messages; returns them and the unparsed rest. */
export function parseSse(buffer: string): { messages: SseMessage[]; rest: string } {
  const messages: SseMessage[] = [];
  const normalised = buffer.replace(/\r\n?/g, "\n");
  const blocks = normalised.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    let id: string | null = null;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) messages.push({ event, id, data: data.join("\n") });
  }
  return { messages, rest };
}

/** Reads `url` as an event stream until `signal` aborts or the server closes it. */
export async function followEvents(
  url: string,
  headers: Record<string, string>,
  onMessage: (message: SseMessage) => void,
  signal: AbortSignal,
): Promise<Response> {
  const response = await fetch(url, { headers: { Accept: "text/event-stream", ...headers }, signal, credentials: "omit" });
  if (!response.ok || !response.body) return response;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const { messages, rest } = parseSse(buffer);
    buffer = rest;
    messages.forEach(onMessage);
  }
  return response;
}
