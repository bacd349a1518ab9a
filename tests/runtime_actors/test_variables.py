"""Environment variables in the runtime: the sealed envelope, and what the supervisor does with it.

The envelope opens only with its key, for its own gateway, environment and name. The supervisor
(with fakes of the pool and the log sink, no Ray) opens the sealed documents of a snapshot and hands
the values to the pool as ``env``, leaves out what does not open, redacts secret values from the
log entries it writes and from debug-run logs, and reports every routed call to its observer.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from runtime_actors.replica.http import RequestHead
from runtime_actors.replica.supervisor import Supervisor
from runtime_actors.shared.messages import Invocation, InvocationResult, LogEntry, PublishedFunction
from runtime_actors.shared.sealing import VariableOpener, VariableUnreadable, open_value, seal_value

KEY = secrets.token_bytes(32)
SECRET = "tok-" + secrets.token_hex(16)


def sealed(
    name: str, value: str, *, secret: bool, gw: str = "gw", env: str = "prod", key: bytes = KEY
) -> dict[str, Any]:
    nonce, ciphertext = seal_value(key, value, version=1, gateway_id=gw, environment=env, name=name)
    return {"name": name, "secret": secret, "keyVersion": 1, "nonce": nonce, "ciphertext": ciphertext}


def test_the_envelope_opens_only_in_its_own_place() -> None:
    nonce, ciphertext = seal_value(KEY, SECRET, version=1, gateway_id="gw", environment="prod", name="A")
    assert SECRET.encode() not in ciphertext
    assert (
        open_value(KEY, nonce, ciphertext, version=1, gateway_id="gw", environment="prod", name="A") == SECRET
    )
    for place in (("other", "prod", "A"), ("gw", "dev", "A"), ("gw", "prod", "B")):
        gw, env, name = place
        with pytest.raises(VariableUnreadable):
            open_value(KEY, nonce, ciphertext, version=1, gateway_id=gw, environment=env, name=name)
    with pytest.raises(VariableUnreadable):
        open_value(
            secrets.token_bytes(32),
            nonce,
            ciphertext,
            version=1,
            gateway_id="gw",
            environment="prod",
            name="A",
        )
    with pytest.raises(VariableUnreadable):
        open_value(KEY, nonce, ciphertext, version=2, gateway_id="gw", environment="prod", name="A")


def test_the_opener_leaves_out_what_does_not_open() -> None:
    opener = VariableOpener("gw", "prod", {1: KEY})
    moved = sealed("MOVED", "x", secret=False, env="dev")
    foreign = sealed("FOREIGN", "y", secret=False, key=secrets.token_bytes(32))
    opened = opener.open(
        [
            sealed("A", "plain", secret=False),
            sealed("S", SECRET, secret=True),
            moved,
            foreign,
            {"name": "BROKEN"},
        ]
    )
    assert dict(opened.values) == {"A": "plain", "S": SECRET}
    assert opened.secrets == frozenset({SECRET})
    assert SECRET not in repr(opened) and SECRET not in repr(opener)
    assert opened.redact(f"token={SECRET};") == "token=••••;"


class EnvPool:
    """Records the env each load carries; every call logs the env's values and succeeds."""

    def __init__(self) -> None:
        self.envs: list[dict[str, str] | None] = []
        self.env: dict[str, str] = {}

    async def start(self) -> None:
        pass

    async def load(
        self, functions: list[PublishedFunction], *, env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        self.envs.append(None if env is None else dict(env))
        if env is not None:
            self.env = dict(env)
        return {}

    async def invoke(self, name: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        logs = tuple(LogEntry(time.time(), "info", f"{k} is {v}") for k, v in sorted(self.env.items()))
        return InvocationResult(200, {}, b"ok", logs)

    async def debug(self, code: str, invocation: Invocation, timeout: float) -> InvocationResult:  # noqa: ASYNC109
        return await self.invoke("debug", invocation, timeout)

    async def close(self) -> None:
        pass


class RecordedLogs:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, LogEntry]] = []

    def start(self) -> None:
        pass

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None:
        self.entries.extend((function, request_id, e) for e in entries)

    async def close(self) -> None:
        pass


class Observed:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, float]] = []

    def observe(self, function: str, status: int, duration_s: float) -> None:
        self.calls.append((function, status, duration_s))


FUNCTION = {"name": "fn", "environment": "prod", "code": "c", "version": 1, "hash": "h"}


def test_the_supervisor_opens_variables_for_the_pool_and_redacts_secrets() -> None:
    async def scenario() -> None:
        pool, logs, observed = EnvPool(), RecordedLogs(), Observed()
        supervisor = Supervisor(
            "gw", "prod", pool, None, logs, max_request_bytes=1024,
            variables=VariableOpener("gw", "prod", {1: KEY}), observer=observed,
        )  # fmt: skip
        await supervisor.start()
        await supervisor.apply(1, [FUNCTION], None, None)  # a snapshot without variables: env untouched
        await supervisor.apply(
            2, [FUNCTION], None, [sealed("A", "plain", secret=False), sealed("S", SECRET, secret=True)]
        )
        assert pool.envs == [None, {"A": "plain", "S": SECRET}]

        async def no_body(limit: int) -> bytes:
            return b""

        response = await supervisor.handle(RequestHead("GET", "/fn", "", {}), no_body)
        assert response.status == 200
        messages = [e.message for _, _, e in logs.entries]
        assert messages == ["A is plain", "S is ••••"]
        assert [(f, s) for f, s, _ in observed.calls] == [("fn", 200)] and observed.calls[0][2] >= 0
        debug = await supervisor.debug("code", {})
        assert SECRET not in str(debug) and "S is ••••" in str(debug["logs"])

        await supervisor.apply(3, [FUNCTION], None, [])  # every variable deleted
        assert pool.envs[-1] == {}
        await supervisor.close()

    asyncio.run(scenario())


def test_a_replica_without_the_key_serves_an_empty_env() -> None:
    async def scenario() -> None:
        pool = EnvPool()
        supervisor = Supervisor("gw", "prod", pool, None, RecordedLogs(), max_request_bytes=1024)
        await supervisor.start()
        await supervisor.apply(1, [FUNCTION], None, [sealed("S", SECRET, secret=True)])
        assert pool.envs == [{}]
        await supervisor.close()

    asyncio.run(scenario())
