"""Opaque bearer tokens for console/CLI sessions."""

from __future__ import annotations

import secrets

TOKEN_PREFIX = "imps_"  # noqa: S105 - a prefix, not a secret


def new_session_token() -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)
