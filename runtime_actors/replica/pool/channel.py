"""The supervisor's end of a worker's socket: frames parsed as the bytes arrive, on the event loop.

``FrameChannel`` is an ``asyncio.Protocol``: the loop hands it each chunk it reads, it cuts complete
frames out of its buffer (the size cap checked before the payload is awaited) and wakes the one
reader waiting in ``receive``. Compared with a ``StreamReader`` this costs no task wake-up per read
call and no second await for the payload, and ``send`` writes straight to the socket (the loop buffers
only what the kernel did not take; ``drain`` waits while that is over the high-water mark). A frame
that breaks the protocol closes the channel: the next ``receive`` raises ``ProtocolError``; a closed
socket raises ``ConnectionError``. The worker answers what it is asked, one frame per request, and a
callback frame waits for its reply, so no more than one frame per request in flight can legitimately
be waiting here (``max_unread``, kept up to date by ``launcher.WorkerProcess``): bytes arriving behind
that many complete, unread frames break the protocol (the unread frames are still delivered), and a
hostile worker cannot pile up decoded frames in the supervisor. The worker's end is
``wire.SyncChannel``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Any, cast

from runtime_actors.shared.frames import HEADER, ProtocolError, decode_frame, encode_frame

__all__ = ["FrameChannel"]


class FrameChannel(asyncio.Protocol):
    def __init__(self, max_frame: int) -> None:
        self._max_frame = max_frame
        self.max_unread = 1
        """How many complete frames may wait unread (the worker's handle keeps it to what it asked for)."""
        self._loop = asyncio.get_running_loop()  # made by the loop's protocol factory
        self._buffer = bytearray()
        self._frames: deque[dict[str, Any]] = deque()
        self._transport: asyncio.WriteTransport | None = None
        self._reader: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        self._failure: Exception | None = None

    # ---- the loop's side ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        if len(self._frames) >= self.max_unread:  # nothing may follow as many unread frames
            self._refuse_unasked()
            return
        buffer = self._buffer
        buffer += data
        header = HEADER.size
        while len(buffer) >= header:
            (size,) = HEADER.unpack_from(buffer)
            if size > self._max_frame:
                self._fail(ProtocolError(f"a frame of {size} bytes is over the {self._max_frame}-byte limit"))
                return
            end = header + size
            if len(buffer) < end:
                break
            with memoryview(buffer) as view:
                payload = bytes(view[header:end])
            del buffer[:end]
            try:
                self._frames.append(decode_frame(payload))
            except ProtocolError as exc:
                self._fail(exc)
                return
            if buffer and len(self._frames) >= self.max_unread:
                self._refuse_unasked()
                return
        if self._frames:
            self._wake_reader()

    def eof_received(self) -> bool:
        if self._failure is None:
            self._failure = ConnectionError("the worker closed its socket")
        self._wake_reader()
        self._wake_drain()
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._failure is None:
            self._failure = ConnectionError(f"the worker's socket closed{f': {exc}' if exc else ''}")
        self._wake_reader()
        self._wake_drain()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain()

    # ---- the supervisor's side ---------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self._writable() is not None

    def send(self, message: Mapping[str, Any]) -> None:
        transport = self._writable()
        if transport is None:
            raise ConnectionError("the worker's socket is closed")
        transport.write(encode_frame(message))

    async def drain(self) -> None:
        while self._paused and self._failure is None:
            self._drained = self._loop.create_future()
            try:
                await self._drained
            finally:
                self._drained = None
        if self._failure is not None:
            raise self._failure

    async def receive(self) -> dict[str, Any]:
        """The next frame; ``ProtocolError`` or ``ConnectionError`` once there will be none."""
        while not self._frames:
            if self._failure is not None:
                raise self._failure
            self._reader = self._loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        return self._frames.popleft()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # ---- internals ---------------------------------------------------------------------------

    def _writable(self) -> asyncio.WriteTransport | None:
        transport = self._transport
        if self._failure is None and transport is not None and not transport.is_closing():
            return transport
        return None

    def _fail(self, exc: Exception, *, keep_frames: bool = False) -> None:
        self._failure = exc
        if not keep_frames:
            self._frames.clear()
        self._buffer.clear()
        if self._transport is not None:
            self._transport.abort()  # not close(): nothing more goes to a worker that broke the protocol
        self._wake_reader()
        self._wake_drain()

    def _refuse_unasked(self) -> None:
        """Bytes behind an unread frame: the frame is still delivered, then the protocol is broken."""
        self._fail(ProtocolError("the worker sent a frame it was not asked for"), keep_frames=True)

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def _wake_drain(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
