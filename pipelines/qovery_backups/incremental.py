"""One database's incremental window over its backup list.

The API lists backups newest first by `created_at` and has no server-side filter, while a
backup's `status` and `updated_at` keep changing after it is created. Each database therefore
keeps, in the resource state:

- `cursor`: the highest `updated_at` seen (`created_at` for a backup without `updated_at`);
- `pending`: the backups that were still in flight (QUEUED, ONGOING, …) at the last run, by id,
  with their `created_at`.

A run reads pages until it has passed both `cursor - lookback` and the oldest pending backup.
Every backup that can still change is therefore read again however deep it sits. A run where
nothing is in flight costs one page while fewer than 20 backups fall inside the lookback.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from qovery_backups import settings
from qovery_backups.timeutil import format_timestamp, parse_timestamp

logger = logging.getLogger(__name__)

# `status.status_details.status` values of a backup that has not reached its outcome yet.
# Values Qovery adds later count as finished, so that an unknown value never makes every run
# page deep; the full history is re-read on `--reset`.
IN_FLIGHT_STATUSES = frozenset({"QUEUED", "ONGOING", "EXECUTING", "CANCELING"})


def cursor_value(backup: Mapping[str, Any]) -> datetime | None:
    """Return a backup's cursor value: `updated_at`, or `created_at` when it has none."""
    return parse_timestamp(backup.get("updated_at")) or parse_timestamp(backup.get("created_at"))


def is_in_flight(backup: Mapping[str, Any]) -> bool:
    status = backup.get("status")
    details = status.get("status_details") if isinstance(status, Mapping) else None
    value = details.get("status") if isinstance(details, Mapping) else None
    return value in IN_FLIGHT_STATUSES


class BackupWindow:
    """Decides which backups of one database to load and when its paging may stop.

    Args:
        state: the database's entry in the resource state (`cursor`, `pending`), or None for
            a database never loaded, whose whole history is read.
        lookback: how far before the cursor backups are loaded again.
        max_pending_age: a backup still in flight this long before the cursor stops being
            followed, so that a stuck backup cannot make every run page deep forever.
    """

    def __init__(
        self,
        state: Mapping[str, Any] | None,
        lookback: timedelta,
        max_pending_age: timedelta = settings.MAX_PENDING_AGE,
        full_scan_every: timedelta | None = None,
        force_full_scan: bool = False,
        now: datetime | None = None,
    ) -> None:
        state = state or {}
        self.now = now or datetime.now(timezone.utc)
        self.cursor = parse_timestamp(state.get("cursor"))
        self.last_full_scan = parse_timestamp(state.get("last_full_scan"))
        self.full_scan = (
            force_full_scan
            or self.cursor is None
            or self.last_full_scan is None
            or (full_scan_every is not None and self.now - self.last_full_scan >= full_scan_every)
        )
        # A full scan reads and loads every page; the window below then only tracks cursors.
        self.cutoff = self.cursor - lookback if self.cursor and not self.full_scan else None
        self.pending: dict[str, datetime] = {}
        for backup_id, created in (state.get("pending") or {}).items():
            created_at = parse_timestamp(created)
            if created_at is None:
                continue
            if self.cursor and created_at < self.cursor - max_pending_age:
                logger.warning(
                    "Backup %s has been in flight for more than %s; it is no longer re-read on "
                    "every run (run with --reset to reload the database's full history)",
                    backup_id,
                    max_pending_age,
                )
                continue
            self.pending[backup_id] = created_at
        self.floor = self.cutoff
        if self.floor and self.pending and not self.full_scan:
            self.floor = min(self.floor, min(self.pending.values()))
        self._newest = self.cursor
        self._in_flight: dict[str, str] = {}


    def select(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return the backups of a page to load, and note the page's cursor values.

        A backup is loaded when it is new, changed or in flight since the last run: its cursor
        value is inside the lookback, it was pending, or there is no cursor yet. A backup whose
        timestamps cannot be parsed is loaded too: it is never dropped.
        """
        selected = []
        for backup in page:
            value = cursor_value(backup)
            if value and (self._newest is None or value > self._newest):
                self._newest = value
            if is_in_flight(backup):
                self._in_flight[backup["id"]] = backup.get("created_at") or ""
            if (
                self.cutoff is None
                or value is None
                or value >= self.cutoff
                or backup["id"] in self.pending
            ):
                selected.append(backup)
        return selected

    def passed_floor(self, page: list[dict[str, Any]]) -> bool:
        """Return whether the page reaches backups older than anything that may have changed.

        Every later page contains backups created even earlier, because the API lists newest
        first by `created_at` and `updated_at` is never earlier than `created_at`.
        """
        if self.floor is None:
            return False
        created = [parse_timestamp(backup.get("created_at")) for backup in page]
        oldest = min((value for value in created if value), default=None)
        return oldest is not None and oldest < self.floor

    def state(self) -> dict[str, Any]:
        """Return the database's state entry after a complete read."""
        last_full_scan = self.now if self.full_scan else self.last_full_scan
        return {
            "cursor": format_timestamp(self._newest) if self._newest else None,
            "pending": dict(self._in_flight),
            "last_full_scan": format_timestamp(last_full_scan) if last_full_scan else None,
        }

    def describe(self) -> str:
        if self.cursor is None:
            return "no cursor yet, reading its full history"
        if self.full_scan:
            return (
                "full scan: reading every page to merge late changes and find deleted backups "
                f"(last full scan {format_timestamp(self.last_full_scan) if self.last_full_scan else 'never'})"
            )
        text = (
            f"incremental on updated_at from {format_timestamp(self.cutoff)} "
            f"(cursor {format_timestamp(self.cursor)} minus the lookback)"
        )
        if self.pending:
            text += f", following {len(self.pending)} backups in flight back to " + (
                format_timestamp(min(self.pending.values()))
            )
        return text
