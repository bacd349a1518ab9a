"""The kernel half of the jail on its own: a process applies ``apply_jail`` to itself (no Python-level
sandbox at all, plain ``open``/``os``/``socket``/``ctypes``) and every escape must fail with the
kernel's errno. This is what still holds when the best-effort Python layer is bypassed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

import runtime_actors

PACKAGE = Path(runtime_actors.__file__).resolve().parent

PROBE = textwrap.dedent(
    """
    import ctypes, json, os, resource, socket, sys, threading
    from runtime_actors.shared.jail_config import JailConfig, WorkerLimits
    from runtime_actors.worker.process import JailError, apply_jail

    config = JailConfig.from_json(sys.argv[1])
    try:
        report = apply_jail(config)
    except JailError as exc:
        print(json.dumps({"refused": str(exc)}))
        sys.exit(0)
    if not report.seccomp:  # fork/exec below would really run: never probe without seccomp
        print(json.dumps({"report": report.to_dict()}))
        sys.exit(0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    scratch = config.scratch_dir
    parent = config.parent_pid
    outcomes = {"report": report.to_dict()}

    def attempt(name, fn):
        try:
            outcomes[name] = ["ok", repr(fn())[:200]]
        except OSError as exc:
            outcomes[name] = ["errno", exc.errno]
        except BaseException as exc:
            outcomes[name] = ["error", type(exc).__name__]

    def raw(nr, *args):
        result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        if result < 0:
            raise OSError(ctypes.get_errno(), "syscall")
        return result

    def write(path, size):
        with open(path, "wb") as f:
            f.write(b"x" * size)

    attempt("read /etc/passwd", lambda: open("/etc/passwd").read())
    attempt("read /proc/self/environ", lambda: open("/proc/self/environ", "rb").read())
    attempt("read parent environ", lambda: open(f"/proc/{parent}/environ", "rb").read())
    attempt("read parent memory", lambda: open(f"/proc/{parent}/mem", "rb").read(1))
    attempt("list /", lambda: os.listdir("/"))
    attempt("read the repository", lambda: open(sys.argv[2]).read())
    attempt("write the package", lambda: write(os.path.join(sys.argv[3], "evil.py"), 10))
    attempt("read the stdlib", lambda: len(open(os.__file__).read()) > 0)
    attempt("write scratch", lambda: write(os.path.join(scratch, "small"), 1000))
    attempt("write a huge scratch file", lambda: write(os.path.join(scratch, "huge"), 2 * 1024 * 1024))
    attempt("mkfifo in scratch", lambda: os.mkfifo(os.path.join(scratch, "fifo")))
    attempt("symlink in scratch", lambda: os.symlink("/etc/passwd", os.path.join(scratch, "link")))
    attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    attempt("unix socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    attempt("socketpair", lambda: socket.socketpair())
    attempt("fork", lambda: os.fork())
    attempt("exec", lambda: os.execv("/bin/true", ["true"]))
    attempt("posix_spawn", lambda: os.posix_spawn("/bin/true", ["true"], {}))
    attempt("system", lambda: os.system("true"))
    attempt("signal the parent", lambda: os.kill(parent, 0))
    attempt("signal everyone", lambda: os.kill(-1, 0))
    attempt("signal itself", lambda: os.kill(os.getpid(), 0))
    attempt("ptrace the parent", lambda: raw(101, 16, parent, 0, 0))
    attempt("mount", lambda: raw(165, 0, 0, 0, 0, 0))
    attempt("unshare a user namespace", lambda: raw(272, 0x10000000))
    attempt("bpf", lambda: raw(321, 0, 0, 0))
    attempt("io_uring", lambda: raw(425, 8, 0))
    attempt("setuid", lambda: raw(105, 0))
    attempt("x32 getpid", lambda: raw(0x40000000 | 39))
    attempt("raise the memory limit", lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)))
    attempt("read a limit", lambda: resource.getrlimit(resource.RLIMIT_AS))
    attempt("allocate past the memory limit", lambda: len(bytearray(300 * 1024 * 1024)))
    attempt("a thread", lambda: threading.Thread(target=int).start())
    attempt("environment", lambda: dict(os.environ))
    attempt("capabilities", lambda: [libc.prctl(23, cap, 0, 0, 0) for cap in (0, 1, 21)])  # PR_CAPBSET_READ
    print(json.dumps(outcomes))
    """
)


def _probe(tmp_path: Path, write_target: Path = PACKAGE, **config: Any) -> dict[str, Any]:
    """Run the probe jailed by ``config``; ``write_target`` is the directory it tries to write into."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    settings = {
        "pipe_fd": -1,
        "parent_pid": os.getpid(),
        "scratch_dir": str(scratch),
        "read_only_paths": [sysconfig.get_paths()["stdlib"], str(PACKAGE)],
        "limits": {"memory_bytes": 256 * 1024 * 1024, "file_size_bytes": 1024 * 1024},
        **config,
    }
    repo_file = PACKAGE.parent / "pyproject.toml"
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path.append({str(PACKAGE.parent)!r})\n" + PROBE,
            json.dumps(settings),
            str(repo_file),
            str(write_target),
        ],
        env={"IMPRUN_MONGO_URL": "mongodb://secret"},  # the probe must clear even what it was given
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return outcome


