"""The dlt source for Qovery database backups.

Resources:
    databases: one row per discovered database with its environment, project and
        organization, primary key `id`, merged.
    backups: one row per backup, primary key `id`, merged. The nested `status` object is
        flattened into `status__…` columns and `status.steps.details` becomes the nested table
        `backups__status__steps__details`, whose rows are replaced whenever their backup is.

Secrets: `api_token` under `[sources.qovery]` (env `SOURCES__QOVERY__API_TOKEN`).

API quirks this source handles:
    - `GET /database/{id}/backup` lists the 20 newest backups first (by `created_at`) with no
      server-side filter and no last-page flag; see `pagination` for the stop rules.
    - A backup's `status` and `updated_at` change after it is created, and `updated_at` is
      optional: a backup without it uses `created_at` as its cursor value.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, List, Optional, Sequence

import dlt
from dlt.sources import DltResource

from qovery_backups import settings
from qovery_backups.client import (
    QoveryClient,
    QoveryConfigurationError,
    QoveryError,
    QoveryForbiddenError,
    QoveryNotFoundError,
    QoveryRetriableError,
    QoveryResponseError,
    RetryPolicy,
)
from qovery_backups.concurrency import fan_in
from qovery_backups.discovery import (
    ENVIRONMENT_MODES,
    DatabaseCatalog,
    DatabaseInfo,
    DiscoveryFilters,
    normalize_choices,
)
from qovery_backups.incremental import BackupWindow
from qovery_backups.pacing import RequestPacer
from qovery_backups.pagination import StartIdPaginator
from qovery_backups.summary import (
    OUTCOME_FAILED,
    OUTCOME_LOADED,
    OUTCOME_SKIPPED,
    DatabaseReport,
    RunSummary,
)
from qovery_backups.timeutil import parse_duration

logger = logging.getLogger(__name__)

STOP_LOOKBACK = "rest is older than the lookback window"

# Column types declared up front, so that timestamps are typed as timestamps and a column
# that is null in every row of the first load (a fresh database with only ongoing backups
# has no `total_duration_sec`) exists all the same. Enum values stay text: Qovery adds values.
BACKUP_COLUMNS: dict[str, dict[str, Any]] = {
    "id": {"data_type": "text", "nullable": False},
    "database_id": {"data_type": "text", "nullable": False},
    "name": {"data_type": "text"},
    "message": {"data_type": "text"},
    "created_at": {"data_type": "timestamp", "nullable": False},
    "updated_at": {"data_type": "timestamp"},
    "status__id": {"data_type": "text"},
    "status__state": {"data_type": "text"},
    "status__service_deployment_status": {"data_type": "text"},
    "status__last_deployment_date": {"data_type": "timestamp"},
    "status__is_part_last_deployment": {"data_type": "bool"},
    "status__steps__total_duration_sec": {"data_type": "bigint"},
    "status__steps__total_computing_duration_sec": {"data_type": "bigint"},
    "status__execution_id": {"data_type": "text"},
    "status__status_details__action": {"data_type": "text"},
    "status__status_details__status": {"data_type": "text"},
    "status__status_details__sub_action": {"data_type": "text"},
    "status__deployment_request_id": {"data_type": "text"},
    "status__deployment_requests_count": {"data_type": "bigint"},
    # Set by a full scan on a backup the API no longer lists; NULL while it is listed.
    "deleted_at": {"data_type": "timestamp"},
}

# dlt 1.31 needs `name` inside each column of a nested hint.
BACKUP_STEP_COLUMNS: dict[str, dict[str, Any]] = {
    "step_name": {"name": "step_name", "data_type": "text"},
    "status": {"name": "status", "data_type": "text"},
    "duration_sec": {"name": "duration_sec", "data_type": "bigint"},
}


DATABASE_COLUMNS: dict[str, dict[str, Any]] = {
    "id": {"data_type": "text", "nullable": False},
    "name": {"data_type": "text"},
    "type": {"data_type": "text"},
    "version": {"data_type": "text"},
    "mode": {"data_type": "text"},
    "accessibility": {"data_type": "text"},
    "instance_type": {"data_type": "text"},
    "storage": {"data_type": "bigint"},
    "created_at": {"data_type": "timestamp"},
    "updated_at": {"data_type": "timestamp"},
    "environment_id": {"data_type": "text"},
    "environment_name": {"data_type": "text"},
    "environment_mode": {"data_type": "text"},
    "project_id": {"data_type": "text"},
    "project_name": {"data_type": "text"},
    "organization_id": {"data_type": "text"},
    # Set when discovery no longer finds the database; NULL while it is found.
    "deleted_at": {"data_type": "timestamp"},
}


@dlt.source(name=settings.SOURCE_NAME, section=settings.SOURCE_NAME)
def qovery_source(
    api_token: str = dlt.secrets.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    organization_id: Optional[str] = None,
    database_ids: Optional[List[str]] = None,
    environment_modes: Optional[List[str]] = None,
    project_names: Optional[List[str]] = None,
    database_types: Optional[List[str]] = None,
    lookback: str = settings.DEFAULT_LOOKBACK,
    full_scan_every: str = settings.FULL_SCAN_EVERY,
    full_scan: bool = False,
    auth_scheme: Optional[str] = None,
    connect_timeout: float = settings.CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = settings.READ_TIMEOUT_SECONDS,
    max_attempts: int = settings.MAX_ATTEMPTS,
    max_retry_wait: float = settings.MAX_RETRY_WAIT_SECONDS,
    retry_backoff: float = settings.RETRY_BACKOFF_SECONDS,
    requests_per_hour: int = settings.REQUESTS_PER_HOUR,
    concurrency: int = settings.CONCURRENCY,
    summary: Optional[RunSummary] = None,
) -> Sequence[DltResource]:
    """Load the backup history of Qovery databases, and the databases themselves.

    Which databases: with `organization_id`, every database of that organization, narrowed by
    `database_ids` and the filters when set. With only `database_ids`, exactly those. With
    neither, the organization the token sees, if it sees exactly one.

    Args:
        api_token: a Qovery API token (`qov_…`, sent as `Token`) or a JWT (sent as `Bearer`).
        base_url: the API root; a local simulator's URL in tests and the demo.
        organization_id: the organization whose databases are discovered.
        database_ids: the databases whose backups are loaded, or that narrow discovery.
        environment_modes: keep databases of these environment modes (PRODUCTION, STAGING,
            DEVELOPMENT, PREVIEW); discovery only.
        project_names: keep databases of these projects; discovery only.
        database_types: keep databases of these types (POSTGRESQL, MYSQL, MONGODB, REDIS);
            discovery only.
        lookback: how far before each database's cursor a run re-reads, as a duration
            (`6h`, `90m`, `2d`), so that late status changes are merged. Backups still in
            flight at the last run are read again however old they are.
        full_scan_every: how often each database's whole history is read again, as a
            duration, to merge changes older than the lookback and mark deleted backups.
        full_scan: read every database's whole history in this run.
        auth_scheme: `Token` or `Bearer` to override the scheme detected from the token.
        connect_timeout: seconds to wait for a connection to the API.
        read_timeout: seconds to wait for a response once connected.
        max_attempts: attempts per request on 429, 5xx, connection failures and unreadable
            bodies.
        max_retry_wait: the most seconds one request may wait across its retries.
        retry_backoff: the first wait before a retry, in seconds; each later wait doubles.
        requests_per_hour: the request budget this run keeps to (0 turns pacing off).
        concurrency: how many databases are read at once; all share the request budget.
        summary: filled in with what each database's extraction did.
    """
    lookback_delta = _parse_duration_setting("lookback", lookback)
    full_scan_delta = _parse_duration_setting("full_scan_every", full_scan_every)
    _check_number("connect_timeout", connect_timeout, minimum=0.001)
    _check_number("read_timeout", read_timeout, minimum=0.001)
    _check_number("max_attempts", max_attempts, minimum=1)
    _check_number("max_retry_wait", max_retry_wait, minimum=0)
    _check_number("retry_backoff", retry_backoff, minimum=0)
    _check_number("requests_per_hour", requests_per_hour, minimum=0)
    _check_number("concurrency", concurrency, minimum=1)
    ids = _validate_ids(normalize_choices(database_ids), "database_ids", "DATABASE_IDS")
    if organization_id:
        (organization_id,) = _validate_ids(
            (organization_id.strip(),), "organization_id", "ORGANIZATION_ID"
        )
    modes = normalize_choices(environment_modes)
    unknown_modes = [mode for mode in modes if mode.upper() not in ENVIRONMENT_MODES]
    if unknown_modes:
        raise QoveryConfigurationError(
            f"Invalid environment mode {unknown_modes[0]!r}: use one of "
            f"{', '.join(ENVIRONMENT_MODES)}.",
            hint="Fix --environment-mode, SOURCES__QOVERY__ENVIRONMENT_MODES or "
            "environment_modes under [sources.qovery].",
        )
    filters = DiscoveryFilters(
        environment_modes=modes,
        project_names=normalize_choices(project_names),
        database_types=normalize_choices(database_types),
    )
    if auth_scheme not in (None, "", "Token", "Bearer"):
        raise QoveryConfigurationError(
            f"Invalid auth_scheme {auth_scheme!r}: use Token or Bearer, or leave it unset to "
            "detect it from the token.",
            hint="Fix SOURCES__QOVERY__AUTH_SCHEME or auth_scheme under [sources.qovery].",
        )
    client = QoveryClient(
        base_url,
        api_token,
        auth_scheme=auth_scheme or None,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retry=RetryPolicy(
            max_attempts=max_attempts,
            backoff_seconds=retry_backoff,
            max_total_wait_seconds=max_retry_wait,
        ),
        pacer=RequestPacer(requests_per_hour),
    )
    summary = summary if summary is not None else RunSummary()
    client.stats = summary.requests
    catalog = DatabaseCatalog(
        client,
        organization_id=(organization_id or "").strip() or None,
        database_ids=tuple(ids),
        filters=filters,
    )
    summary.catalog = catalog
    scan = ScanPolicy(
        lookback_delta, full_scan_delta, bool(full_scan), datetime.now(timezone.utc), concurrency
    )
    summary.started_at = scan.now
    return [databases_resource(catalog), backups_resource(client, catalog, scan, summary)]


@dataclass(frozen=True)
class ScanPolicy:
    """Reading rules of one run: the lookback, the full-scan cadence, the run's time, concurrency."""

    lookback: timedelta
    full_scan_every: timedelta
    force_full_scan: bool
    now: datetime
    concurrency: int = settings.CONCURRENCY

    def window(self, state: dict[str, Any] | None) -> BackupWindow:
        return BackupWindow(
            state,
            self.lookback,
            full_scan_every=self.full_scan_every,
            force_full_scan=self.force_full_scan,
            now=self.now,
        )


