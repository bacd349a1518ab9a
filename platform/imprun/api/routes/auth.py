"""``/v1/auth``: register, login (throttled per username and client IP), me."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from imprun.api.deps import CurrentUser, Plane
from imprun.errors import RateLimited, Unauthorized
from imprun.security.passwords import (
    DUMMY_HASH,
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from imprun.security.tokens import new_session_token

router = APIRouter(prefix="/v1/auth", tags=["auth"])

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"


class RegisterRequest(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="3 to 64 letters, digits, '_', '.', '-'")
    password: str = Field(min_length=1, max_length=1024)


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserPublic(BaseModel):
    id: str
    username: str


class LoginResponse(BaseModel):
    token: str
    expiresAt: datetime


@router.post("/register", status_code=201)
def register(body: RegisterRequest, plane: Plane) -> UserPublic:
    check_password_policy(body.password, username=body.username)
    user = plane.users.create(body.username, hash_password(body.password))
    return UserPublic(id=user.id, username=user.username)


@router.post("/login")
def login(body: LoginRequest, request: Request, plane: Plane) -> LoginResponse:
    client_ip = request.client.host if request.client else "unknown"
    wait = max(
        plane.login_failures_by_user.retry_after(body.username),
        plane.login_failures_by_ip.retry_after(client_ip),
    )
    if wait:
        raise RateLimited(f"too many failed logins; try again in {wait} s", retry_after=wait)
    user = plane.users.by_username(body.username)
    ok = verify_password(user.password_hash if user else DUMMY_HASH, body.password)
    if user is None or not ok:
        plane.login_failures_by_user.record_failure(body.username)
        plane.login_failures_by_ip.record_failure(client_ip)
        raise Unauthorized("wrong username or password")
    plane.login_failures_by_user.reset(body.username)
    if needs_rehash(user.password_hash):
        plane.users.set_password_hash(user.id, hash_password(body.password))
    token = new_session_token()
    session = plane.sessions.create(token, user.id)
    return LoginResponse(token=token, expiresAt=session.expires_at)


@router.get("/me")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic(id=user.id, username=user.username)
