"""A rate limit as the control plane publishes it: ``{count, windowSeconds, window?: "fixed" | "sliding"}``.

The one value type of the data plane's limits: ``from_document`` reads a grant's or an environment's
``rateLimit`` and refuses anything malformed; the replica's limiter counts against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["RateLimit", "WindowKind"]


class WindowKind(StrEnum):
    FIXED = "fixed"
    SLIDING = "sliding"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` requests per ``window_seconds``."""

    count: int
    window_seconds: float
    window: WindowKind = WindowKind.FIXED

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 < self.window_seconds <= 86_400 * 366:
            raise ValueError(
                f"a rate limit needs count >= 1 and 0 < windowSeconds <= 1 year, got "
                f"{self.count} per {self.window_seconds} s"
            )

    @property
    def window_ms(self) -> int:
        return max(1, round(self.window_seconds * 1000))

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> RateLimit | None:
        """``{count, windowSeconds, window?: "fixed" | "sliding"}`` → a limit; None/absent → no limit.

        Raises ``ValueError`` on anything else (the caller decides what a malformed limit means)."""
        if doc is None:
            return None
        if not isinstance(doc, Mapping):
            raise ValueError(f"rateLimit must be an object or null, got {type(doc).__name__}")
        count, window_seconds = doc.get("count"), doc.get("windowSeconds")
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"rateLimit.count must be an integer, got {count!r}")
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, int | float):
            raise ValueError(f"rateLimit.windowSeconds must be a number, got {window_seconds!r}")
        return cls(count, float(window_seconds), WindowKind(doc.get("window") or WindowKind.FIXED))

    def describe(self) -> str:
        return f"{self.count} requests per {self.window_seconds:g} s ({self.window} window)"
