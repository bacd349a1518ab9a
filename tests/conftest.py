"""Test-suite wiring: the session fixtures live in ``tests/fixtures`` and are loaded as plugins.

Markers keep the fast layer honest: a test that uses the embedded services or the Ray head (directly
or through another fixture) is marked ``services`` / ``ray`` at collection, so that
``scripts/test.sh --fast`` (``-m "not services and not ray"``) never starts them. A test that starts
such things by itself (a child process, a Ray head of its own) carries the marker explicitly.
"""

import os

import pytest

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.ray",
    "tests.fixtures.llm_servers",
    "tests.fixtures.live_stack",
]

# One ai-gateway application per Ray cluster: control planes that tests start do not deploy it unless
# they ask (``ai_gateway=True``: the e2e stack), so test modules never reconfigure it under each other.
os.environ.setdefault("IMPRUN_AI_GATEWAY", "false")
# The same for the one shared-runtime application (the catch-all at ``/``), which serves the
# environments of one system database: only the live stack deploys it, and other control planes
# create dedicated environments unless a test asks for the shared tier.
os.environ.setdefault("IMPRUN_SHARED_RUNTIME", "false")
os.environ.setdefault("IMPRUN_DEFAULT_TIER", "dedicated")
# Tests that repair drift (an application gone with a Ray outage, …) wait for the settled resync; a
# short one keeps them quick (the default suits a platform holding hundreds of resources).
os.environ.setdefault("IMPRUN_RECONCILE_RESYNC_SECONDS", "10")

# The session fixtures that start something, and the marker every test using them gets.
MARKER_OF_FIXTURE = {"services": "services", "ray_head": "ray"}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the session fixtures it uses, directly or through other fixtures."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for fixture, marker in MARKER_OF_FIXTURE.items():
            if fixture in fixtures and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
