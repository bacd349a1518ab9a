"""Fixed-window failure counters in Redis (login brute-force throttling)."""

from __future__ import annotations

from imprun.store.redis import Redis, redis_errors


class FailureCounter:
    """Counts failures per key in a fixed window; ``retry_after`` tells how long a blocked key waits."""

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

    def record_failure(self, subject: str) -> int:
        key = self._key(subject)
        with redis_errors():
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, self.window_seconds, nx=True)
            count, _ = pipe.execute()
        return int(count)

    def reset(self, subject: str) -> None:
        with redis_errors():
            self._redis.delete(self._key(subject))
