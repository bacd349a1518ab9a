"""The functions tests' two control planes really run on the driver their id names.

``[kuberay]`` must mean the control plane built its own ``KubeRayDriver`` from its settings (the
production path) and provisioned the module's gateway as RayServices on the stand-in; ``[fake]`` the
``InMemoryCluster``. Without this check a fixture mistake could run every test twice on the fake.
"""

from __future__ import annotations

from typing import Any

import pytest

from imprun.domain.naming import ENVIRONMENT_NAMES, serve_app_name
from imprun.drivers.kuberay import KubeRayDriver
from tests.platform.functions.conftest import InMemoryCluster


def test_the_gateway_runs_on_the_driver_the_id_names(
    request: pytest.FixtureRequest, gateway: str, plane: Any
) -> None:
    kind = request.node.callspec.params["functions_client"]
    expected_type = KubeRayDriver if kind == "kuberay" else InMemoryCluster
    assert isinstance(plane.driver, expected_type), type(plane.driver)
    apps = [name for name in plane.driver.list_apps() if name.startswith(f"{gateway}-")]
    assert sorted(apps) == sorted(serve_app_name(gateway, env) for env in ENVIRONMENT_NAMES)
