"""What the chat endpoint lets one application spend: a request rate, and LLM calls and tokens per period.

The operator's provider keys pay for every chat, so each application (the application of the key's
grants) gets, apart from the rate limit of its tool calls:

- a **request rate** — ``requests_per_minute`` chat requests in any sliding minute, counted in this
  replica's memory (the AI gateway runs one replica);
- a **budget** per period — ``calls_per_period`` provider calls and ``tokens_per_period`` tokens (input
  plus output, as the provider's ``usage`` reported them), in fixed periods of ``period_seconds``
  counted from the epoch and kept in ``imprun.store.llm_usage`` so every replica and the API see them.

The budget is checked before each provider call of the tool loop and the call is recorded after it,
so a request that starts under budget stops at the first call past it. Over either limit is a
``RateLimited`` (429) whose ``retry_after`` says when the application may chat again. A key whose
grants belong to several applications is held to each of them and charged to each.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from imprun.ai.providers import AssistantTurn
from imprun.errors import RateLimited
from imprun.store.llm_usage import LlmUsage, period_start

__all__ = ["ChatBudget", "ChatLimits", "UsageStore"]

_MINUTE: Final = 60.0


class UsageStore(Protocol):
    """Where usage is counted (``imprun.store.llm_usage.LlmUsageRepository``)."""

    def usage(self, application_id: str, period_start: int) -> LlmUsage: ...

    def record(
        self,
        application_ids: Iterable[str],
        period_start: int,
        *,
        calls: int,
        input_tokens: int,
        output_tokens: int,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class ChatLimits:
    calls_per_period: int = 500
    tokens_per_period: int = 500_000
    period_seconds: int = 86_400
    requests_per_minute: int = 30


class ChatBudget:
    def __init__(
        self, store: UsageStore, limits: ChatLimits, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self.limits = limits
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}

    def period_start(self) -> int:
        return period_start(self._clock(), self.limits.period_seconds)

    def admit(self, application_ids: Collection[str]) -> None:
        """Count one chat request against each application's rate, or ``RateLimited`` if one is at it."""
        now = self._clock()
        windows = [self._window(app, now) for app in sorted(application_ids)]
        full = [w for w in windows if len(w) >= self.limits.requests_per_minute]
        if full:
            wait = max(w[0] + _MINUTE - now for w in full)
            raise RateLimited(
                f"Too many chat requests: at most {self.limits.requests_per_minute} a minute per "
                "application. Retry after the Retry-After seconds.",
                retry_after=int(wait) + 1,
                details={"limit": self.limits.requests_per_minute, "windowSeconds": int(_MINUTE)},
            )
        for window in windows:
            window.append(now)

    def _window(self, application_id: str, now: float) -> deque[float]:
        window = self._recent.setdefault(application_id, deque())
        while window and window[0] <= now - _MINUTE:
            window.popleft()
        if len(self._recent) > 10_000:  # forget applications that went quiet
            for quiet in [a for a, w in self._recent.items() if not w and a != application_id]:
                del self._recent[quiet]
        return window

    async def check(self, application_ids: Collection[str]) -> None:
        """``RateLimited`` when an application has spent its calls or tokens of this period."""
        start = self.period_start()
        for app in sorted(application_ids):
            used = await asyncio.to_thread(self._store.usage, app, start)
            spent = [
                (name, limit, count)
                for name, limit, count in (
                    ("calls", self.limits.calls_per_period, used.calls),
                    ("tokens", self.limits.tokens_per_period, used.tokens),
                )
                if count >= limit
            ]
            if spent:
                name, limit, count = spent[0]
                period_end = start + self.limits.period_seconds
                raise RateLimited(
                    f"Application {app} has used its LLM budget for this period ({count} of {limit} "
                    f"{name}); it renews when the period ends, in the Retry-After seconds.",
                    retry_after=int(period_end - self._clock()) + 1,
                    details={"applicationId": app, "budget": name, "limit": limit, "used": count},
                )

    async def record(self, application_ids: Collection[str], turn: AssistantTurn) -> None:
        if not application_ids:
            return
        await asyncio.to_thread(
            self._store.record,
            sorted(application_ids),
            self.period_start(),
            calls=1,
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
        )
