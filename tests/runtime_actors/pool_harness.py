"""Helpers for tests that drive a real ``WorkerPool`` (real jailed worker processes, no Ray)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import textwrap
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from runtime_actors.replica.pool.worker_pool import WorkerPool
from runtime_actors.shared.frames import FunctionSource
from runtime_actors.shared.messages import Invocation, InvocationResult

T = TypeVar("T")


def invocation(
    function: str = "fn",
    *,
    method: str = "POST",
    body: bytes | None = None,
    json_body: Any = None,
    query: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    path: str = "",
) -> Invocation:
    if json_body is not None:
        body = json.dumps(json_body).encode()
    return Invocation(
        method=method,
        path=path,
        query=dict(query or {}),
        headers={"content-type": "application/json", **(headers or {})},
        body=body or b"",
        request_id="req-1",
        function=function,
    )


def source(name: str, code: str, version: int = 1) -> FunctionSource:
    code = textwrap.dedent(code)
    return FunctionSource(name, code, version, hashlib.sha256(code.encode()).hexdigest())


def body_json(result: InvocationResult) -> Any:
    return json.loads(result.body)


def run(scenario: Callable[[WorkerPool], Awaitable[T]], **pool_options: Any) -> T:
    """Start a pool (one worker unless ``size`` says otherwise), run ``scenario(pool)``, close it."""

    async def main() -> T:
        pool = WorkerPool(**{"size": 1, **pool_options})
        await pool.start()
        try:
            return await scenario(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


async def load_one(pool: WorkerPool, name: str, code: str, version: int = 1) -> None:
    errors = await pool.load([source(name, code, version)], replace=False)
    assert errors == {}, errors


async def eventually(probe: Callable[[], bool], within: float = 10.0) -> bool:
    """Poll ``probe`` on the event loop until it is true or ``within`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if probe():
            return True
        await asyncio.sleep(0.01)
    return probe()