@pytest.fixture(scope="module")
def jailed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _probe(tmp_path_factory.mktemp("jail"))


EACCES = ["errno", errno.EACCES]
EPERM = ["errno", errno.EPERM]


@pytest.mark.parametrize(
    ("attempt", "outcome"),
    [
        ("read /etc/passwd", EACCES),
        ("read /proc/self/environ", EACCES),
        ("read parent environ", EACCES),
        ("read parent memory", EACCES),
        ("list /", EACCES),
        ("read the repository", EACCES),
        ("write the package", EACCES),
        ("read the stdlib", ["ok", "True"]),
        ("write scratch", ["ok", "None"]),
        ("write a huge scratch file", ["errno", errno.EFBIG]),
        ("mkfifo in scratch", EPERM),  # mknodat: seccomp answers before Landlock would
        ("symlink in scratch", EACCES),
        ("socket", EPERM),
        ("unix socket", EPERM),
        ("socketpair", EPERM),
        ("fork", EPERM),
        ("exec", EPERM),
        ("posix_spawn", EPERM),
        ("signal the parent", EPERM),
        ("signal everyone", EPERM),
        ("signal itself", ["ok", "None"]),
        ("ptrace the parent", EPERM),
        ("mount", EPERM),
        ("unshare a user namespace", EPERM),
        ("bpf", EPERM),
        ("io_uring", EPERM),
        ("setuid", EPERM),
        ("x32 getpid", EPERM),
        ("raise the memory limit", ["error", "ValueError"]),  # EPERM, as the resource module words it
        ("allocate past the memory limit", ["error", "MemoryError"]),
        ("environment", ["ok", "{}"]),
        ("capabilities", ["ok", "[0, 0, 0]"]),
        ("a thread", ["error", "RuntimeError"]),  # "can't start new thread": clone is refused
    ],
)
def test_the_kernel_jail_refuses(jailed: dict[str, Any], attempt: str, outcome: list[Any]) -> None:
    assert jailed[attempt] == outcome


def test_os_system_cannot_start_a_shell(jailed: dict[str, Any]) -> None:
    kind, value = jailed["system"]
    assert kind == "ok" and value != "0"  # system() could not fork: a failure status, never a shell


def test_the_report_says_every_layer_is_on(jailed: dict[str, Any]) -> None:
    report = jailed["report"]
    assert report["landlock_abi"] >= 6 and report["seccomp"] and report["failures"] == []
    assert report["capabilities_dropped"] == (os.geteuid() == 0)


def test_without_the_required_landlock_the_jail_refuses(tmp_path: Path) -> None:
    outcome = _probe(tmp_path, min_landlock_abi=99)
    assert "landlock" in outcome["refused"] and "99 is required" in outcome["refused"]


def test_insecure_mode_records_what_is_missing(tmp_path: Path) -> None:
    unprotected = tmp_path / "unprotected"  # without Landlock the write succeeds: never aim it at the package
    unprotected.mkdir()
    outcome = _probe(tmp_path, write_target=unprotected, min_landlock_abi=99, insecure=True)
    assert outcome["report"]["landlock_abi"] == 0 and outcome["report"]["insecure"]
    [failure] = outcome["report"]["failures"]
    assert failure.startswith("landlock: the kernel's Landlock ABI is") and failure.endswith("99 is required")
    assert outcome["socket"] == EPERM  # seccomp is still on
    assert outcome["read /etc/passwd"][0] == "ok"  # and the file system is not: hence "insecure"
    assert outcome["write the package"] == ["ok", "None"] and (unprotected / "evil.py").exists()
