"""Every object under ``manifests/`` renders with ``kubectl kustomize`` and validates upstream.

Each overlay (and the base and data trees alone) is rendered offline, and every object is checked by
``tests.platform.drivers.k8s_schemas`` (core kinds against the Kubernetes OpenAPI schemas). On top:
the control plane runs two replicas in production, RBAC grants only what the drivers touch, every
container is hardened, and no Secret is shipped.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.platform.drivers.k8s_schemas import assert_valid

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"
TREES = ["base", "data", "overlays/dev", "overlays/prod"]
DRIVER_RESOURCES = {
    "": {"namespaces", "resourcequotas", "secrets", "pods"},
    "networking.k8s.io": {"networkpolicies"},
    "ray.io": {"rayservices", "rayservices/status"},
    "apisix.apache.org": {"apisixroutes", "apisixupstreams", "apisixconsumers", "apisixpluginconfigs"},
}


@cache
def render(tree: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: scripts/setup.sh installs it (Debian's kubernetes-client)"
    done = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS / tree)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def objects() -> list[tuple[str, dict[str, Any]]]:
    return [(tree, obj) for tree in TREES for obj in render(tree)]


@pytest.mark.parametrize(
    ("tree", "resource"),
    objects(),
    ids=lambda v: v if isinstance(v, str) else f"{v['kind']}-{v['metadata']['name']}",
)
def test_every_rendered_object_validates(tree: str, resource: dict[str, Any]) -> None:
    assert_valid(resource)


def test_the_overlays_hold_the_whole_installation() -> None:
    for overlay in ("overlays/dev", "overlays/prod"):
        kinds = {(o["kind"], o["metadata"]["name"]) for o in render(overlay)}
        assert {
            ("Deployment", "imprun-control-plane"),
            ("Service", "imprun-control-plane"),
            ("ClusterRole", "imprun-control-plane"),
            ("StatefulSet", "imprun-mongodb"),
            ("StatefulSet", "imprun-redis"),
        } <= kinds
        assert not any(kind == "Secret" for kind, _ in kinds), (
            "secrets are created by the operator, not shipped"
        )
    replicas = {
        overlay: next(o for o in render(overlay) if o["kind"] == "Deployment")["spec"]["replicas"]
        for overlay in ("overlays/dev", "overlays/prod")
    }
    assert replicas == {"overlays/dev": 1, "overlays/prod": 2}


def test_rbac_grants_only_what_the_drivers_touch() -> None:
    (role,) = [o for o in render("base") if o["kind"] == "ClusterRole"]
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "escalate" not in rule["verbs"]
        for group in rule["apiGroups"]:
            granted.setdefault(group, set()).update(rule["resources"])
    assert granted == DRIVER_RESOURCES


def test_every_container_is_hardened() -> None:
    for obj in render("overlays/prod"):
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {
                "drop": ["ALL"]
            }
            assert container["resources"]["limits"]


def test_the_control_plane_registers_by_invite_in_every_overlay() -> None:
    """Exposed beyond loopback, registration needs an admin's invite (the first user excepted)."""
    for overlay in ("overlays/dev", "overlays/prod"):
        settings = next(
            o
            for o in render(overlay)
            if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "imprun-settings"
        )
        assert settings["data"]["IMPRUN_REGISTRATION"] == "invite"
