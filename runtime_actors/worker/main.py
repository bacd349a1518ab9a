"""The jailed worker process: it jails itself, says hello, then serves one message at a time.

Started by ``replica.pool.launcher`` as ``python -I -S -X utf8 -c <bootstrap> <package root> <JailConfig JSON>``
with an empty environment and only stderr and its socket open; ``-S`` leaves site-packages out, so
the bootstrap appends the directory holding ``runtime_actors`` to ``sys.path`` itself. In order:
everything the worker will ever need is imported (this module's imports, then the allowed modules),
the worker arranges to die with its parent and closes every other descriptor, creates the event loop
for ``async def main``, applies the kernel jail (``worker.process``) — or refuses, unless started
insecure, in which case it says so on stderr and in its hello — then the Python layer
(``worker.sandbox``), installs ``imp``, and serves ``load``/``invoke``/``debug``/``ping`` frames.
During a call, ``imp.db()``/``imp.fetch`` send a ``db``/``fetch`` frame and block for the
supervisor's ``reply``; the next request may arrive before that reply (the supervisor sends a worker
its next call while the current one runs) and is kept for when the current one is answered.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
import zoneinfo
from collections import deque
from typing import Any, Final, NoReturn

from runtime_actors.shared.allowed_modules import ALLOWED_MODULES
from runtime_actors.shared.frames import FunctionSource, SyncChannel, b64, invocation_from_wire
from runtime_actors.shared.jail_config import JailConfig
from runtime_actors.worker import imp_module, sandbox
from runtime_actors.worker.invocation import error_parts, execute
from runtime_actors.worker.loader import FunctionTable, LoadFailed
from runtime_actors.worker.process import JailError, apply_jail, close_fds_except, die_with_parent

__all__ = ["EXIT_REFUSED", "main"]

EXIT_REFUSED: Final = 3
_LAZY_IMPORTS: Final = (
    "_strptime",
    "encodings.idna",
    "encodings.latin_1",
    "encodings.ascii",
    "importlib.resources",
)
"""Modules the standard library imports lazily on first use; loaded up front so no call needs the disk."""
_MAX_QUEUED: Final = 16


def _say(line: str) -> None:
    """A line on the worker's stderr (the supervisor's log), bypassing the captured ``sys.stderr``."""
    try:
        os.write(2, f"imprun worker {os.getpid()}: {line}\n".encode(errors="replace"))
    except OSError:
        pass


def _preimport() -> None:
    for name in sorted(ALLOWED_MODULES - {"imp"}) + list(_LAZY_IMPORTS):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            _say(f"module {name} cannot be imported: {exc}")


class _Worker:
    def __init__(self, channel: SyncChannel, table: FunctionTable, loop: asyncio.AbstractEventLoop) -> None:
        self._channel = channel
        self._table = table
        self._loop = loop
        self._queued: deque[dict[str, Any]] = deque()
        """Requests the supervisor sent ahead (it may send the next call before this one is answered)
        that arrived while a callback waited for its reply."""

    def bridge(self, kind: str, request: dict[str, Any]) -> Any:
        """One callback round trip: ``imp.db()`` and ``imp.fetch`` end here."""
        self._channel.send({"op": kind, "request": request})
        reply = self._channel.receive()
        while reply.get("op") != "reply" and len(self._queued) < _MAX_QUEUED:
            self._queued.append(reply)
            reply = self._channel.receive()
        if reply.get("op") != "reply":
            raise RuntimeError(f"the supervisor answered {kind} with {reply.get('op')!r}")
        if reply.get("ok"):
            return reply.get("value")
        error = reply.get("error")
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or f"{kind} failed")
        if kind == "db":
            raise imp_module.DBError(str(error.get("code") or "internal"), message)
        raise imp_module.FetchError(message)

    def serve(self) -> NoReturn:
        while True:
            try:
                message = self._queued.popleft() if self._queued else self._channel.receive()
            except (EOFError, OSError):
                os._exit(0)
            try:
                answer = self._handle(message)
            except Exception as exc:  # a bug here must not take the worker down silently
                _say(f"internal error on {message.get('op')!r}: {exc!r}")
                answer = {"op": "error", "message": f"worker failure: {type(exc).__name__}"}
            answer["id"] = message.get("id")
            self._channel.send(answer)

    def _handle(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message["op"]
        if op == "invoke":
            invocation = invocation_from_wire(message["invocation"])
            function = self._table.get(invocation.function)
            if function is None:
                parts = error_parts(404, "not_found", f"function '{invocation.function}' is not loaded")
                return self._result(parts.payload([]))
            return self._result(execute(function.main, function.contract, invocation, self._loop))
        if op == "load":
            return self._load(message)
        if op == "debug":
            invocation = invocation_from_wire(message["invocation"])
            try:
                main, contract = self._table.compile_transient(str(message["code"]))
            except LoadFailed as failed:
                parts = error_parts(400, "invalid", str(failed.error), failed.error.to_wire())
                return self._result(parts.payload([]))
            return self._result(execute(main, contract, invocation, self._loop))
        if op == "ping":
            return {"op": "pong"}
        return {"op": "error", "message": f"unknown op {op!r}"}

    def _load(self, message: dict[str, Any]) -> dict[str, Any]:
        if isinstance(message.get("env"), dict):
            imp_module._set_env(message["env"])
        errors: dict[str, Any] = {}
        for raw in message.get("functions", ()):
            source = FunctionSource.of(raw)
            imp_module._begin_capture()
            error = self._table.load(source)
            imp_module._end_capture()  # module-level prints are not kept
            if error is not None:
                errors[source.name] = error.to_wire()
        for name in message.get("unload", ()):
            self._table.unload(str(name))
        return {"op": "loaded", "errors": errors}

    @staticmethod
    def _result(payload: dict[str, Any]) -> dict[str, Any]:
        payload["body"] = b64(payload["body"])
        payload["cpu_seconds"] = time.process_time()
        return {"op": "result", "result": payload}


def _jail_and_serve(config: JailConfig) -> NoReturn:
    channel = SyncChannel(config.pipe_fd)
    loop = asyncio.new_event_loop()  # its self-pipe is a socketpair: made before seccomp forbids them
    try:
        report = apply_jail(config)
    except JailError as exc:
        _say(f"refusing to run tenant code: the kernel jail could not be applied: {exc}")
        channel.send({"op": "refused", "reason": str(exc)})
        os._exit(EXIT_REFUSED)
    if not report.secure:
        _say(
            "INSECURE: running tenant code WITHOUT the full kernel jail ("
            + "; ".join(report.failures)
            + "). Started with insecure=True: for local development only, never in production."
        )
    views = sandbox.ModuleViews(sys.modules)
    table = FunctionTable(sandbox.restricted_builtins(views), views.view("imp"))
    sandbox.forget_dangerous_modules()
    sandbox.guard_attribute_walkers()
    sandbox.install_audit_hook([p for p in zoneinfo.TZPATH if os.path.isdir(p)])
    sys.stdout = imp_module._STDOUT
    sys.stderr = imp_module._STDERR
    worker = _Worker(channel, table, loop)
    imp_module._bind(worker.bridge)
    channel.send({"op": "hello", "pid": os.getpid(), "jail": report.to_dict()})
    worker.serve()


def main(config_json: str) -> NoReturn:
    config = JailConfig.from_json(config_json)
    die_with_parent(config.parent_pid)
    close_fds_except({2, config.pipe_fd})
    _preimport()
    sys.modules["imp"] = imp_module  # replaces the standard library's deprecated ``imp``
    _jail_and_serve(config)
