"""Requests per client per second (issue 8): one client's burst, a hospital re-sending its
backlog or a script gone wrong, must not crowd out the others."""

from __future__ import annotations

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class RateLimits:
    """A moving one-second window per client id, in this process's memory: each gateway
    process limits what reaches it (behind a load balancer the limit is per process)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._item = RateLimitItemPerSecond(per_second)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def take(self, client_id: str) -> bool:
        """Whether this request may go on (it is counted either way)."""
        return self._limiter.hit(self._item, client_id)
