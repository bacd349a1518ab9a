"""``ray_apps.environment.build_app``: the builder a ``serveConfigV2`` import path will name.

(It sits with the driver tests until ``tests/ray_apps/`` exists.)
"""

from __future__ import annotations

import pytest
from ray import serve

from ray_apps.environment import DEPLOYMENT_NAME, FunctionActor, build_app


def test_build_app_binds_function_actor_to_the_environment() -> None:
    app = build_app({"gateway_id": "orders-api", "environment": "dev"})

    assert isinstance(app, serve.Application)
    deployment = app._bound_deployment
    assert deployment.name == DEPLOYMENT_NAME
    assert deployment.func_or_class is FunctionActor
    assert list(deployment.init_args) == ["orders-api", "dev"]


@pytest.mark.parametrize(
    "args",
    [
        {"gateway_id": "orders-api"},
        {"gateway_id": "orders-api", "environment": "dev/x"},
        {"gateway_id": "", "environment": "dev"},
        {"gateway_id": "orders-api", "environment": "dev", "replicas": 3},
    ],
)
def test_build_app_refuses_bad_args(args: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_app(args)


@pytest.mark.parametrize(
    ("scope", "route"),
    [
        ({"path": "/orders-api/dev/_health", "root_path": "/orders-api/dev"}, "/_health"),
        ({"path": "/_health", "root_path": "/orders-api/dev"}, "/_health"),  # prefix already stripped
        ({"path": "/orders-api/dev/_health", "root_path": ""}, "/_health"),
        ({"path": "/orders-api/dev", "root_path": ""}, "/"),
        ({"path": "/orders-api/devx/_health", "root_path": ""}, "/orders-api/devx/_health"),
    ],
)
def test_the_route_is_the_path_below_the_environment_prefix(scope: dict[str, str], route: str) -> None:
    assert FunctionActor("orders-api", "dev").route_of(scope) == route
