"""Redis connection and error translation (sessions, throttles, rate limits, log streams live here)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis
from redis.exceptions import RedisError

from imprun.errors import Unavailable

Redis = redis.Redis


def connect_redis(url: str, *, timeout: float = 2.0) -> Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        health_check_interval=30,
    )


def redis_reachable(url: str, *, timeout: float = 1.0) -> bool:
    client = connect_redis(url, timeout=timeout)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


def ping_redis(client: Redis) -> None:
    with redis_errors():
        client.ping()


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise Unavailable("Redis is unreachable; retry shortly (see /readyz)") from exc
