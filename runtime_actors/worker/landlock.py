"""Landlock, the unprivileged Linux LSM, as the jailed worker uses it: a file-system allow-list.

``restrict_self`` handles every file-system right the running kernel knows (plus TCP bind/connect from
ABI 4 and the abstract-unix-socket and signal scopes from ABI 6), grants read-only access beneath the
given read-only paths and read-write access beneath the scratch paths, and enforces the ruleset on the
calling thread (the worker is single-threaded when it calls this). Everything else — ``/etc``,
``/proc``, ``/root``, the repository — becomes unreadable, signals to processes outside the new
domain (the supervisor, other workers) are refused, and ptrace of them is impossible. Called through
raw ``syscall(2)`` with ctypes (x86_64 numbers, identical on arm64 for these calls); there is no
Python binding in the standard library. Requires ``PR_SET_NO_NEW_PRIVS`` (or CAP_SYS_ADMIN) first.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["LandlockUnavailable", "abi_version", "restrict_self"]

_SYS_CREATE_RULESET: Final = 444
_SYS_ADD_RULE: Final = 445
_SYS_RESTRICT_SELF: Final = 446
_CREATE_RULESET_VERSION: Final = 1 << 0
_RULE_PATH_BENEATH: Final = 1

# File-system access rights, by the ABI that introduced them.
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI: Final = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_FS_LATEST: Final = (1 << 16) - 1  # ABI 5 and later

_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_FILE_RIGHTS: Final = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_READ_ONLY: Final = _READ_FILE | _READ_DIR
_READ_WRITE: Final = _READ_ONLY | _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_DIR | _MAKE_REG | _TRUNCATE


class LandlockUnavailable(OSError):
    """The kernel has no usable Landlock (too old, disabled at boot, or a call failed)."""


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _syscall(number: int, *args: object) -> int:
    result: int = _libc().syscall(ctypes.c_long(number), *args)
    return result


def abi_version() -> int:
    """The Landlock ABI the kernel offers; 0 when it has none."""
    result = _syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return result if result > 0 else 0


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise LandlockUnavailable(errno, f"landlock {what}: {os.strerror(errno)}")
    return result


def _handled_fs(abi: int) -> int:
    return _FS_BY_ABI.get(abi, _FS_LATEST)


def restrict_self(read_only: Iterable[str | Path], read_write: Iterable[str | Path]) -> int:
    """Enforce the allow-list on the calling thread and its future children; returns the ABI used.

    Paths that do not exist are skipped (a missing time-zone database is not an error).
    """
    abi = abi_version()
    if abi < 1:
        raise LandlockUnavailable(0, "landlock is not supported by this kernel (or disabled at boot)")
    handled_fs = _handled_fs(abi)
    handled_net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    # struct landlock_ruleset_attr {u64 handled_access_fs; u64 handled_access_net; u64 scoped;}
    attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    attr_buffer = ctypes.create_string_buffer(attr[:size], size)
    ruleset = _check(_syscall(_SYS_CREATE_RULESET, attr_buffer, ctypes.c_size_t(size), 0), "create_ruleset")
    try:
        for paths, rights in ((read_only, _READ_ONLY), (read_write, _READ_WRITE)):
            for path in paths:
                _add_path_rule(ruleset, Path(path), rights & handled_fs)
        _check(_syscall(_SYS_RESTRICT_SELF, ruleset, 0), "restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _add_path_rule(ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not path.is_dir():
            rights &= _FILE_RIGHTS
        # struct landlock_path_beneath_attr {u64 allowed_access; s32 parent_fd;} __attribute__((packed))
        attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
        _check(_syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, attr, 0), f"add_rule {path}")
    finally:
        os.close(fd)
