"""Counters in Redis that throttle sign-ins: fixed windows per subject, and failures with back-off.

``WindowCounter`` counts events per subject (a client address) in a fixed window; ``retry_after``
says how long a subject over the limit waits. ``FailureBackoff`` counts failures per subject (a user
seen from one client), remembered for ``memory_seconds`` after the latest: the first ``free`` ones
cost nothing, each further one blocks the subject for twice as long as the one before (1 s, 2 s,
4 s, … up to ``max_lockout_seconds``); a success forgets them.
"""

from __future__ import annotations

import math

from imprun.store.redis import Redis, redis_errors

__all__ = ["FailureBackoff", "WindowCounter"]


class WindowCounter:
    def __init__(self, client: Redis, *, prefix: str, limit: int, window_seconds: int) -> None:
        self._redis = client
        self._prefix = prefix
        self.limit = limit
        self.window_seconds = window_seconds

    def _key(self, subject: str) -> str:
        return f"{self._prefix}{subject}"

    def retry_after(self, subject: str) -> int:
        """Seconds until ``subject`` may try again; 0 when it is not blocked."""
        key = self._key(subject)
        with redis_errors():
            pipe = self._redis.pipeline()
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = pipe.execute()
        if count is None or int(count) < self.limit:
            return 0
        return max(int(ttl), 1)

    def record(self, subject: str) -> int:
        key = self._key(subject)
        with redis_errors():
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, self.window_seconds, nx=True)
            count, _ = pipe.execute()
        return int(count)


class FailureBackoff:
    def __init__(
        self, client: Redis, *, prefix: str, free: int, memory_seconds: int, max_lockout_seconds: int
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self.free = free
        self.memory_seconds = memory_seconds
        self.max_lockout_seconds = max_lockout_seconds

    def _keys(self, subject: str) -> tuple[str, str]:
        return f"{self._prefix}{subject}", f"{self._prefix}{subject}:lock"

    def retry_after(self, subject: str) -> int:
        """Seconds until ``subject`` may try again; 0 when it is not blocked."""
        with redis_errors():
            remaining_ms = int(self._redis.pttl(self._keys(subject)[1]))
        return math.ceil(remaining_ms / 1000) if remaining_ms > 0 else 0

    def record_failure(self, subject: str) -> int:
        """Count a failure; past the ``free`` ones, block ``subject``. Returns the seconds blocked."""
        count_key, lock_key = self._keys(subject)
        with redis_errors():
            pipe = self._redis.pipeline()
            pipe.incr(count_key)
            pipe.expire(count_key, self.memory_seconds)
            count, _ = pipe.execute()
            excess = int(count) - self.free
            if excess <= 0:
                return 0
            lockout = min(1 << min(excess - 1, 32), self.max_lockout_seconds)
            self._redis.set(lock_key, 1, ex=lockout)
        return lockout

    def reset(self, subject: str) -> None:
        with redis_errors():
            self._redis.delete(*self._keys(subject))
