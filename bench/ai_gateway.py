"""Benchmark: the AI gateway's tool-dispatch overhead — an MCP ``tools/call`` of a function versus an
HTTP call of the same function, in the same run.

Run it from the repository root: ``.venv/bin/python bench/ai_gateway.py [--quick]``. It starts its own
embedded stack (``_stack.platform_stack``; the control plane deploys the ``ai-gateway`` application
as ``imprun up`` does), creates a gateway whose prod environment publishes ``hello(name: str)``,
issues an API key for prod, and then, ``--calls`` times (500; 100 with ``--quick``) after a warm-up,
interleaves three calls with that key through the same HAProxy ingress:

1. the baseline: ``POST /<gw>/prod/hello`` with ``{"name": …}`` (key check in the replica, the jailed
   worker runs ``main``);
2. ``tools/call`` as one raw JSON-RPC POST to ``/mcp`` (stateless Streamable HTTP, JSON response):
   the AI gateway checks the key, builds the key's tool list, validates the arguments against the
   schema, and hands the call to the same replica through a Serve handle;
3. ``tools/call`` through the real ``mcp`` SDK client over one connection (what an agent pays).

It prints p50/p90/p99/max of each in milliseconds, the overhead of each MCP path over the baseline
(p50 and p99 differences and ratios), and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, Final

import httpx
import httpx2
from _measure import Summary, load_average
from _stack import Stack, new_id, platform_stack
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

HELLO: Final = 'def main(name: str = "world"):\n    """Greets someone."""\n    return {"hello": name}\n'
WARMUP: Final = 20
MCP_HEADERS: Final = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}


def http_call(stack: Stack, gw: str, key: str, i: int) -> float:
    started = time.perf_counter()
    response = stack.data_plane.post(f"/{gw}/prod/hello", json={"name": f"n{i}"}, headers={"apikey": key})
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json() != {"hello": f"n{i}"}:
        raise RuntimeError(f"HTTP call failed: {response.status_code} {response.text[:200]}")
    return elapsed


def raw_mcp_call(stack: Stack, key: str, i: int) -> float:
    request = {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": "hello", "arguments": {"name": f"n{i}"}},
    }
    started = time.perf_counter()
    response = stack.data_plane.post("/mcp", json=request, headers={**MCP_HEADERS, "apikey": key})
    elapsed = time.perf_counter() - started
    result = response.json().get("result") if response.status_code == 200 else None
    if not result or result.get("isError") or json.loads(result["content"][0]["text"]) != {"hello": f"n{i}"}:
        raise RuntimeError(f"tools/call failed: {response.status_code} {response.text[:300]}")
    return elapsed


async def sdk_calls(url: str, key: str, count: int) -> list[float]:
    samples: list[float] = []
    http = httpx2.AsyncClient(headers={"apikey": key}, timeout=60)
    async with http, McpClient(streamable_http_client(url, http_client=http)) as client:
        for i in range(count):
            started = time.perf_counter()
            result = await client.call_tool("hello", {"name": f"s{i}"})
            samples.append(time.perf_counter() - started)
            if result.is_error:
                raise RuntimeError(f"SDK tools/call failed: {result.content}")
    return samples


def wait_for(probe: Any, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def report(name: str, samples: list[float], baseline: Summary | None) -> Summary:
    summary = Summary.of([s * 1000 for s in samples])
    line = (
        f"  {name:<34} p50 {summary.p50:7.2f}  p90 {summary.p90:7.2f}  p99 {summary.p99:7.2f}  "
        f"max {summary.max:7.2f} ms  (n={summary.count})"
    )
    if baseline is not None:
        line += (
            f"\n  {'':<34} overhead p50 +{summary.p50 - baseline.p50:.2f} ms (x{summary.p50 / baseline.p50:.2f}), "
            f"p99 +{summary.p99 - baseline.p99:.2f} ms (x{summary.p99 / baseline.p99:.2f})"
        )
    print(line, flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="100 calls of each kind")
    args = parser.parse_args()
    calls = 100 if args.quick else args.calls
    print("starting the embedded stack (nx-27017, redis-server, Ray head, control plane)…", flush=True)
    with platform_stack(reconcile_interval=0.5) as stack:
        gw = new_id("aibench")
        stack.create_gateways([gw])
        stack.wait_started([gw], timeout=180)
        stack.create_function(gw, "hello", HELLO)
        stack.publish(gw, "hello", "prod")
        _, key = stack.issue_key(gw, "prod")
        print(f"gateway {gw} started; waiting for prod and the ai-gateway application…", flush=True)
        wait_for(lambda: stack.data_plane.post(
            f"/{gw}/prod/hello", json={"name": "x"}, headers={"apikey": key}
        ).status_code == 200, "the prod function answering")  # fmt: skip
        wait_for(lambda: stack.data_plane.get("/ai-gateway/_health").status_code == 200, "the ai-gateway")
        wait_for(lambda: _raw_ok(stack, key), "the MCP tool answering")
        for i in range(WARMUP):
            http_call(stack, gw, key, i)
            raw_mcp_call(stack, key, i)
        http_samples: list[float] = []
        mcp_samples: list[float] = []
        print(f"measuring {calls} interleaved HTTP and MCP calls…", flush=True)
        for i in range(calls):
            http_samples.append(http_call(stack, gw, key, i))
            mcp_samples.append(raw_mcp_call(stack, key, i))
        sdk_samples = asyncio.run(sdk_calls(f"{stack.head.serve_url}/mcp", key, calls))
        print(f"\ntool dispatch, one caller at a time ({load_average()}):")
        baseline = report("HTTP POST /<gw>/prod/hello", http_samples, None)
        report("MCP tools/call (raw JSON-RPC POST)", mcp_samples, baseline)
        report("MCP tools/call (mcp SDK client)", sdk_samples, baseline)
    return 0


def _raw_ok(stack: Stack, key: str) -> bool:
    try:
        raw_mcp_call(stack, key, 0)
    except (RuntimeError, ValueError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
