"""``FunctionRuntime``: how the control plane runs tenant code without running it itself.

The debug route (``POST /v1/api-gateways/{gw}/functions/{fn}/debug``) must execute a draft, and
tenant code never runs in the control plane (it holds the platform's credentials). So
``RayFunctionRuntime.debug`` hands the code to the environment's own replicas through a Serve handle
(``serve.get_app_handle("<gw>-<env>")`` → ``FunctionActor.debug``), which run it in that
environment's jailed worker pool exactly as a published function would run, and returns
``{status, headers, body, logs, durationMs}``. An environment without an application of its own is on
the shared tier: the code goes to the shared runtime (``SharedRuntime.debug``, with the environment as
the handle's multiplexed model id, so a replica that has it loaded is preferred). Ray and Serve errors
are translated here: an environment served by neither → ``Conflict`` (start it first); Ray or Serve down →
``Unavailable``; no answer in time → ``Timeout``. Calls block; async callers use a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from ray import serve
from ray.exceptions import RayError
from ray.serve.context import _get_global_client
from ray.serve.exceptions import RayServeException

from imprun.domain.naming import serve_app_name
from imprun.drivers.cluster import FunctionRuntime, validate_app_ref
from imprun.errors import Conflict, ImprunError, Timeout, Unavailable
from runtime_actors.shared.names import SHARED_DEPLOYMENT, SHARED_RUNTIME_APP

__all__ = ["FunctionRuntime", "RayFunctionRuntime"]

_DEFAULT_TIMEOUT_S: Final = 30.0


class RayFunctionRuntime:
    """``FunctionRuntime`` over Ray Serve handles. ``connect`` joins the cluster (e.g. the cluster
    driver's ``ping``), called once before the first handle is made."""

    def __init__(self, connect: Callable[[], None], *, timeout_s: float = _DEFAULT_TIMEOUT_S) -> None:
        self._connect = connect
        self._timeout_s = timeout_s
        self._connected = False
        self._handles: dict[str, Any] = {}
        self._shared: Any = None
        self._lock = threading.Lock()

    def debug(
        self, gateway_id: str, environment: str, code: str, invocation: dict[str, Any]
    ) -> dict[str, Any]:
        validate_app_ref(gateway_id, environment)
        name = serve_app_name(gateway_id, environment)
        try:
            handle = self._handle(name, gateway_id, environment)
            if handle is None:  # no application of its own: the shared tier, if it runs
                try:
                    shared_runtime = self._shared_handle()
                except KeyError as exc:
                    raise _not_deployed(gateway_id, environment) from exc
                shared = shared_runtime.options(multiplexed_model_id=f"{gateway_id}/{environment}")
                answer = shared.debug.remote(gateway_id, environment, code, invocation)
            else:
                answer = handle.debug.remote(code, invocation)
            result: dict[str, Any] = answer.result(timeout_s=self._timeout_s)
        except ImprunError:
            raise
        except TimeoutError as exc:
            self._forget(name)
            raise Timeout(
                f"The {environment} environment of gateway '{gateway_id}' did not answer the debug run "
                f"within {self._timeout_s:g} s."
            ) from exc
        except (RayError, RayServeException, ConnectionError, RuntimeError) as exc:
            self._forget(name)
            if isinstance(getattr(exc, "cause", None), LookupError):  # the shared runtime does not serve it
                raise _not_deployed(gateway_id, environment) from exc
            raise Unavailable(
                f"The {environment} environment of gateway '{gateway_id}' could not run the code: "
                f"{_first_line(exc)}; retry shortly."
            ) from exc
        return result

    def _handle(self, name: str, gateway_id: str, environment: str) -> Any:
        with self._lock:
            if not self._connected:
                self._connect()
                self._connected = True
            handle = self._handles.get(name)
            if handle is not None:
                return handle
            if _get_global_client(raise_if_no_controller_running=False) is None:
                raise Unavailable(
                    "Ray Serve is not running on the cluster; start it (`imprun up`) and retry."
                )
            try:
                handle = serve.get_app_handle(name)
            except RayServeException:
                return None
            self._handles[name] = handle
            return handle

    def _shared_handle(self) -> Any:
        with self._lock:
            if self._shared is None:
                self._shared = serve.get_deployment_handle(SHARED_DEPLOYMENT, SHARED_RUNTIME_APP)
            return self._shared

    def _forget(self, name: str) -> None:
        with self._lock:
            self._handles.pop(name, None)
            self._shared = None


def _not_deployed(gateway_id: str, environment: str) -> Conflict:
    return Conflict(
        f"The {environment} environment of gateway '{gateway_id}' is not deployed, so code cannot "
        "run there yet; wait until the environment is Started (or start the gateway) and retry."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
