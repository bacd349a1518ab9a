"""A small closed-loop HTTP/1.1 load generator, run in its own process.

``--concurrency`` keep-alive connections each send ``GET <path>`` back to back (the next request
leaves when the previous response is read; with several ``--path``, connection i uses path i mod n), on uvloop when it is installed. Requests answered during
``--warmup`` seconds are not counted; then, for ``--duration`` seconds, every completed request is
counted and its latency (request written → response read) recorded. It prints one JSON object: the
requests completed in the window, req/s, p50/p99 latency in ms, errors (non-2xx answers, timeouts,
broken connections; a broken connection is reopened). Everything is bounded: the run ends at
warm-up + duration, a request waiting longer than ``--timeout`` counts as an error.

It is a separate process so that the benchmark process (a Ray driver, with its own threads) does not
share an interpreter lock with the load. ``run_load`` starts it and parses its answer. Standalone:
``python bench/_loadgen.py --port 8000 --path /gw/dev/hello --concurrency 16 --duration 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _measure import percentile

HEADERS_ENV = "BENCH_LOADGEN_HEADERS"


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    seconds: float
    requests: int
    errors: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float


class _BadResponse(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise _BadResponse(status_line[:80].decode(errors="replace"))
    length: int | None = None
    chunked = False
    keep_alive = status_line.startswith(b"HTTP/1.1")
    for line in header_lines:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep_alive = value == b"keep-alive" or (keep_alive and value != b"close")
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # delimited by the end of the connection
        keep_alive = False
    return int(parts[1]), keep_alive


async def _connection(
    host: str,
    port: int,
    request: bytes,
    *,
    counting_from: float,
    stop_at: float,
    request_timeout: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    clock = time.perf_counter
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while clock() < stop_at:
        started = clock()
        try:
            async with asyncio.timeout(request_timeout):
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                status, keep_alive = await _read_response(reader)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _BadResponse):
            status, keep_alive = 0, False
        done = clock()
        if counting_from <= started and done <= stop_at:
            if 200 <= status < 300:
                latencies.append(done - started)
            else:
                errors.append(status)
        if not keep_alive and writer is not None:
            writer.close()
            writer = reader = None
            if status == 0:
                await asyncio.sleep(0.01)  # do not spin on a refused connection
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _generate(
    host: str,
    port: int,
    paths: list[str],
    headers: list[str],
    concurrency: int,
    warmup: float,
    duration: float,
    request_timeout: float,
) -> LoadResult:
    extra = "".join(f"{header}\r\n" for header in headers)
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n{extra}\r\n".encode() for path in paths
    ]
    counting_from = time.perf_counter() + warmup
    stop_at = counting_from + duration
    latencies: list[float] = []
    errors: list[int] = []
    await asyncio.gather(
        *(
            _connection(
                host,
                port,
                requests[i % len(requests)],
                counting_from=counting_from,
                stop_at=stop_at,
                request_timeout=request_timeout,
                latencies=latencies,
                errors=errors,
            )
            for i in range(concurrency)
        )
    )
    return LoadResult(
        concurrency=concurrency,
        seconds=duration,
        requests=len(latencies),
        errors=len(errors),
        requests_per_second=len(latencies) / duration,
        p50_ms=1000 * percentile(latencies, 50) if latencies else float("nan"),
        p99_ms=1000 * percentile(latencies, 99) if latencies else float("nan"),
    )


def run_load(
    port: int,
    path: str | Sequence[str],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
) -> LoadResult:
    """Run the generator in a child process and return what it measured (``path``: one, or several
    spread over the connections)."""
    paths = [path] if isinstance(path, str) else list(path)
    command = [
        sys.executable, str(Path(__file__)), "--host", host, "--port", str(port),
        *(arg for one in paths for arg in ("--path", one)),
        "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", str(warmup),
    ]  # fmt: skip
    # Headers (an API key among them) go through the environment, not the command line ``ps`` shows.
    lines = [f"{name}: {value}" for name, value in (headers or {}).items()]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=warmup + duration + 60,
        check=False,
        env={**os.environ, HEADERS_ENV: json.dumps(lines)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return LoadResult(**json.loads(done.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", action="append", help="repeatable: connection i uses path i mod n")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        help=f"'Name: value', repeatable (also: ${HEADERS_ENV}, a JSON list)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one request may take")
    args = parser.parse_args()
    args.header += json.loads(os.environ.get(HEADERS_ENV, "[]"))
    args.path = args.path or ["/"]
    if any("\r" in h or "\n" in h or ":" not in h for h in args.header):
        parser.error("a --header is one 'Name: value' line")
    if not 1 <= args.concurrency <= 1024 or not 0 < args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("concurrency must be 1..1024, duration 0..600 s, warm-up 0..60 s")
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    result = runner(
        _generate(
            args.host,
            args.port,
            args.path,
            args.header,
            args.concurrency,
            args.warmup,
            args.duration,
            args.timeout,
        )
    )
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