def databases_resource(catalog: DatabaseCatalog) -> DltResource:
    """Build the `databases` resource: one row per discovered database, merged on `id`.

    Databases given only by id are not described by the API call that lists backups, so
    without discovery this resource yields nothing. A database that disappears keeps its row.
    """

    def databases() -> Iterator[list[dict[str, Any]]]:
        if catalog.uses_discovery:
            yield [{**database.as_row(), "deleted_at": None} for database in catalog.databases()]

    return dlt.resource(
        databases,
        name=settings.DATABASES_TABLE,
        primary_key="id",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns=DATABASE_COLUMNS,
    )


def backups_resource(
    client: QoveryClient,
    catalog: DatabaseCatalog,
    scan: ScanPolicy,
    summary: RunSummary,
) -> DltResource:
    """Build the `backups` resource, which keeps one `updated_at` cursor per database.

    One resource reads every database, and its state maps each database id to that
    database's own cursor and in-flight backups (see `incremental`). A database whose newest
    backup is older than another database's cursor therefore still gets its new backups, and a
    database added later starts with no cursor and gets its full history. Up to
    `scan.concurrency` databases are read at once.
    """

    def backups() -> Iterator[list[dict[str, Any]]]:
        states: dict[str, dict[str, Any]] = dlt.current.resource_state().setdefault(
            "databases", {}
        )
        for database_id in catalog.missing_ids:
            report = summary.report(database_id)
            report.outcome = OUTCOME_FAILED
            report.stop_reason = "not found"
            report.message = (
                f"database {database_id} is configured but was not found in organization "
                f"{catalog.organization_id}. Check the id and the organization."
            )
            logger.error("Database %s: %s", database_id, report.message)
        databases = catalog.selected()
        for database in databases:
            # Created in catalog order, so the summary lists databases in a stable order
            # whichever worker finishes first.
            summary.report(database.id, database.name)

        def read(database: DatabaseInfo) -> Iterator[list[dict[str, Any]]]:
            catalog.started_ids.append(database.id)
            report = summary.report(database.id)
            return _read_database(client, database, catalog.uses_discovery, states, scan, report)

        yielded = 0

        def may_start() -> bool:
            if catalog.max_databases and len(catalog.started_ids) >= catalog.max_databases:
                return False
            return not catalog.max_backups or yielded < catalog.max_backups

        for page in fan_in(databases, read, workers=scan.concurrency, may_start=may_start):
            yielded += len(page)
            yield page

    return dlt.resource(
        backups,
        name=settings.BACKUPS_TABLE,
        primary_key="id",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns=BACKUP_COLUMNS,
        nested_hints={"status__steps__details": {"columns": BACKUP_STEP_COLUMNS}},
    )


