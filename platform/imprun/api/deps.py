"""FastAPI dependencies: the control plane and the authenticated user, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from imprun.api.context import ControlPlane
from imprun.errors import Unauthorized
from imprun.security.client_address import client_address
from imprun.store.users import UserRecord


def get_plane(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.plane
    return plane


Plane = Annotated[ControlPlane, Depends(get_plane)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "missing bearer token: send `Authorization: Bearer <token>` from POST /v1/auth/login"
        )
    return token.strip()


BearerToken = Annotated[str, Depends(bearer_token)]


def current_user(plane: Plane, token: BearerToken) -> UserRecord:
    user_id = plane.sessions.resolve(token)
    user = plane.users.by_id(user_id) if user_id else None
    if user is None:
        raise Unauthorized("the token is invalid or expired; log in again with POST /v1/auth/login")
    return user


CurrentUser = Annotated[UserRecord, Depends(current_user)]


def request_client(request: Request, plane: Plane) -> str:
    """The caller's address: the peer, or what trusted proxies say it is (``IMPRUN_TRUSTED_PROXIES``)."""
    peer = request.client.host if request.client else "unknown"
    return client_address(peer, request.headers.getlist("x-forwarded-for"), plane.trusted_proxies)


ClientAddress = Annotated[str, Depends(request_client)]
