"""``GET /v1/runtime/definitions``: what tenant code can import, for editors' completions and hovers.

The catalogue (``imprun.functions.definitions``) is derived from the runtime's ``imp`` module and
its import allow-list, so it names exactly what the worker offers. It changes only with a release;
the answer may be cached by the client for the session.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from imprun.api.deps import CurrentUser
from imprun.functions.definitions import importable_definitions

router = APIRouter(prefix="/v1/runtime", tags=["runtime"])


class DefinitionPublic(BaseModel):
    name: str
    kind: Literal["function", "class", "method", "property", "value", "module"]
    signature: str
    doc: str
    members: list[DefinitionPublic] = []


class ModuleDefinitionsPublic(BaseModel):
    module: str
    doc: str
    members: list[DefinitionPublic]


class RuntimeDefinitions(BaseModel):
    modules: list[ModuleDefinitionsPublic]


@router.get("/definitions")
def runtime_definitions(user: CurrentUser, response: Response) -> RuntimeDefinitions:
    response.headers["Cache-Control"] = "private, max-age=3600"
    return RuntimeDefinitions.model_validate({"modules": [asdict(m) for m in importable_definitions()]})
