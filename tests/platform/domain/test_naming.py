"""Gateway id validation and slugs, and the names derived from a gateway id."""

from __future__ import annotations

import itertools
import random
import re
import string

import pytest

from imprun.domain import (
    ENVIRONMENT_NAMES,
    RESERVED_GATEWAY_IDS,
    gateway_db_name,
    gateway_id_problem,
    is_valid_gateway_id,
    route_prefix,
    serve_app_name,
    slugify_gateway_id,
    validate_gateway_id,
)
from imprun.errors import Invalid

# Written independently of the implementation: the rule as the issue states it.
ID_RULE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")


@pytest.mark.parametrize("value", ["abc", "my-api", "orders-api-v2", "a1b", "a--b", "x" * 40, "a" + "9" * 39])
def test_valid_ids_pass_unchanged(value: str) -> None:
    assert validate_gateway_id(value) == value
    assert is_valid_gateway_id(value)
    assert gateway_id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "3 to 40 characters long, not 0"),
        ("ab", "3 to 40 characters long, not 2"),
        ("x" * 41, "3 to 40 characters long, not 41"),
        ("My-api", "contains 'M'"),
        ("my_api", "contains '_'"),
        ("my api", "contains ' '"),
        ("café-api", "contains 'é'"),
        ("my.api/x", "contains '.', '/'"),
        ("1api", "must start with a letter"),
        ("-api", "must start with a letter"),
        ("api-", "must not end with '-'"),
        ("ai-gateway", "reserved"),
    ],
)
def test_invalid_ids_say_what_is_wrong(value: str, problem: str) -> None:
    with pytest.raises(Invalid) as raised:
        validate_gateway_id(value)
    assert problem in raised.value.message
    assert repr(value) in raised.value.message
    assert raised.value.status == 422
    assert raised.value.details["field"] == "gatewayId"
    assert not is_valid_gateway_id(value)


def test_character_problems_suggest_a_fix() -> None:
    with pytest.raises(Invalid, match=re.escape("use lowercase letters, digits and '-', e.g. 'orders-api'")):
        validate_gateway_id("Orders_API")


@pytest.mark.parametrize("reserved", sorted(RESERVED_GATEWAY_IDS))
def test_reserved_ids_are_well_formed_but_refused(reserved: str) -> None:
    assert ID_RULE.match(reserved)
    assert not is_valid_gateway_id(reserved)


def test_validation_matches_the_stated_rule_on_random_strings() -> None:
    rng = random.Random(20260101)
    alphabet = string.ascii_lowercase + string.digits + "-_A."
    for _ in range(5_000):
        candidate = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 44)))
        expected = bool(ID_RULE.match(candidate)) and candidate not in RESERVED_GATEWAY_IDS
        assert is_valid_gateway_id(candidate) is expected, candidate


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Orders API", "orders-api"),
        ("  Orders   API (v2)!  ", "orders-api-v2"),
        ("Crème brûlée", "creme-brulee"),
        ("snake_case_name", "snake-case-name"),
        ("my-api", "my-api"),
        ("2024 report", "gw-2024-report"),
        ("42", "gw-42"),
        ("x", "x-gw"),
        ("", "gateway"),
        ("!!!", "gateway"),
        ("日本語", "gateway"),
        ("API", "api-gw"),
        ("AI Gateway", "ai-gateway-gw"),
    ],
)
def test_slugify_derives_a_readable_valid_id(name: str, slug: str) -> None:
    assert slugify_gateway_id(name) == slug
    assert is_valid_gateway_id(slug)


def test_slugify_truncates_long_names_without_a_trailing_dash() -> None:
    slug = slugify_gateway_id("a" * 39 + " b")
    assert slug == "a" * 39
    assert len(slugify_gateway_id("word " * 30)) <= 40
    assert not slugify_gateway_id("word " * 30).endswith("-")


def test_slugify_keeps_a_suffix_whole_and_shortens_the_name_for_it() -> None:
    assert slugify_gateway_id("Orders API", suffix="x7k2") == "orders-api-x7k2"
    long_slug = slugify_gateway_id("n" * 60, suffix="x7k2")
    assert long_slug == "n" * 35 + "-x7k2"
    assert slugify_gateway_id("api", suffix="2") == "api-2"
    assert slugify_gateway_id("Orders API", suffix="!!") == "orders-api"


def test_slugify_refuses_a_suffix_that_leaves_no_room() -> None:
    with pytest.raises(Invalid, match="too long"):
        slugify_gateway_id("orders", suffix="s" * 38)


def test_slugify_always_yields_a_valid_id_for_arbitrary_text() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "éüßøñ中文😀—"
    for _ in range(3_000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70)))
        suffix = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randint(0, 8)))
        slug = slugify_gateway_id(name, suffix=suffix)
        assert is_valid_gateway_id(slug), (name, suffix, slug)
        if suffix:
            assert slug.endswith("-" + suffix)


def test_slugify_is_the_identity_on_valid_ids() -> None:
    rng = random.Random(11)
    for _ in range(2_000):
        candidate = rng.choice(string.ascii_lowercase) + "".join(
            rng.choice(string.ascii_lowercase + string.digits + "-") for _ in range(rng.randint(2, 39))
        )
        candidate = candidate.rstrip("-")
        if is_valid_gateway_id(candidate) and "--" not in candidate:
            assert slugify_gateway_id(candidate) == candidate


def test_derived_names() -> None:
    assert serve_app_name("orders-api", "staging") == "orders-api-staging"
    assert route_prefix("orders-api", "prod") == "/orders-api/prod"
    assert gateway_db_name("orders-api") == "gatewayid_orders-api"


def test_longest_database_name_fits_mongodb() -> None:
    assert len(gateway_db_name("x" * 40).encode()) < 64


def test_environment_names_are_the_three_stages_in_order() -> None:
    assert ENVIRONMENT_NAMES == ("dev", "staging", "prod")


def test_serve_app_names_never_collide_across_gateways() -> None:
    # "<gw>-<env>" with a dash inside ids: two (gateway, environment) pairs must never share a name.
    ids = ["orders", "orders-dev", "orders-staging", "orders-prod", "a-dev", "a-dev-dev", "prod-staging"]
    pairs = list(itertools.product(ids, ENVIRONMENT_NAMES))
    names = [serve_app_name(gateway_id, environment) for gateway_id, environment in pairs]
    assert len(set(names)) == len(pairs)
    prefixes = [route_prefix(gateway_id, environment) for gateway_id, environment in pairs]
    assert len(set(prefixes)) == len(pairs)
