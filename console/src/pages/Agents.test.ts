import { describe, expect, it } from "vitest";

import { mcpClientConfig } from "./Agents";

describe("mcpClientConfig", () => {
  it("names the MCP URL and sends the key as the apikey header", () => {
    const config = JSON.parse(mcpClientConfig("http://127.0.0.1:8000/mcp", "imp_dev_k"));
    expect(config).toEqual({
      mcpServers: { imprun: { type: "http", url: "http://127.0.0.1:8000/mcp", headers: { apikey: "imp_dev_k" } } },
    });
  });

  it("leaves a placeholder when the key is unknown", () => {
    expect(mcpClientConfig("u", "")).toContain("<your API key>");
  });
});
