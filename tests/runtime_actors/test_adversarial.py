"""Tenant code that tries to escape or take down the jailed worker, through a real ``WorkerPool``.

Every test loads an attack as a published function, runs it, asserts it failed (a refused load, an
error result, or an attempt that reached something and found nothing), and then asserts the pool
still answers a normal call. The parent process (this test process) holds a fake platform secret in
its environment, ``IMPRUN_MONGO_URL=mongodb://secret``, which no route may reveal.

Many attacks are tried twice. First as a tenant would write them, where the Python layer refuses
them. Then after ``escape()``: a real route from tenant code to the worker's ``sys.modules``
(``object.__getattribute__``, taken from ``vars(object)`` by a string key, walks ``__subclasses__``
and ``__globals__`` without any audited attribute; the ``string.Formatter().get_field`` and
``operator.attrgetter`` routes are closed, see the tests below) and ``disable_python_layer()``, which
switches the audit hook's checks off through that route. That the escape works shows the Python layer is only defence in depth; that the attacks still
fail afterwards, with the kernel's errno, shows the Landlock/seccomp/rlimit jail is the boundary.
"""

from __future__ import annotations

import json
import os
import signal
import sysconfig
import textwrap
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

import pytest

from runtime_actors.replica.pool.worker_pool import WorkerPool
from runtime_actors.shared.jail_config import WorkerLimits
from runtime_actors.shared.messages import InvocationResult
from tests.runtime_actors.pool_harness import invocation, run, source

SECRET = "mongodb://secret"

ESCAPE = textwrap.dedent(
    """
    import json

    _GET_ATTRIBUTE = vars(object)["__getattribute__"]
    _GET_TYPE_ATTRIBUTE = vars(type)["__getattribute__"]


    def reach(obj, path):
        for name in path.split("."):
            obj = (_GET_TYPE_ATTRIBUTE if isinstance(obj, type) else _GET_ATTRIBUTE)(obj, name)
        return obj


    def escape():
        \"\"\"The worker's real sys.modules, from nothing but allowed modules.\"\"\"
        for cls in reach((), "__class__.__base__.__subclasses__")():
            if cls.__name__ == "_wrap_close":
                return reach(cls, "__init__.__globals__")["sys"].modules
        raise RuntimeError("no route")


    def disable_python_layer():
        modules = escape()
        hook = vars(modules["runtime_actors.worker.sandbox"])
        hook["_may_open"] = lambda args: True
        hook["_DENIED_EVENT_PREFIXES"] = ("-",)
        hook["_DENIED_EVENTS"] = frozenset()
        hook["_DENIED_IMPORTS"] = frozenset()
        hook["_FRAME_ATTRIBUTES"] = frozenset()
        return modules


    def real_import(name):
        return reach(escape()["builtins"], "__import__")(name)


    def attempt(fn):
        try:
            return {"outcome": "succeeded", "value": repr(fn())[:500]}
        except OSError as exc:
            return {"outcome": "refused", "error": type(exc).__name__, "errno": exc.errno, "message": str(exc)}
        except Exception as exc:
            return {"outcome": "refused", "error": type(exc).__name__, "message": str(exc)[:500]}
    """
)

OK_FUNCTION = "def main():\n    return 'still serving'\n"


@pytest.fixture(autouse=True)
def platform_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPRUN_MONGO_URL", SECRET)


@dataclass
class Outcome:
    load_error: str | None
    result: InvocationResult | None

    @property
    def body(self) -> Any:
        assert self.result is not None
        return json.loads(self.result.body)

    @property
    def log_text(self) -> str:
        assert self.result is not None
        return "\n".join(entry.message for entry in self.result.logs)


KEEPS_UID: Final = {"run_as": None}
"""Pool options for attacks that load ``ctypes`` after escaping the Python layer. A worker that a root
replica starts runs as ``nobody``, which here cannot read the interpreter's files outside what it
imported before the jail (``ctypes`` included), so such an attack stops at the import. In an image
whose interpreter anyone may read it would get further; these attacks run where it does (uid 0
without capabilities), to show the seccomp and Landlock layers stop them on their own."""