def _read_database(
    client: QoveryClient,
    database: DatabaseInfo,
    discovered: bool,
    states: dict[str, dict[str, Any]],
    scan: ScanPolicy,
    report: DatabaseReport,
) -> Iterator[list[dict[str, Any]]]:
    """Yield one database's new and changed backups page by page, then store its new state.

    The state is stored only after a complete read, so a database that fails part way is read
    again from its old cursor on the next run.
    """
    database_id = database.id
    path = f"/database/{database_id}/backup"
    window = scan.window(states.get(database_id))
    report.cursor_before = (states.get(database_id) or {}).get("cursor")
    logger.info(
        "Database %s: %s", database_id, window.describe(), extra={"database_id": database_id}
    )

    paginator = StartIdPaginator(path)
    try:
        while paginator.has_next:
            body = client.get_json(path, paginator.next_params())
            page = paginator.update(body)
            report.pages = paginator.pages
            rows = [
                {**backup, "database_id": database_id, "deleted_at": None}
                for backup in window.select(page)
            ]
            if rows:
                report.rows += len(rows)
                yield rows
            logger.debug(
                "Database %s: page %d held %d backups, %d selected",
                database_id,
                paginator.pages,
                len(page),
                len(rows),
                extra={"database_id": database_id},
            )
            if window.passed_floor(page):
                paginator.stop(STOP_LOOKBACK)
    except QoveryNotFoundError as error:
        if discovered:
            _skip_missing(database, report)
        else:
            _fail(report, error, "not found", logging.ERROR)
        return
    except QoveryForbiddenError as error:
        _fail(report, error, "forbidden", logging.WARNING)
        return
    except QoveryRetriableError as error:
        _fail(report, error, "failed", logging.ERROR, error.status or "no response")
        return
    except QoveryResponseError as error:
        _fail(report, error, "failed", logging.ERROR, "unusable response")
        return

    report.outcome = OUTCOME_LOADED
    report.full_scan = window.full_scan
    report.stop_reason = paginator.stop_reason or ""
    states[database_id] = window.state()
    report.cursor_after = states[database_id]["cursor"]
    logger.info(
        "Database %s: %d pages, %d backups selected, stopped on %s, cursor now %s",
        database_id,
        report.pages,
        report.rows,
        report.stop_reason,
        report.cursor_after,
        extra={"database_id": database_id},
    )


