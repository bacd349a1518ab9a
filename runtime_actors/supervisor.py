"""The trusted supervisor of one environment replica: hot reload, routing, limits and the call itself.

``Supervisor`` is what a ``FunctionActor`` replica runs, without Ray or any web framework so it can be
tested alone. On ``start`` it loads the environment's functions from the node's reload hub into the
``WorkerPool`` and then follows the hub's long-poll (``wait_changed``), loading each new set; a
function whose new version fails to load keeps its live version (the pool keeps the old code, and so
does the routing table here). ``handle`` serves ``ANY /<gw>/<env>/<fn…>``: request id (``x-request-id``
in and out), admission before anything else (``RequestGate``; in replicas
``runtime_actors.key_auth.KeyAuthGate``: API keys and rate limits), longest
published name that prefixes the path (404), the function's methods (405), the body limit (413), the
call through the pool under the function's timeout (504), and the translation of the
``InvocationResult`` into an HTTP response in API.md's error shape (a 5xx carries ``requestId``).
The gate's view of who may call arrives with the functions: a hub snapshot may carry the
environment's ``AccessDocuments``, which ``apply`` hands to the gate *before* loading functions (a
revoked key stops working without waiting for code to load). Platform credentials (``apikey``,
``Authorization: Bearer imp_…``) are removed from the headers tenant code sees (``tenant_headers``).
Each invocation's logs go to the Redis stream ``imprun:logs:<gw>/<env>`` from a background task, so
the hot path only appends to a queue; there is no per-request access log. A snapshot's fourth part,
the environment's sealed variables, is opened here (``VariableOpener``, with the key of the replica's
runtime configuration) and handed to the pool as ``imp.env``; secret values are redacted from every
log entry the supervisor writes. Each finished call is reported to an ``InvocationObserver``
(the replica's Ray metrics) with its function, status and duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import parse_qs

import redis.asyncio as aioredis

from runtime_actors.protocol import (
    LOG_STREAM_PREFIX,
    Invocation,
    InvocationResult,
    LogEntry,
    PublishedFunction,
)
from runtime_actors.reload import AccessDocuments
from runtime_actors.variables import VariableOpener, VariableSet

__all__ = [
    "AllowEveryRequest",
    "BodyTooLarge",
    "DiscardLogs",
    "FunctionLogSink",
    "FunctionPool",
    "HttpResponse",
    "InvocationObserver",
    "NoObserver",
    "RedisLogStream",
    "ReloadSource",
    "RequestGate",
    "RequestHead",
    "SnapshotTuple",
    "Supervisor",
    "error_response",
    "invocation_from_dict",
    "iso_time",
    "read_limited",
    "request_id_of",
    "tenant_headers",
    "translate_result",
]

logger = logging.getLogger(__name__)

SnapshotTuple = (
    tuple[int, list[dict[str, Any]]]
    | tuple[int, list[dict[str, Any]], AccessDocuments]
    | tuple[int, list[dict[str, Any]], AccessDocuments, list[dict[str, Any]]]
)
"""``(generation, function documents[, access[, sealed variable documents]])`` as the hub answers it."""

_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CREDENTIAL_HEADERS: Final = frozenset({"apikey"})
_PLATFORM_KEY_PREFIX: Final = "imp_"
_TIMEOUT_GRACE_S: Final = 2.0
"""Beyond a function's timeout, how long the supervisor waits for the pool's own watchdog to answer."""
_LONG_POLL_S: Final = 30.0
_ERROR_STATUS: Final = {
    "invalid": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "timeout": 504,
    "unavailable": 503,
    "internal": 500,
}
_ERROR_CODE_OF_STATUS: Final = {status: code for code, status in _ERROR_STATUS.items()}


class FunctionPool(Protocol):
    """The jailed worker pool (``runtime_actors.worker_pool.WorkerPool``) as the supervisor uses it."""

    async def start(self) -> None: ...

    async def load(
        self, functions: list[PublishedFunction], *, env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Make ``functions`` current; ``env``, when given, becomes the workers' ``imp.env``."""
        ...

    async def invoke(self, name: str, invocation: Invocation, timeout: float) -> InvocationResult: ...  # noqa: ASYNC109

    async def debug(self, code: str, invocation: Invocation, timeout: float) -> InvocationResult: ...  # noqa: ASYNC109

    async def close(self) -> None: ...


