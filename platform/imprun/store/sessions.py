"""Console/CLI sessions in Redis: opaque bearer token → user id, with a TTL.

Only a SHA-256 digest of the token is used as the Redis key, so a dump of Redis does not hand out
working tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from imprun.store.redis import Redis, redis_errors

_PREFIX = "imprun:session:"


def _key(token: str) -> str:
    return _PREFIX + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    user_id: str
    expires_at: datetime


class SessionStore:
    def __init__(self, client: Redis, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl = ttl_seconds

    def create(self, token: str, user_id: str) -> Session:
        with redis_errors():
            self._redis.set(_key(token), user_id, ex=self._ttl)
        return Session(user_id=user_id, expires_at=datetime.now(UTC) + timedelta(seconds=self._ttl))

    def resolve(self, token: str) -> str | None:
        """The user id of a live session, or None when unknown or expired."""
        with redis_errors():
            value = self._redis.get(_key(token))
        return str(value) if value is not None else None

    def revoke(self, token: str) -> None:
        with redis_errors():
            self._redis.delete(_key(token))
