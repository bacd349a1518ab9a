"""The trusted supervisor of one environment replica: hot reload, routing, limits and the call itself.

``Supervisor`` is what a ``FunctionActor`` replica runs, without Ray or any web framework so it can be
tested alone. On ``start`` it loads the environment's functions from the node's reload hub into the
pool and then follows the hub's long-poll (``wait_changed``), loading each new ``Snapshot``; a
function whose new version fails to load keeps its live version (the pool keeps the old code, and so
does the routing table here). The gate's view of who may call arrives with the functions: a snapshot
carries the environment's ``AccessDocuments``, which ``apply`` hands to the gate *before* loading
functions (a revoked key stops working without waiting for code to load). A snapshot's sealed
variables are opened here (``VariableOpener``, with the key of the replica's runtime configuration)
and handed to the pool as ``imp.env``; secret values are redacted from every log entry the
supervisor writes.

HTTP calls (``handle``: ``ANY /<gw>/<env>/<fn…>``) and AI-gateway tool calls (``call_tool``) go
through one pipeline, so both are limited, metered and logged alike: admission first (the
``RequestGate``: API keys and rate limits), then the edge's own resolution — for HTTP the longest
published name that prefixes the path (404), the function's methods (405) and the body limit (413);
for a tool the function by name and its arguments as the body — then the call through the pool under
the function's timeout (504), the translation of the result into an HTTP response (``replica.http``)
with its headers confined (``replica.tenant_response``: cookies scoped to the environment, a
sandboxing CSP), the ``InvocationObserver`` (the replica's Ray metrics: function, status, duration)
and the log sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

from runtime_actors.replica.http import (
    BodyTooLarge,
    HttpResponse,
    RequestHead,
    error_message,
    error_response,
    invocation_from_dict,
    json_body,
    tenant_headers,
    timed_out,
    tool_invocation,
    translate_result,
)
from runtime_actors.replica.log_stream import iso_time
from runtime_actors.replica.ports import (
    AllowEveryRequest,
    FunctionLogSink,
    FunctionPool,
    InvocationObserver,
    NoObserver,
    ReloadSource,
    RequestGate,
)
from runtime_actors.replica.tenant_response import confine_response, path_prefix
from runtime_actors.shared.errors import REQUEST_ID_HEADER, code_of_status, error_json, request_id_of
from runtime_actors.shared.messages import (
    AccessDocuments,
    Invocation,
    InvocationResult,
    LogEntry,
    PublishedFunction,
    Snapshot,
)
from runtime_actors.shared.sealing import VariableOpener, VariableSet

__all__ = ["Supervisor"]

logger = logging.getLogger(__name__)

_TIMEOUT_GRACE_S: Final = 2.0
"""Beyond a function's timeout, how long the supervisor waits for the pool's own watchdog to answer."""
_LONG_POLL_S: Final = 30.0

_Target = tuple[PublishedFunction, Invocation]
"""What a call resolves to before it runs: the function and the invocation the worker gets."""


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

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of this environment's jailed workers (none for a pool without processes)."""
        return list(getattr(self._pool, "worker_pids", []))

    async def start(self, initial_load_timeout: float = 15.0) -> None:
        """Start the pool, load the functions (waiting up to the timeout), then follow changes.

        The first snapshot is read while the pool's workers start: a cold start waits for the
        slower of the two, not for both one after the other."""
        source = self._reload_source
        first = None if source is None else asyncio.ensure_future(source.snapshot())
        try:
            await self._pool.start()
        except BaseException:
            if first is not None:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
            raise
        self._logs.start()
        if source is None or first is None:
            logger.warning("%s/%s: no reload source configured; serving no functions", *self._key)
            self._loaded.set()
            return
        self._follower = asyncio.create_task(self._follow(source, first), name="follow reloads")
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

    async def _follow(self, source: ReloadSource, first: Awaitable[Snapshot]) -> None:
        """Load the ``first`` snapshot, then each change; after any failure, start over from a
        snapshot."""
        retry = 0.05
        pending: Awaitable[Snapshot] | None = first
        while True:
            try:
                if self._generation is None:
                    read, pending = (source.snapshot() if pending is None else pending), None
                    await self._apply_snapshot(await read)
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

    async def _apply_snapshot(self, snapshot: Snapshot) -> dict[str, str]:
        variables = None if snapshot.variables is None else list(snapshot.variables)
        return await self.apply(snapshot.generation, list(snapshot.documents), snapshot.access, variables)

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

        async def resolve() -> _Target | HttpResponse:
            return await self._http_target(head, body, request_id)

        response, _ = await self._call(head, request_id, resolve)
        return response

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], request_id: str, *, api_key: str, client: str = ""
    ) -> dict[str, Any]:
        """Run the published function ``name`` with ``arguments`` as its JSON body — an AI-gateway tool
        call — through the pipeline of an HTTP call: the gate sees ``api_key`` as the call's ``apikey``
        (so the key's rate limit counts tool calls and HTTP calls together), and the call is observed
        and logged alike. Answers ``{status, body, error, durationMs}`` (``body`` parsed when it is JSON)."""
        head = RequestHead("POST", f"/{name}", "", {"apikey": api_key} if api_key else {}, client)

        async def resolve() -> _Target | HttpResponse:
            return self._tool_target(name, arguments, request_id)

        response, result = await self._call(head, request_id, resolve)
        return {
            "status": response.status,
            "body": json_body(response),
            "error": result.error if result is not None else code_of_status(response.status, "forbidden"),
            "durationMs": result.duration_ms if result is not None else 0.0,
        }

    async def debug(self, code: str, invocation: dict[str, Any]) -> dict[str, Any]:
        """Run unpublished ``code`` in the sandbox: ``{status, headers, body, logs, durationMs}``."""
        call = invocation_from_dict(invocation, request_id_of(invocation.get("headers") or {}))
        try:
            result = await asyncio.wait_for(
                self._pool.debug(code, call, self._debug_timeout_s), self._debug_timeout_s + _TIMEOUT_GRACE_S
            )
        except TimeoutError:
            result = timed_out(self._debug_timeout_s)
        response = translate_result(result, call.request_id)
        return {
            "status": response.status,
            "headers": response.headers,
            "body": json_body(response),
            "logs": [
                {"time": iso_time(e.time), "level": e.level, "message": self._variables.redact(e.message)}
                for e in result.logs
            ],
            "durationMs": result.duration_ms,
        }

    async def _call(
        self, head: RequestHead, request_id: str, resolve: Callable[[], Awaitable[_Target | HttpResponse]]
    ) -> tuple[HttpResponse, InvocationResult | None]:
        """The one pipeline of a call: admission → the edge's own resolution (a response ends the call
        there) → invoke → translate → observe and log. The result is None when nothing ran."""
        refused = await self._gate.admit(head, request_id)  # API keys and rate limits hook in here
        if refused is not None:
            refused.headers[REQUEST_ID_HEADER] = request_id
            return refused, None
        target = await resolve()
        if isinstance(target, HttpResponse):
            return target, None
        function, invocation = target
        started = time.perf_counter()
        result = await self._invoke(function, invocation)
        response = translate_result(result, request_id)
        prefix = path_prefix(self.gateway_id, self.environment, head.headers.get("host", ""))
        response = HttpResponse(response.status, response.body, confine_response(response.headers, prefix))
        self._observer.observe(function.name, response.status, time.perf_counter() - started)
        self._record_logs(function.name, request_id, result, response)
        return response, result

    async def _http_target(
        self, head: RequestHead, body: Callable[[int], Awaitable[bytes]], request_id: str
    ) -> _Target | HttpResponse:
        """An HTTP call's function and invocation: the route, its methods and the body limit."""
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
        return route.function, invocation

    def _tool_target(
        self, name: str, arguments: Mapping[str, Any], request_id: str
    ) -> _Target | HttpResponse:
        """A tool call's function and invocation: the function by its exact name."""
        route = self._routes.get(name) if self._loaded.is_set() else None
        if route is None:
            status, code = (404, "not_found") if self._loaded.is_set() else (503, "unavailable")
            message = f"No function {name!r} is published in environment '{self.environment}'."
            return HttpResponse(status, error_json(code, message), {"content-type": "application/json"})
        return route.function, tool_invocation(name, route.methods, arguments, request_id)

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
            return timed_out(timeout)
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
            entries.append(LogEntry(_now(), "error", f"{response.status} {error_message(response)}"))
        if entries:
            redact = self._variables.redact
            self._logs.append(
                function, request_id, [LogEntry(e.time, e.level, redact(e.message)) for e in entries]
            )


def _now() -> float:
    return time.time()
