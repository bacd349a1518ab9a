"""Environment variables and secrets: what ``/v1/api-gateways/{gw}/environments/{env}/variables`` does.

``VariableService`` checks ownership and the environment through ``GatewayCommands`` (another
user's gateway is not found), validates names and values (``imprun.domain.variables``), seals every
value with the ``VariableCipher`` (plain values too: nothing is stored in clear) and writes through
``VariableRepository``, whose generation bump hot-reloads the environment's replicas, where functions
read the values as ``imp.env``. Answers are the masked public view: a secret's value is never
returned, not even right after it is set. Variables belong to one environment; promotion does not
copy them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from imprun.domain.phases import DesiredState, Phase
from imprun.domain.variables import (
    MAX_VARIABLES_PER_ENVIRONMENT,
    VariableInfo,
    validate_variable_name,
    validate_variable_value,
)
from imprun.errors import Conflict, NotFound, QuotaExceeded
from imprun.lifecycle.commands import GatewayCommands
from imprun.security.variables import SealedValue, VariableCipher
from imprun.store.users import UserRecord
from imprun.store.variables import StoredVariable, VariableRepository

__all__ = ["VariableService"]


class VariableService:
    def __init__(
        self,
        *,
        gateways: GatewayCommands,
        variables: VariableRepository,
        cipher: VariableCipher,
        clock: Callable[[], datetime],
        max_variables: int = MAX_VARIABLES_PER_ENVIRONMENT,
    ) -> None:
        self._gateways = gateways
        self._variables = variables
        self._cipher = cipher
        self._clock = clock
        self._max_variables = max_variables

    def ensure_indexes(self) -> None:
        self._variables.ensure_indexes()

    def list_variables(self, gateway_id: str, environment: str, user: UserRecord) -> list[dict[str, Any]]:
        gw, env = self._place(gateway_id, environment, user)
        return [self._public(v) for v in self._variables.of_environment(gw, env)]

    def get_variable(self, gateway_id: str, environment: str, name: str, user: UserRecord) -> dict[str, Any]:
        gw, env = self._place(gateway_id, environment, user)
        return self._public(self._existing(gw, env, validate_variable_name(name)))

    def set_variable(
        self, gateway_id: str, environment: str, name: str, *, value: str, secret: bool, user: UserRecord
    ) -> dict[str, Any]:
        """Create or replace a variable; the answer is masked like every other."""
        gw, env = self._place(gateway_id, environment, user, writing=True)
        validate_variable_name(name)
        validate_variable_value(value)
        if self._variables.get(gw, env, name) is None:
            used = self._variables.count(gw, env)
            if used >= self._max_variables:
                raise QuotaExceeded(
                    f"{gw}/{env} already has {used} of your {self._max_variables} variables per "
                    "environment; delete one first or ask the operator for a higher quota",
                    quota="variables per environment",
                    limit=self._max_variables,
                    used=used,
                )
        sealed = self._cipher.seal(value, gateway_id=gw, environment=env, name=name)
        info = VariableInfo(gw, env, name, secret, self._clock(), user.id)
        self._variables.put(StoredVariable(info, sealed.version, sealed.nonce, sealed.ciphertext))
        return info.public(value)

    def delete_variable(self, gateway_id: str, environment: str, name: str, user: UserRecord) -> None:
        gw, env = self._place(gateway_id, environment, user, writing=True)
        if not self._variables.delete(gw, env, validate_variable_name(name)):
            raise NotFound(self._missing(gw, env, name))

    def forget_gateway(self, gateway_id: str) -> None:
        """Remove a deleted gateway's variables (a re-created gateway of the same id starts empty)."""
        self._variables.delete_of_gateway(gateway_id)

    def _place(
        self, gateway_id: str, environment: str, user: UserRecord, *, writing: bool = False
    ) -> tuple[str, str]:
        gateway = self._gateways.get_owned(gateway_id, user.id)
        if writing and (
            gateway.state is DesiredState.DELETED or gateway.phase in (Phase.DELETING, Phase.DELETED)
        ):
            raise Conflict(
                f"gateway {gateway.gateway_id} is being deleted; its variables can no longer change"
            )
        return gateway.gateway_id, self._gateways.get_environment(gateway, environment).name

    def _existing(self, gw: str, env: str, name: str) -> StoredVariable:
        found = self._variables.get(gw, env, name)
        if found is None:
            raise NotFound(self._missing(gw, env, name))
        return found

    @staticmethod
    def _missing(gw: str, env: str, name: str) -> str:
        return (
            f"no variable {name!r} in {gw}/{env}; list them with "
            f"GET /v1/api-gateways/{gw}/environments/{env}/variables"
        )

    def _public(self, variable: StoredVariable) -> dict[str, Any]:
        info = variable.info
        if info.secret:
            return info.public(None)
        sealed = SealedValue(variable.key_version, variable.nonce, variable.ciphertext)
        return info.public(
            self._cipher.open(
                sealed, gateway_id=info.gateway_id, environment=info.environment, name=info.name
            )
        )