def attack(code: str, *, timeout: float = 10.0, **pool_options: Any) -> Outcome:
    """Load and run ``code`` (with the escape helpers above it); then a normal call must succeed."""

    async def scenario(pool: WorkerPool) -> Outcome:
        errors = await pool.load(
            [source("attack", ESCAPE + textwrap.dedent(code)), source("ok", OK_FUNCTION)]
        )
        assert "ok" not in errors
        result = None
        if "attack" not in errors:
            result = await pool.invoke("attack", invocation("attack"), timeout=timeout)
        follow_up = await pool.invoke("ok", invocation("ok"))
        assert (follow_up.status, follow_up.body) == (200, b"still serving"), follow_up
        return Outcome(errors.get("attack"), result)

    outcome = run(scenario, **pool_options)
    if outcome.result is not None:
        everything = outcome.result.body.decode(errors="replace") + "".join(
            e.message for e in outcome.result.logs
        )
        assert SECRET not in everything
    return outcome


def refused(answer: dict[str, Any], *, errno: int | None = None, error: str | None = None) -> bool:
    return (
        answer["outcome"] == "refused"
        and (errno is None or answer.get("errno") == errno)
        and (error is None or answer["error"] == error)
    )


EACCES, EPERM, EFBIG = 13, 1, 27


def test_subclass_walk_in_source_is_refused_at_load() -> None:
    outcome = attack("def main():\n    return str(().__class__.__base__.__subclasses__())\n")
    assert outcome.load_error is not None
    assert "is not available in functions (and 2 more)" in outcome.load_error


def test_subclass_walk_through_getattr_is_refused_at_run_time() -> None:
    outcome = attack(
        """
        def main():
            return attempt(lambda: getattr(getattr((), "__cl" + "ass__"), "__subclasses__")())
        """
    )
    assert refused(outcome.body, error="SandboxViolation")


def test_generator_frame_walk_is_refused() -> None:
    outcome = attack(
        """
        def gen():
            yield 1

        def main():
            g = gen()
            return attempt(lambda: reach(g, "gi_frame.f_back.f_globals"))
        """
    )
    assert refused(outcome.body, error="SandboxViolation")
    assert "gi_frame" in outcome.body["message"]


def test_coroutine_frame_walk_is_refused() -> None:
    outcome = attack(
        """
        async def co():
            return 1

        def main():
            c = co()
            try:
                return attempt(lambda: reach(c, "cr_frame.f_back.f_globals"))
            finally:
                c.close()
        """
    )
    assert refused(outcome.body, error="SandboxViolation")


def test_traceback_frame_walk_is_refused() -> None:
    outcome = attack(
        """
        def main():
            try:
                1 / 0
            except ZeroDivisionError as exc:
                return attempt(lambda: reach(exc, "__traceback__.tb_frame.f_back.f_globals"))
        """
    )
    assert refused(outcome.body, error="SandboxViolation")


def test_attribute_walks_by_name_in_the_standard_library_are_refused() -> None:
    outcome = attack(
        """
        import operator
        import string

        class Subclass(string.Formatter):
            pass

        def main():
            formatter = string.Formatter()
            return {
                "globals": attempt(lambda: formatter.get_field("0.__globals__[json]", [main], {})),
                "subclasses": attempt(lambda: formatter.get_field("0.__class__.__base__", [()], {})),
                "format": attempt(lambda: formatter.format("{0.__globals__}", main)),
                "super": attempt(lambda: super(Subclass, Subclass()).get_field("0.__globals__", [main], {})),
                "attrgetter": attempt(lambda: operator.attrgetter("__globals__")(main)),
                "dotted": attempt(lambda: operator.attrgetter("real", "__class__.__base__")(1)),
                "methodcaller": attempt(lambda: operator.methodcaller("__subclasses__")(object)),
                "warnings": attempt(lambda: __import__("warnings").sys),
                "public": formatter.format("{0.real} {1[a]}", 3, {"a": "b"}),
                "public getter": operator.attrgetter("imag")(2),
            }
        """
    )
    body = outcome.body
    for route in ("globals", "subclasses", "format", "super", "attrgetter", "dotted", "methodcaller"):
        assert refused(body[route], error="SandboxViolation"), (route, body[route])
    assert refused(body["warnings"], error="AttributeError")
    assert body["public"] == "3 b" and body["public getter"] == 0


