"""What the supervisor is plugged into, as Protocols: the jailed pool, the node's reload hub, the
admission gate, the log sink and the metrics observer.

Replicas plug in the real ones (``replica.pool.worker_pool.WorkerPool``, the hub through Ray,
``replica.admission.key_auth.KeyAuthGate``, ``replica.log_stream.RedisLogStream``, Ray metrics); tests
plug in fakes. ``AllowEveryRequest`` and ``NoObserver`` are the defaults when nothing is plugged in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from runtime_actors.replica.http import HttpResponse, RequestHead
from runtime_actors.shared.messages import (
    AccessDocuments,
    Invocation,
    InvocationResult,
    LogEntry,
    PublishedFunction,
    Snapshot,
)

__all__ = [
    "AllowEveryRequest",
    "FunctionLogSink",
    "FunctionPool",
    "InvocationObserver",
    "NoObserver",
    "ReloadSource",
    "RequestGate",
]


class FunctionPool(Protocol):
    """The jailed worker pool (``runtime_actors.replica.pool.worker_pool.WorkerPool``) as the supervisor uses it."""

    async def start(self) -> None: ...

    async def load(
        self, functions: list[PublishedFunction], *, env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Make ``functions`` current; ``env``, when given, becomes the workers' ``imp.env``."""
        ...

    async def invoke(self, name: str, invocation: Invocation, timeout: float) -> InvocationResult: ...  # noqa: ASYNC109

    async def debug(self, code: str, invocation: Invocation, timeout: float) -> InvocationResult: ...  # noqa: ASYNC109

    async def close(self) -> None: ...


class InvocationObserver(Protocol):
    """Told about every finished call (on the request path: must not block)."""

    def observe(self, function: str, status: int, duration_s: float) -> None: ...


class NoObserver:
    def observe(self, function: str, status: int, duration_s: float) -> None:
        pass


class ReloadSource(Protocol):
    """The node's reload hub, bound to this environment."""

    async def snapshot(self) -> Snapshot: ...

    async def wait_changed(self, known_generation: int, timeout_s: float) -> Snapshot | None: ...


class RequestGate(Protocol):
    """Admission before routing: return a response to refuse the request, None to let it through.

    ``update`` gets each new ``AccessDocuments`` of the environment, in generation order."""

    async def admit(self, head: RequestHead, request_id: str) -> HttpResponse | None: ...

    def update(self, access: AccessDocuments) -> None: ...

    async def close(self) -> None: ...


class AllowEveryRequest:
    """Admits everything: for a replica that runs no tenant code, and for tests of routing alone."""

    async def admit(self, head: RequestHead, request_id: str) -> HttpResponse | None:
        return None

    def update(self, access: AccessDocuments) -> None:
        pass

    async def close(self) -> None:
        pass


class FunctionLogSink(Protocol):
    """Where invocation logs go: ``append`` must not block (it runs on the request path)."""

    def start(self) -> None: ...

    def append(self, function: str, request_id: str, entries: Sequence[LogEntry]) -> None: ...

    async def close(self) -> None: ...
