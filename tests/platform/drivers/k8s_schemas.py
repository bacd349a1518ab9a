"""Validation of Kubernetes objects against upstream schemas, shared by the driver and manifest tests.

Custom resources (``ray.io`` from ``tests/fixtures/crds/kuberay``, ``apisix.apache.org`` from
``tests/fixtures/crds/apisix``, vendored upstream CRDs: see the README there) are checked against their CRD's ``openAPIV3Schema`` with ``jsonschema``
after two adjustments: the ``x-kubernetes-*`` extensions are dropped (their CEL rules are not
evaluated here), and every object schema that lists its properties and does not preserve unknown
fields is closed (``additionalProperties: false``), because the API server would silently prune a
misspelled field where plain JSON Schema would accept it. Core kinds are checked in strict mode by
``kubernetes-validate`` against the Kubernetes OpenAPI schemas of ``KUBERNETES_VERSION``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Final

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS: Final = Path(__file__).resolve().parents[2] / "fixtures" / "crds"
KUBERNETES_VERSION: Final = "1.33.0"
DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CRD_FOLDERS: Final = {"ray.io": "kuberay", "apisix.apache.org": "apisix"}


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    open_ended = node.get("x-kubernetes-preserve-unknown-fields") is True
    schema = {key: _strict(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if "properties" in schema and "additionalProperties" not in schema and not open_ended:
        schema["additionalProperties"] = False
    return schema


@cache
def crd(group: str, kind: str, version: str) -> tuple[dict[str, Any], jsonschema.Draft7Validator]:
    """The CRD defining ``group``'s ``kind`` and a validator for its ``version`` schema."""
    folder = SCHEMAS / _CRD_FOLDERS[group]
    for path in sorted(folder.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document.get("kind") != "CustomResourceDefinition" or document["spec"]["names"]["kind"] != kind:
            continue
        (served,) = [v for v in document["spec"]["versions"] if v["name"] == version]
        schema = _strict(served["schema"]["openAPIV3Schema"])
        jsonschema.Draft7Validator.check_schema(schema)
        return document, jsonschema.Draft7Validator(schema)
    raise AssertionError(f"no CRD for {group} {kind} in {folder}")


def crd_errors(resource: dict[str, Any]) -> list[str]:
    group, _, version = resource["apiVersion"].partition("/")
    _, validator = crd(group, resource["kind"], version)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(resource)]


def assert_valid(resource: dict[str, Any]) -> None:
    """Raise ``AssertionError`` unless ``resource`` validates against its upstream schema."""
    group = resource["apiVersion"].partition("/")[0] if "/" in resource["apiVersion"] else ""
    if group in _CRD_FOLDERS:
        assert crd_errors(resource) == []
    else:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(
                f"{resource['kind']} {resource['metadata'].get('name')}: {exc.message}"
            ) from exc
    name = resource["metadata"]["name"]
    assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name), name