def test_sys_getframe_is_refused() -> None:
    outcome = attack(
        "def main():\n    return attempt(lambda: reach(escape()['sys']._getframe(1), 'f_globals'))\n"
    )
    assert refused(outcome.body, error="_FrameAccessDenied")


def test_format_string_attribute_access_reaches_only_an_empty_environment() -> None:
    outcome = attack(
        """
        def main():
            for cls in reach((), "__class__.__base__.__subclasses__")():
                if cls.__name__ == "_wrap_close":
                    return {"environ": "{0.__init__.__globals__[environ]}".format(cls)}
        """
    )
    assert outcome.body == {"environ": "environ({})"}


def test_gc_is_refused_and_even_without_the_python_layer_holds_no_secret() -> None:
    outcome = attack(
        """
        def main():
            import_gc = attempt(lambda: real_import("gc"))
            disable_python_layer()
            gc = real_import("gc")
            needle = "".join(reversed("terces//:bdognom"))  # not a constant of this module's source
            containers = [o for o in gc.get_objects() if isinstance(o, (dict, list, tuple))]
            found = [repr(o)[:200] for o in containers if needle in repr(o)]
            return {"import_gc": import_gc, "objects": len(containers), "found": found}
        """
    )
    body = outcome.body
    assert refused(body["import_gc"], error="SandboxViolation")
    assert body["objects"] > 1000 and body["found"] == []


def test_import_ctypes_is_refused_and_ctypes_syscalls_still_hit_seccomp() -> None:
    assert attack("import ctypes\n\ndef main():\n    pass\n").load_error is not None
    outcome = attack(
        """
        def main():
            disable_python_layer()
            ctypes = real_import("ctypes")
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.socket(2, 1, 0)
            return {"fd": fd, "errno": ctypes.get_errno(), "ptrace": libc.ptrace(16, escape()["os"].getppid(), 0, 0),
                    "ptrace_errno": ctypes.get_errno()}
        """,
        **KEEPS_UID,
    )
    assert outcome.body == {"fd": -1, "errno": EPERM, "ptrace": -1, "ptrace_errno": EPERM}


def test_import_os_and_importlib_are_refused() -> None:
    assert "module 'os' is not available" in str(attack("import os\n\ndef main():\n    pass\n").load_error)
    assert attack("from importlib import import_module\n\ndef main():\n    pass\n").load_error is not None
    assert attack("from json import decoder\n\ndef main():\n    pass\n").load_error is not None
    outcome = attack(
        """
        def main():
            return [attempt(lambda: __import__(name)) for name in ("os", "importlib", "sys", "socket", "subprocess")]
        """
    )
    assert all(refused(answer, error="ImportError") for answer in outcome.body)


def test_private_module_attributes_are_not_in_the_views() -> None:
    outcome = attack(
        """
        import random

        def main():
            return [attempt(lambda: random._os), attempt(lambda: random.random() < 1)]
        """
    )
    assert refused(outcome.body[0], error="AttributeError")
    assert outcome.body[1] == {"outcome": "succeeded", "value": "True"}


