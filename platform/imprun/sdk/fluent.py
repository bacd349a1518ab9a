"""The fluent layer for the common path: ``client.gateway("hometax").function("calculateTax").publish("dev")``.

Handles hold names, not state: every method is one call of the ``Client`` underneath, so a handle
is cheap to make and never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from imprun.sdk.models import (
    CallResult,
    DebugResult,
    Deployment,
    Environment,
    Function,
    FunctionVersion,
    Gateway,
    GatewayEvent,
    LogEntry,
    PublishResult,
    Variable,
)

if TYPE_CHECKING:
    from imprun.sdk.client import Client


class GatewayHandle:
    def __init__(self, client: Client, gateway_id: str) -> None:
        self.client = client
        self.gateway_id = gateway_id

    def __repr__(self) -> str:
        return f"GatewayHandle({self.gateway_id!r})"

    def info(self) -> Gateway:
        return self.client.get_gateway(self.gateway_id)

    def wait_started(
        self, *, timeout: float = 300.0, on_change: Callable[[Gateway], None] | None = None
    ) -> Gateway:
        return self.client.wait_for_gateway(self.gateway_id, "Started", timeout=timeout, on_change=on_change)

    def events(self, *, limit: int | None = None) -> list[GatewayEvent]:
        return self.client.gateway_events(self.gateway_id, limit=limit)

    def start(self) -> Gateway:
        return self.client.start_gateway(self.gateway_id)

    def stop(self) -> Gateway:
        return self.client.stop_gateway(self.gateway_id)

    def delete(self) -> Gateway:
        return self.client.delete_gateway(self.gateway_id)

    def functions(self) -> list[Function]:
        return self.client.list_functions(self.gateway_id)

    def deployments(self, *, function: str | None = None) -> list[Deployment]:
        return self.client.list_deployments(self.gateway_id, function=function)

    def environment(self, name: str) -> EnvironmentHandle:
        return EnvironmentHandle(self, name)

    def function(self, name: str) -> FunctionHandle:
        return FunctionHandle(self, name)


class EnvironmentHandle:
    def __init__(self, gateway: GatewayHandle, name: str) -> None:
        self.client = gateway.client
        self.gateway_id = gateway.gateway_id
        self.name = name

    def __repr__(self) -> str:
        return f"EnvironmentHandle({self.gateway_id!r}, {self.name!r})"

    def info(self) -> Environment:
        return self.client.get_environment(self.gateway_id, self.name)

    def update(self, **changes: Any) -> Environment:
        """``auth_type=`` and/or ``rate_limit=`` as ``Client.update_environment``."""
        return self.client.update_environment(self.gateway_id, self.name, **changes)

    def variables(self) -> list[Variable]:
        return self.client.list_variables(self.gateway_id, self.name)

    def set_variable(self, name: str, value: str, *, secret: bool = False) -> Variable:
        return self.client.set_variable(self.gateway_id, self.name, name, value, secret=secret)

    def delete_variable(self, name: str) -> None:
        self.client.delete_variable(self.gateway_id, self.name, name)

    def logs(self, *, function: str | None = None, since: str | None = None) -> list[LogEntry]:
        return self.client.logs(self.gateway_id, self.name, function=function, since=since)

    def follow_logs(self, *, function: str | None = None, since: str | None = None) -> Iterator[LogEntry]:
        return self.client.follow_logs(self.gateway_id, self.name, function=function, since=since)


class FunctionHandle:
    def __init__(self, gateway: GatewayHandle, name: str) -> None:
        self.client = gateway.client
        self.gateway_id = gateway.gateway_id
        self.name = name

    def __repr__(self) -> str:
        return f"FunctionHandle({self.gateway_id!r}, {self.name!r})"

    def get(self) -> Function:
        return self.client.get_function(self.gateway_id, self.name)

    def save(self, code: str, *, changelog: str | None = None, description: str | None = None) -> Function:
        """Create the function or save a new draft version of it."""
        return self.client.save_function(
            self.gateway_id, self.name, code, changelog=changelog, description=description
        )

    def delete(self) -> dict[str, Any]:
        return self.client.delete_function(self.gateway_id, self.name)

    def publish(self, environment: str = "dev") -> PublishResult:
        return self.client.publish_function(self.gateway_id, self.name, environment)

    def promote(self, target_stage: str, *, from_: str | None = None) -> PublishResult:
        return self.client.deploy_to_stage(self.gateway_id, self.name, target_stage, from_=from_)

    def debug(
        self,
        body: Any = None,
        *,
        code: str | None = None,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> DebugResult:
        return self.client.debug_function(
            self.gateway_id, self.name, code=code, method=method, query=query, headers=headers, body=body
        )

    def history(self, *, limit: int | None = None, include_code: bool = False) -> list[FunctionVersion]:
        return self.client.function_history(
            self.gateway_id, self.name, limit=limit, include_code=include_code
        )

    def deployments(self) -> list[Deployment]:
        return self.client.list_deployments(self.gateway_id, function=self.name)

    def call(
        self,
        body: Any = None,
        *,
        env: str = "dev",
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        check: bool = True,
        wait_live: float = 10.0,
    ) -> CallResult:
        """Call the function as published in ``env``; up to ``wait_live`` s for a fresh publish, key or auth change."""
        return self.client.call(
            self.gateway_id,
            env,
            self.name,
            body,
            method=method,
            query=query,
            headers=headers,
            api_key=api_key,
            check=check,
            wait_live=wait_live,
        )
