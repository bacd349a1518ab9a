"""Request rate limits of the data plane: one Redis counter per caller, shared by every replica.

``KeyAuthGate`` (``replica.admission.key_auth``) asks ``RateLimiter.hit(counter, limit)`` once per admitted
request whose grant or environment has a ``rateLimit`` (``{count, windowSeconds, window?}`` as the
control plane publishes it; ``RateLimit.from_document``). The counter is ``<gw>/<env>/<credentialId>``
(``<gw>/<env>/ip:<client>`` when the environment needs no key), so all replicas of an environment,
on any node, count together. Two windows, each one atomic Lua script and one round trip:

- ``fixed`` (the default, APISIX ``limit-count``'s semantics): the window starts at the counter's
  first request and the key expires with it; a refusal's ``Retry-After`` is the time left in it.
- ``sliding``: the sliding-window *counter* (the previous fixed window's count weighted by how much of
  it still overlaps, plus the current one), aligned on Redis's own clock (``TIME``), so replicas on
  nodes with skewed clocks agree; refused requests are not counted, and ``Retry-After`` is when the
  estimate falls back under the limit.

The window length and kind are part of the Redis key, so changing a limit starts a fresh count.
Limits protect capacity, they are not authentication: when Redis fails the limiter lets requests
through (``fail_open`` decisions, counted in ``errors``), logs at most one warning per
``warn_interval_s`` and stops asking Redis for a growing backoff, so an outage never adds a timeout to
every call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from runtime_actors.shared.names import RATE_LIMIT_PREFIX
from runtime_actors.shared.rate_limit import RateLimit, WindowKind

__all__ = [
    "RATE_LIMIT_PREFIX",
    "RateDecision",
    "RateLimiter",
    "RedisRateLimiter",
]

logger = logging.getLogger(__name__)


_FIXED_WINDOW: Final = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""
"""KEYS: counter; ARGV: window ms → {requests in this window (this one included), ms left in it}."""

_SLIDING_WINDOW: Final = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local index = math.floor(now / window)
local elapsed = now - index * window
local current_key = KEYS[1] .. ':' .. index
local current = tonumber(redis.call('GET', current_key) or '0')
local previous = tonumber(redis.call('GET', KEYS[1] .. ':' .. (index - 1)) or '0')
local estimate = current + previous * (window - elapsed) / window
if estimate + 1 <= limit then
  redis.call('INCR', current_key)
  redis.call('PEXPIRE', current_key, window * 2)
  return {1, math.floor(limit - estimate - 1), 0}
end
local wait
if current + 1 > limit then
  wait = (window - elapsed) + window * (1 - (limit - 1) / current)
else
  wait = window * (1 - (limit - 1 - current) / previous) - elapsed
end
return {0, 0, math.ceil(math.max(wait, 1))}
"""
"""KEYS: counter prefix; ARGV: limit, window ms → {allowed 0/1, remaining, ms until a retry can pass}.

When this window alone is full, only the next one can admit (where this count becomes the weighted
previous one); otherwise the previous window's weight must shrink until the estimate leaves room."""


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after_s: int = 0
    """Whole seconds (at least 1) before a retry can pass; 0 when allowed."""
    fail_open: bool = False
    """Allowed only because the counter could not be read (Redis unavailable)."""


class RateLimiter(Protocol):
    """Counts one request of ``counter`` against ``limit``."""

    async def hit(self, counter: str, limit: RateLimit) -> RateDecision: ...

    async def close(self) -> None: ...


class RedisRateLimiter:
    """``RateLimiter`` on Redis (see the module docstring); the client is made in the running loop."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = RATE_LIMIT_PREFIX,
        timeout_s: float = 0.5,
        warn_interval_s: float = 10.0,
    ) -> None:
        self._redis_url = redis_url
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._warn_interval_s = warn_interval_s
        self._client: aioredis.Redis | None = None
        self._scripts: dict[WindowKind, Any] = {}
        self._skip_until = 0.0
        self._backoff_s = 0.0
        self._warned_at = -math.inf
        self.errors = 0

    async def hit(self, counter: str, limit: RateLimit) -> RateDecision:
        if time.monotonic() < self._skip_until:
            return RateDecision(True, limit.count, fail_open=True)
        key = f"{self._prefix}{counter}:{limit.window}:{limit.window_ms}"
        try:
            script = self._script(limit.window)
            if limit.window is WindowKind.FIXED:
                count, left_ms = await asyncio.wait_for(
                    script(keys=[key], args=[limit.window_ms]), self._timeout_s
                )
                allowed = int(count) <= limit.count
                decision = RateDecision(
                    allowed,
                    max(0, limit.count - int(count)),
                    0 if allowed else max(1, math.ceil(int(left_ms) / 1000)),
                )
            else:
                allowed_flag, remaining, wait_ms = await asyncio.wait_for(
                    script(keys=[key], args=[limit.count, limit.window_ms]), self._timeout_s
                )
                allowed = int(allowed_flag) == 1
                decision = RateDecision(
                    allowed, int(remaining), 0 if allowed else max(1, math.ceil(int(wait_ms) / 1000))
                )
        except (RedisError, OSError, TimeoutError) as exc:
            return self._failed_open(limit, exc)
        self._backoff_s = 0.0
        return decision

    async def close(self) -> None:
        client, self._client = self._client, None
        self._scripts.clear()
        if client is not None:
            await client.aclose()

    def _script(self, window: WindowKind) -> Any:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._redis_url, socket_timeout=self._timeout_s, socket_connect_timeout=self._timeout_s
            )
        script = self._scripts.get(window)
        if script is None:
            source = _FIXED_WINDOW if window is WindowKind.FIXED else _SLIDING_WINDOW
            script = self._scripts[window] = self._client.register_script(source)
        return script

    def _failed_open(self, limit: RateLimit, exc: BaseException) -> RateDecision:
        self.errors += 1
        self._backoff_s = min(max(self._backoff_s * 2, 0.1), 5.0)
        self._skip_until = time.monotonic() + self._backoff_s
        now = time.monotonic()
        if now - self._warned_at >= self._warn_interval_s:
            self._warned_at = now
            logger.warning(
                "rate limits: Redis unavailable (%s); letting requests through unlimited for %.1f s "
                "(%d failures so far)",
                type(exc).__name__,
                self._backoff_s,
                self.errors,
            )
        return RateDecision(True, limit.count, fail_open=True)