class InvocationObserver(Protocol):
    """Told about every finished call (on the request path: must not block)."""

    def observe(self, function: str, status: int, duration_s: float) -> None: ...


class NoObserver:
    def observe(self, function: str, status: int, duration_s: float) -> None:
        pass


class ReloadSource(Protocol):
    """The node's reload hub, bound to this environment."""

    async def snapshot(self) -> SnapshotTuple: ...

    async def wait_changed(self, known_generation: int, timeout_s: float) -> SnapshotTuple | None: ...


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What arrives before the body: ``route`` is the path below ``/<gw>/<env>`` (``/`` at least)."""

    method: str
    route: str
    query_string: str
    headers: Mapping[str, str]  # lower-cased names
    client: str = ""
    """The peer address the replica sees (behind an ingress: the ingress's); "" when unknown."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class RequestGate(Protocol):
    """Admission before routing: return a response to refuse the request, None to let it through.

    ``update`` gets each new ``AccessDocuments`` of the environment, in generation order."""

    async def admit(self, head: RequestHead, request_id: str) -> HttpResponse | None: ...

    def update(self, access: AccessDocuments) -> None: ...

    async def close(self) -> None: ...


class AllowEveryRequest:
    """Admits everything: for a replica that runs no tenant code, and for tests of routing alone."""

    async def admit(self, head: RequestHead, request_id: str) -> HttpResponse | None:
        return None

    def update(self, access: AccessDocuments) -> None:
        pass

    async def close(self) -> None:
        pass


class BodyTooLarge(Exception):
    pass


async def read_limited(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """Join an async iterator of body chunks, raising ``BodyTooLarge`` as soon as it passes ``limit``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


class FunctionLogSink(Protocol):
    """Where invocation logs go: ``append`` must not block (it runs on the request path)."""

    def start(self) -> None: ...

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None: ...

    async def close(self) -> None: ...


class DiscardLogs:
    """The sink when no Redis is configured."""

    def start(self) -> None:
        pass

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None:
        pass

    async def close(self) -> None:
        pass


class RedisLogStream:
    """Appends ``{time, function, requestId, level, message}`` entries to ``imprun:logs:<gw>/<env>``.

    ``append`` only queues; one task writes batches with ``XADD … MAXLEN ~ max_len`` in a pipeline.
    When Redis is down or the queue is full, entries are dropped (and counted): logs never slow calls.
    """

    def __init__(self, redis_url: str, key: str, *, max_len: int = 10_000, queue_size: int = 10_000) -> None:
        self.stream = LOG_STREAM_PREFIX + key
        self.dropped = 0
        self._redis_url = redis_url
        self._max_len = max_len
        self._queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(queue_size)
        self._client: aioredis.Redis | None = None
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._redis_url, socket_timeout=5.0)
        self._writer = asyncio.create_task(self._write_forever(self._client), name=f"logs {self.stream}")

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None:
        for entry in entries:
            fields = {
                "time": iso_time(entry.time),
                "function": function,
                "requestId": request_id,
                "level": entry.level,
                "message": entry.message,
            }
            try:
                self._queue.put_nowait(fields)
            except asyncio.QueueFull:
                self.dropped += 1

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 2.0)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._client is not None:
            await self._client.aclose()

    async def _write_forever(self, client: aioredis.Redis) -> None:
        retry = 0.05
        while True:
            batch = [await self._queue.get()]
            while len(batch) < 500 and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for fields in batch:
                        pipe.xadd(self.stream, fields, maxlen=self._max_len, approximate=True)  # type: ignore[arg-type]
                    await pipe.execute()
                retry = 0.05
            except Exception as exc:  # Redis down, or anything else: drop this batch, keep the writer
                self.dropped += len(batch)
                logger.warning(
                    "logs: cannot write to %s (%s); dropped %d entries", self.stream, exc, len(batch)
                )
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)
            finally:
                for _ in batch:
                    self._queue.task_done()


@dataclass(frozen=True, slots=True)
class _Route:
    function: PublishedFunction
    methods: frozenset[str] | None


class Supervisor:
    """One environment replica's trusted side; see the module docstring."""

    def __init__(
        self,
        gateway_id: str,
        environment: str,
        pool: FunctionPool,
        reload_source: ReloadSource | None,
        logs: FunctionLogSink,
        *,
        max_request_bytes: int,
        gate: RequestGate | None = None,
        debug_timeout_s: float = 10.0,
        variables: VariableOpener | None = None,
        observer: InvocationObserver | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.environment = environment
        self._pool = pool
        self._reload_source = reload_source
        self._logs = logs
        self._max_request_bytes = max_request_bytes
        self._gate = gate or AllowEveryRequest()
        self._debug_timeout_s = debug_timeout_s
        self._opener = variables
        self._variables = VariableSet()
        self._observer = observer or NoObserver()
        self._routes: dict[str, _Route] = {}
        self._generation: int | None = None
        self._follower: asyncio.Task[None] | None = None
        self._loaded = asyncio.Event()

    @property
    def generation(self) -> int | None:
        """The generation of the function set being served (None before the first load)."""
        return self._generation

    @property
    def function_names(self) -> list[str]:
        return sorted(self._routes)

    async def start(self, initial_load_timeout: float = 15.0) -> None:
        """Start the pool, load the functions (waiting up to the timeout), then follow changes."""
        await self._pool.start()
        self._logs.start()
        if self._reload_source is None:
            logger.warning("%s/%s: no reload source configured; serving no functions", *self._key)
            self._loaded.set()
            return
        self._follower = asyncio.create_task(self._follow(self._reload_source), name="follow reloads")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._loaded.wait(), initial_load_timeout)
        if not self._loaded.is_set():
            logger.error("%s/%s: functions not loaded yet; answering 503 until they are", *self._key)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        await self._logs.close()
        await self._gate.close()
        await self._pool.close()

    @property
    def _key(self) -> tuple[str, str]:
        return self.gateway_id, self.environment

    async def _follow(self, source: ReloadSource) -> None:
        """Load the snapshot, then each change; after any failure, start over from a snapshot."""
        retry = 0.05
        while True:
            try:
                if self._generation is None:
                    await self._apply_snapshot(await source.snapshot())
                assert self._generation is not None
                changed = await source.wait_changed(self._generation, _LONG_POLL_S)
                if changed is not None:
                    await self._apply_snapshot(changed)
                retry = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("%s/%s: reload failed (%r); resyncing in %.2f s", *self._key, exc, retry)
                self._generation = None
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)

    async def _apply_snapshot(self, snapshot: SnapshotTuple) -> dict[str, str]:
        access = snapshot[2] if len(snapshot) >= 3 else None
        variables = snapshot[3] if len(snapshot) >= 4 else None
        return await self.apply(snapshot[0], snapshot[1], access, variables)

    async def apply(
        self,
        generation: int,
        documents: list[dict[str, Any]],
        access: AccessDocuments | None = None,
        variables: list[dict[str, Any]] | None = None,
    ) -> dict[str, str]:
        """Hand ``access`` to the gate, open ``variables`` (sealed documents), then load the function
        set and the variables into the pool; returns the load errors by function name."""
        if access is not None:
            self._gate.update(access)
        env: dict[str, str] | None = None
        if variables is not None:
            opened = self._opener.open(variables) if self._opener is not None else VariableSet()
            if variables and self._opener is None:
                logger.warning(
                    "%s/%s: variables are set but this replica has no key to open them", *self._key
                )
            env = dict(opened.values)
            self._variables = opened
        functions: list[PublishedFunction] = []
        errors: dict[str, str] = {}
        for document in documents:
            try:
                function = PublishedFunction.from_document(document)
            except (KeyError, TypeError, ValueError) as exc:
                errors[str(document.get("name"))] = f"malformed published document: {exc!r}"
                continue
            if function.environment != self.environment:
                continue
            previous = next((i for i, f in enumerate(functions) if f.name == function.name), None)
            if previous is None:
                functions.append(function)
            else:  # two documents for one name: serve the newest version, and say so
                logger.warning("%s/%s: function %s is published twice", *self._key, function.name)
                if function.version > functions[previous].version:
                    functions[previous] = function
        loaded = await (self._pool.load(functions) if env is None else self._pool.load(functions, env=env))
        errors.update(loaded)
        routes = {
            f.name: _Route(f, frozenset(m.upper() for m in f.methods) if f.methods else None)
            for f in functions
        }
        for name, error in errors.items():
            kept = self._routes.get(name)
            routes.pop(name, None)
            if kept is not None:
                routes[name] = kept
            logger.error("%s/%s: function %s failed to load: %s", *self._key, name, error)
            self._logs.append(name, "", [LogEntry(_now(), "error", f"failed to load: {error}")])
        self._routes = routes
        self._generation = generation
        self._loaded.set()
        return errors

    async def handle(
        self, head: RequestHead, body: Callable[[int], Awaitable[bytes]], request_id: str | None = None
    ) -> HttpResponse:
        """Serve one request; ``body(limit)`` reads the body or raises ``BodyTooLarge``."""
        request_id = request_id or request_id_of(head.headers)
        refused = await self._gate.admit(head, request_id)  # API keys and rate limits hook in here
        if refused is not None:
            refused.headers["x-request-id"] = request_id
            return refused
        if not self._loaded.is_set():
            return error_response(
                503,
                "unavailable",
                "The functions of this environment are still loading; retry shortly.",
                request_id,
            )
        match = self._match(head.route)
        if match is None:
            return error_response(
                404,
                "not_found",
                f"No function is published at {head.route} in environment '{self.environment}' of "
                f"gateway '{self.gateway_id}'. Check the name and publish it to this environment.",
                request_id,
            )
        route, subpath = match
        method = head.method.upper()
        if (
            route.methods is not None
            and method not in route.methods
            and not (method == "HEAD" and "GET" in route.methods)
        ):
            response = error_response(
                405,
                "invalid",
                f"Function '{route.function.name}' accepts {', '.join(sorted(route.methods))}, not {method}.",
                request_id,
            )
            response.headers["allow"] = ", ".join(sorted(route.methods))
            return response
        try:
            payload = await body(self._max_request_bytes)
        except BodyTooLarge:
            return error_response(
                413,
                "too_large",
                f"The request body is over the limit of {self._max_request_bytes} bytes.",
                request_id,
            )
        invocation = Invocation(
            method=method,
            path=subpath,
            query=parse_qs(head.query_string, keep_blank_values=True),
            headers=tenant_headers(head.headers),
            body=payload,
            request_id=request_id,
            function=route.function.name,
        )
        started = time.perf_counter()
        result = await self._invoke(route.function, invocation)
        response = translate_result(result, request_id)
        self._observer.observe(route.function.name, response.status, time.perf_counter() - started)
        self._record_logs(route.function.name, request_id, result, response)
        return response

    async def debug(self, code: str, invocation: dict[str, Any]) -> dict[str, Any]:
        """Run unpublished ``code`` in the sandbox: ``{status, headers, body, logs, durationMs}``."""
        call = invocation_from_dict(invocation, request_id_of(invocation.get("headers") or {}))
        try:
            result = await asyncio.wait_for(
                self._pool.debug(code, call, self._debug_timeout_s), self._debug_timeout_s + _TIMEOUT_GRACE_S
            )
        except TimeoutError:
            result = _timed_out(self._debug_timeout_s)
        response = translate_result(result, call.request_id)
        return {
            "status": response.status,
            "headers": response.headers,
            "body": _debug_body(response),
            "logs": [
                {"time": iso_time(e.time), "level": e.level, "message": self._variables.redact(e.message)}
                for e in result.logs
            ],
            "durationMs": result.duration_ms,
        }

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], request_id: str, *, api_key: str, client: str = ""
    ) -> dict[str, Any]:
        """Run the published function ``name`` with ``arguments`` as its JSON body — an AI-gateway tool
        call — with the admission, limits and logs of an HTTP call: the gate sees ``api_key`` as the
        call's ``apikey`` (so the key's rate limit counts tool calls and HTTP calls together). Answers
        ``{status, body, error, durationMs}`` (``body`` parsed when it is JSON)."""
        head = RequestHead("POST", f"/{name}", "", {"apikey": api_key} if api_key else {}, client)
        refused = await self._gate.admit(head, request_id)
        if refused is not None:
            return {
                "status": refused.status,
                "body": _debug_body(refused),
                "error": _ERROR_CODE_OF_STATUS.get(refused.status, "forbidden"),
                "durationMs": 0.0,
            }
        route = self._routes.get(name) if self._loaded.is_set() else None
        if route is None:
            status, code = (404, "not_found") if self._loaded.is_set() else (503, "unavailable")
            message = f"No function {name!r} is published in environment '{self.environment}'."
            return {
                "status": status,
                "body": {"error": {"code": code, "message": message}},
                "error": code,
                "durationMs": 0.0,
            }
        invocation = Invocation(
            method=_tool_method(route.methods),
            path="",
            query={},
            headers={"content-type": "application/json", "x-request-id": request_id},
            body=json.dumps(dict(arguments)).encode(),
            request_id=request_id,
            function=name,
        )
        if invocation.method == "GET":
            query = {k: [v if isinstance(v, str) else json.dumps(v)] for k, v in arguments.items()}
            invocation = dataclasses.replace(invocation, body=b"", query=query)
        result = await self._invoke(route.function, invocation)
        response = translate_result(result, request_id)
        self._record_logs(name, request_id, result, response)
        return {
            "status": response.status,
            "body": _debug_body(response),
            "error": result.error,
            "durationMs": result.duration_ms,
        }

    def _match(self, route: str) -> tuple[_Route, str] | None:
        """The longest published name that prefixes ``route`` at a ``/`` boundary, and the rest."""
        path = route.strip("/")
        routes = self._routes
        while path:
            found = routes.get(path)
            if found is not None:
                return found, route.lstrip("/")[len(path) :]
            path = path.rpartition("/")[0]
        return None

    async def _invoke(self, function: PublishedFunction, invocation: Invocation) -> InvocationResult:
        timeout = function.timeout_seconds
        try:
            async with asyncio.timeout(timeout + _TIMEOUT_GRACE_S):
                return await self._pool.invoke(function.name, invocation, timeout)
        except TimeoutError:
            return _timed_out(timeout)
        except Exception as exc:
            logger.exception("%s/%s: the pool failed on %s", *self._key, function.name)
            return InvocationResult(
                500, {}, b"", error="internal", logs=(LogEntry(_now(), "error", f"runtime failure: {exc!r}"),)
            )

    def _record_logs(
        self, function: str, request_id: str, result: InvocationResult, response: HttpResponse
    ) -> None:
        entries = list(result.logs)
        if response.status >= 500:
            entries.append(LogEntry(_now(), "error", f"{response.status} {_error_message(response)}"))
        if entries:
            redact = self._variables.redact
            self._logs.append(
                function, request_id, [LogEntry(e.time, e.level, redact(e.message)) for e in entries]
            )


