"""Finishing runtime-feed bumps whose writer died: one more member of the reconcile loop.

A publish writes the gateway database and then bumps the environment's generation in the system
database (``store.runtime_feed``); no transaction spans two databases, so the writer records its
intent first. ``FeedRepair`` bumps, one per call, every environment whose intent is older than a
grace period far longer than any write takes: the replicas then read what was written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from imprun.store.runtime_feed import RuntimeFeed


class FeedRepair:
    kind = "runtime-feed"

    def __init__(
        self, feed: RuntimeFeed, clock: Callable[[], datetime], *, grace: timedelta = timedelta(seconds=10)
    ) -> None:
        self.feed = feed
        self.clock = clock
        self.grace = grace

    def reconcile_one(self) -> bool:
        return self.feed.repair_one(older_than=self.clock() - self.grace) is not None
