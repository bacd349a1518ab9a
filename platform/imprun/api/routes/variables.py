"""``/v1/api-gateways/{gw}/environments/{env}/variables``: an environment's variables and secrets.

``GET …/variables`` lists them, ``GET …/variables/{name}`` shows one, ``PUT …/variables/{name}``
with ``{value: str, secret: bool = false}`` creates or replaces one (200, the masked view), and
``DELETE …/variables/{name}`` removes it (204). Every answer masks secrets the same way: a secret
variable reads ``{"name", "secret": true, "value": null, "masked": true, …}``; a plain one carries
its ``value`` and ``"masked": false``. Names are identifiers (``[A-Za-z_][A-Za-z0-9_]*``, ≤ 128
characters) and values at most 32 KiB, else 422. Functions read the values as ``imp.env``; a change
is live in the environment's replicas within milliseconds, without a restart.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from imprun.api.deps import CurrentUser, Variables

router = APIRouter(prefix="/v1/api-gateways", tags=["variables"])


class VariablePut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="The value, at most 32 KiB of UTF-8.")
    secret: bool = Field(default=False, description="A secret's value is never shown again (masked).")


class VariablePublic(BaseModel):
    name: str
    environment: str
    secret: bool
    value: str | None = Field(description="Null for a secret.")
    masked: bool = Field(description="True for a secret: its value is never shown.")
    updatedAt: datetime
    updatedBy: str


@router.get("/{gw}/environments/{env}/variables")
def list_variables(gw: str, env: str, user: CurrentUser, variables: Variables) -> list[VariablePublic]:
    return [VariablePublic.model_validate(v) for v in variables.list_variables(gw, env, user)]


@router.get("/{gw}/environments/{env}/variables/{name}")
def get_variable(gw: str, env: str, name: str, user: CurrentUser, variables: Variables) -> VariablePublic:
    return VariablePublic.model_validate(variables.get_variable(gw, env, name, user))


@router.put("/{gw}/environments/{env}/variables/{name}")
def put_variable(
    gw: str, env: str, name: str, body: VariablePut, user: CurrentUser, variables: Variables
) -> VariablePublic:
    stored = variables.set_variable(gw, env, name, value=body.value, secret=body.secret, user=user)
    return VariablePublic.model_validate(stored)


@router.delete("/{gw}/environments/{env}/variables/{name}", status_code=204, response_model=None)
def delete_variable(gw: str, env: str, name: str, user: CurrentUser, variables: Variables) -> Response:
    variables.delete_variable(gw, env, name, user)
    return Response(status_code=204)
