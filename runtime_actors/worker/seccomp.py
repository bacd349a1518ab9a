"""A seccomp-BPF deny-list for the jailed worker, written as classic BPF by hand (x86_64 only).

The filter first checks the architecture field (any other ABI, including 32-bit ``int 0x80`` entry,
kills the process) and refuses x32 syscall numbers. Then it refuses, with ``EPERM``, everything a
tenant could use to leave the process or touch the kernel's shared state: sockets, exec, fork and
threads (``clone``; with ``allow_threads`` only when its flags have ``CLONE_THREAD``, and ``clone3``
answers ``ENOSYS`` so libc falls back to ``clone``, whose flags BPF can read — the worker needs no
threads, asyncio included, so a tenant cannot leave one running between calls), ptrace and
cross-process memory, mounts and namespaces, module loading,
kexec, bpf, perf, io_uring, userfaultfd, keyrings, credential changes, ``setrlimit``, device nodes,
clock setting. Signals may only be sent to the worker itself, and scheduling, priority and limit
calls may only target it: ``setpriority`` with ``PRIO_PROCESS`` and who 0 or the worker's pid (never
``PRIO_PGRP``/``PRIO_USER``, which would renice every process of the platform's user),
``sched_setparam``/``sched_setscheduler``/``sched_setaffinity``/``sched_setattr`` and ``ioprio_set``
(``IOPRIO_WHO_PROCESS``) on pid 0 or its own, and ``prlimit64`` on pid 0 and only to read. All else
is allowed: the worker needs read/write on its pipe, mmap, futex, epoll.

``build_filter(pid)`` returns the program bytes (unit-testable); ``install(pid)`` sets
``PR_SET_NO_NEW_PRIVS`` if needed and loads the filter with ``prctl(PR_SET_SECCOMP)``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable
from typing import Final

__all__ = ["DENIED_SYSCALLS", "SeccompUnavailable", "build_filter", "install"]

AUDIT_ARCH_X86_64: Final = 0xC000003E
_X32_SYSCALL_BIT: Final = 0x40000000

_LD_W_ABS: Final = 0x20
_JEQ: Final = 0x15
_JGE: Final = 0x35
_JSET: Final = 0x45
_RET: Final = 0x06

_RET_KILL_PROCESS: Final = 0x80000000
_RET_ERRNO: Final = 0x00050000
_RET_ALLOW: Final = 0x7FFF0000

_OFFSET_NR: Final = 0
_OFFSET_ARCH: Final = 4


def _arg_low(index: int) -> int:
    return 16 + 8 * index


def _arg_high(index: int) -> int:
    return 20 + 8 * index


_CLONE_THREAD: Final = 0x00010000
_PR_SET_NO_NEW_PRIVS: Final = 38
_PR_SET_SECCOMP: Final = 22
_SECCOMP_MODE_FILTER: Final = 2

DENIED_SYSCALLS: Final[dict[str, int]] = {
    # networking: the worker talks only over the pipe it was given
    "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53, "accept4": 288,
    # new programs and processes
    "fork": 57, "vfork": 58, "execve": 59, "execveat": 322,
    # other processes' memory and state
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438, "process_madvise": 440,
    "process_mrelease": 448, "migrate_pages": 256, "move_pages": 279,
    # file systems, namespaces, personalities
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "personality": 135, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "mknod": 133, "mknodat": 259, "quotactl": 179, "quotactl_fd": 443, "fanotify_init": 300,
    # the kernel itself
    "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
    "kexec_file_load": 320, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "iopl": 172, "ioperm": 173,
    "modify_ldt": 154, "uselib": 134, "syslog": 103, "reboot": 169, "swapon": 167, "swapoff": 168,
    "acct": 163, "vhangup": 153, "sethostname": 170, "setdomainname": 171, "lookup_dcookie": 212,
    "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
    "keyctl": 250, "add_key": 248, "request_key": 249,
    # credentials and limits
    "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setgroups": 116,
    "setresuid": 117, "setresgid": 119, "setfsuid": 122, "setfsgid": 123, "capset": 126,
    "setrlimit": 160,
}  # fmt: skip

_ENOSYS_SYSCALLS: Final = {"clone3": 435}
_SELF_SIGNAL_SYSCALLS: Final = {"kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
                                "rt_tgsigqueueinfo": 297}  # fmt: skip
_CLONE: Final = 56
_PRIO_PROCESS: Final = 0
_IOPRIO_WHO_PROCESS: Final = 1
_SELF_ONLY_SYSCALLS: Final[dict[str, tuple[int, Callable[[int], tuple[tuple[int, frozenset[int]], ...]]]]] = {
    # name: (number, pid -> ((argument index, allowed values), ...)); every argument must match
    "setpriority": (141, lambda pid: ((0, frozenset({_PRIO_PROCESS})), (1, frozenset({0, pid})))),
    "sched_setparam": (142, lambda pid: ((0, frozenset({0, pid})),)),
    "sched_setscheduler": (144, lambda pid: ((0, frozenset({0, pid})),)),
    "sched_setaffinity": (203, lambda pid: ((0, frozenset({0, pid})),)),
    "sched_setattr": (314, lambda pid: ((0, frozenset({0, pid})),)),
    "ioprio_set": (251, lambda pid: ((0, frozenset({_IOPRIO_WHO_PROCESS})), (1, frozenset({0, pid})))),
    "prlimit64": (302, lambda pid: ((0, frozenset({0})), (2, frozenset({0})))),  # new_limit NULL: reads
}


class SeccompUnavailable(OSError):
    """The filter cannot be installed here (another architecture, or the kernel refused it)."""


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _errno(code: int) -> int:
    return _RET_ERRNO | (code & 0xFFFF)


def build_filter(pid: int, *, allow_threads: bool = False) -> bytes:
    """The BPF program; ``pid`` is the only process the filtered process may signal."""
    deny = _errno(errno.EPERM)
    program = [
        _insn(_LD_W_ABS, _OFFSET_ARCH),
        _insn(_JEQ, AUDIT_ARCH_X86_64, jt=1),
        _insn(_RET, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFFSET_NR),
        _insn(_JGE, _X32_SYSCALL_BIT, jf=1),
        _insn(_RET, deny),
    ]
    for number in sorted(DENIED_SYSCALLS.values()):
        program += [_insn(_JEQ, number, jf=1), _insn(_RET, deny)]
    for number in _ENOSYS_SYSCALLS.values():
        program += [_insn(_JEQ, number, jf=1), _insn(_RET, _errno(errno.ENOSYS))]
    # Every block below ends in a return on all paths, so the accumulator (reloaded with an
    # argument inside a block) still holds the syscall number when a block is skipped.
    program += [
        _insn(_JEQ, _CLONE, jf=4),
        _insn(_LD_W_ABS, _arg_low(0)),
        _insn(_JSET, _CLONE_THREAD if allow_threads else 0, jf=1),  # jset 0 never jumps: all denied
        _insn(_RET, _RET_ALLOW),
        _insn(_RET, deny),
    ]
    for number in _SELF_SIGNAL_SYSCALLS.values():
        program += [_insn(_JEQ, number, jf=6), *_arg_equals(0, pid, deny)]
    for number, conditions in _SELF_ONLY_SYSCALLS.values():
        block = _args_in(conditions(pid), deny)
        program += [_insn(_JEQ, number, jf=len(block)), *block]
    program.append(_insn(_RET, _RET_ALLOW))
    return b"".join(program)


def _arg_equals(index: int, value: int, otherwise: int) -> list[bytes]:
    """Six instructions: allow when the 64-bit argument equals ``value``, else return ``otherwise``."""
    return [
        _insn(_LD_W_ABS, _arg_low(index)),
        _insn(_JEQ, value & 0xFFFFFFFF, jf=3),
        _insn(_LD_W_ABS, _arg_high(index)),
        _insn(_JEQ, value >> 32, jf=1),
        _insn(_RET, _RET_ALLOW),
        _insn(_RET, otherwise),
    ]


def _args_in(conditions: tuple[tuple[int, frozenset[int]], ...], otherwise: int) -> list[bytes]:
    """Allow when every listed 64-bit argument is one of its values, else return ``otherwise``.

    Per argument: load the high word, deny unless it is zero; load the low word, jump on to the next
    argument's check at the first value it equals, deny after the last.
    """
    lengths = [3 + len(values) for _, values in conditions]
    deny_at = sum(lengths) + 1  # after all checks: allow, then deny
    program: list[bytes] = []
    for (index, values), length in zip(conditions, lengths, strict=True):
        next_check = len(program) + length
        program += [_insn(_LD_W_ABS, _arg_high(index))]
        program += [_insn(_JEQ, 0, jf=deny_at - len(program) - 1), _insn(_LD_W_ABS, _arg_low(index))]
        for position, value in enumerate(sorted(values)):
            here = len(program)
            last = position == len(values) - 1
            program.append(_insn(_JEQ, value, jt=next_check - here - 1, jf=deny_at - here - 1 if last else 0))
    return [*program, _insn(_RET, _RET_ALLOW), _insn(_RET, otherwise)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(pid: int | None = None, *, allow_threads: bool = False) -> None:
    """Load the filter into the calling thread (before any other thread exists)."""
    machine = os.uname().machine
    if machine != "x86_64":
        raise SeccompUnavailable(0, f"the seccomp filter is written for x86_64, not {machine}")
    program = build_filter(os.getpid() if pid is None else pid, allow_threads=allow_threads)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise SeccompUnavailable(code, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(code)}")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        code = ctypes.get_errno()
        raise SeccompUnavailable(code, f"prctl(PR_SET_SECCOMP): {os.strerror(code)}")