def test_environment_reads_find_nothing_by_any_route() -> None:
    outcome = attack(
        """
        def initial_stack_strings():
            # argv, then the environment the process was started with, then its file name: the
            # strings the kernel copied to the top of the stack (unsetenv() never wipes them)
            ctypes = real_import("ctypes")
            address = ctypes.c_void_p.in_dll(ctypes.CDLL(None), "program_invocation_name").value
            strings = []
            while len(strings) < 10000:
                text = ctypes.string_at(address)
                if not text:
                    return strings
                strings.append(text.decode(errors="replace"))
                address += len(text) + 1
            return strings

        def main():
            modules = disable_python_layer()
            os = modules["os"]
            return {
                "stack": initial_stack_strings(),
                "os.environ": dict(os.environ),
                "posix.environ": {k.decode(): v.decode() for k, v in modules["posix"].environ.items()},
                "getenv": os.getenv("IMPRUN_MONGO_URL"),
                "proc self": attempt(lambda: modules["io"].open("/proc/self/environ", "rb").read()),
                "proc parent": attempt(lambda: modules["io"].open(f"/proc/{os.getppid()}/environ", "rb").read()),
                "proc parent cmdline": attempt(lambda: modules["io"].open(f"/proc/{os.getppid()}/cmdline").read()),
            }
        """,
        **KEEPS_UID,
    )
    body = outcome.body
    assert body["os.environ"] == {} and body["posix.environ"] == {} and body["getenv"] is None
    assert body["stack"][-1] == body["stack"][0]  # argv[0], argv…, no environment at all, the executable
    assert not any("=" in s and s.split("=")[0].isupper() for s in body["stack"][1:-1])
    for route in ("proc self", "proc parent", "proc parent cmdline"):
        assert refused(body[route], errno=EACCES), body[route]


def test_open_etc_passwd_fails_at_every_layer() -> None:
    outcome = attack(
        """
        def main():
            naive = attempt(lambda: open("/etc/passwd").read())
            python_layer = attempt(lambda: escape()["builtins"].open("/etc/passwd").read())
            disable_python_layer()
            kernel = attempt(lambda: escape()["builtins"].open("/etc/passwd").read())
            listing = attempt(lambda: escape()["os"].listdir("/etc"))
            return {"naive": naive, "python": python_layer, "kernel": kernel, "listing": listing}
        """
    )
    body = outcome.body
    assert refused(body["naive"], error="NameError")
    assert refused(body["python"], error="SandboxViolation")
    assert refused(body["kernel"], errno=EACCES) and refused(body["listing"], errno=EACCES)


def test_sockets_cannot_be_created() -> None:
    outcome = attack(
        """
        def main():
            socket = escape()["socket"]
            python_layer = attempt(lambda: socket.socket())
            disable_python_layer()
            return {
                "python": python_layer,
                "tcp": attempt(lambda: socket.create_connection(("127.0.0.1", 27017), timeout=1)),
                "unix": attempt(lambda: socket.socket(socket.AF_UNIX)),
                "pair": attempt(lambda: socket.socketpair()),
            }
        """
    )
    body = outcome.body
    assert refused(body["python"], error="SandboxViolation")
    for kind in ("tcp", "unix", "pair"):
        assert refused(body[kind], errno=EPERM), body[kind]


def test_fork_fork_bombs_and_threads_are_refused_even_through_unaudited_routes() -> None:
    outcome = attack(
        """
        def main():
            modules = escape()
            os = modules["os"]
            fork_exec = modules["_posixsubprocess"].fork_exec  # no audit event at all
            errors_read, errors_write = os.pipe()
            unaudited = attempt(lambda: fork_exec(["/bin/true"], [b"/bin/true"], True, (errors_write,), None, None,
                                                  -1, -1, -1, -1, -1, -1, errors_read, errors_write, False, False,
                                                  -1, None, None, None, -1, None, True))
            disable_python_layer()
            bomb = [attempt(os.fork) for _ in range(200)]
            thread = attempt(lambda: real_import("_thread").start_new_thread(sum, ([],)))
            return {"unaudited": unaudited, "bomb": bomb, "thread": thread}
        """
    )
    body = outcome.body
    assert refused(body["unaudited"], errno=EPERM), body["unaudited"]
    assert all(refused(answer, errno=EPERM) for answer in body["bomb"])
    assert refused(body["thread"], error="RuntimeError")  # no thread can outlive its call either


