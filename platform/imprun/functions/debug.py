"""The request a debug run hands to the sandbox, in the shape of ``runtime_actors.shared.messages.Invocation``.

A debug run (``POST …/functions/{fn}/debug``) describes its request in JSON: a method, a query whose
values are strings or lists of strings, headers, and a body that is either a string (sent as is) or any
other JSON value (sent encoded, with ``content-type: application/json`` unless a content type is given).
This module turns that into the plain dict the ``FunctionRuntime`` receives; it runs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def debug_invocation(
    *,
    function: str,
    method: str,
    path: str,
    query: Mapping[str, str | list[str]],
    headers: Mapping[str, str],
    body: Any,
    request_id: str,
) -> dict[str, Any]:
    """``Invocation`` fields: method, path, query (lists), headers (lower-case), body (bytes), …"""
    lowered = {name.lower(): value for name, value in headers.items()}
    if body is None:
        payload = b""
    elif isinstance(body, str):
        payload = body.encode("utf-8")
    else:
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        lowered.setdefault("content-type", "application/json")
    return {
        "method": method.upper(),
        "path": path if not path or path.startswith("/") else f"/{path}",
        "query": {key: [value] if isinstance(value, str) else list(value) for key, value in query.items()},
        "headers": lowered,
        "body": payload,
        "request_id": request_id,
        "function": function,
    }
