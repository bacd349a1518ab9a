"""Function-log queries: how ``since`` is read, and the events a log follower produces.

``since`` is either an ISO-8601 time (``2026-01-02T03:04:05Z``; a time without offset is UTC) or an
age — a number and a unit, ``30s``, ``5m``, ``2h``, ``1d`` — counted back from now. A follower
yields ``LogEvent``s: an entry, a keep-alive while nothing happens, and one final ``end`` with the
reason the stream stops (the environment was deleted). Pure functions and values, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from imprun.errors import Invalid

_AGE: Final = re.compile(r"(\d{1,9})([smhd])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """The moment ``text`` names (see the module docstring); ``Invalid`` (422) otherwise."""
    value = text.strip()
    age = _AGE.fullmatch(value)
    if age is not None:
        try:
            return now - timedelta(seconds=int(age.group(1)) * _UNIT_SECONDS[age.group(2)])
        except OverflowError:
            raise Invalid(
                f"since={text[:64]!r} reaches back before the year 1; give a smaller age",
                details=[{"loc": ["query", "since"], "msg": "the age is too large"}],
            ) from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise Invalid(
            f"since={text[:64]!r} is neither an ISO-8601 time nor an age like 30s, 5m, 2h or 1d",
            details=[{"loc": ["query", "since"], "msg": "expected an ISO-8601 time or an age"}],
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which entries: the newest ``limit``, of ``function`` only (None: all), from ``since`` on."""

    function: str | None = None
    since: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class LogEvent:
    kind: Literal["entry", "keepalive", "end"]
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""
