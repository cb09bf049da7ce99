"""Per-user sliding-window rate limits (logins a minute, requests a second).

They run on real monotonic time, not on the stand-in clock: moving the instance's
clock forward must not refill anybody's allowance, and a client that waits the
`Retry-After` it was given must then get through.
"""

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most `limit` accepted hits per key in any `window` seconds."""

    def __init__(
        self, limit: int, window: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("a rate limit must allow at least one request")
        self.limit = limit
        self.window = window
        self._monotonic = monotonic
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> int | None:
        """Record a hit and return None, or refuse it and return whole seconds to wait."""
        now = self._monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            # Refused hits are not recorded: a client that waits as told gets in.
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        return None
