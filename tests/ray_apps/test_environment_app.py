"""``ray_apps.environment.build_app``: the builder a ``serveConfigV2`` import path names."""

from __future__ import annotations

import pytest
from ray import serve

from ray_apps.environment import DEPLOYMENT_NAME, FunctionActor, RuntimeConfig, build_app, route_of


def test_build_app_binds_function_actor_to_the_environment() -> None:
    app = build_app({"gateway_id": "orders-api", "environment": "dev"})

    assert isinstance(app, serve.Application)
    deployment = app._bound_deployment
    assert deployment.name == DEPLOYMENT_NAME
    assert deployment.func_or_class is FunctionActor
    assert list(deployment.init_args) == ["orders-api", "dev"]
    assert deployment.init_kwargs == {"runtime": RuntimeConfig().to_args()}


def test_build_app_passes_the_runtime_configuration() -> None:
    args = {
        "gateway_id": "orders-api",
        "environment": "prod",
        "mongo_url": "mongodb://db:27017",
        "redis_url": "redis://cache:6379/0",
        "sys_db_name": "sys",
        "insecure_dev": True,
        "max_request_bytes": 4096,
        "worker_pool_size": 3,
        "egress_allow": ["10.0.0.0/8"],
    }
    runtime = build_app(args)._bound_deployment.init_kwargs["runtime"]

    config = RuntimeConfig.from_args(runtime)
    assert config.mongo_url == "mongodb://db:27017" and config.worker_pool_size == 3
    assert config.egress_allow == ("10.0.0.0/8",)
    assert runtime == {k: v for k, v in args.items() if k not in ("gateway_id", "environment")}


def test_the_configuration_digest_changes_with_the_configuration() -> None:
    assert RuntimeConfig().digest() == RuntimeConfig().digest()
    assert RuntimeConfig(mongo_url="mongodb://a").digest() != RuntimeConfig(mongo_url="mongodb://b").digest()


@pytest.mark.parametrize(
    "args",
    [
        {"gateway_id": "orders-api"},
        {"gateway_id": "orders-api", "environment": "dev/x"},
        {"gateway_id": "", "environment": "dev"},
        {"gateway_id": "orders-api", "environment": "dev", "replicas": 3},
        {"gateway_id": "orders-api", "environment": "dev", "worker_pool_size": 0},
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
    assert route_of(scope, "/orders-api/dev") == route
