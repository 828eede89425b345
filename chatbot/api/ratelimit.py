"""Per-key rate limit: a token bucket per API key, in process.

A bucket holds up to ``per_minute`` tokens and refills evenly (``per_minute`` / 60 a second);
each request takes one. Unlike a fixed window, this allows no double burst at a window edge,
and a client that paces itself never waits. In process on purpose: one server rarely runs more
than a few workers, and a shared store (Redis) would be a service to run for a clinic's API.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, last refill)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key_id: str) -> int:
        """0 when the request may go ahead (a token is taken), else the whole seconds to wait
        for the next token (the Retry-After value)."""
        if not self.enabled:
            return 0
        rate = self.per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
