"""The supervisor's handle on one jailed worker process: spawn it, talk to it, kill it.

``WorkerProcess.spawn`` creates a socketpair, starts ``python -I -S`` on ``runtime_actors.worker.main`` with an
empty environment, no descriptors but the socket's end (and stderr, so the worker's own warnings
reach the replica's log), its own session, and the scratch directory as working directory, then
waits for the worker's ``hello`` (or ``refused``: ``WorkerRefused``). ``request`` sends one frame and
serves the worker's ``db``/``fetch`` callbacks until the answer arrives; a closed socket or a frame
that breaks the protocol raises ``WorkerGone`` with the reason (exit status or signal). No timeouts
here: the pool's watchdog wraps ``request`` and calls ``kill``.

More than one request may be in flight (``start`` them): the worker runs them one after the other, so
each caller first waits for its ``turn`` (every request sent before it has been answered, or given up)
and only then reads frames; the channel accepts as many unread frames as there are requests in flight.
A request behind one that was given up (the pool then replaces the worker) may find the worker gone
or still busy with that one before any of its own frames: ``answer`` raises ``NotStarted``, and the
pool may send it to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import runtime_actors
from runtime_actors.replica.pool.channel import FrameChannel
from runtime_actors.shared.frames import MAX_WORKER_FRAME, ProtocolError
from runtime_actors.shared.jail_config import UNPRIVILEGED_UID, JailConfig, JailReport, WorkerLimits

__all__ = ["Callback", "NotStarted", "WorkerGone", "WorkerProcess", "WorkerRefused"]

BOOTSTRAP: Final = (
    "import sys; sys.path.append(sys.argv[1]); from runtime_actors.worker.main import main; main(sys.argv[2])"
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


class NotStarted(WorkerGone):
    """The worker died before it read this request: it ran none of it, and it can go elsewhere."""


class WorkerRefused(Exception):
    """The worker could not apply its jail and was not allowed to run insecure."""


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    channel: FrameChannel
    jail: JailReport
    scratch_dir: Path
    _last_id: int = 0
    _in_flight: deque[int] = field(default_factory=deque)  # ids sent and not yet answered, in order
    _turn: asyncio.Future[None] | None = None  # resolved whenever the head of ``_in_flight`` leaves
    _abandoned: set[int] = field(default_factory=set)  # left without their answer; the worker may run them

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
        run_as: int | None = UNPRIVILEGED_UID,
    ) -> WorkerProcess:
        scratch_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - one local mkdir
        run_as = run_as if os.geteuid() == 0 else None
        if run_as is not None:  # the worker's own directory: the only one it may write, as its uid
            os.chown(scratch_dir, run_as, run_as)
            os.chmod(scratch_dir, 0o700)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = JailConfig(
            pipe_fd=theirs.fileno(),
            parent_pid=os.getpid(),
            scratch_dir=str(scratch_dir),
            read_only_paths=tuple(str(p) for p in read_only_paths),
            limits=limits,
            insecure=insecure,
            min_landlock_abi=min_landlock_abi,
            run_as=run_as,
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
        """Running, with its socket open (asks the kernel: for a worker that sat idle)."""
        return self.open and self.process.poll() is None

    @property
    def open(self) -> bool:
        """Not known to be dead — not reaped, its socket open — without a system call: for a worker that
        has just answered or is running a call (one that died reads EOF in the next loop turn)."""
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
        request_id = self.start(message)
        await self.turn(request_id)
        return await self.answer(request_id, callback)

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered (or given up)."""
        return len(self._in_flight)

    def start(self, message: dict[str, Any]) -> int:
        """Send ``message`` with a fresh ``id`` (returned) that its answer must echo: a stale or forged
        frame is a protocol violation, never the answer to a later call."""
        self._last_id += 1
        self.send({**message, "id": self._last_id})
        self._in_flight.append(self._last_id)
        self._limit_unread()
        return self._last_id

    async def turn(self, request_id: int) -> None:
        """Wait until every request sent before ``request_id`` has been answered or given up (leaving
        here by a cancellation gives ``request_id`` up)."""
        try:
            while self._in_flight and self._in_flight[0] != request_id:
                if self._turn is None:
                    self._turn = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._turn)  # one future for every waiter: none may cancel it
        except BaseException:
            self._leave(request_id, answered=False)
            raise

    async def answer(self, request_id: int, callback: Callback) -> dict[str, Any]:
        """Serve the worker's callbacks until its answer to ``request_id``, which is returned (after
        ``turn``). Leaving any other way — an exception, a cancellation — gives the request up.

        When requests ahead of this one were given up, the worker may still be running one: its
        callbacks are not served (``NotStarted``: the pool kills the worker, and since nothing of this
        request was served — a jailed worker has no other way out — it can go to another worker), its
        answer is dropped, and only then are the frames this request's."""
        answered = False
        started = self._nothing_abandoned_before(request_id)
        try:
            try:
                await self.channel.drain()
            except (ConnectionError, ProtocolError) as exc:
                if not started:
                    raise NotStarted(f"the worker stopped before this request: {exc}") from exc
                if isinstance(exc, ProtocolError):
                    raise WorkerGone(f"the worker broke the protocol: {exc}") from exc
                raise WorkerGone(await self.death_reason()) from exc
            while True:
                try:
                    frame = await self.read_frame()
                except WorkerGone as exc:
                    if not started:
                        raise NotStarted(str(exc)) from exc
                    raise
                op, frame_id = frame["op"], frame.get("id")
                if op in ("db", "fetch"):
                    if not started:
                        raise NotStarted("the worker is still running a request given up before this one")
                    self.send(await callback(op, frame.get("request")))
                elif frame_id == request_id:
                    answered = True
                    return frame
                elif not started and frame_id in self._abandoned:
                    self._abandoned.discard(frame_id)  # its caller is gone; the worker moves on
                    started = self._nothing_abandoned_before(request_id)
                else:
                    raise WorkerGone(f"the worker answered request {frame_id!r} while {request_id} was due")
        finally:
            self._leave(request_id, answered)

    def _nothing_abandoned_before(self, request_id: int) -> bool:
        """Whether the worker reads ``request_id`` right after answers the supervisor has read (ids grow)."""
        return all(other > request_id for other in self._abandoned)

    def give_up(self, request_id: int) -> bool:
        """Forget a request that was sent but whose answer will not be read; True if it was the oldest
        in flight (the worker may be running it)."""
        oldest = bool(self._in_flight) and self._in_flight[0] == request_id
        self._leave(request_id, answered=False)
        return oldest

    def _leave(self, request_id: int, answered: bool) -> None:
        if request_id in self._in_flight:
            self._in_flight.remove(request_id)
            if not answered:
                self._abandoned.add(request_id)
        self._limit_unread()
        turn, self._turn = self._turn, None
        if turn is not None and not turn.done():
            turn.set_result(None)

    def _limit_unread(self) -> None:
        """What the worker may have sent and the supervisor not read yet: a frame per request in flight
        or given up (an answer, or a callback that blocks it), and at least one."""
        self.channel.max_unread = max(1, len(self._in_flight) + len(self._abandoned))

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

    async def dispose(self) -> None:
        """Kill the worker and remove its scratch directory."""
        await self.kill()
        await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, self.scratch_dir, True)
