"""Per-user admission to long-running work in this control-plane process: debug runs and log followers.

``UserSlots`` lets each user hold at most ``limit`` slots at once; one more is refused with
``RateLimited`` and a ``Retry-After``, so one user cannot take every thread or connection the others
need. Slots are counted per process (each control-plane replica bounds its own share). Debug runs
also go through ``slow_work``, a thread limiter of their own, instead of the pool that serves every
other route (logins included).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from imprun.errors import RateLimited

__all__ = ["UserSlots"]


class UserSlots:
    def __init__(self, what: str, limit: int, *, retry_after: int) -> None:
        self._what = what
        self.limit = limit
        self._retry_after = retry_after
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, user_id: str) -> Callable[[], None]:
        """Take one of ``user_id``'s slots; the returned function gives it back (once)."""
        with self._lock:
            if self._held[user_id] >= self.limit:
                raise RateLimited(
                    f"you already have {self.limit} {self._what} running; wait for one to end",
                    retry_after=self._retry_after,
                )
            self._held[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if not released:
                    released = True
                    self._held[user_id] -= 1
                    if not self._held[user_id]:
                        del self._held[user_id]

        return release

    def held(self, user_id: str) -> int:
        with self._lock:
            return self._held[user_id]
