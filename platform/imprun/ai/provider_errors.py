"""Provider failures as ``UpstreamFailed``: the provider's own message, never key material.

Both adaptors (``imprun.ai.openai_provider``, ``imprun.ai.anthropic_provider``) catch their SDK's
exceptions at the boundary and call :func:`upstream_failure`, which picks the human message out of the
provider's error body (OpenAI's ``{"error": {"message": ...}}``, Anthropic's ``{"type": "error",
"error": {"message": ...}}``, or plain text), bounds its length and scrubs the API key and anything
that looks like one, so a provider echoing the key back cannot leak it into a 502 body or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from imprun.errors import UpstreamFailed

__all__ = ["scrub_secrets", "translate_sdk_error", "upstream_failure", "upstream_message"]

MAX_MESSAGE_CHARS = 500
# Shapes of bearer-style secrets providers might echo: OpenAI "sk-...", Anthropic "sk-ant-...".
_KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_REDACTED = "[redacted]"


def scrub_secrets(text: str, api_key: str) -> str:
    """``text`` without ``api_key`` (nor any fragment of it long enough to matter) or key-shaped tokens."""
    if api_key:
        text = text.replace(api_key, _REDACTED)
        # Providers often echo a masked key ("sk-abc...wxyz"); drop any 8+ char fragment of ours too.
        for start in range(0, max(len(api_key) - 7, 0)):
            fragment = api_key[start : start + 8]
            if fragment in text:
                text = text.replace(fragment, _REDACTED)
    return _KEY_SHAPE.sub(_REDACTED, text)


def upstream_message(body: object, fallback: str) -> str:
    """The human message of a provider's error ``body`` (decoded JSON, its ``error`` part, or text)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            if isinstance(message, str) and message.strip():
                return message.strip()
        elif isinstance(inner, str) and inner.strip():
            return inner.strip()
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback


def upstream_failure(
    provider: str, *, status: int | None, body: object, fallback: str, api_key: str
) -> UpstreamFailed:
    """An ``UpstreamFailed`` (502) saying which provider failed, how, and what it said."""
    said = scrub_secrets(upstream_message(body, fallback), api_key)
    if len(said) > MAX_MESSAGE_CHARS:
        said = said[:MAX_MESSAGE_CHARS] + "…"
    how = f"answered {status}" if status is not None else "failed"
    details = {"provider": provider, "status": status}
    return UpstreamFailed(f"{provider} {how}: {said}", details=details)


def translate_sdk_error(
    exc: Exception,
    provider: str,
    *,
    api_key: str,
    timeout_seconds: float,
    timeout_error: type[Exception],
    connection_error: type[Exception],
) -> UpstreamFailed:
    """``UpstreamFailed`` for an SDK exception: status errors carry the provider's answer.

    Both SDKs shape their errors alike (``status_code``, decoded ``body``, ``message``); each adaptor
    names its own timeout and connection error classes, which it raises before any answer.
    """
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        fallback = str(getattr(exc, "message", exc))
        return upstream_failure(
            provider, status=status, body=getattr(exc, "body", None), fallback=fallback, api_key=api_key
        )
    if isinstance(exc, timeout_error):
        fallback = f"no answer within {timeout_seconds:g} s"
    elif isinstance(exc, connection_error):
        fallback = f"could not connect ({exc})"
    else:
        fallback = f"unusable answer ({exc})"
    return upstream_failure(provider, status=None, body=None, fallback=fallback, api_key=api_key)
