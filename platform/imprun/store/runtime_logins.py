"""``RuntimeLogins``: the runtimes' own logins to MongoDB and Redis, made, granted and dropped together.

Under the KubeRay driver no runtime logs in as the platform: a gateway's replicas use its MongoDB
user (``mongo_users``) and its Redis ACL user (``redis_users``), the shared runtime the shared users
of both, whose reach follows the gateways the shared tier may serve. The lifecycle makes a
gateway's logins with its database and drops them with it, grants a gateway to the shared runtime
before placing one of its environments there, and keeps the shared grants in step with
``sync_shared``; the cluster driver hands each runtime its URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from imprun.store.mongo_users import GatewayMongoUsers
from imprun.store.redis_users import RuntimeRedisUsers

__all__ = ["RuntimeLogins"]

log = logging.getLogger(__name__)


class _UserStore(Protocol):
    """What ``GatewayMongoUsers`` and ``RuntimeRedisUsers`` both offer."""

    def supported(self) -> bool: ...

    def ensure(self, gateway_id: str) -> object: ...

    def drop(self, gateway_id: str) -> None: ...

    def gateway_users(self) -> set[str]: ...

    def ensure_shared_runtime(self) -> object: ...

    def shared_grants(self) -> set[str] | None: ...

    def grant_shared(self, gateway_id: str) -> None: ...

    def revoke_shared(self, gateway_id: str) -> None: ...


class RuntimeLogins:
    def __init__(self, mongo: GatewayMongoUsers, redis: RuntimeRedisUsers | None) -> None:
        self.mongo = mongo
        self.redis = redis

    def _stores(self) -> list[_UserStore]:
        """The stores that keep users (nx-27017 keeps none)."""
        stores: list[_UserStore] = [self.mongo, *([self.redis] if self.redis is not None else [])]
        return [store for store in stores if store.supported()]

    def ensure(self, gateway_id: str) -> None:
        """Make (or reset) the gateway's logins."""
        for store in self._stores():
            store.ensure(gateway_id)

    def drop(self, gateway_id: str) -> None:
        """Drop the gateway's logins and the shared runtime's reach into it; missing ones are fine."""
        for store in self._stores():
            store.drop(gateway_id)
            store.revoke_shared(gateway_id)

    def grant_shared(self, gateway_id: str) -> None:
        """Let the shared runtime reach the gateway (before one of its environments is placed there)."""
        for store in self._stores():
            store.grant_shared(gateway_id)

    def ensure_missing(self, gateway_ids: Iterable[str]) -> None:
        """Make the logins of the gateways that lack them (a release before runtime users, a Redis
        restarted without its ACL file)."""
        wanted = set(gateway_ids)
        for store in self._stores():
            for gateway_id in sorted(wanted - store.gateway_users()):
                log.info("runtime logins: making the missing user of gateway %s", gateway_id)
                store.ensure(gateway_id)

    def sync_shared(self, wanted: Callable[[], set[str]]) -> None:
        """Make the shared runtime reach exactly the ``wanted()`` gateways, in each store: grant what
        is missing, revoke the rest (a store without the shared user gets it first). The grants are
        read before ``wanted()``: a grant is made before its placement, so one made meanwhile by
        another control plane is either read here or its placement is seen by ``wanted()``."""
        stores = self._stores()
        granted: list[set[str]] = []
        for store in stores:
            found = store.shared_grants()
            if found is None:
                store.ensure_shared_runtime()
                found = store.shared_grants() or set()
            granted.append(found)
        target = wanted()
        for store, found in zip(stores, granted, strict=True):
            for gateway_id in sorted(target - found):
                log.info("shared runtime: granting gateway %s", gateway_id)
                store.grant_shared(gateway_id)
            for gateway_id in sorted(found - target):
                log.info("shared runtime: revoking gateway %s", gateway_id)
                store.revoke_shared(gateway_id)

    def gateway_mongo_url(self, gateway_id: str) -> str:
        return self.mongo.url_for(gateway_id)

    def shared_mongo_url(self) -> str:
        return self.mongo.shared_runtime_url()

    def gateway_redis_url(self, gateway_id: str) -> str | None:
        """The gateway's Redis login; None: the platform's (Redis users are off)."""
        return self.redis.url_for(gateway_id) if self.redis is not None else None

    def shared_redis_url(self) -> str | None:
        return self.redis.shared_runtime_url() if self.redis is not None else None
