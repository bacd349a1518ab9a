"""The domain exception tree, mapped to HTTP in exactly one place (``imprun.api.errors``).

    ImprunError                 code            status
    ├── Invalid                 invalid         422 (or 400 for bad code: ``status`` may be overridden)
    ├── Unauthorized            unauthorized    401
    ├── Forbidden               forbidden       403
    │   └── QuotaExceeded       quota_exceeded  403  (``details``: the quota's name, limit and use)
    ├── NotFound                not_found       404
    ├── Conflict                conflict        409
    ├── TooLarge                too_large       413
    ├── RateLimited             rate_limited    429  (carries ``retry_after`` seconds)
    ├── Timeout                 timeout         504
    ├── Unavailable             unavailable     503  (a dependency is down or busy; may carry ``retry_after``)
    ├── UpstreamFailed          unavailable     502  (an upstream service, e.g. an LLM provider, failed)
    └── Internal                internal        500

Lower layers translate third-party exceptions into these at their boundary (``raise Unavailable(...)
from exc``); routers never build HTTP errors for domain cases. Messages say what was wrong and what
to do about it, and never contain secrets.
"""

from __future__ import annotations

from typing import Any


class ImprunError(Exception):
    code = "internal"
    status = 500

    def __init__(self, message: str, *, details: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if status is not None:
            self.status = status

    def headers(self) -> dict[str, str]:
        """The HTTP headers an answer with this error carries (``Retry-After``, ``WWW-Authenticate``)."""
        return {}


class Invalid(ImprunError):
    code = "invalid"
    status = 422


class Unauthorized(ImprunError):
    code = "unauthorized"
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ImprunError):
    code = "forbidden"
    status = 403


class QuotaExceeded(Forbidden):
    """The request would take a user past one of their quotas (``IMPRUN_QUOTA_*``)."""

    code = "quota_exceeded"

    def __init__(self, message: str, *, quota: str, limit: float, used: float) -> None:
        super().__init__(message, details={"quota": quota, "limit": limit, "used": used})
        self.quota = quota


class NotFound(ImprunError):
    code = "not_found"
    status = 404


class Conflict(ImprunError):
    code = "conflict"
    status = 409


class TooLarge(ImprunError):
    code = "too_large"
    status = 413


class RateLimited(ImprunError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Timeout(ImprunError):
    code = "timeout"
    status = 504


class Unavailable(ImprunError):
    """A dependency (MongoDB, Redis, Ray) cannot be reached, or a bounded resource is busy, right now;
    retrying later may succeed (after ``retry_after`` seconds when it is known)."""

    code = "unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after: int | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = None if retry_after is None else max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class UpstreamFailed(ImprunError):
    """A service we call on the caller's behalf (an LLM provider) answered with an error."""

    code = "unavailable"
    status = 502


class Internal(ImprunError):
    code = "internal"
    status = 500
