"""The SDK's exception tree: what a caller of ``imprun.Client`` catches.

    ImprunSDKError                      anything the SDK raises on purpose
    ├── ImprunConnectionError           the server could not be reached (names the URL tried)
    ├── NotLoggedInError                no token for a route that needs one
    └── ImprunAPIError                  the server answered an error (``code``, ``message``, ``details``,
        │                               ``status``, ``request_id``); one subclass per docs/api.md code:
        ├── InvalidError                invalid           400 / 422 (bad code: ``details`` has line/column)
        ├── UnauthorizedError           unauthorized      401
        ├── ForbiddenError              forbidden         403
        ├── NotFoundError               not_found         404
        ├── ConflictError               conflict          409
        ├── TooLargeError               too_large         413
        ├── RateLimitedError            rate_limited      429 (``retry_after`` seconds when sent)
        ├── UnavailableError            unavailable       503
        ├── RequestTimeoutError         timeout           504
        └── InternalError               internal          500 (quote ``request_id`` when reporting it)

``api_error(...)`` picks the class from the error code (falling back to the HTTP status), so the
server's shape ``{"error": {"code", "message", "details"?, "requestId"?}}`` becomes one typed
exception in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ImprunSDKError(Exception):
    """Base of every exception the SDK raises on purpose."""


class ImprunConnectionError(ImprunSDKError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class NotLoggedInError(ImprunSDKError):
    def __init__(self, url: str) -> None:
        super().__init__(f"not logged in to {url}: run `imprun login` or set IMPRUN_TOKEN")
        self.url = url


class ImprunAPIError(ImprunSDKError):
    code: ClassVar[str] = "internal"
    default_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        status: int,
        details: Any = None,
        request_id: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after
        if code is not None:
            self.code = code  # type: ignore[misc]

    def __str__(self) -> str:
        text = f"{self.code} ({self.status}): {self.message}"
        return f"{text} [requestId {self.request_id}]" if self.request_id else text


class InvalidError(ImprunAPIError):
    code = "invalid"
    default_status = 422


class UnauthorizedError(ImprunAPIError):
    code = "unauthorized"
    default_status = 401


class ForbiddenError(ImprunAPIError):
    code = "forbidden"
    default_status = 403


class NotFoundError(ImprunAPIError):
    code = "not_found"
    default_status = 404


class ConflictError(ImprunAPIError):
    code = "conflict"
    default_status = 409


class TooLargeError(ImprunAPIError):
    code = "too_large"
    default_status = 413


class RateLimitedError(ImprunAPIError):
    code = "rate_limited"
    default_status = 429


class UnavailableError(ImprunAPIError):
    code = "unavailable"
    default_status = 503


class RequestTimeoutError(ImprunAPIError):
    code = "timeout"
    default_status = 504


class InternalError(ImprunAPIError):
    code = "internal"
    default_status = 500


class QuotaExceededError(ForbiddenError):
    """Past one of the user's quotas: ``details`` is ``{quota, limit, used}``."""

    code = "quota_exceeded"

    @property
    def quota(self) -> str | None:
        return self.details.get("quota") if isinstance(self.details, dict) else None


_BY_CODE: dict[str, type[ImprunAPIError]] = {cls.code: cls for cls in ImprunAPIError.__subclasses__()}
_BY_STATUS: dict[int, type[ImprunAPIError]] = {cls.default_status: cls for cls in _BY_CODE.values()}
_BY_CODE[QuotaExceededError.code] = QuotaExceededError


def api_error(status: int, payload: Any, *, retry_after: int | None = None) -> ImprunAPIError:
    """The typed exception for an error response: ``payload`` is the decoded body (or its text)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        text = payload if isinstance(payload, str) else ""
        error = {"message": text.strip()[:500] or f"HTTP {status} without an error body"}
    fallback = _BY_STATUS.get(status, InternalError if status >= 500 else InvalidError)
    cls = _BY_CODE.get(str(error.get("code")), fallback)
    return cls(
        str(error.get("message", "")),
        status=status,
        details=error.get("details"),
        request_id=error.get("requestId"),
        code=str(error.get("code") or cls.code),
        retry_after=retry_after,
    )


class WaitTimeoutError(ImprunSDKError):
    """A wait (e.g. for a gateway to reach ``Started``) passed its deadline; ``last`` is what was seen."""

    def __init__(self, message: str, last: Any = None) -> None:
        super().__init__(message)
        self.last = last
