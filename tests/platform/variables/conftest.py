"""Variables and logs run against the functions tests' control plane (real nx-27017 and Redis, the
``InMemoryCluster`` driver): the same fixtures, re-exported for this folder."""

from tests.platform.functions.conftest import cluster, functions_client, owner, plane

__all__ = ["cluster", "functions_client", "owner", "plane"]
