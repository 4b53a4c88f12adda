"""Client-side pacing: keep a run under the API's request budget instead of meeting 429s.

Qovery allows about 1000 requests per hour per token. The pacer lets at most
`requests_per_hour` requests start in any 60-minute window of this process, and it also
waits when a response says the server-side budget is spent (`X-RateLimit-Remaining: 0`)
until the moment `X-RateLimit-Reset` names.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 3600.0


class RequestPacer:
    """A sliding-window limiter shared by every request of one client (thread-safe).

    Args:
        requests_per_hour: the maximum requests started in any 60 minutes; 0 turns pacing off.
        clock: a monotonic clock in seconds, replaceable in tests.
        sleep: the sleep function, replaceable in tests.
        wall_clock: seconds since the epoch, to read `X-RateLimit-Reset`.
    """

    def __init__(
        self,
        requests_per_hour: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if requests_per_hour < 0:
            raise ValueError(f"requests_per_hour must not be negative, not {requests_per_hour}")
        self.requests_per_hour = requests_per_hour
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._starts: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self) -> float:
        """Wait until one more request fits the budget, record it, and return the wait."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and self._starts[0] <= now - WINDOW_SECONDS:
                    self._starts.popleft()
                wait = max(0.0, self._blocked_until - now)
                if self.requests_per_hour and len(self._starts) >= self.requests_per_hour:
                    wait = max(wait, self._starts[0] + WINDOW_SECONDS - now)
                if wait <= 0:
                    self._starts.append(now)
                    self.waited_seconds += waited
                    return waited
            if waited == 0:
                logger.warning(
                    "Request budget of %d per hour reached; pausing %.0f s before the next "
                    "request (set requests_per_hour to change the budget)",
                    self.requests_per_hour,
                    wait,
                )
            self._sleep(wait)
            waited += wait

    def observe(self, remaining: str | None, reset: str | None) -> None:
        """Pause later requests when the server reports its budget spent until `reset`."""
        if remaining is None or remaining.strip() != "0" or not reset:
            return
        try:
            reset_at = float(reset)
        except ValueError:
            return
        delay = reset_at - self._wall_clock()
        if delay > 0:
            with self._lock:
                self._blocked_until = max(self._blocked_until, self._clock() + delay)