def _skip_missing(database: DatabaseInfo, report: DatabaseReport) -> None:
    report.outcome = OUTCOME_SKIPPED
    report.stop_reason = "skipped (404)"
    if database.is_managed:
        report.message = "backups are managed by the cloud provider (404 on the backup list)"
        logger.info(
            "Database %s: skipped, %s",
            database.id,
            report.message,
            extra={"database_id": database.id},
        )
    else:
        report.message = "404 on the backup list: the database was probably deleted since discovery"
        logger.warning(
            "Database %s: skipped, %s",
            database.id,
            report.message,
            extra={"database_id": database.id},
        )


def _fail(
    report: DatabaseReport,
    error: QoveryError,
    reason: str,
    level: int,
    detail: object = None,
) -> None:
    # The database's cursor stays where it was, so the next run reads it again; rows
    # already yielded are true and are loaded with the others.
    report.outcome = OUTCOME_FAILED
    report.stop_reason = f"{reason} ({detail or error.status})"
    report.message = str(error)
    logger.log(
        level,
        "Database %s: backups not loaded: %s",
        report.database_id,
        error,
        extra={"database_id": report.database_id},
    )


def _check_number(setting: str, value: float, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise QoveryConfigurationError(
            f"Invalid {setting} {value!r}: it must be a number of at least {minimum}.",
            hint=f"Fix SOURCES__QOVERY__{setting.upper()} or {setting} under [sources.qovery].",
        )


def _parse_duration_setting(setting: str, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise QoveryConfigurationError(
            f"Invalid {setting}: {error}",
            hint=f"Fix --{setting.replace('_', '-')}, SOURCES__QOVERY__{setting.upper()} or "
            f"{setting} under [sources.qovery].",
        ) from None


def _validate_ids(ids: Sequence[str], setting: str, env_suffix: str) -> list[str]:
    """Return the ids in canonical lowercase form, or raise naming the first invalid one."""
    invalid = [value for value in ids if not _is_uuid(value)]
    if invalid:
        raise QoveryConfigurationError(
            f"Invalid {setting} value {invalid[0]!r}: Qovery ids are UUIDs, such as "
            "3f6d0a8e-5b7c-4d2e-9f1a-2b3c4d5e6f70.",
            hint=f"Fix SOURCES__QOVERY__{env_suffix} or {setting} under [sources.qovery] in "
            ".dlt/config.toml, or the matching CLI option. The Qovery console shows ids in "
            "its URLs.",
        )
    return list(dict.fromkeys(str(uuid.UUID(value)) for value in ids))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