def test_exec_and_shells_are_refused() -> None:
    outcome = attack(
        """
        def main():
            modules = disable_python_layer()
            os = modules["os"]
            subprocess = modules["subprocess"]
            return {
                "system": os.system("id > /tmp/pwned"),
                "execv": attempt(lambda: os.execv("/bin/sh", ["sh", "-c", "id"])),
                "spawn": attempt(lambda: os.posix_spawn("/bin/sh", ["sh"], {})),
                "run": attempt(lambda: subprocess.run(["id"], capture_output=True)),
            }
        """
    )
    body = outcome.body
    assert body["system"] != 0
    for route in ("execv", "spawn", "run"):
        assert refused(body[route], errno=EPERM), body[route]
    assert not os.path.exists("/tmp/pwned")


def test_cpu_bound_bignum_is_stopped_by_the_watchdog() -> None:
    outcome = attack("def main():\n    return len(str(10**10**8))\n", timeout=1.0)
    assert outcome.result is not None and outcome.result.status == 504 and outcome.result.error == "timeout"


def test_an_infinite_loop_is_stopped_by_the_watchdog() -> None:
    outcome = attack("def main():\n    while True:\n        pass\n", timeout=0.5)
    assert outcome.result is not None and outcome.result.status == 504


def test_allocating_ten_gigabytes_fails_inside_the_worker() -> None:
    outcome = attack("def main():\n    return len(bytearray(10 * 1024**3))\n")
    assert outcome.result is not None and outcome.result.status == 500
    assert "MemoryError" in outcome.log_text


def test_deep_recursion_is_an_error_and_a_c_stack_overflow_only_costs_a_worker() -> None:
    outcome = attack("def main():\n    return main()\n")
    assert (
        outcome.result is not None and outcome.result.status == 500 and "RecursionError" in outcome.log_text
    )
    crash = attack(
        """
        def main():
            escape()["sys"].setrecursionlimit(10**8)
            nested = []
            for _ in range(10**6):
                nested = [nested]
            return nested  # the C JSON encoder recurses until the C stack runs out
        """
    )
    assert crash.result is not None and crash.result.status == 500
    assert "crashed (SIGSEGV)" in crash.body["error"]["message"]


def test_huge_files_in_scratch_are_capped() -> None:
    outcome = attack(
        """
        def main():
            naive = attempt(lambda: open("big.bin", "wb"))
            modules = disable_python_layer()
            def write():
                with modules["builtins"].open("big.bin", "wb") as f:
                    for _ in range(64):
                        f.write(b"x" * 1024 * 1024)
            huge = attempt(write)
            return {"naive": naive, "huge": huge, "size": modules["os"].path.getsize("big.bin"),
                    "outside": attempt(lambda: modules["builtins"].open("/tmp/imprun-escape", "wb"))}
        """
    )
    body = outcome.body
    assert refused(body["naive"], error="NameError")
    assert refused(body["huge"], errno=EFBIG) and body["size"] == 16 * 1024 * 1024
    assert refused(body["outside"], errno=EACCES)


def test_platform_collections_only_reach_the_db_executor_and_mongo_is_unreachable() -> None:
    ops: list[dict[str, Any]] = []

    def recording_executor(op: dict[str, Any]) -> dict[str, Any]:
        ops.append(op)
        return {"error": {"code": "forbidden", "message": "platform collections are not accessible"}}

    assert attack("import pymongo\n\ndef main():\n    pass\n").load_error is not None
    outcome = attack(
        """
        def main():
            try:
                imp.db()["__published_functions"].update_one({"name": "x"}, {"$set": {"code": "evil"}})
            except imp.DBError as exc:
                stub = [exc.code, exc.message]
            modules = disable_python_layer()
            sys = modules["sys"]
            sys.path.append(SITE_PACKAGES)
            return {
                "stub": stub,
                "pymongo": attempt(lambda: real_import("pymongo")),
                "socket": attempt(lambda: modules["socket"].create_connection(("127.0.0.1", 27017))),
            }
        """.replace("SITE_PACKAGES", repr(sysconfig.get_paths()["purelib"])),
        db_executor=recording_executor,
    )
    body = outcome.body
    assert body["stub"] == ["forbidden", "platform collections are not accessible"]
    assert refused(body["pymongo"]) and refused(body["socket"], errno=EPERM)
    assert ops == [
        {
            "collection": "__published_functions",
            "method": "update_one",
            "args": [{"name": "x"}, {"$set": {"code": "evil"}}],
            "kwargs": {},
        }
    ]


