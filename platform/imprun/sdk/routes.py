"""Paths and request specs shared by the sync ``Client`` and the ``AsyncClient``.

Only what both clients send lives here (auth, debug-run, logs) together with the path builders;
each path segment is percent-encoded except a function name's ``/`` (nested names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imprun.sdk._http import Spec, compact, function_path, log_entries, segment
from imprun.sdk.models import DebugResult, Invite, IssuedInvite, LogEntry, LoginResult, User, Variable

MCP_TOOLS = "/v1/ai-gateway/mcp-tools"


def environment_path(gw: str, env: str) -> str:
    return f"/v1/api-gateways/{segment(gw)}/environments/{segment(env)}"


def variables_path(gw: str, env: str, name: str | None = None) -> str:
    base = environment_path(gw, env) + "/variables"
    return f"{base}/{segment(name)}" if name is not None else base


def functions_path(gw: str) -> str:
    return f"/v1/api-gateways/{segment(gw)}/functions"


def function_path_of(gw: str, fn: str) -> str:
    return f"{functions_path(gw)}/{function_path(fn)}"


def register(username: str, password: str, invite: str | None = None) -> Spec[User]:
    body = compact(username=username, password=password, invite=invite)
    return Spec("POST", "/v1/auth/register", User.model_validate, json=body, auth=False)


def login(username: str, password: str) -> Spec[LoginResult]:
    body = {"username": username, "password": password}
    return Spec("POST", "/v1/auth/login", LoginResult.model_validate, json=body, auth=False)


def me() -> Spec[User]:
    return Spec("GET", "/v1/auth/me", User.model_validate)


def logout() -> Spec[None]:
    return Spec("POST", "/v1/auth/logout", lambda _: None)


def end_sessions() -> Spec[int]:
    return Spec("DELETE", "/v1/auth/sessions", lambda body: int(body["ended"]))


def change_password(current: str, new: str) -> Spec[int]:
    body = {"currentPassword": current, "newPassword": new}
    return Spec("POST", "/v1/auth/password", lambda answer: int(answer["ended"]), json=body)


def registration_mode() -> Spec[str]:
    return Spec("GET", "/v1/auth/registration", lambda body: str(body["mode"]), auth=False)


def create_invite() -> Spec[IssuedInvite]:
    return Spec("POST", "/v1/auth/invites", IssuedInvite.model_validate)


def list_invites() -> Spec[list[Invite]]:
    return Spec("GET", "/v1/auth/invites", lambda body: [Invite.model_validate(i) for i in body])


def delete_invite(invite_id: str) -> Spec[None]:
    return Spec("DELETE", f"/v1/auth/invites/{segment(invite_id)}", lambda _: None)


def debug(
    gw: str,
    fn: str,
    *,
    code: str | None,
    method: str,
    query: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    body: Any,
) -> Spec[DebugResult]:
    payload = compact(
        code=code,
        method=method.upper(),
        query=dict(query) if query else None,
        headers=dict(headers) if headers else None,
        body=body,
    )
    return Spec("POST", function_path_of(gw, fn) + "/debug", DebugResult.model_validate, json=payload)


def logs(
    gw: str,
    env: str,
    *,
    function: str | None,
    since: str | None,
    limit: int | None = None,
    follow: bool = False,
) -> Spec[list[LogEntry]]:
    """``since``: an ISO-8601 time or an age such as ``5m``; ``limit``: the newest N entries."""
    params = compact(function=function, since=since, limit=limit, follow="true" if follow else None)
    return Spec("GET", environment_path(gw, env) + "/logs", log_entries, params=params)


def parse_variable(payload: Any, name: str) -> Variable:
    data = dict(payload) if isinstance(payload, dict) else {"value": payload}
    data.setdefault("name", name)
    return Variable.model_validate(data)


def parse_variables(payload: Any) -> list[Variable]:
    """A list of ``{name, value, secret}``, ``{"variables": [...]}``, or a ``{name: {value, secret}}`` map."""
    if isinstance(payload, dict) and isinstance(payload.get("variables"), list):
        payload = payload["variables"]
    if isinstance(payload, dict):
        return [parse_variable(v, k) for k, v in payload.items()]
    return [Variable.model_validate(item) for item in payload or []]
