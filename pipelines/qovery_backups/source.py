"""The dlt source for Qovery database backups.

Resources:
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
from datetime import datetime, timedelta
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
from qovery_backups.pagination import StartIdPaginator
from qovery_backups.summary import (
    OUTCOME_FAILED,
    OUTCOME_LOADED,
    DatabaseReport,
    RunSummary,
)
from qovery_backups.timeutil import format_timestamp, parse_duration, parse_timestamp

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
}

BACKUP_STEP_COLUMNS: dict[str, dict[str, Any]] = {
    "step_name": {"data_type": "text"},
    "status": {"data_type": "text"},
    "duration_sec": {"data_type": "bigint"},
}


@dlt.source(name=settings.SOURCE_NAME, section=settings.SOURCE_NAME)
def qovery_source(
    api_token: str = dlt.secrets.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    database_ids: Optional[List[str]] = None,
    lookback: str = "24h",
    auth_scheme: Optional[str] = None,
    request_timeout: float = settings.REQUEST_TIMEOUT_SECONDS,
    max_attempts: int = 5,
    summary: Optional[RunSummary] = None,
) -> Sequence[DltResource]:
    """Load the backup history of Qovery databases.

    Args:
        api_token: a Qovery API token (`qov_…`, sent as `Token`) or a JWT (sent as `Bearer`).
        base_url: the API root; a local simulator's URL in tests and the demo.
        database_ids: the databases whose backups are loaded.
        lookback: how far before each database's cursor a run re-reads, as a duration
            (`24h`, `90m`, `2d`), so that late status changes are merged.
        auth_scheme: `Token` or `Bearer` to override the scheme detected from the token.
        request_timeout: connect and read timeout of each request, in seconds.
        max_attempts: attempts per request on 429, 5xx and connection failures.
        summary: filled in with what each database's extraction did.
    """
    lookback_delta = _parse_lookback(lookback)
    ids = _validate_database_ids(database_ids)
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
        timeout=request_timeout,
        retry=RetryPolicy(max_attempts=max_attempts),
    )
    summary = summary if summary is not None else RunSummary()
    client.stats = summary.requests
    return [backups_resource(client, ids, lookback_delta, summary)]


def backups_resource(
    client: QoveryClient,
    database_ids: Sequence[str],
    lookback: timedelta,
    summary: RunSummary,
) -> DltResource:
    """Build the `backups` resource, which keeps one `updated_at` cursor per database.

    One resource reads every database, and its state maps each database id to that
    database's own cursor. A database whose newest backup is older than another database's
    cursor therefore still gets its new backups, and a database added later starts with no
    cursor and gets its full history.
    """

    def backups() -> Iterator[list[dict[str, Any]]]:
        cursors: dict[str, str] = dlt.current.resource_state().setdefault("cursors", {})
        for database_id in database_ids:
            report = summary.report(database_id)
            yield from _read_database(client, database_id, cursors, lookback, report)

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
    database_id: str,
    cursors: dict[str, str],
    lookback: timedelta,
    report: DatabaseReport,
) -> Iterator[list[dict[str, Any]]]:
    """Yield one database's new and changed backups page by page, then advance its cursor.

    Paging stops once a page reaches backups created before `cursor - lookback`: the API lists
    newest first by `created_at`, and `updated_at` is never earlier than `created_at`, so every
    later page holds only backups that have not changed since the last run, unless they changed
    after that window (see the README's limits).
    """
    path = f"/database/{database_id}/backup"
    cursor = parse_timestamp(cursors.get(database_id))
    cutoff = cursor - lookback if cursor else None
    report.cursor_before = cursors.get(database_id)
    if cursor:
        logger.info(
            "Database %s: incremental on updated_at from %s (cursor %s minus lookback %s)",
            database_id,
            format_timestamp(cutoff),
            report.cursor_before,
            lookback,
        )
    else:
        logger.info("Database %s: no cursor yet, reading its full history", database_id)

    paginator = StartIdPaginator(path)
    newest = cursor
    try:
        while paginator.has_next:
            body = client.get_json(path, paginator.next_params())
            page = paginator.update(body)
            report.pages = paginator.pages
            rows, oldest_created = _select_rows(page, database_id, cutoff)
            for row in page:
                value = cursor_value(row)
                if value and (newest is None or value > newest):
                    newest = value
            if rows:
                report.rows += len(rows)
                yield rows
            logger.debug(
                "Database %s: page %d held %d backups, %d selected",
                database_id,
                paginator.pages,
                len(page),
                len(rows),
            )
            if cutoff and oldest_created and oldest_created < cutoff:
                paginator.stop(STOP_LOOKBACK)
    except (QoveryForbiddenError, QoveryNotFoundError, QoveryRetriableError, QoveryResponseError) as error:
        # The database's cursor stays where it was, so the next run reads it again; rows
        # already yielded are true and are loaded with the others.
        report.outcome = OUTCOME_FAILED
        report.stop_reason = f"failed ({error.status or type(error).__name__})"
        report.message = str(error)
        logger.error("Database %s: backups not loaded: %s", database_id, error)
        return

    report.outcome = OUTCOME_LOADED
    report.stop_reason = paginator.stop_reason or ""
    if newest is not None:
        cursors[database_id] = format_timestamp(newest)
    report.cursor_after = cursors.get(database_id)
    logger.info(
        "Database %s: %d pages, %d backups selected, stopped on %s, cursor now %s",
        database_id,
        report.pages,
        report.rows,
        report.stop_reason,
        report.cursor_after,
    )


def cursor_value(backup: dict[str, Any]) -> datetime | None:
    """Return a backup's cursor value: `updated_at`, or `created_at` when it has none."""
    return parse_timestamp(backup.get("updated_at")) or parse_timestamp(backup.get("created_at"))


def _select_rows(
    page: list[dict[str, Any]], database_id: str, cutoff: datetime | None
) -> tuple[list[dict[str, Any]], datetime | None]:
    """Return the page's rows to load and the oldest `created_at` on the page.

    A row is loaded when its cursor value is inside the window (or there is no window yet).
    A row whose timestamps cannot be parsed is loaded too: it is never dropped.
    """
    rows = []
    oldest_created = None
    for backup in page:
        created = parse_timestamp(backup.get("created_at"))
        if created and (oldest_created is None or created < oldest_created):
            oldest_created = created
        value = cursor_value(backup)
        if cutoff is None or value is None or value >= cutoff:
            rows.append({**backup, "database_id": database_id})
    return rows, oldest_created


def _parse_lookback(lookback: str) -> timedelta:
    try:
        return parse_duration(lookback)
    except ValueError as error:
        raise QoveryConfigurationError(
            f"Invalid lookback: {error}",
            hint="Fix SOURCES__QOVERY__LOOKBACK or lookback under [sources.qovery].",
        ) from None


def _validate_database_ids(database_ids: Optional[Sequence[str]]) -> list[str]:
    if isinstance(database_ids, str):
        database_ids = database_ids.split(",")
    ids = [str(database_id).strip() for database_id in database_ids or []]
    ids = [database_id for database_id in ids if database_id]
    invalid = [database_id for database_id in ids if not _is_uuid(database_id)]
    if invalid:
        raise QoveryConfigurationError(
            f"Invalid database id {invalid[0]!r}: Qovery database ids are UUIDs, such as "
            "3f6d0a8e-5b7c-4d2e-9f1a-2b3c4d5e6f70.",
            hint="Fix SOURCES__QOVERY__DATABASE_IDS, database_ids under [sources.qovery] in "
            ".dlt/config.toml, or --database-id. The console shows a database's id in its URL.",
        )
    if not ids:
        raise QoveryConfigurationError(
            "No database to load: database_ids is empty.",
            hint="Set SOURCES__QOVERY__DATABASE_IDS (a JSON list or comma-separated ids), "
            "database_ids under [sources.qovery] in .dlt/config.toml, or pass --database-id.",
        )
    return list(dict.fromkeys(ids))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


__all__ = ["qovery_source", "backups_resource", "cursor_value", "QoveryError"]
