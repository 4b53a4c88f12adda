"""Fault injection for the simulator, driven by the request number.

The server numbers every request it receives from 1, whatever its path,
method or outcome, and calls :class:`Faults` with each number, so a
fault fires at the same request numbers on every run. When several faults
match one request, the first of this list wins: dropped connection, server
error burst, rate limit. A slow response adds its delay to any of them, and a
truncated body replaces the body of a response that would be a 200.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FaultKind(enum.Enum):
    """A fault that replaces the normal response."""

    DROP_CONNECTION = "drop_connection"
    SERVER_ERROR = "server_error"
    RATE_LIMIT = "rate_limit"


def _fires_every(every: int, request_number: int) -> bool:
    return every > 0 and request_number % every == 0


@dataclass(frozen=True)
class Faults:
    """Which requests fail, and how. Every fault is off by default.

    Attributes:
        rate_limit_every: Every Nth request gets a 429 with ``Retry-After``,
            ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset`` (Unix time in seconds when
            ``Retry-After`` ends) headers. 0 turns it off.
        retry_after_seconds: Value of ``Retry-After`` in a 429, in whole seconds.
        server_error_burst: ``(start, length, status)``: requests ``start`` to
            ``start + length - 1`` get ``status``, a 5xx code.
        drop_connection_every: Every Nth request gets its socket closed with no response.
        truncate_json_every: Every Nth request whose response is a 200 gets the first half
            of its JSON body, with a ``Content-Length`` that matches the cut body, so the
            client reads a complete response that does not parse.
        slow_seconds: Delay before responding to the slow requests, in seconds.
        slow_every: Every Nth request is slow. The default 1 makes every request slow
            once ``slow_seconds`` is set.
        ignore_start_id: Serve the first page of backups whatever the ``startId`` parameter is,
            like a server that ignores the parameter.
    """

    rate_limit_every: int = 0
    retry_after_seconds: int = 1
    server_error_burst: tuple[int, int, int] | None = None
    drop_connection_every: int = 0
    truncate_json_every: int = 0
    slow_seconds: float = 0.0
    slow_every: int = 1
    ignore_start_id: bool = False

    def __post_init__(self) -> None:
        for name in ("rate_limit_every", "drop_connection_every", "truncate_json_every", "slow_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} is invalid: expected 0 (off) or a positive count")
        if self.retry_after_seconds < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after_seconds and slow_seconds must not be negative")
        if self.server_error_burst is not None:
            start, length, status = self.server_error_burst
            if start < 1 or length < 0 or not 500 <= status <= 599:
                raise ValueError(
                    f"server_error_burst={self.server_error_burst} is invalid: "
                    "expected (first request number >= 1, length >= 0, a 5xx status)"
                )

    def replacement_for(self, request_number: int) -> FaultKind | None:
        """Return the fault that replaces the response to this request, or None for the normal response."""
        if _fires_every(self.drop_connection_every, request_number):
            return FaultKind.DROP_CONNECTION
        if self.server_error_burst is not None:
            start, length, _ = self.server_error_burst
            if start <= request_number < start + length:
                return FaultKind.SERVER_ERROR
        if _fires_every(self.rate_limit_every, request_number):
            return FaultKind.RATE_LIMIT
        return None

    @property
    def server_error_status(self) -> int:
        """The status code of the server error burst, 500 when no burst is set."""
        return self.server_error_burst[2] if self.server_error_burst is not None else 500

    def delay_for(self, request_number: int) -> float:
        """Return the seconds to wait before responding to this request."""
        if self.slow_seconds and _fires_every(self.slow_every, request_number):
            return self.slow_seconds
        return 0.0

    def truncates(self, request_number: int) -> bool:
        """Return whether a 200 response to this request has its body cut in half."""
        return _fires_every(self.truncate_json_every, request_number)
