"""Password policy and hashing with Argon2id (memory-hard), via argon2-cffi, at bounded concurrency.

Each hash or verification takes 64 MiB for ~50 ms, so an unbounded burst of sign-ins would take
memory by the gigabyte. ``PasswordHashing`` runs them in threads of their own, at most
``concurrency`` at once; a request finding every slot taken waits (as a coroutine, holding no
thread) up to ``wait_seconds``, then gets ``Unavailable`` with a ``retry_after``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from imprun.errors import Invalid, Unavailable

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "PasswordHashing", "check_password_policy"]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# 64 MiB, 3 passes: OWASP's Argon2id baseline; ~50 ms on this class of machine.
_HASHER = PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=1)

T = TypeVar("T")


def check_password_policy(password: str, *, username: str) -> None:
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"at most {MAX_PASSWORD_LENGTH} characters")
    if password.lower() == username.lower():
        problems.append("different from the username")
    if len(set(password)) < 4:
        problems.append("at least 4 distinct characters")
    if problems:
        raise Invalid(
            "the password is too weak: it must be " + ", ".join(problems),
            details=[{"loc": ["body", "password"], "msg": p} for p in problems],
        )


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """A hash of a fixed password, verified against when the user does not exist so that an unknown
    username costs the same time as a wrong password (no user enumeration by timing)."""
    return _HASHER.hash("imprun-no-such-user-placeholder")


class PasswordHashing:
    """Argon2id hashing and verification, at most ``concurrency`` at once (see the module docstring)."""

    def __init__(self, concurrency: int, wait_seconds: float) -> None:
        self._slots = anyio.Semaphore(concurrency)
        self._threads = anyio.CapacityLimiter(concurrency)
        self._wait_seconds = wait_seconds

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in a hashing thread once a slot is free; ``Unavailable`` after the wait bound."""
        admitted = False
        with anyio.move_on_after(self._wait_seconds):
            await self._slots.acquire()
            admitted = True
        if not admitted:
            raise Unavailable(
                "too many sign-ins are being checked right now; retry shortly",
                retry_after=math.ceil(self._wait_seconds),
            )
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._threads)
        finally:
            self._slots.release()

    async def hash(self, password: str) -> str:
        return await self.run(lambda: _HASHER.hash(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; a missing hash (unknown user) costs the same and is False."""
        matched = await self.run(lambda: _verify(password_hash or _dummy_hash(), password))
        return matched and password_hash is not None

    @staticmethod
    def needs_rehash(password_hash: str) -> bool:
        return _HASHER.check_needs_rehash(password_hash)
