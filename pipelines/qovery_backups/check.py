"""The freshness check: which databases lack a recent successful backup, from the loaded tables.

The check runs the SELECT of the `database_backup_health` view with its own `now` and max age,
so it needs only the loaded tables (not the views) and makes no API call.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import dlt
from dlt.destinations.exceptions import DatabaseException

from qovery_backups import analytics, settings
from qovery_backups.discovery import normalize_choices
from qovery_backups.timeutil import parse_duration, parse_timestamp

logger = logging.getLogger(__name__)

EXIT_FRESH = 0
EXIT_NOT_FRESH = 1
EXIT_CHECK_ERROR = 2

# Statuses the check reports, in the order the text output lists them.
PROBLEM_STATUSES = (analytics.STATUS_FAILING, analytics.STATUS_STALE, analytics.STATUS_NEVER)


class CheckDataError(Exception):
    """The loaded data cannot be checked: no tables yet, or the destination failed."""


@dataclass(frozen=True)
class DatabaseFreshness:
    """One database's row of the health query, with the fields the check prints."""

    database_id: str
    database_name: str | None
    environment_name: str | None
    environment_mode: str | None
    project_name: str | None
    status: str
    last_success_at: datetime | None
    last_success_age_sec: float | None
    last_failure_at: datetime | None

    @property
    def label(self) -> str:
        return self.database_name or self.database_id


@dataclass
class FreshnessReport:
    """The result of one check: every database that passed the filters, and the parameters."""

    as_of: datetime
    max_age: timedelta
    databases: list[DatabaseFreshness] = field(default_factory=list)

    @property
    def problems(self) -> list[DatabaseFreshness]:
        order = {status: index for index, status in enumerate(PROBLEM_STATUSES)}
        found = [database for database in self.databases if database.status in order]
        return sorted(found, key=lambda database: (order[database.status], database.label))

    @property
    def exit_code(self) -> int:
        return EXIT_NOT_FRESH if self.problems else EXIT_FRESH


def check_freshness(
    pipeline: dlt.Pipeline,
    max_age: timedelta = analytics.DEFAULT_MAX_AGE,
    now: datetime | None = None,
    environment_modes: Iterable[str] | None = None,
    project_names: Iterable[str] | None = None,
) -> FreshnessReport:
    """Read the loaded tables and return each database's backup freshness at `now`.

    Args:
        pipeline: a pipeline attached to the loaded dataset.
        max_age: how old the last successful backup may be before a database is stale.
        now: the moment ages are measured from; the current UTC time by default.
        environment_modes: keep databases of these environment modes (case-insensitive).
            A database loaded without discovery has no mode and is then left out.
        project_names: keep databases of these projects (case-insensitive), likewise.

    Raises:
        CheckDataError: when the dataset has no backups or databases table, or a query fails.
    """
    now = now or datetime.now(timezone.utc)
    try:
        dialect, tables = analytics.inspect_dataset(pipeline)
    except analytics.ViewsNotCreated as reason:
        raise CheckDataError(f"Cannot check freshness: {reason}.") from None
    if not tables.has_data_tables:
        raise CheckDataError(
            f"No {settings.BACKUPS_TABLE} or {settings.DATABASES_TABLE} table in dataset "
            f"{pipeline.dataset_name} of pipeline {pipeline.pipeline_name}: run "
            "`qovery-backups run` first, or pass the --pipeline-name, --dataset-name and "
            "--destination the run used."
        )

    sql = analytics.health_sql(dialect, tables, max_age, now)
    try:
        with pipeline.sql_client() as client:
            with client.execute_query(sql) as cursor:
                columns = [description[0] for description in cursor.description]
                rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    except DatabaseException as error:
        raise CheckDataError(f"Reading dataset {pipeline.dataset_name} failed: {error}") from error

    modes = {mode.casefold() for mode in normalize_choices(environment_modes)}
    projects = {name.casefold() for name in normalize_choices(project_names)}
    databases = [
        _freshness(row)
        for row in rows
        if _matches(row["environment_mode"], modes) and _matches(row["project_name"], projects)
    ]
    databases.sort(key=lambda database: database.label)
    logger.info(
        "Checked %d databases as of %s with max age %s: %d need attention",
        len(databases),
        now.isoformat(),
        format_age(max_age.total_seconds()),
        sum(1 for database in databases if database.status in PROBLEM_STATUSES),
    )
    return FreshnessReport(as_of=now, max_age=max_age, databases=databases)


