"""``imprun.Client``: every control-plane route of docs/api.md as a typed method, plus data-plane calls.

Methods are named for what they do (``create_gateway``, ``publish_function``, ``create_grant``) and
return the models of ``imprun.sdk.models``; errors are raised as the ``ImprunAPIError`` subclasses
of ``imprun.sdk.errors``. ``client.gateway("hometax")`` opens the fluent layer
(``imprun.sdk.fluent``). Connection settings come from the arguments, then ``IMPRUN_*`` variables,
then the CLI's saved login (``imprun.sdk.connection``). The client is a context manager and holds
one ``httpx.Client`` for the control plane and one for the data plane.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from imprun.sdk import _http, routes
from imprun.sdk._base import DEFAULT_DATA_PLANE_URL, ClientBase
from imprun.sdk._http import Spec, StreamEnd, compact, segment
from imprun.sdk.errors import NotFoundError, WaitTimeoutError
from imprun.sdk.models import (
    Application,
    CallResult,
    ChatResult,
    DebugResult,
    Deployment,
    Environment,
    Function,
    FunctionVersion,
    Gateway,
    GatewayEvent,
    Grant,
    Invite,
    IssuedInvite,
    IssuedKey,
    LlmUsage,
    LogEntry,
    LoginResult,
    McpTool,
    PublishResult,
    User,
    Variable,
)

if TYPE_CHECKING:
    from imprun.sdk.fluent import GatewayHandle

T = TypeVar("T")
UNSET: Any = object()


def _many(model: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    return lambda payload: [model(item) for item in payload or []]


class Client(ClientBase):
    """A synchronous imprun client; ``Client()`` connects as the environment and saved login say."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        data_plane_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, data_plane_url=data_plane_url, api_key=api_key, timeout=timeout)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        self._data = httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._data.close()

    def __repr__(self) -> str:
        return f"Client(url={self.url!r}, logged_in={self.token is not None})"

    # ---- the seam --------------------------------------------------------------------------------

    def run(self, spec: Spec[T]) -> T:
        """Send one request spec and parse its answer (the methods below all come through here)."""
        request = self._request_args(spec)
        try:
            response = self._http.request(**request)
        except httpx.TransportError as exc:
            raise self._failed(exc, spec) from exc
        return self._answer(spec, response)

    # ---- auth and health -------------------------------------------------------------------------

    def register(self, username: str, password: str, *, invite: str | None = None) -> User:
        """Create an account (``invite``: an admin's code, when registration is by invite)."""
        return self.run(routes.register(username, password, invite))

    def login(self, username: str, password: str) -> LoginResult:
        """Log in and use the new token for the following calls."""
        result = self.run(routes.login(username, password))
        self.token = result.token
        return result

    def me(self) -> User:
        return self.run(routes.me())

    def logout(self) -> None:
        """End this client's session on the server."""
        self.run(routes.logout())
        self.token = None

    def end_sessions(self) -> int:
        """End every session of the logged-in user, this one included; how many ended."""
        ended = self.run(routes.end_sessions())
        self.token = None
        return ended

    def change_password(self, current: str, new: str) -> int:
        """Set a new password; the user's other sessions end (how many is returned), this one stays."""
        return self.run(routes.change_password(current, new))

    def registration_mode(self) -> str:
        """``open``, ``invite`` or ``closed``."""
        return self.run(routes.registration_mode())

    def create_invite(self) -> IssuedInvite:
        """A one-time registration invite (admins only); its code is shown only now."""
        return self.run(routes.create_invite())

    def list_invites(self) -> list[Invite]:
        return self.run(routes.list_invites())

    def delete_invite(self, invite_id: str) -> None:
        self.run(routes.delete_invite(invite_id))

    def healthz(self) -> dict[str, Any]:
        return self.run(Spec("GET", "/healthz", auth=False))

    def readyz(self) -> dict[str, Any]:
        return self.run(Spec("GET", "/readyz", auth=False))

    def metrics(self) -> str:
        return self.run(Spec("GET", "/metrics", str, auth=False, raw_text=True))

    # ---- gateways and environments ---------------------------------------------------------------

    def create_gateway(
        self, name: str, *, gateway_id: str | None = None, bundle: Mapping[str, Any] | None = None
    ) -> Gateway:
        body = compact(name=name, gatewayId=gateway_id, bundle=dict(bundle) if bundle else None)
        return self.run(Spec("POST", "/v1/api-gateways", Gateway.model_validate, json=body))

    def list_gateways(self) -> list[Gateway]:
        return self.run(Spec("GET", "/v1/api-gateways", _many(Gateway.model_validate)))

    def get_gateway(self, gw: str) -> Gateway:
        return self.run(Spec("GET", f"/v1/api-gateways/{segment(gw)}", Gateway.model_validate))

    def update_gateway(
        self, gw: str, *, state: str | None = None, promotion_pipeline: Mapping[str, Any] | None = None
    ) -> Gateway:
        body = compact(
            state=state, promotionPipeline=dict(promotion_pipeline) if promotion_pipeline else None
        )
        return self.run(Spec("PATCH", f"/v1/api-gateways/{segment(gw)}", Gateway.model_validate, json=body))

    def start_gateway(self, gw: str) -> Gateway:
        return self.update_gateway(gw, state="Running")

    def stop_gateway(self, gw: str) -> Gateway:
        return self.update_gateway(gw, state="Stopped")

    def delete_gateway(self, gw: str) -> Gateway:
        return self.run(Spec("DELETE", f"/v1/api-gateways/{segment(gw)}", Gateway.model_validate))

    def gateway_events(self, gw: str, *, limit: int | None = None) -> list[GatewayEvent]:
        path = f"/v1/api-gateways/{segment(gw)}/events"
        return self.run(Spec("GET", path, _many(GatewayEvent.model_validate), params=compact(limit=limit)))

    def wait_for_gateway(
        self,
        gw: str,
        phase: str = "Started",
        *,
        timeout: float = 300.0,
        interval: float = 0.5,
        on_change: Callable[[Gateway], None] | None = None,
    ) -> Gateway:
        """Poll until the gateway reaches ``phase``; ``on_change`` sees each new phase, and each change
        of its or its environments' Failed conditions (``Gateway.failures``), on the way."""
        deadline = time.monotonic() + timeout
        seen: tuple[str, list[tuple[str, str, str]]] | None = None
        while True:
            gateway = self.get_gateway(gw)
            state = (gateway.phase, gateway.failures())
            if state != seen and on_change is not None:
                on_change(gateway)
            seen = state
            if gateway.phase == phase:
                return gateway
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"gateway {gw!r} did not reach {phase} within {timeout:g} s (phase: {gateway.phase})",
                    gateway,
                )
            time.sleep(interval)

    def list_environments(self, gw: str) -> list[Environment]:
        path = f"/v1/api-gateways/{segment(gw)}/environments"
        return self.run(Spec("GET", path, _many(Environment.model_validate)))

    def get_environment(self, gw: str, env: str) -> Environment:
        return self.run(Spec("GET", routes.environment_path(gw, env), Environment.model_validate))

    def update_environment(
        self, gw: str, env: str, *, auth_type: str | None = None, rate_limit: Any = UNSET
    ) -> Environment:
        """``rate_limit``: ``{"count", "windowSeconds"}``, or None to remove it; omitted leaves it."""
        body = compact(authType=auth_type)
        if rate_limit is not UNSET:
            body["rateLimit"] = dict(rate_limit) if rate_limit is not None else None
        path = routes.environment_path(gw, env)
        return self.run(Spec("PATCH", path, Environment.model_validate, json=body))

    # ---- environment variables -------------------------------------------------------------------

    def list_variables(self, gw: str, env: str) -> list[Variable]:
        return self.run(Spec("GET", routes.variables_path(gw, env), routes.parse_variables))

    def get_variable(self, gw: str, env: str, name: str) -> Variable:
        path = routes.variables_path(gw, env, name)
        return self.run(Spec("GET", path, lambda p: routes.parse_variable(p, name)))

    def set_variable(self, gw: str, env: str, name: str, value: str, *, secret: bool = False) -> Variable:
        path = routes.variables_path(gw, env, name)
        body = {"value": value, "secret": secret}
        return self.run(Spec("PUT", path, lambda p: routes.parse_variable(p, name), json=body))

    def delete_variable(self, gw: str, env: str, name: str) -> None:
        self.run(Spec("DELETE", routes.variables_path(gw, env, name), lambda _: None))

    # ---- live logs -------------------------------------------------------------------------------

    def logs(
        self,
        gw: str,
        env: str,
        *,
        function: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        return self.run(routes.logs(gw, env, function=function, since=since, limit=limit))

    def follow_logs(
        self,
        gw: str,
        env: str,
        *,
        function: str | None = None,
        since: str | None = None,
        limit: int | None = None,
        on_end: Callable[[str], None] | None = None,
    ) -> Iterator[LogEntry]:
        """Yield log entries as they are written (Server-Sent Events) until the server ends the stream."""
        spec = routes.logs(gw, env, function=function, since=since, limit=limit, follow=True)
        headers = {**self._headers(spec), "Accept": "text/event-stream"}
        decoder = _http.SseDecoder()
        try:
            with self._http.stream(
                "GET", spec.path, params=spec.params, headers=headers, timeout=httpx.Timeout(None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _http.raise_for_error(response)
                for line in response.iter_lines():
                    item = decoder.log_item(line)
                    if isinstance(item, StreamEnd):
                        if on_end is not None:
                            on_end(item.message)
                        return
                    if item is not None:
                        yield item
        except httpx.TransportError as exc:
            raise self._failed(exc, spec) from exc

    # ---- functions -------------------------------------------------------------------------------

    def create_function(
        self,
        gw: str,
        name: str,
        code: str,
        *,
        description: str | None = None,
        methods: list[str] | None = None,
        timeout_seconds: float | None = None,
    ) -> Function:
        body = compact(
            name=name, code=code, description=description, methods=methods, timeoutSeconds=timeout_seconds
        )
        return self.run(Spec("POST", routes.functions_path(gw), Function.model_validate, json=body))

    def list_functions(self, gw: str) -> list[Function]:
        return self.run(Spec("GET", routes.functions_path(gw), _many(Function.model_validate)))

    def get_function(self, gw: str, fn: str) -> Function:
        return self.run(Spec("GET", routes.function_path_of(gw, fn), Function.model_validate))

    def update_function(
        self,
        gw: str,
        fn: str,
        *,
        code: str | None = None,
        description: str | None = None,
        methods: list[str] | None = None,
        timeout_seconds: float | None = None,
        changelog: str | None = None,
    ) -> Function:
        body = compact(
            code=code,
            description=description,
            methods=methods,
            timeoutSeconds=timeout_seconds,
            changelog=changelog,
        )
        return self.run(Spec("PATCH", routes.function_path_of(gw, fn), Function.model_validate, json=body))

    def save_function(
        self, gw: str, name: str, code: str, *, changelog: str | None = None, description: str | None = None
    ) -> Function:
        """Create the function, or save ``code`` as its new draft when it exists (what ``fn push`` does)."""
        try:
            current = self.get_function(gw, name)
        except NotFoundError:
            return self.create_function(gw, name, code, description=description)
        if current.code == code and description in (None, current.description):
            return current
        return self.update_function(gw, name, code=code, description=description, changelog=changelog)

    def delete_function(self, gw: str, fn: str) -> dict[str, Any]:
        return self.run(Spec("DELETE", routes.function_path_of(gw, fn)))

    def function_history(
        self, gw: str, fn: str, *, limit: int | None = None, include_code: bool = False
    ) -> list[FunctionVersion]:
        params = compact(limit=limit, includeCode="true" if include_code else None)
        path = routes.function_path_of(gw, fn) + "/history"
        return self.run(Spec("GET", path, _many(FunctionVersion.model_validate), params=params))

    def publish_function(self, gw: str, fn: str, environment: str) -> PublishResult:
        path = routes.function_path_of(gw, fn) + "/publish"
        return self.run(Spec("POST", path, PublishResult.model_validate, json={"environment": environment}))

    def deploy_to_stage(
        self, gw: str, fn: str, target_stage: str, *, from_: str | None = None
    ) -> PublishResult:
        """Promote: copy the version published in ``from_`` (default: the previous stage) to ``target_stage``."""
        path = routes.function_path_of(gw, fn) + "/deploy-to-stage"
        body = compact(targetStage=target_stage, **{"from": from_})
        return self.run(Spec("POST", path, PublishResult.model_validate, json=body))

    def debug_function(
        self,
        gw: str,
        fn: str,
        *,
        code: str | None = None,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> DebugResult:
        """Run the draft (or ``code``) in the dev sandbox without publishing it."""
        return self.run(
            routes.debug(gw, fn, code=code, method=method, query=query, headers=headers, body=body)
        )

    def list_deployments(
        self, gw: str, *, function: str | None = None, limit: int | None = None
    ) -> list[Deployment]:
        path = f"/v1/api-gateways/{segment(gw)}/deployments"
        params = compact(function=function, limit=limit)
        return self.run(Spec("GET", path, _many(Deployment.model_validate), params=params))

    # ---- applications and grants -----------------------------------------------------------------

    def create_application(
        self, name: str, *, description: str | None = None, organization: str | None = None
    ) -> Application:
        body = compact(name=name, description=description, organization=organization)
        return self.run(Spec("POST", "/v1/applications", Application.model_validate, json=body))

    def list_applications(self) -> list[Application]:
        return self.run(Spec("GET", "/v1/applications", _many(Application.model_validate)))

    def get_application(self, app: str) -> Application:
        return self.run(Spec("GET", f"/v1/applications/{segment(app)}", Application.model_validate))

    def llm_usage(self, app: str) -> LlmUsage:
        """The application's LLM calls and tokens through the AI gateway's chat this period."""
        path = f"/v1/applications/{segment(app)}/llm-usage"
        return self.run(Spec("GET", path, LlmUsage.model_validate))

    def update_application(
        self,
        app: str,
        *,
        name: str | None = None,
        description: str | None = None,
        organization: str | None = None,
    ) -> Application:
        body = compact(name=name, description=description, organization=organization)
        path = f"/v1/applications/{segment(app)}"
        return self.run(Spec("PATCH", path, Application.model_validate, json=body))

    def delete_application(self, app: str) -> dict[str, Any]:
        return self.run(Spec("DELETE", f"/v1/applications/{segment(app)}"))

    def create_grant(
        self, app: str, gateway_id: str, environment: str, *, rate_limit: Mapping[str, int] | None = None
    ) -> IssuedKey:
        """Grant the application access to one environment; the returned ``api_key`` is shown only now."""
        body = compact(gatewayId=gateway_id, environment=environment, rateLimit=rate_limit)
        path = f"/v1/applications/{segment(app)}/grants"
        return self.run(Spec("POST", path, IssuedKey.model_validate, json=body))

    def list_grants(self, app: str) -> list[Grant]:
        path = f"/v1/applications/{segment(app)}/grants"
        return self.run(Spec("GET", path, _many(Grant.model_validate)))

    def regenerate_key(self, app: str, grant: str) -> IssuedKey:
        path = f"/v1/applications/{segment(app)}/grants/{segment(grant)}/regenerate"
        return self.run(Spec("POST", path, IssuedKey.model_validate))

    def revoke_grant(self, app: str, grant: str) -> Grant:
        path = f"/v1/applications/{segment(app)}/grants/{segment(grant)}"
        return self.run(Spec("DELETE", path, Grant.model_validate))

    # ---- AI gateway management -------------------------------------------------------------------

    def create_mcp_tool(
        self,
        name: str,
        *,
        gateway_id: str,
        environment: str,
        function: str,
        description: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
    ) -> McpTool:
        body = compact(
            name=name,
            description=description,
            gatewayId=gateway_id,
            environment=environment,
            function=function,
            inputSchema=dict(input_schema) if input_schema else None,
        )
        return self.run(Spec("POST", routes.MCP_TOOLS, McpTool.model_validate, json=body))

    def ai_gateway_status(self) -> dict[str, Any]:
        """``GET /v1/ai-gateway``: whether the AI gateway runs, its provider and URLs."""
        return self.run(Spec("GET", "/v1/ai-gateway"))

    def list_mcp_tools(self) -> list[McpTool]:
        return self.run(Spec("GET", routes.MCP_TOOLS, _many(McpTool.model_validate)))

    def delete_mcp_tool(self, name: str) -> None:
        self.run(Spec("DELETE", f"{routes.MCP_TOOLS}/{segment(name)}", lambda _: None))

    # ---- data plane ------------------------------------------------------------------------------

    def data_plane_base(self, gw: str, env: str) -> str:
        """The environment's base URL: the configured data plane, else the ``url`` the API reports."""
        known = self._known_base(gw, env)
        if known is not None:
            return known
        lookup = self._environment_spec(gw, env)
        return self._remember_base(gw, env, self.run(lookup).url if lookup is not None else None)

    def call(
        self,
        gw: str,
        env: str,
        fn: str,
        body: Any = None,
        *,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        check: bool = True,
        wait_live: float = 0.0,
    ) -> CallResult:
        """Call a published function over the data plane; with ``check`` an error status raises.

        Publishing, switching an environment's auth type and issuing a key reach the replicas within
        milliseconds but asynchronously: for ``wait_live`` seconds, answers that mean "not live yet"
        (404 no such published function, 401 key or auth change not applied yet; the function did
        not run) are retried before the last one is returned or raised.
        """
        request = _http.data_plane_request(
            self.data_plane_base(gw, env),
            fn,
            method=method,
            body=body,
            query=query,
            headers=headers,
            api_key=api_key or self.connection.api_key,
        )
        deadline = time.monotonic() + wait_live
        while True:
            try:
                response = self._data.request(**request)
            except httpx.TransportError as exc:
                raise _http.connection_error(exc, request["url"]) from exc
            if response.status_code not in (401, 404) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if check:
            _http.raise_for_error(response)
        return _http.call_result(response)

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        api_key: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        max_tool_calls: int | None = None,
        data_plane_url: str | None = None,
    ) -> ChatResult:
        """``POST /ai-gateway/chat`` on the data plane with the grant's key."""
        base = data_plane_url or self.connection.data_plane_url or DEFAULT_DATA_PLANE_URL
        url = f"{base.rstrip('/')}/ai-gateway/chat"
        body = compact(messages=messages, provider=provider, model=model, maxToolCalls=max_tool_calls)
        try:
            key = api_key or self.connection.api_key
            response = self._data.post(url, json=body, headers={"apikey": key} if key else None)
        except httpx.TransportError as exc:
            raise _http.connection_error(exc, url) from exc
        _http.raise_for_error(response)
        return ChatResult.model_validate(response.json())

    # ---- fluent layer ----------------------------------------------------------------------------

    def gateway(self, gw: str) -> GatewayHandle:
        """``client.gateway("hometax").function("calculateTax").publish("dev")``."""
        from imprun.sdk.fluent import GatewayHandle

        return GatewayHandle(self, gw)
