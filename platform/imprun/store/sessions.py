"""Console/CLI sessions in Redis: opaque bearer token → user id, with a TTL, indexed per user.

Only a SHA-256 digest of the token is used as a Redis key, so a dump of Redis does not hand out
working tokens. Each user's digests are also kept in a set, so all of a user's sessions can be
revoked at once (logout everywhere, a password change); the set expires with the newest session,
and digests of sessions that expired meanwhile are pruned when the user logs in again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from imprun.store.redis import Redis, redis_errors

_PREFIX = "imprun:session:"
_USER_PREFIX = "imprun:user-sessions:"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _key(digest: str) -> str:
    return _PREFIX + digest


@dataclass(frozen=True)
class Session:
    user_id: str
    expires_at: datetime


class SessionStore:
    def __init__(self, client: Redis, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl = ttl_seconds

    def create(self, token: str, user_id: str) -> Session:
        digest, index = _digest(token), _USER_PREFIX + user_id
        with redis_errors():
            self._prune(index)
            pipe = self._redis.pipeline()
            pipe.set(_key(digest), user_id, ex=self._ttl)
            pipe.sadd(index, digest)
            pipe.expire(index, self._ttl)
            pipe.execute()
        return Session(user_id=user_id, expires_at=datetime.now(UTC) + timedelta(seconds=self._ttl))

    def resolve(self, token: str) -> str | None:
        """The user id of a live session, or None when unknown, expired or revoked."""
        with redis_errors():
            value = self._redis.get(_key(_digest(token)))
        return str(value) if value is not None else None

    def revoke(self, token: str) -> None:
        digest = _digest(token)
        with redis_errors():
            user_id = self._redis.getdel(_key(digest))
            if user_id is not None:
                self._redis.srem(_USER_PREFIX + str(user_id), digest)

    def revoke_all(self, user_id: str, *, keep: str | None = None) -> int:
        """End every session of ``user_id`` except the one of token ``keep``; how many ended."""
        index, kept = _USER_PREFIX + user_id, _digest(keep) if keep is not None else None
        with redis_errors():
            digests = [str(d) for d in self._redis.smembers(index) if str(d) != kept]
            if not digests:
                return 0
            pipe = self._redis.pipeline()
            pipe.delete(*(_key(d) for d in digests))
            pipe.srem(index, *digests)
            ended, _ = pipe.execute()
        return int(ended)

    def _prune(self, index: str) -> None:
        digests = [str(d) for d in self._redis.smembers(index)]
        if not digests:
            return
        pipe = self._redis.pipeline()
        for digest in digests:
            pipe.exists(_key(digest))
        gone = [d for d, exists in zip(digests, pipe.execute(), strict=True) if not exists]
        if gone:
            self._redis.srem(index, *gone)