def test_signals_cannot_reach_the_supervisor() -> None:
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGUSR2, handler)
    try:
        outcome = attack(
            """
            def main():
                os = disable_python_layer()["os"]
                return {
                    "probe": attempt(lambda: os.kill(os.getppid(), 0)),
                    "usr2": attempt(lambda: os.kill(os.getppid(), 12)),
                    "group": attempt(lambda: os.killpg(os.getpgid(os.getppid()), 12)),
                }
            """
        )
    finally:
        signal.signal(signal.SIGUSR2, previous)
    for route in ("probe", "usr2", "group"):
        assert refused(outcome.body[route], errno=EPERM), outcome.body[route]
    assert received == []


def test_rlimits_cannot_be_raised_from_inside() -> None:
    outcome = attack(
        """
        def main():
            disable_python_layer()
            resource = real_import("resource")
            return attempt(lambda: resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2))
        """
    )
    assert refused(outcome.body, error="ValueError") and "not allowed to raise" in outcome.body["message"]


def test_the_package_cannot_be_rewritten_for_future_workers() -> None:
    outcome = attack(
        """
        def main():
            modules = disable_python_layer()
            path = reach(modules["runtime_actors.worker.main"], "__file__")
            return attempt(lambda: modules["builtins"].open(path, "a").write("import os; os.system('id')"))
        """
    )
    assert refused(outcome.body, errno=EACCES)


def test_the_replicas_and_the_hubs_code_cannot_be_read_only_the_workers_own() -> None:
    outcome = attack(
        """
        def main():
            modules = disable_python_layer()
            read = lambda path: modules["builtins"].open(path).read(64)
            worker = reach(modules["runtime_actors.worker.main"], "__file__")
            package = worker.rpartition("/worker/")[0]
            return {
                "worker": attempt(lambda: read(worker)),
                "shared": attempt(lambda: read(package + "/shared/messages.py")),
                "replica": attempt(lambda: read(package + "/replica/supervisor.py")),
                "hub": attempt(lambda: read(package + "/hub/reads.py")),
                "listing": attempt(lambda: escape()["os"].listdir(package)),
            }
        """
    )
    body = outcome.body
    assert body["worker"]["outcome"] == "succeeded" and body["shared"]["outcome"] == "succeeded"
    assert refused(body["replica"], errno=EACCES) and refused(body["hub"], errno=EACCES)
    assert refused(body["listing"], errno=EACCES)


def test_forged_frames_to_the_supervisor_cost_only_the_attackers_worker() -> None:
    outcome = attack(
        """
        def main():
            modules = escape()
            worker = reach(modules["runtime_actors.worker.imp_module"]._State.bridge, "__self__")
            worker._channel.send({"op": "result", "id": 999, "result": {"status": 200, "body": ""}})
            return "unreachable"
        """
    )
    assert outcome.result is not None and outcome.result.status == 500
    assert "answered request 999" in outcome.body["error"]["message"]
    garbage = attack(
        """
        def main():
            modules = escape()
            fd = reach(modules["runtime_actors.worker.imp_module"]._State.bridge, "__self__")._channel._fd
            modules["os"].write(fd, b"\\xff\\xff\\xff\\xffnot a frame")
            return "unreachable"
        """
    )
    assert garbage.result is not None and garbage.result.status == 500
    assert "broke the protocol" in garbage.body["error"]["message"]


def test_a_forged_result_cannot_inject_headers() -> None:
    outcome = attack(
        """
        def main():
            return imp.Response("ok", headers={"x-a": "1\\r\\nset-cookie: session=stolen", "bad name": "x"})
        """
    )
    assert outcome.result is not None and outcome.result.status == 200
    assert "x-a" not in outcome.result.headers and "bad name" not in outcome.result.headers


