"""Drivers: the control plane's only way to reach a cluster (Ray Serve, KubeRay) or an ingress.

Each external system sits behind a Protocol (``imprun.drivers.cluster.ClusterDriver``, …) so the
reconcilers above are the same in embedded and production mode. This package is the only part of
imprun that imports Ray; importing it, or its Protocol modules, does not: the implementations
(``imprun.drivers.local_ray``) are imported by whoever builds them.
"""
