"""The supervisor's handle on one jailed worker process: spawn it, talk to it, kill it.

``WorkerProcess.spawn`` creates a socketpair, starts ``python -I -S`` on ``worker_main`` with an
empty environment, no descriptors but the socket's end (and stderr, so the worker's own warnings
reach the replica's log), its own session, and the scratch directory as working directory, then
waits for the worker's ``hello`` (or ``refused``: ``WorkerRefused``). ``request`` sends one frame and
serves the worker's ``db``/``fetch`` callbacks until the answer arrives; a closed socket or a frame
that breaks the protocol raises ``WorkerGone`` with the reason (exit status or signal). No timeouts
here: the pool's watchdog wraps ``request`` and calls ``kill``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import runtime_actors
from runtime_actors.jail.channel import FrameChannel
from runtime_actors.jail.config import JailConfig, JailReport, WorkerLimits
from runtime_actors.jail.wire import MAX_WORKER_FRAME, ProtocolError

__all__ = ["Callback", "WorkerGone", "WorkerProcess", "WorkerRefused"]

BOOTSTRAP: Final = (
    "import sys; sys.path.append(sys.argv[1]); from runtime_actors.worker_main import main; main(sys.argv[2])"
)
PACKAGE_ROOT: Final = Path(runtime_actors.__file__).resolve().parent.parent

Callback = Callable[[str, Any], Awaitable[dict[str, Any]]]
"""``callback(kind, request) -> reply frame`` for a worker's ``db``/``fetch`` frames."""

_SIGNAL_MEANING: Final[dict[int, str]] = {
    signal.SIGKILL: "killed (SIGKILL: the watchdog, or the kernel's OOM killer)",
    signal.SIGXCPU: "stopped by its CPU-time limit (SIGXCPU)",
    signal.SIGXFSZ: "stopped by its file-size limit (SIGXFSZ)",
    signal.SIGSYS: "killed by seccomp (a system call from a forbidden ABI)",
    signal.SIGSEGV: "crashed (SIGSEGV)",
    signal.SIGABRT: "aborted (SIGABRT)",
}


class WorkerGone(Exception):
    """The worker died or broke the protocol; it must be replaced."""


class WorkerRefused(Exception):
    """The worker could not apply its jail and was not allowed to run insecure."""


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    channel: FrameChannel
    jail: JailReport
    scratch_dir: Path
    _last_id: int = 0

    @classmethod
    async def spawn(
        cls,
        *,
        scratch_dir: Path,
        read_only_paths: Sequence[Path],
        limits: WorkerLimits,
        insecure: bool,
        min_landlock_abi: int = 1,
        python: str = sys.executable,
        hello_timeout: float = 30.0,
    ) -> WorkerProcess:
        scratch_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - one local mkdir
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = JailConfig(
            pipe_fd=theirs.fileno(),
            parent_pid=os.getpid(),
            scratch_dir=str(scratch_dir),
            read_only_paths=tuple(str(p) for p in read_only_paths),
            limits=limits,
            insecure=insecure,
            min_landlock_abi=min_landlock_abi,
        )
        try:
            # Spawned on the event-loop thread on purpose: PR_SET_PDEATHSIG fires when the *thread*
            # that forked exits, and a pool thread could; Popen uses vfork, so this takes ~1 ms.
            process = subprocess.Popen(  # noqa: ASYNC220
                [python, "-I", "-S", "-X", "utf8", "-c", BOOTSTRAP, str(PACKAGE_ROOT), config.to_json()],
                env={},
                cwd=scratch_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                close_fds=True,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        _, channel = await asyncio.get_running_loop().create_unix_connection(
            lambda: FrameChannel(MAX_WORKER_FRAME), sock=ours
        )
        worker = cls(process, channel, JailReport(0, False, False, insecure), scratch_dir)
        try:
            hello = await asyncio.wait_for(worker.read_frame(), hello_timeout)
        except BaseException:
            await worker.kill()
            raise
        if hello["op"] == "refused":
            await worker.kill()
            raise WorkerRefused(str(hello.get("reason", "the jail could not be applied")))
        if hello["op"] != "hello" or not isinstance(hello.get("jail"), dict):
            await worker.kill()
            raise WorkerGone(f"the worker greeted with {hello['op']!r}")
        worker.jail = JailReport.from_dict(hello["jail"])
        return worker

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Not known to be dead: not reaped and its socket still open (a dead worker's socket reads EOF
        in the loop turn after it died). No ``waitpid`` on every call."""
        return self.process.returncode is None and self.channel.open

    async def read_frame(self) -> dict[str, Any]:
        try:
            return await self.channel.receive()
        except ConnectionError as exc:
            raise WorkerGone(await self.death_reason()) from exc
        except ProtocolError as exc:
            raise WorkerGone(f"the worker broke the protocol: {exc}") from exc

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except ConnectionError as exc:
            raise WorkerGone("the worker's socket is closed") from exc

    async def request(self, message: dict[str, Any], callback: Callback) -> dict[str, Any]:
        """Send ``message``; serve callbacks until the worker's answer frame, which is returned."""
        return await self.answer(self.start(message), callback)

    def start(self, message: dict[str, Any]) -> int:
        """Send ``message`` with a fresh ``id`` (returned) that its answer must echo: a stale or forged
        frame is a protocol violation, never the answer to a later call."""
        self._last_id += 1
        self.send({**message, "id": self._last_id})
        return self._last_id

    async def answer(self, request_id: int, callback: Callback) -> dict[str, Any]:
        """Serve the worker's callbacks until its answer to ``request_id``, which is returned."""
        try:
            await self.channel.drain()
        except ConnectionError as exc:
            raise WorkerGone(await self.death_reason()) from exc
        except ProtocolError as exc:
            raise WorkerGone(f"the worker broke the protocol: {exc}") from exc
        while True:
            frame = await self.read_frame()
            if frame["op"] not in ("db", "fetch"):
                if frame.get("id") != request_id:
                    raise WorkerGone(
                        f"the worker answered request {frame.get('id')!r} while {request_id} was due"
                    )
                return frame
            self.send(await callback(frame["op"], frame.get("request")))

    async def death_reason(self) -> str:
        loop = asyncio.get_running_loop()
        try:
            code = await asyncio.wait_for(loop.run_in_executor(None, self.process.wait), 2.0)
        except TimeoutError:
            return "the worker closed its socket but is still running"
        if code < 0:
            return f"the worker process was {_SIGNAL_MEANING.get(-code, f'killed by signal {-code}')}"
        return f"the worker process exited with status {code}"

    async def kill(self) -> None:
        """SIGKILL the worker (idempotent), close the socket and reap it off the event loop."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.channel.close()
        await asyncio.get_running_loop().run_in_executor(None, self.process.wait)