def test_tampering_with_the_workers_modules_stays_in_the_worker() -> None:
    outcome = attack(
        """
        def main():
            modules = escape()
            modules["json"].dumps = lambda *a, **k: "tampered"
            modules["runtime_actors.shared.frames"].encode_frame = lambda message: b"\\x00\\x00\\x00\\x02{}"
            return "tampered"
        """
    )
    assert outcome.result is not None and outcome.result.status == 500  # its own worker broke; replaced


def test_scheduling_and_priority_calls_reach_only_the_worker_itself() -> None:
    # Every call on another process repeats that process's current setting, so it changes nothing
    # even on a kernel that let it through; PRIO_USER names a uid nobody runs as (ESRCH if allowed).
    outcome = attack(
        """
        def main():
            modules = disable_python_layer()
            os = modules["os"]
            ctypes = real_import("ctypes")
            libc = ctypes.CDLL(None, use_errno=True)
            resource = real_import("resource")
            parent = os.getppid()

            def ioprio_set(which, who):
                current = libc.syscall(252, 1, parent)  # ioprio_get(IOPRIO_WHO_PROCESS, parent)
                if libc.syscall(251, which, who, current) != 0:
                    raise OSError(ctypes.get_errno(), "ioprio_set")

            nice = os.getpriority(os.PRIO_PROCESS, parent)
            return {
                "user": attempt(lambda: os.setpriority(os.PRIO_USER, 3999999, 19)),
                "group": attempt(lambda: os.setpriority(os.PRIO_PGRP, os.getpgid(parent), nice)),
                "parent": attempt(lambda: os.setpriority(os.PRIO_PROCESS, parent, nice)),
                "affinity": attempt(lambda: os.sched_setaffinity(parent, os.sched_getaffinity(parent))),
                "scheduler": attempt(lambda: os.sched_setscheduler(
                    parent, os.sched_getscheduler(parent), os.sched_getparam(parent))),
                "param": attempt(lambda: os.sched_setparam(parent, os.sched_getparam(parent))),
                "ioprio": attempt(lambda: ioprio_set(1, parent)),
                "prlimit": attempt(lambda: resource.prlimit(parent, resource.RLIMIT_NOFILE)),
                "own nice": attempt(lambda: os.setpriority(os.PRIO_PROCESS, 0, 1)),
                "own affinity": attempt(lambda: os.sched_setaffinity(0, os.sched_getaffinity(0))),
                "own ioprio": attempt(lambda: ioprio_set(1, 0)),
                "own limits": attempt(lambda: resource.getrlimit(resource.RLIMIT_NOFILE)),
            }
        """,
        **KEEPS_UID,
    )
    body = outcome.body
    for route in ("user", "group", "parent", "affinity", "scheduler", "param", "ioprio", "prlimit"):
        assert refused(body[route], errno=EPERM), (route, body[route])
    for route in ("own nice", "own affinity", "own ioprio", "own limits"):
        assert body[route]["outcome"] == "succeeded", (route, body[route])


def test_a_worker_past_its_scratch_budget_is_replaced_with_its_files() -> None:
    code = ESCAPE + textwrap.dedent(
        """
        def main(req):
            modules = disable_python_layer()
            os = modules["os"]
            if req.query.get("write"):
                for index in range(3):  # each file under RLIMIT_FSIZE, together past the budget
                    with modules["builtins"].open(f"part-{index}.bin", "wb") as f:
                        f.write(b"x" * 1024 * 1024)
            return {"pid": os.getpid(), "files": sorted(os.listdir("."))}
        """
    )

    async def scenario(pool: WorkerPool) -> list[Any]:
        errors = await pool.load([source("fill", code)])
        assert errors == {}
        answers = []
        for query in ({"write": ["1"]}, {}):
            result = await pool.invoke("fill", invocation("fill", method="GET", query=query))
            assert result.status == 200, result
            answers.append(json.loads(result.body))
        return answers

    written, after = run(scenario, limits=WorkerLimits(scratch_bytes=2 * 1024 * 1024))
    assert written["files"] == ["part-0.bin", "part-1.bin", "part-2.bin"]
    assert after["pid"] != written["pid"] and after["files"] == []
