"""Password policy and hashing with Argon2id (memory-hard), via argon2-cffi."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from imprun.errors import Invalid

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# 64 MiB, 3 passes: OWASP's Argon2id baseline; ~50 ms on this class of machine.
_HASHER = PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=1)


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


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


# A hash of a random password, verified against when the user does not exist so that an unknown
# username costs the same time as a wrong password (no user enumeration by timing).
DUMMY_HASH = _HASHER.hash("imprun-no-such-user-placeholder")
