"""imprun: a serverless Python API platform on Ray.

The control plane, SDK and CLI live in this package; what runs inside Ray Serve replicas lives in
the sibling top-level packages ``ray_apps`` and ``runtime_actors``. The SDK's public names
(``imprun.Client``, ``imprun.AsyncClient``, the ``ImprunAPIError`` tree: everything in
``imprun.sdk.__all__``) are loaded on first access, so ``import imprun`` stays cheap for the server
and the CLI and this package imports no layer at import time; ``%load_ext imprun`` loads the
notebook magics (``imprun.notebook``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if not name.startswith("__"):
        sdk = importlib.import_module("imprun.sdk")
        if name in sdk.__all__:
            return getattr(sdk, name)
    raise AttributeError(f"module 'imprun' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext imprun``: register ``%%imprun_function`` and ``%imprun_call``."""
    importlib.import_module("imprun.notebook").register_magics(ipython)
