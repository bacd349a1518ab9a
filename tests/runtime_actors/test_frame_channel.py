"""The supervisor's end of a worker socket (``jail.channel.FrameChannel``) over a real socketpair."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable

import pytest

from runtime_actors.replica.pool.channel import FrameChannel
from runtime_actors.shared.frames import HEADER, ProtocolError, SyncChannel, encode_frame

LIMIT = 1 << 20


def on_a_socketpair(scenario: Callable[[FrameChannel, socket.socket], Awaitable[None]]) -> None:
    """Run ``scenario(channel, peer)``: ``channel`` on one end of a socketpair, ``peer`` the other."""

    async def main() -> None:
        ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        _, channel = await asyncio.get_running_loop().create_unix_connection(
            lambda: FrameChannel(LIMIT), sock=ours
        )
        try:
            await scenario(channel, peer)
        finally:
            channel.close()
            peer.close()

    asyncio.run(main())


def test_a_frame_split_across_reads_arrives_whole_and_frames_arrive_in_order() -> None:
    async def scenario(channel: FrameChannel, peer: socket.socket) -> None:
        first, second = (encode_frame({"op": "n", "i": i, "pad": "x" * 300}) for i in range(2))
        peer.sendall(first[:2])
        peer.sendall(first[2:100])
        receiving = asyncio.ensure_future(channel.receive())
        peer.sendall(first[100:])
        assert (await receiving)["i"] == 0
        for cut in (1, 4, 200, len(second) - 1):  # a frame may arrive in any number of pieces
            receiving = asyncio.ensure_future(channel.receive())
            peer.sendall(second[:cut])
            peer.sendall(second[cut:])
            assert (await receiving)["i"] == 1

    on_a_socketpair(scenario)


@pytest.mark.parametrize("extra", [b"", b"\x00\x00"], ids=["a second whole frame", "the start of one"])
def test_a_worker_that_sends_what_it_was_not_asked_for_breaks_the_protocol(extra: bytes) -> None:
    """Lock-step: a worker never has a second frame in flight; a hostile one cannot pile them up."""

    async def scenario(channel: FrameChannel, peer: socket.socket) -> None:
        second = extra or encode_frame({"op": "n", "i": 1})
        peer.sendall(encode_frame({"op": "n", "i": 0}) + second + encode_frame({"op": "n", "i": 2}) * 1000)
        assert (await channel.receive())["i"] == 0  # what came first is still delivered
        with pytest.raises(ProtocolError, match="not asked for"):
            await channel.receive()

    on_a_socketpair(scenario)


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    async def scenario(channel: FrameChannel, peer: socket.socket) -> None:
        peer.sendall(HEADER.pack(LIMIT + 1))
        with pytest.raises(ProtocolError, match="over the"):
            await channel.receive()
        with pytest.raises(ConnectionError):
            channel.send({"op": "ping"})

    on_a_socketpair(scenario)


@pytest.mark.parametrize(
    "payload",
    [b"[1]", b"\xff\xfe", b"[" * 5000 + b"]" * 5000],
    ids=["not an object", "not UTF-8", "nested past the recursion limit"],
)
def test_a_frame_that_is_not_a_json_object_is_a_protocol_error(payload: bytes) -> None:
    async def scenario(channel: FrameChannel, peer: socket.socket) -> None:
        peer.sendall(HEADER.pack(len(payload)) + payload)
        with pytest.raises(ProtocolError):
            await channel.receive()

    on_a_socketpair(scenario)


def test_frames_sent_before_the_peer_closed_are_still_delivered() -> None:
    async def scenario(channel: FrameChannel, peer: socket.socket) -> None:
        peer.sendall(encode_frame({"op": "last"}))
        peer.close()
        assert (await channel.receive())["op"] == "last"
        with pytest.raises(ConnectionError):
            await channel.receive()

    on_a_socketpair(scenario)


def test_a_large_frame_goes_out_whole_while_the_peer_reads_slowly() -> None:
    async def scenario(channel: FrameChannel, peer: socket.socket) -> None:
        text = "y" * (4 * LIMIT)  # far more than the socket buffers: the loop holds the rest
        channel.send({"op": "big", "text": text})
        worker_end = SyncChannel(peer.fileno())
        reading = asyncio.get_running_loop().run_in_executor(None, worker_end.receive)
        await channel.drain()
        assert (await reading)["text"] == text

    on_a_socketpair(scenario)


def test_the_worker_end_reads_back_to_back_frames_from_one_read() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        ours.sendall(b"".join(encode_frame({"op": "n", "i": i}) for i in range(3)))
        worker_end = SyncChannel(theirs.fileno())
        assert [worker_end.receive()["i"] for _ in range(3)] == [0, 1, 2]
        big = encode_frame({"op": "n", "payload": json.dumps(list(range(50_000)))})  # > a socket buffer
        sender = threading.Thread(target=ours.sendall, args=(big,))
        sender.start()
        assert len(json.loads(worker_end.receive()["payload"])) == 50_000
        sender.join()
        ours.close()
        with pytest.raises(EOFError):
            worker_end.receive()