def _tool_method(methods: frozenset[str] | tuple[str, ...] | None) -> str:
    """POST the arguments as JSON unless the function takes only GET (then they go in the query)."""
    if methods is None or "POST" in methods or "GET" not in methods:
        return "POST"
    return "GET"


def tenant_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers tenant code sees: without ``apikey`` nor an ``Authorization: Bearer imp_…`` key.

    Any other ``Authorization`` (a function's own scheme: Basic, a user's JWT…) is left to the function.
    """
    visible = {k: v for k, v in headers.items() if k not in _CREDENTIAL_HEADERS}
    authorization = visible.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip().startswith(_PLATFORM_KEY_PREFIX):
            del visible["authorization"]
    return visible


def request_id_of(headers: Mapping[str, str]) -> str:
    """The caller's ``x-request-id`` when it is a sane token, else a fresh one."""
    given = headers.get("x-request-id")
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def error_response(
    status: int, code: str, message: str, request_id: str, details: Any = None
) -> HttpResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    body: dict[str, Any] = {"error": error}
    if status >= 500:
        error["requestId"] = request_id
        body["requestId"] = request_id
    return HttpResponse(
        status,
        json.dumps(body).encode(),
        {"content-type": "application/json", "x-request-id": request_id},
    )


def translate_result(result: InvocationResult, request_id: str) -> HttpResponse:
    """The HTTP response for a worker's result; errors get API.md's shape (5xx with ``requestId``)."""
    if result.error is None:
        headers = dict(result.headers)
        headers["x-request-id"] = request_id
        return HttpResponse(result.status, result.body, headers)
    status = result.status if result.status >= 400 else _ERROR_STATUS.get(result.error, 500)
    code = result.error if result.error in _ERROR_STATUS else _ERROR_CODE_OF_STATUS.get(status, "internal")
    message, details = _worker_error(result.body)
    return error_response(
        status, code, message or _DEFAULT_MESSAGES.get(code, "The function failed."), request_id, details
    )


