"""Per-database results of one run: the numbers behind the CLI's summary and its exit code."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from qovery_backups.client import RequestStats

OUTCOME_LOADED = "loaded"
OUTCOME_SKIPPED = "skipped"
OUTCOME_FAILED = "failed"


@dataclass
class DatabaseReport:
    """One database's part of a run.

    Attributes:
        outcome: `loaded`; `skipped` when the API does not serve its backups (a normal case);
            `failed` when its backups could not be read and the user should act.
        pages: backup list pages read.
        rows: backups handed to dlt (new or changed, or re-read inside the lookback window).
        stop_reason: why paging ended, or the error that ended it.
        cursor_before / cursor_after: the database's `updated_at` cursor around the run.
        full_scan: whether every page was read (first read, cadence, or `--full-scan`).
        marked_deleted: backups this run's full scan found missing from the API.
    """

    database_id: str
    name: str | None = None
    outcome: str = OUTCOME_LOADED
    pages: int = 0
    rows: int = 0
    stop_reason: str = ""
    message: str = ""
    cursor_before: str | None = None
    cursor_after: str | None = None
    full_scan: bool = False
    marked_deleted: int = 0


@dataclass
class RunSummary:
    """Reports of every database a run touched, filled in by the source as it extracts."""

    databases: dict[str, DatabaseReport] = field(default_factory=dict)
    requests: RequestStats = field(default_factory=RequestStats)
    # The databases the run loads; the source sets it, and `run_source` extracts them in
    # batches through it.
    catalog: Any = None
    started_at: Any = None
    databases_marked_deleted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def report(self, database_id: str, name: str | None = None) -> DatabaseReport:
        """Return the report of a database, creating it on first use."""
        with self._lock:
            if database_id not in self.databases:
                self.databases[database_id] = DatabaseReport(database_id, name)
            return self.databases[database_id]

    def with_outcome(self, outcome: str) -> list[DatabaseReport]:
        return [report for report in self.databases.values() if report.outcome == outcome]

    def label(self, report: DatabaseReport) -> str:
        return f"{report.name} ({report.database_id})" if report.name else report.database_id
