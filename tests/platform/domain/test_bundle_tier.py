"""A bundle's tier: the default a gateway gets when it names none, the custom resources only the dedicated
tier can give, and stored bundles from before tiers existed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from imprun.domain import Bundle, Gateway, Tier

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POOL = {"pool_a": 1.0}


@pytest.mark.parametrize("default", list(Tier))
def test_a_bundle_without_a_tier_takes_the_default(default: Tier) -> None:
    assert Bundle().with_default_tier(default).tier is default
    asked = Bundle.model_validate({"cpu": 2, "maxReplicas": 3}).with_default_tier(default)
    assert (asked.tier, asked.cpu, asked.max_replicas) == (default, 2.0, 3), "the rest is kept"


@pytest.mark.parametrize("default", list(Tier))
def test_a_bundle_asking_for_custom_resources_is_dedicated(default: Tier) -> None:
    bundle = Bundle.model_validate({"resources": POOL}).with_default_tier(default)
    assert bundle.tier is Tier.DEDICATED
    assert bundle.resources == POOL


@pytest.mark.parametrize(
    ("payload", "default", "tier"),
    [
        ({"tier": "dedicated"}, Tier.SHARED, Tier.DEDICATED),
        ({"tier": "shared"}, Tier.DEDICATED, Tier.SHARED),
        ({"tier": "shared"}, Tier.SHARED, Tier.SHARED),
        ({"tier": "dedicated", "resources": POOL}, Tier.SHARED, Tier.DEDICATED),
    ],
)
def test_an_explicit_tier_is_kept(payload: dict[str, Any], default: Tier, tier: Tier) -> None:
    bundle = Bundle.model_validate(payload)
    assert bundle.with_default_tier(default) == bundle
    assert bundle.with_default_tier(default).tier is tier


def test_the_default_applies_once() -> None:
    """A bundle given its tier by default has that tier set: a later default does not move it."""
    shared = Bundle().with_default_tier(Tier.SHARED)
    assert shared.with_default_tier(Tier.DEDICATED).tier is Tier.SHARED


@pytest.mark.parametrize(
    "payload", [{"tier": "shared", "resources": POOL}, {"tier": "shared", "resources": {"a": 1, "b": 2}}]
)
def test_custom_resources_on_the_shared_tier_are_refused_saying_why(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="custom resources need tier 'dedicated'"):
        Bundle.model_validate(payload)


def test_a_built_in_resource_on_the_shared_tier_is_refused_saying_why() -> None:
    with pytest.raises(ValidationError, match="'gpu' is a built-in resource"):
        Bundle(tier=Tier.SHARED, resources={"gpu": 1})


def test_an_unknown_tier_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        Bundle.model_validate({"tier": "premium"})
    assert raised.value.errors()[0]["loc"] == ("tier",)
    assert "'shared' or 'dedicated'" in raised.value.errors()[0]["msg"]


def test_a_stored_bundle_without_a_tier_reads_as_dedicated() -> None:
    stored = {"cpu": 0.5, "memory": 256, "minReplicas": 1, "maxReplicas": 1}
    assert Bundle.model_validate(stored).tier is Tier.DEDICATED
    document = Gateway.new(gateway_id="orders-api", name="Orders", owner_id="u-1", now=NOW).model_dump(
        mode="json"
    )
    document["bundle"] = stored
    assert Gateway.model_validate(document).bundle.tier is Tier.DEDICATED


@pytest.mark.parametrize("tier", list(Tier))
def test_the_tier_is_stored_and_read_back(tier: Tier) -> None:
    document = Bundle(tier=tier).model_dump(mode="json")
    assert document["tier"] == tier.value
    assert Bundle.model_validate(document).tier is tier
