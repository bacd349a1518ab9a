"""The names the runtime and the control plane share: gateway-database and system-database collections,
the per-part change counters, the Redis reload channel and log streams.

Both sides read and write these (the control plane writes the documents, the hub reads them, replicas
append logs the control plane reads back), so they are spelled once, here.
"""

from __future__ import annotations

PUBLISHED_FUNCTIONS = "__published_functions"
CONSUMERS = "__consumers"
ENVIRONMENT_SETTINGS = "__environments"
"""Per-environment ``{_id: <env>, authType, rateLimit}`` the ingress publishes for replicas."""
GENERATIONS = "runtime_generations"
"""System-database collection of per-environment generation counters ``{_id: "<gw>/<env>", generation,
functionsGeneration, accessGeneration, variablesGeneration}``; every publish/unpublish, consumer or settings change and
variable change bumps its environment's ``generation`` and the counter of the part it changed, so a
reload reads only what changed."""

PART_FUNCTIONS = "functions"
"""``__published_functions``."""
PART_ACCESS = "access"
"""``__consumers`` and ``__environments``."""
PART_VARIABLES = "variables"
"""The environment's sealed variables."""
RUNTIME_PARTS = (PART_FUNCTIONS, PART_ACCESS, PART_VARIABLES)


def part_counter(part: str) -> str:
    """The top-level field counting ``part``'s changes (not ``parts.<part>``: nx-27017 0.8.1 stores a
    dotted ``$inc`` of an upsert's insert as one literal field)."""
    return f"{part}Generation"


VARIABLES = "environment_variables"
"""System-database collection of sealed environment variables ``{_id: "<gw>/<env>/<name>", gatewayId,
environment, name, secret, keyVersion, nonce, ciphertext, …}`` (see ``runtime_actors.shared.sealing``)."""

RELOAD_CHANNEL = "imprun:reload"
"""Redis pub/sub channel the control plane publishes ``<gw>/<env>`` on after a bump (a wake-up only:
the generation counters stay the lossless source)."""

LOG_STREAM_PREFIX = "imprun:logs:"
"""Redis stream per environment: ``imprun:logs:<gw>/<env>``."""
RATE_LIMIT_PREFIX = "imprun:ratelimit:"
"""Redis counters of the replicas' rate limits: ``imprun:ratelimit:<gw>/<env>/<who>:<window>:<ms>…``."""


def gateway_database_name(gateway_id: str) -> str:
    """The database holding one gateway's collections (``__published_functions``, ``__consumers``…)."""
    return f"gatewayid_{gateway_id}"


ENVIRONMENTS = "environments"
"""System-database collection of environment records ``{_id: "<gw>/<env>", createdAt, …}``."""
SHARED_PLACEMENT = "sharedPlacement"
"""Field of an environment record: ``PLACED`` while the shared tier may serve it (``ray_apps.shared_runtime``),
``NOT_PLACED`` once it may not."""
PLACED = "placed"
NOT_PLACED = "none"
SHARED_RUNTIME_APP = "shared-runtime"
"""The shared tier's Serve application, at route prefix ``/`` (``ray_apps.shared_runtime``)."""
SHARED_RUNTIME_IMPORT_PATH = "ray_apps.shared_runtime:build_app"
SHARED_DEPLOYMENT = "SharedRuntime"
"""The shared runtime's deployment (its replicas are what the Ray dashboard lists)."""
SHARED_LOADED_KEY = "imprun:shared:loaded"
"""Redis hash, one field per shared-tier replica: JSON ``{replica, node, environments, at}``, what it has
loaded (the API shows where each environment is loaded)."""
