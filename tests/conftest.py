"""Test-suite wiring: the session fixtures live in ``tests/fixtures`` and are loaded as plugins."""

import os

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.ray",
    "tests.fixtures.llm_servers",
    "tests.fixtures.live_stack",
]

# One ai-gateway application per Ray cluster: control planes that tests start do not deploy it unless
# they ask (``ai_gateway=True``: the e2e stack), so test modules never reconfigure it under each other.
os.environ.setdefault("IMPRUN_AI_GATEWAY", "false")