_DEFAULT_MESSAGES: Final = {
    "timeout": "The function did not finish within its timeout.",
    "internal": "The function raised an exception; see the logs for this requestId.",
}


def _worker_error(body: bytes) -> tuple[str, Any]:
    """Message and details from a worker's error body (API error shape, JSON or plain text)."""
    if not body:
        return "", None
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:2000], None
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or ""), error.get("details")
        return str(error), None
    return str(parsed), None


def _error_message(response: HttpResponse) -> str:
    message, _ = _worker_error(response.body)
    return message


def _timed_out(timeout: float) -> InvocationResult:
    return InvocationResult(
        504,
        {},
        json.dumps(
            {"error": {"code": "timeout", "message": f"The function did not finish within {timeout:g} s."}}
        ).encode(),
        error="timeout",
    )


def invocation_from_dict(values: Mapping[str, Any], request_id: str) -> Invocation:
    """An ``Invocation`` from a debug request ``{method?, path?, query?, headers?, body?}``."""
    body = values.get("body")
    if body is None:
        payload = b""
    elif isinstance(body, bytes):
        payload = body
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = json.dumps(body).encode()
    query = {
        str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
        for k, v in (values.get("query") or {}).items()
    }
    headers = {str(k).lower(): str(v) for k, v in (values.get("headers") or {}).items()}
    if body is not None and not isinstance(body, (bytes, str)):
        headers.setdefault("content-type", "application/json")
    return Invocation(
        method=str(values.get("method") or "GET").upper(),
        path=str(values.get("path") or ""),
        query=query,
        headers=tenant_headers(headers),
        body=payload,
        request_id=request_id,
        function=str(values.get("function") or "debug"),
    )


def _debug_body(response: HttpResponse) -> Any:
    """A debug response body for JSON: parsed when it is JSON, else text."""
    text = response.body.decode("utf-8", "replace")
    if response.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError):
            return json.loads(text)
    return text


def _now() -> float:
    return time.time()


def iso_time(timestamp: float) -> str:
    """``2026-01-02T03:04:05.678Z``: how log entries carry their time."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
