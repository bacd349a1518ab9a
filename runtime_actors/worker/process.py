"""The kernel-enforced half of the jail, applied by the worker to itself before it runs tenant code.

``apply_jail`` runs once, after the worker has imported everything it will ever need and before the
first tenant byte: it empties the environment, sets the rlimits (address space, lifetime CPU, file
size, descriptors, processes, no core dumps), makes the process non-dumpable, sets
``PR_SET_NO_NEW_PRIVS``, applies Landlock (read-only interpreter, read-write scratch), then leaves
root: a worker started as root with ``run_as`` becomes that unprivileged uid and gid (all three of
each, no supplementary groups, so every capability goes too), and one without ``run_as`` drops every
Linux capability (bounding, ambient, effective, permitted; securebits locked) but keeps uid 0; last
comes the seccomp deny-list. A layer that cannot be applied is recorded in the ``JailReport``; without the
``insecure`` flag that raises ``JailError`` and the worker refuses to run tenant code.
``close_fds_except`` and ``die_with_parent`` run earlier, at the very start of the worker.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
from collections.abc import Collection
from typing import Final

from runtime_actors.shared.jail_config import JailConfig, JailReport, WorkerLimits
from runtime_actors.worker import landlock, seccomp

__all__ = ["JailError", "JailReport", "apply_jail", "close_fds_except", "die_with_parent"]

_PR_SET_PDEATHSIG: Final = 1
_PR_SET_DUMPABLE: Final = 4
_PR_CAPBSET_DROP: Final = 24
_PR_SET_SECUREBITS: Final = 28
_PR_SET_NO_NEW_PRIVS: Final = 38
_PR_CAP_AMBIENT: Final = 47
_PR_CAP_AMBIENT_CLEAR_ALL: Final = 4
_SECBITS_LOCKED_NOROOT: Final = 0x2F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED and their locks
_SYS_CAPSET: Final = 126
_CAPABILITY_VERSION_3: Final = 0x20080522
_SIGKILL: Final = 9


class JailError(RuntimeError):
    """The jail could not be applied and the worker was not started insecure."""


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if _libc().prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}): {os.strerror(code)}")


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent goes; exit now if the parent is already gone."""
    _prctl(_PR_SET_PDEATHSIG, _SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def close_fds_except(keep: Collection[int]) -> None:
    low = 0
    for fd in sorted(set(keep)):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _set_rlimits(limits: WorkerLimits) -> None:
    for kind, value in (
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(kind, (value, value))
    # SIGXCPU at the soft limit; SIGKILL at the hard one should SIGXCPU be ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities() -> bool:
    """Clear every capability of a root process (uid 0 stays, its privileges go); False if not root."""
    if os.geteuid() != 0:
        return False
    _prctl(_PR_SET_SECUREBITS, _SECBITS_LOCKED_NOROOT)
    for cap in range(64):
        try:
            _prctl(_PR_CAPBSET_DROP, cap)
        except OSError:
            break  # EINVAL past the kernel's last capability
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(_SYS_CAPSET), ctypes.byref(header), ctypes.byref(data)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"capset: {os.strerror(code)}")
    return True


def _become(uid: int, parent_pid: int) -> None:
    """Switch every uid and gid to ``uid``, with no supplementary groups (a root process's
    capabilities go with it); re-arm the parent-death signal, which a credential change clears."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    die_with_parent(parent_pid)


def apply_jail(config: JailConfig) -> JailReport:
    """Jail the calling (single-threaded) process; see the module docstring for the order."""
    os.environ.clear()
    _set_rlimits(config.limits)
    failures: list[str] = []
    try:
        _prctl(_PR_SET_DUMPABLE, 0)
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    except OSError as exc:
        failures.append(f"privileges: {exc}")
    abi = 0
    try:
        available = landlock.abi_version()
        if available < config.min_landlock_abi:
            raise landlock.LandlockUnavailable(
                0, f"the kernel's Landlock ABI is {available}, {config.min_landlock_abi} is required"
            )
        # before the uid changes: the rules open their paths, which the new uid may not traverse
        abi = landlock.restrict_self(config.read_only_paths, [config.scratch_dir])
    except OSError as exc:
        failures.append(f"landlock: {exc.strerror or exc}")
    dropped = False
    try:
        if config.run_as is not None and os.geteuid() == 0:
            _become(config.run_as, config.parent_pid)
            dropped = True
        else:
            dropped = _drop_capabilities()
    except OSError as exc:
        failures.append(f"privileges: {exc}")
    applied_seccomp = False
    try:
        seccomp.install()
        applied_seccomp = True
    except OSError as exc:
        failures.append(f"seccomp: {exc.strerror or exc}")
    report = JailReport(abi, applied_seccomp, dropped, config.insecure, tuple(failures), os.getuid())
    if failures and not config.insecure:
        raise JailError("; ".join(failures))
    return report
