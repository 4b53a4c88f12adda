"""Parsing of API timestamps and of the duration strings used in settings and options."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DURATION_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse `90m`, `26h`, `2d`, `1w` or `30s` (or a number of seconds) into a timedelta.

    Raises:
        ValueError: when the value is not a non-negative duration in one of those forms.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION_PATTERN.match(str(value))
        if not match:
            raise ValueError(
                f"Invalid duration {value!r}: use a number followed by s, m, h, d or w, "
                "for example 90m, 26h or 2d."
            )
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"Invalid duration {value!r}: it must not be negative.")
    return timedelta(seconds=seconds)


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO 8601 timestamp into an aware UTC datetime, or return None if it is not one.

    Timestamps are compared as datetimes, never as strings, because `…:00Z` sorts after
    `…:00.500Z` as text.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_timestamp(value: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with microseconds and a `Z` suffix."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
