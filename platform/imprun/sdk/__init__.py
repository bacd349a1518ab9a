"""The imprun Python SDK: ``Client`` (sync, every route of docs/api.md), ``AsyncClient`` (logs, debug, calls).

    from imprun import Client
    client = Client()                                   # IMPRUN_URL / IMPRUN_TOKEN or `imprun login`
    fn = client.gateway("hometax").function("calculateTax")
    fn.save("def main(income: float):\\n    return {'tax': income * 0.22}\\n")
    fn.debug({"income": 100})                           # runs the draft in the dev sandbox
    fn.publish("dev"); fn.call({"income": 100})

The SDK talks HTTP only (httpx); it never imports the server's layers.
"""

from imprun.sdk.aio import AsyncClient
from imprun.sdk.client import Client
from imprun.sdk.connection import Connection, SavedLogin, resolve_connection
from imprun.sdk.errors import (
    ConflictError,
    ForbiddenError,
    ImprunAPIError,
    ImprunConnectionError,
    ImprunSDKError,
    InternalError,
    InvalidError,
    NotFoundError,
    NotLoggedInError,
    QuotaExceededError,
    RateLimitedError,
    RequestTimeoutError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
    WaitTimeoutError,
)
from imprun.sdk.fluent import EnvironmentHandle, FunctionHandle, GatewayHandle

__all__ = [
    "AsyncClient",
    "Client",
    "ConflictError",
    "Connection",
    "EnvironmentHandle",
    "ForbiddenError",
    "FunctionHandle",
    "GatewayHandle",
    "ImprunAPIError",
    "ImprunConnectionError",
    "ImprunSDKError",
    "InternalError",
    "InvalidError",
    "NotFoundError",
    "NotLoggedInError",
    "QuotaExceededError",
    "RateLimitedError",
    "RequestTimeoutError",
    "SavedLogin",
    "TooLargeError",
    "UnauthorizedError",
    "UnavailableError",
    "WaitTimeoutError",
    "resolve_connection",
]
