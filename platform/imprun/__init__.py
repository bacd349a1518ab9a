"""imprun: a serverless Python API platform on Ray.

The control plane, SDK and CLI live in this package; what runs inside Ray Serve replicas lives in
the sibling top-level packages ``ray_apps`` and ``runtime_actors``.
"""

__version__ = "0.1.0"
