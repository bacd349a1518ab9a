"""What the sync ``Client`` and the ``AsyncClient`` share: connection, request building, answers.

Both clients execute the same ``Spec``s through one seam — ``request_args`` builds the arguments of
an httpx request, ``answer`` turns the response into the spec's value or the typed error — and differ
only in whether they ``await`` the request. Each holds the environment base URLs it has looked up, so a
data-plane ``call`` asks the control plane for an environment's URL once, not on every call.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from imprun.sdk import _http, routes
from imprun.sdk._http import Spec, segment
from imprun.sdk.connection import Connection, resolve_connection
from imprun.sdk.errors import ImprunConnectionError, NotLoggedInError
from imprun.sdk.models import Environment

T = TypeVar("T")
DEFAULT_DATA_PLANE_URL = "http://127.0.0.1:8000"


class ClientBase:
    def __init__(
        self,
        url: str | None,
        token: str | None,
        *,
        data_plane_url: str | None,
        api_key: str | None,
        timeout: float,
    ) -> None:
        self.connection: Connection = resolve_connection(
            url, token, data_plane_url=data_plane_url, api_key=api_key, timeout=timeout
        )
        self.token = self.connection.token
        self._environment_urls: dict[tuple[str, str], str] = {}

    @property
    def url(self) -> str:
        return self.connection.url

    def _headers(self, spec: Spec[Any]) -> dict[str, str]:
        if not spec.auth:
            return {}
        if not self.token:
            raise NotLoggedInError(self.url)
        return {"Authorization": f"Bearer {self.token}"}

    def _request_args(self, spec: Spec[Any]) -> dict[str, Any]:
        """The keyword arguments of httpx's ``request`` for ``spec`` (raises before sending when the
        route needs a login and there is none)."""
        return {
            "method": spec.method,
            "url": spec.path,
            "json": spec.json,
            "params": spec.params or None,
            "headers": self._headers(spec),
        }

    def _failed(self, exc: httpx.TransportError, spec: Spec[Any]) -> ImprunConnectionError:
        return _http.connection_error(exc, self.url + spec.path)

    @staticmethod
    def _answer(spec: Spec[T], response: httpx.Response) -> T:
        _http.raise_for_error(response)
        return spec.parse(response.text if spec.raw_text else _http.decode(response))

    # ---- the data plane's address --------------------------------------------------------------

    def _known_base(self, gw: str, env: str) -> str | None:
        """The environment's base URL without asking: configured, or looked up before; else None."""
        if self.connection.data_plane_url:
            return f"{self.connection.data_plane_url}/{segment(gw)}/{segment(env)}"
        return self._environment_urls.get((gw, env))

    def _environment_spec(self, gw: str, env: str) -> Spec[Environment] | None:
        """The lookup of the environment's URL, or None when it cannot be asked (not logged in)."""
        if not self.token:
            return None
        return Spec("GET", routes.environment_path(gw, env), Environment.model_validate)

    def _remember_base(self, gw: str, env: str, reported: str | None) -> str:
        base = (reported or f"{DEFAULT_DATA_PLANE_URL}/{segment(gw)}/{segment(env)}").rstrip("/")
        self._environment_urls[(gw, env)] = base
        return base
