"""The seccomp BPF program, run through a small classic-BPF interpreter: which syscalls it allows."""

from __future__ import annotations

import errno
import struct

import pytest

from runtime_actors.worker.seccomp import AUDIT_ARCH_X86_64, DENIED_SYSCALLS, build_filter

ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
PID = 4242


def errno_action(code: int) -> int:
    return 0x00050000 | code


def run_filter(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64) -> int:
    """Evaluate the program on ``struct seccomp_data`` (only the instructions the filter uses)."""
    padded = (list(args) + [0] * 6)[:6]
    data = struct.pack("=iIQ6Q", nr, arch, 0, *padded)
    instructions = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = instructions[pc]
        if code == 0x20:  # ld [k]
            accumulator = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code in (0x15, 0x35, 0x45):  # jeq, jge, jset
            taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: bool(accumulator & k)}[code]
            pc += 1 + (jt if taken else jf)
        elif code == 0x06:  # ret k
            return int(k)
        else:
            raise AssertionError(f"unexpected BPF opcode {code:#x}")


PROGRAM = build_filter(PID)


@pytest.mark.parametrize("name", sorted(DENIED_SYSCALLS))
def test_every_denied_syscall_gets_eperm(name: str) -> None:
    assert run_filter(PROGRAM, DENIED_SYSCALLS[name]) == errno_action(errno.EPERM)


@pytest.mark.parametrize(
    ("nr", "args", "expected"),
    [
        (0, (), ALLOW),  # read
        (1, (), ALLOW),  # write
        (9, (), ALLOW),  # mmap
        (202, (), ALLOW),  # futex
        (56, (0x3D0F00,), errno_action(errno.EPERM)),  # clone for a thread: the worker needs none
        (56, (0x11,), errno_action(errno.EPERM)),  # clone as fork (SIGCHLD)
        (435, (), errno_action(errno.ENOSYS)),  # clone3: libc falls back to clone
        (62, (PID, 0), ALLOW),  # kill(self)
        (62, (PID + 1, 9), errno_action(errno.EPERM)),  # kill(other)
        (62, (PID | 1 << 32, 9), errno_action(errno.EPERM)),  # the high word counts too
        (62, ((1 << 64) - 1, 9), errno_action(errno.EPERM)),  # kill(-1): everyone
        (234, (PID, PID, 11), ALLOW),  # tgkill within the process
        (234, (1, 1, 9), errno_action(errno.EPERM)),
        (302, (0, 7, 0, 0x7FFF0000), ALLOW),  # prlimit64 reading
        (302, (0, 7, 0x7FFF0000, 0), errno_action(errno.EPERM)),  # prlimit64 setting
        (0x40000000 | 39, (), errno_action(errno.EPERM)),  # x32 ABI getpid
    ],
)
def test_argument_checks(nr: int, args: tuple[int, ...], expected: int) -> None:
    assert run_filter(PROGRAM, nr, args) == expected


def test_threads_can_be_allowed_without_allowing_fork() -> None:
    program = build_filter(PID, allow_threads=True)
    assert run_filter(program, 56, (0x3D0F00,)) == ALLOW  # CLONE_THREAD among the flags
    assert run_filter(program, 56, (0x11,)) == errno_action(errno.EPERM)
    assert run_filter(program, 56, (0x4111,)) == errno_action(errno.EPERM)  # CLONE_VFORK|CLONE_VM


def test_another_architecture_is_killed() -> None:
    assert run_filter(PROGRAM, 11, arch=0x40000003) == KILL_PROCESS  # i386: 11 is execve there


OTHER = PID + 1
HIGH = 1 << 32


@pytest.mark.parametrize(
    ("name", "nr", "args", "allowed"),
    [
        ("setpriority", 141, (0, 0, 19), True),  # PRIO_PROCESS, itself
        ("setpriority", 141, (0, PID, 19), True),
        ("setpriority", 141, (0, OTHER, 19), False),
        ("setpriority", 141, (0, PID | HIGH, 19), False),
        ("setpriority", 141, (1, 0, 19), False),  # PRIO_PGRP: its whole group
        ("setpriority", 141, (2, 0, 19), False),  # PRIO_USER: every process of the platform's user
        ("sched_setparam", 142, (0, 0), True),
        ("sched_setparam", 142, (OTHER, 0), False),
        ("sched_setscheduler", 144, (PID, 0, 0), True),
        ("sched_setscheduler", 144, (OTHER, 0, 0), False),
        ("sched_setaffinity", 203, (0, 8, 0), True),
        ("sched_setaffinity", 203, (1, 8, 0), False),
        ("sched_setattr", 314, (0, 0, 0), True),
        ("sched_setattr", 314, (OTHER, 0, 0), False),
        ("ioprio_set", 251, (1, 0, 4), True),  # IOPRIO_WHO_PROCESS, itself
        ("ioprio_set", 251, (1, OTHER, 4), False),
        ("ioprio_set", 251, (3, 0, 4), False),  # IOPRIO_WHO_USER
        ("prlimit64", 302, (0, 7, 0, 0x7FFF0000), True),
        ("prlimit64", 302, (OTHER, 7, 0, 0x7FFF0000), False),  # another process's limits, even to read
        ("prlimit64", 302, (0, 7, 0x7FFF0000, 0), False),
    ],
)
def test_scheduling_priority_and_limit_calls_only_target_the_worker(
    name: str, nr: int, args: tuple[int, ...], allowed: bool
) -> None:
    expected = ALLOW if allowed else errno_action(errno.EPERM)
    assert run_filter(PROGRAM, nr, args) == expected, name
