"""Environment variables as the API sees them: valid names, value limits and the masked public view.

A variable belongs to one environment of one gateway (promotion never copies it). Its name is a
Python-style identifier (``[A-Za-z_][A-Za-z0-9_]*``, at most ``MAX_NAME_LENGTH`` characters) so that
``imp.env["NAME"]`` reads naturally; its value is text of at most ``MAX_VALUE_BYTES`` UTF-8 bytes;
an environment holds at most ``MAX_VARIABLES_PER_ENVIRONMENT``. A **secret** variable is never
shown again once set: its public view has ``"value": null, "masked": true``; a plain one shows its
value with ``"masked": false``. Pure functions and values, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from imprun.errors import Invalid

MAX_NAME_LENGTH: Final = 128
MAX_VALUE_BYTES: Final = 32 * 1024
MAX_VARIABLES_PER_ENVIRONMENT: Final = 100
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate_variable_name(name: str) -> str:
    """``name`` if it is an identifier of at most 128 characters, else ``Invalid`` (422) saying why."""
    if len(name) > MAX_NAME_LENGTH:
        problem = f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    elif not _NAME.fullmatch(name):
        problem = (
            "is not an identifier: use letters, digits and '_', not starting with a digit (e.g. API_TOKEN)"
        )
    else:
        return name
    raise Invalid(
        f"Invalid variable name {name[:MAX_NAME_LENGTH]!r}: it {problem}.",
        details=[{"loc": ["path", "name"], "msg": problem}],
    )


def validate_variable_value(value: str) -> str:
    size = len(value.encode())
    if size > MAX_VALUE_BYTES:
        raise Invalid(
            f"The value is {size} bytes; a variable holds at most {MAX_VALUE_BYTES} bytes.",
            details=[{"loc": ["body", "value"], "msg": f"longer than {MAX_VALUE_BYTES} bytes"}],
        )
    return value


@dataclass(frozen=True, slots=True)
class VariableInfo:
    """What may be said about a variable without its value."""

    gateway_id: str
    environment: str
    name: str
    secret: bool
    updated_at: datetime
    updated_by: str

    def public(self, value: str | None) -> dict[str, Any]:
        """The API view: a secret's value is always ``None`` and ``masked`` true, whatever is passed."""
        return {
            "name": self.name,
            "environment": self.environment,
            "secret": self.secret,
            "value": None if self.secret else value,
            "masked": self.secret,
            "updatedAt": self.updated_at,
            "updatedBy": self.updated_by,
        }
