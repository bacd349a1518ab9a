"""``DataPlaneCaller``: one HTTP call to a published function, made by the control plane.

The console's "call it" panels run in a browser whose page comes from the control plane; the data
plane (another port) sends no CORS headers, so the page asks the control plane to make the call and
show the answer. The call goes to the data plane's own URL with exactly the method, query, headers
and body given (the page's API key included), as any client would make it; the answer comes back
as ``{status, headers, body, durationMs}``. Connection failures become ``Unavailable``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import httpx

from imprun.errors import Unavailable

__all__ = ["CallAnswer", "DataPlaneCaller"]

MAX_ANSWER_BYTES: Final = 1 << 20
"""Answers larger than this are cut (the page shows the beginning and says so)."""
_HOP_HEADERS: Final = frozenset({"connection", "content-length", "host", "transfer-encoding", "keep-alive"})


@dataclass(frozen=True)
class CallAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    duration_ms: float


class DataPlaneCaller:
    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def call(
        self,
        path: str,
        *,
        method: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes | None,
    ) -> CallAnswer:
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        started = time.perf_counter()
        try:
            with (
                httpx.Client(timeout=self._timeout_s) as http,
                http.stream(
                    method, f"{self._base_url}/{path}", params=query, headers=sent, content=body
                ) as r,
            ):
                content = b""
                truncated = False
                for chunk in r.iter_bytes():
                    content += chunk
                    if len(content) > MAX_ANSWER_BYTES:
                        content, truncated = content[:MAX_ANSWER_BYTES], True
                        break
                return CallAnswer(
                    status=r.status_code,
                    headers={k: v for k, v in r.headers.items() if k.lower() not in _HOP_HEADERS},
                    body=content,
                    truncated=truncated,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
        except httpx.HTTPError as exc:
            raise Unavailable(f"the data plane at {self._base_url} did not answer: {exc}") from exc
