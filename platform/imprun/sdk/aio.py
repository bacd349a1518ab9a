"""``imprun.AsyncClient``: the routes where waiting matters, for asyncio code and notebooks.

Following live logs is a long-lived Server-Sent Events stream (``follow_logs`` is an async
iterator); debug-runs and data-plane calls are the other slow paths. Any other route can be sent
with ``await client.run(spec)`` using the specs of ``imprun.sdk.routes``. Connection settings,
request building, errors and the looked-up environment URLs are shared with the sync ``Client``
(``imprun.sdk._base``); ``transport=`` takes an ``httpx.AsyncBaseTransport`` (e.g. a
``MockTransport``), as ``Client`` takes a sync one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import httpx

from imprun.sdk import _http, routes
from imprun.sdk._base import ClientBase
from imprun.sdk._http import Spec, StreamEnd
from imprun.sdk.models import CallResult, DebugResult, LogEntry, LoginResult, User

T = TypeVar("T")


class AsyncClient(ClientBase):
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        data_plane_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, data_plane_url=data_plane_url, api_key=api_key, timeout=timeout)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, spec: Spec[T]) -> T:
        request = self._request_args(spec)
        try:
            response = await self._http.request(**request)
        except httpx.TransportError as exc:
            raise self._failed(exc, spec) from exc
        return self._answer(spec, response)

    async def login(self, username: str, password: str) -> LoginResult:
        result = await self.run(routes.login(username, password))
        self.token = result.token
        return result

    async def me(self) -> User:
        return await self.run(routes.me())

    async def logout(self) -> None:
        await self.run(routes.logout())
        self.token = None

    async def debug_function(
        self,
        gw: str,
        fn: str,
        *,
        code: str | None = None,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> DebugResult:
        spec = routes.debug(gw, fn, code=code, method=method, query=query, headers=headers, body=body)
        return await self.run(spec)

    async def logs(
        self,
        gw: str,
        env: str,
        *,
        function: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        return await self.run(routes.logs(gw, env, function=function, since=since, limit=limit))

    async def follow_logs(
        self,
        gw: str,
        env: str,
        *,
        function: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """Yield entries as they are written until the server ends the stream (or the caller stops)."""
        spec = routes.logs(gw, env, function=function, since=since, limit=limit, follow=True)
        headers = {**self._headers(spec), "Accept": "text/event-stream"}
        decoder = _http.SseDecoder()
        try:
            async with self._http.stream(
                "GET", spec.path, params=spec.params, headers=headers, timeout=httpx.Timeout(None)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _http.raise_for_error(response)
                async for line in response.aiter_lines():
                    item = decoder.log_item(line)
                    if isinstance(item, StreamEnd):
                        return
                    if item is not None:
                        yield item
        except httpx.TransportError as exc:
            raise self._failed(exc, spec) from exc

    async def _environment_base(self, gw: str, env: str) -> str:
        known = self._known_base(gw, env)
        if known is not None:
            return known
        lookup = self._environment_spec(gw, env)
        return self._remember_base(gw, env, (await self.run(lookup)).url if lookup is not None else None)

    async def call(
        self,
        gw: str,
        env: str,
        fn: str,
        body: Any = None,
        *,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        check: bool = True,
    ) -> CallResult:
        request = _http.data_plane_request(
            await self._environment_base(gw, env),
            fn,
            method=method,
            body=body,
            query=query,
            headers=headers,
            api_key=api_key or self.connection.api_key,
        )
        try:
            response = await self._http.request(**request)
        except httpx.TransportError as exc:
            raise _http.connection_error(exc, request["url"]) from exc
        if check:
            _http.raise_for_error(response)
        return _http.call_result(response)
