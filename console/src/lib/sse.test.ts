import { describe, expect, it } from "vitest";

import { parseSse } from "./sse";

describe("parseSse", () => {
  it("splits complete messages and keeps the incomplete rest", () => {
    const { messages, rest } = parseSse('id: 1-0\ndata: {"a":1}\n\n: keep-alive\n\nevent: end\ndata: {"reason":"deleted"}\n\nid: 2-0\nda');
    expect(messages).toEqual([
      { event: "message", id: "1-0", data: '{"a":1}' },
      { event: "end", id: null, data: '{"reason":"deleted"}' },
    ]);
    expect(rest).toBe("id: 2-0\nda");
  });

  it("joins multi-line data and accepts CRLF", () => {
    const { messages } = parseSse("data: one\r\ndata: two\r\n\r\n");
    expect(messages).toEqual([{ event: "message", id: null, data: "one\ntwo" }]);
  });

  it("ignores comment-only blocks", () => {
    expect(parseSse(": keep-alive\n\n").messages).toEqual([]);
  });
});