def _matches(value: str | None, allowed: set[str]) -> bool:
    return not allowed or (value or "").casefold() in allowed


def _freshness(row: dict[str, Any]) -> DatabaseFreshness:
    return DatabaseFreshness(
        database_id=row["database_id"],
        database_name=row["database_name"],
        environment_name=row["environment_name"],
        environment_mode=row["environment_mode"],
        project_name=row["project_name"],
        status=row["status"],
        last_success_at=_utc(row["last_success_at"]),
        last_success_age_sec=row["last_success_age_sec"],
        last_failure_at=_utc(row["last_failure_at"]),
    )


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(timezone.utc) if value is not None else None


def format_text(report: FreshnessReport) -> str:
    """Render the report for a terminal: a headline, then one line per database in trouble."""
    checked = len(report.databases)
    managed = sum(1 for database in report.databases if database.status == analytics.STATUS_MANAGED)
    max_age = format_age(report.max_age.total_seconds())
    as_of = _format_time(report.as_of)
    problems = report.problems
    if not problems:
        text = (
            f"All {checked - managed} databases checked have a successful backup younger than "
            f"{max_age} (as of {as_of})."
        )
        if managed:
            text += f" {managed} MANAGED databases were left out: their cloud provider backs them up."
        return text
    lines = [
        f"{len(problems)} of {checked - managed} databases need attention (max age {max_age}, as of {as_of}):"
    ]
    width = max(len(database.label) for database in problems)
    for database in problems:
        lines.append(
            f"  {database.status.replace('_', ' ').upper():<15}  {database.label:<{width}}  "
            f"{_describe(database)}"
        )
    return "\n".join(lines)


def _describe(database: DatabaseFreshness) -> str:
    where = ", ".join(
        part
        for part in (
            database.environment_mode,
            f"project {database.project_name}" if database.project_name else None,
        )
        if part
    )
    if database.last_success_at is None:
        success = "no successful backup loaded"
    else:
        age = format_age(database.last_success_age_sec or 0.0)
        success = f"last success {_format_time(database.last_success_at)} ({age} ago)"
    details = [success]
    if database.status == analytics.STATUS_FAILING and database.last_failure_at is not None:
        details.append(f"last failure {_format_time(database.last_failure_at)}")
    text = "; ".join(details)
    return f"{text} [{where}]" if where else text


def format_json(report: FreshnessReport) -> str:
    """Render the report as a JSON document with every checked database and its status."""

    def encode(database: DatabaseFreshness) -> dict[str, Any]:
        row = asdict(database)
        for key in ("last_success_at", "last_failure_at"):
            row[key] = row[key].isoformat() if row[key] is not None else None
        return row

    document = {
        "as_of": report.as_of.astimezone(timezone.utc).isoformat(),
        "max_age_sec": report.max_age.total_seconds(),
        "checked": len(report.databases),
        "problems": [encode(database) for database in report.problems],
        "databases": [encode(database) for database in report.databases],
    }
    return json.dumps(document, indent=2)


def format_age(seconds: float) -> str:
    """Format a number of seconds as a short age: `45m`, `26h`, `3d 4h`."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h {minutes % 60}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def _format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def parse_max_age(text: str) -> timedelta:
    """Parse a command-line max age (`90m`, `26h`, `2d`) for argparse, rejecting zero."""
    try:
        max_age = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if max_age <= timedelta(0):
        raise argparse.ArgumentTypeError(f"Invalid max age {text!r}: it must be positive.")
    return max_age


def parse_as_of(text: str) -> datetime:
    """Parse a command-line ISO 8601 timestamp for argparse; one without an offset is UTC."""
    moment = parse_timestamp(text)
    if moment is None:
        raise argparse.ArgumentTypeError(
            f"Invalid timestamp {text!r}: use ISO 8601, for example 2026-11-20T06:00:00Z."
        )
    return moment
