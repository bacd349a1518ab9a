"""The per-node reload hub: one change feed per node and the snapshots it keeps fresh for replicas.

``feed`` follows the generation counters, ``wakeups`` turns the Redis reload channel into immediate
polls, ``snapshots`` keeps the newest ``Snapshot`` per environment for replicas' long-polls, and
``reads`` are its MongoDB reads. None of it is Ray-specific: ``ray_apps.reload_hub`` hosts the pieces
in one actor per node. The hub runs no tenant code and never holds the key that opens variables.
"""

from __future__ import annotations

from typing import Final

RETRY_MAX_S: Final = 5.0
"""The longest pause between retries of a failed read, stream or subscription."""
