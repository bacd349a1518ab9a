"""``RayNodeMetrics``: the Prometheus text each Ray node exports, read for the control plane.

The replicas count invocations, errors and latency through Ray's metrics API
(``ray_apps.function_metrics``); Ray's metrics agent on every node serves them as Prometheus text on
the node's metrics export port. This reads that text from every live node (``ray.nodes()`` names the
address and port) so the API can summarise it per function. Ray and HTTP failures become
``Unavailable``; a node that does not answer is skipped while at least one other does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import ray

from imprun.errors import Unavailable

__all__ = ["RayNodeMetrics"]

log = logging.getLogger(__name__)


class RayNodeMetrics:
    """``connect`` joins the cluster (the cluster driver's ``ping``) before ``ray.nodes()`` is asked."""

    def __init__(self, connect: Callable[[], None], *, timeout_s: float = 3.0) -> None:
        self._connect = connect
        self._timeout_s = timeout_s

    def endpoints(self) -> list[str]:
        self._connect()
        try:
            nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
        except Exception as exc:  # Ray's client raises many types; all mean "cannot ask the cluster"
            raise Unavailable(f"cannot list the Ray nodes: {exc}") from exc
        return [
            f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
            for node in nodes
            if node.get("Alive") and node.get("MetricsExportPort")
        ]

    def scrape(self) -> list[str]:
        """The metrics text of every node that answered; ``Unavailable`` when none did."""
        texts: list[str] = []
        failures: list[str] = []
        urls = self.endpoints()
        with httpx.Client(timeout=self._timeout_s) as http:
            for url in urls:
                try:
                    response = http.get(url)
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    log.info("metrics endpoint %s did not answer: %s", url, exc)
                    failures.append(f"{url}: {exc}")
                    continue
                texts.append(response.text)
        if urls and not texts:
            raise Unavailable(f"no Ray node's metrics endpoint answered: {'; '.join(failures)}")
        return texts
