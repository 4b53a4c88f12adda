"""SQL views over the loaded backup tables, created in the dataset after each load.

Views:
    backup_runs: one row per backup with its database's names, an `outcome` (success, error,
        ongoing, other), start and finish times, duration, step count and failed steps.
    database_backup_health: one row per database (every row of `databases`, plus any
        `database_id` seen only in `backups`) with its last success, failure counts and rates
        over 7 and 30 days, median and p95 durations, and a `status` (see `HEALTH_STATUSES`).
    backup_daily: one row per database and UTC day, with backups per outcome and the median
        duration, for plotting.

The SQL is written once, in DuckDB's dialect, and translated by sqlglot for other
destinations. Each view reads the tables directly (none reads another view), so the views can
be dropped and created in any order. A table or column that is not loaded yet (`databases`
without discovery, the steps table before any backup has steps) is replaced by typed NULLs,
so the views exist and work from the first load on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

import dlt
import sqlglot
from dlt.destinations.exceptions import DatabaseException
from dlt.destinations.job_client_impl import SqlJobClientBase

from qovery_backups import settings
from qovery_backups.incremental import IN_FLIGHT_STATUSES

logger = logging.getLogger(__name__)

BACKUP_RUNS_VIEW = "backup_runs"
HEALTH_VIEW = "database_backup_health"
DAILY_VIEW = "backup_daily"
VIEW_NAMES = (BACKUP_RUNS_VIEW, HEALTH_VIEW, DAILY_VIEW)

# A database's last successful backup may be this old before its status becomes `stale`:
# a daily backup plus two hours of slack for queueing and a late schedule.
DEFAULT_MAX_AGE = timedelta(hours=26)

STATUS_OK = "ok"
STATUS_STALE = "stale"
STATUS_FAILING = "failing"
STATUS_NEVER = "never_backed_up"
STATUS_MANAGED = "managed"
HEALTH_STATUSES = (STATUS_OK, STATUS_STALE, STATUS_FAILING, STATUS_NEVER, STATUS_MANAGED)

# The SQL dialect the views are written in; sqlglot translates them for other destinations.
SOURCE_DIALECT = "duckdb"
# Dialects whose translated views the test suite runs. Others are translated on a best-effort
# basis, and a view that fails to create is logged without failing the load.
TESTED_DIALECTS = ("duckdb", "postgres")

# The columns each view reads, with the type used when a column or its table is missing.
SOURCE_COLUMNS: dict[str, dict[str, str]] = {
    settings.DATABASES_TABLE: {
        "id": "VARCHAR",
        "name": "VARCHAR",
        "type": "VARCHAR",
        "mode": "VARCHAR",
        "environment_name": "VARCHAR",
        "environment_mode": "VARCHAR",
        "project_name": "VARCHAR",
    },
    settings.BACKUPS_TABLE: {
        "id": "VARCHAR",
        "database_id": "VARCHAR",
        "name": "VARCHAR",
        "created_at": "TIMESTAMPTZ",
        "updated_at": "TIMESTAMPTZ",
        "status__status_details__status": "VARCHAR",
        "status__steps__total_duration_sec": "BIGINT",
        "_dlt_id": "VARCHAR",
    },
    settings.BACKUP_STEPS_TABLE: {
        "_dlt_parent_id": "VARCHAR",
        "_dlt_list_idx": "BIGINT",
        "step_name": "VARCHAR",
        "status": "VARCHAR",
    },
}

# Placeholder table names that survive sqlglot's translation and are then replaced by the
# destination's qualified names (whose quoting differs per destination).
_PLACEHOLDER_PREFIX = "qovery_analytics_source__"
_PLACEHOLDER_PATTERN = re.compile(rf"\b{_PLACEHOLDER_PREFIX}(\w+)\b")

_IN_FLIGHT_LIST = ", ".join(f"'{status}'" for status in sorted(IN_FLIGHT_STATUSES))

# One row per backup. `outcome` groups the API's status values: SUCCESS, ERROR, the in-flight
# values (ongoing), and anything else, such as CANCELED, NEVER or a value Qovery adds later
# (other). A step counts as failed when its status is ERROR.
_BACKUP_RUNS_SQL = f"""
WITH backup_rows AS ({{backups}}),
database_rows AS ({{databases}}),
step_rows AS ({{steps}}),
step_summary AS (
    SELECT
        _dlt_parent_id,
        COUNT(*) AS step_count,
        STRING_AGG(step_name, ', ' ORDER BY _dlt_list_idx) FILTER (WHERE status = 'ERROR')
            AS failed_steps
    FROM step_rows
    GROUP BY _dlt_parent_id
),
classified AS (
    SELECT
        b.*,
        CASE
            WHEN b.status__status_details__status = 'SUCCESS' THEN 'success'
            WHEN b.status__status_details__status = 'ERROR' THEN 'error'
            WHEN b.status__status_details__status IN ({_IN_FLIGHT_LIST}) THEN 'ongoing'
            ELSE 'other'
        END AS outcome
    FROM backup_rows AS b
)
SELECT
    c.id AS backup_id,
    c.name AS backup_name,
    c.database_id,
    d.name AS database_name,
    d.type AS database_type,
    d.environment_name,
    d.environment_mode,
    d.project_name,
    c.status__status_details__status AS status,
    c.outcome,
    c.created_at AS started_at,
    CASE WHEN c.outcome <> 'ongoing' THEN c.updated_at END AS finished_at,
    CASE
        WHEN c.outcome <> 'ongoing' THEN COALESCE(
            CAST(c.status__steps__total_duration_sec AS DOUBLE),
            CAST(EXTRACT(EPOCH FROM (c.updated_at - c.created_at)) AS DOUBLE)
        )
    END AS duration_sec,
    COALESCE(s.step_count, 0) AS step_count,
    s.failed_steps
FROM classified AS c
LEFT JOIN database_rows AS d ON d.id = c.database_id
LEFT JOIN step_summary AS s ON s._dlt_parent_id = c._dlt_id
"""

# One row per database. Ages and windows are relative to {now}. The status rules, checked in
# this order: `managed` for a MANAGED database with no backup loaded, because Qovery does not
# list the backups its cloud provider makes; `failing` when the latest backup that ended in
# success or error (by start time) is an error; `never_backed_up` when no backup succeeded;
# `stale` when the last success started more than {max_age_sec} seconds before {now}; `ok`.
_HEALTH_SQL = """
WITH database_rows AS ({databases}),
runs AS ({backup_runs}),
known AS (
    SELECT id AS database_id FROM database_rows
    UNION
    SELECT database_id FROM runs
),
ended AS (
    SELECT
        database_id,
        outcome,
        ROW_NUMBER() OVER (PARTITION BY database_id ORDER BY started_at DESC, backup_id DESC)
            AS recency
    FROM runs
    WHERE outcome IN ('success', 'error')
),
stats AS (
    SELECT
        database_id,
        MAX(started_at) AS last_backup_at,
        MAX(started_at) FILTER (WHERE outcome = 'success') AS last_success_at,
        MAX(started_at) FILTER (WHERE outcome = 'error') AS last_failure_at,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 7 DAY) AS backups_7d,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 7 DAY AND outcome = 'success')
            AS successes_7d,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 7 DAY AND outcome = 'error')
            AS failures_7d,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 7 DAY AND outcome <> 'ongoing')
            AS finished_7d,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 30 DAY) AS backups_30d,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 30 DAY AND outcome = 'success')
            AS successes_30d,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 30 DAY AND outcome = 'error')
            AS failures_30d,
        COUNT(*) FILTER (WHERE started_at >= {now} - INTERVAL 30 DAY AND outcome <> 'ongoing')
            AS finished_30d,
        QUANTILE_CONT(duration_sec, 0.5)
            FILTER (WHERE started_at >= {now} - INTERVAL 30 DAY AND outcome = 'success')
            AS median_duration_sec_30d,
        QUANTILE_CONT(duration_sec, 0.95)
            FILTER (WHERE started_at >= {now} - INTERVAL 30 DAY AND outcome = 'success')
            AS p95_duration_sec_30d
    FROM runs
    GROUP BY database_id
),
measured AS (
    SELECT
        k.database_id,
        d.name AS database_name,
        d.type AS database_type,
        d.mode AS database_mode,
        d.environment_name,
        d.environment_mode,
        d.project_name,
        s.last_backup_at,
        s.last_success_at,
        CAST(EXTRACT(EPOCH FROM ({now} - s.last_success_at)) AS DOUBLE) AS last_success_age_sec,
        s.last_failure_at,
        e.outcome AS last_ended_outcome,
        COALESCE(s.backups_7d, 0) AS backups_7d,
        COALESCE(s.successes_7d, 0) AS successes_7d,
        COALESCE(s.failures_7d, 0) AS failures_7d,
        CAST(s.successes_7d AS DOUBLE) / NULLIF(s.finished_7d, 0) AS success_rate_7d,
        COALESCE(s.backups_30d, 0) AS backups_30d,
        COALESCE(s.successes_30d, 0) AS successes_30d,
        COALESCE(s.failures_30d, 0) AS failures_30d,
        CAST(s.successes_30d AS DOUBLE) / NULLIF(s.finished_30d, 0) AS success_rate_30d,
        s.median_duration_sec_30d,
        s.p95_duration_sec_30d
    FROM known AS k
    LEFT JOIN database_rows AS d ON d.id = k.database_id
    LEFT JOIN stats AS s ON s.database_id = k.database_id
    LEFT JOIN ended AS e ON e.database_id = k.database_id AND e.recency = 1
)
SELECT
    m.*,
    CASE
        WHEN m.database_mode = 'MANAGED' AND m.last_backup_at IS NULL THEN 'managed'
        WHEN m.last_ended_outcome = 'error' THEN 'failing'
        WHEN m.last_success_at IS NULL THEN 'never_backed_up'
        WHEN m.last_success_age_sec > {max_age_sec} THEN 'stale'
        ELSE 'ok'
    END AS status,
    {now} AS as_of,
    CAST({max_age_sec} AS DOUBLE) AS max_age_sec
FROM measured AS m
"""

# One row per database and UTC day of `started_at`.
_DAILY_SQL = """
WITH runs AS ({backup_runs})
SELECT
    CAST(started_at AT TIME ZONE 'UTC' AS DATE) AS day,
    database_id,
    database_name,
    COUNT(*) AS backups,
    COUNT(*) FILTER (WHERE outcome = 'success') AS successes,
    COUNT(*) FILTER (WHERE outcome = 'error') AS failures,
    COUNT(*) FILTER (WHERE outcome = 'ongoing') AS ongoing,
    COUNT(*) FILTER (WHERE outcome = 'other') AS other,
    QUANTILE_CONT(duration_sec, 0.5) FILTER (WHERE outcome = 'success') AS median_duration_sec
FROM runs
GROUP BY 1, 2, 3
"""


class ViewsNotCreated(Exception):
    """The destination has no SQL dialect the views can be written in."""


@dataclass(frozen=True)
class SourceTables:
    """The loaded tables the views read, and the qualified names of those tables and views.

    `columns` maps each table of `SOURCE_COLUMNS` that exists to the names of its columns; a
    table missing from it is not loaded yet.
    """

    qualified_names: Mapping[str, str]
    columns: Mapping[str, frozenset[str]]

    @property
    def has_data_tables(self) -> bool:
        return bool(
            self.columns.get(settings.BACKUPS_TABLE) or self.columns.get(settings.DATABASES_TABLE)
        )


def create_views(
    pipeline: dlt.Pipeline,
    max_age: timedelta = DEFAULT_MAX_AGE,
    now: datetime | None = None,
) -> list[str]:
    """Create or replace the analytics views in the pipeline's dataset; return their names.

    Each view is dropped and created again inside one transaction, so running this twice is
    harmless and readers never see a view missing. The views are skipped, with a WARNING,
    on destinations that are not SQL databases (filesystem, vector stores) or whose dialect
    dlt does not name, and when nothing is loaded yet. A database error is logged and not
    raised, because the data itself is loaded by then.

    Args:
        pipeline: a pipeline that has loaded the Qovery source, or is attached to its dataset.
        max_age: how old a database's last successful backup may be before its `status` in
            `database_backup_health` becomes `stale`.
        now: the time ages and 7/30-day windows are measured from. None (the default) makes
            the views use the database's current timestamp when queried; a datetime pins
            them to that moment, for reproducible reports and tests.
    """
    try:
        dialect, tables = inspect_dataset(pipeline)
    except ViewsNotCreated as reason:
        logger.warning("Analytics views not created in dataset %s: %s", pipeline.dataset_name, reason)
        return []
    if not tables.has_data_tables:
        logger.info(
            "Analytics views not created: dataset %s has no %s or %s table yet",
            pipeline.dataset_name,
            settings.BACKUPS_TABLE,
            settings.DATABASES_TABLE,
        )
        return []
    if dialect not in TESTED_DIALECTS:
        logger.info("Translating the analytics views to SQL dialect %s with sqlglot", dialect)

    try:
        statements = view_statements(dialect, tables, max_age, now)
        with pipeline.sql_client() as client:
            with client.begin_transaction():
                for statement in statements:
                    client.execute_sql(statement)
    except (DatabaseException, sqlglot.errors.SqlglotError) as error:
        logger.error(
            "Analytics views not created in dataset %s (dialect %s); the loaded data is not "
            "affected: %s",
            pipeline.dataset_name,
            dialect,
            error,
        )
        return []
    logger.info(
        "Created views %s in dataset %s (stale after %g hours without a successful backup)",
        ", ".join(VIEW_NAMES),
        pipeline.dataset_name,
        max_age.total_seconds() / 3600,
    )
    return list(VIEW_NAMES)


def inspect_dataset(pipeline: dlt.Pipeline) -> tuple[str, SourceTables]:
    """Return the destination's sqlglot dialect and the source tables found in the dataset.

    Raises:
        ViewsNotCreated: when the destination is not a SQL database or has no known dialect.
    """
    with pipeline.destination_client() as job_client:
        if not isinstance(job_client, SqlJobClientBase):
            raise ViewsNotCreated(
                f"destination {pipeline.destination.destination_name} is not a SQL database"
            )
        dialect = job_client.capabilities.sqlglot_dialect
        if not dialect:
            raise ViewsNotCreated(
                f"dlt names no SQL dialect for destination {pipeline.destination.destination_name}"
            )
        storage = dict(job_client.get_storage_tables(SOURCE_COLUMNS))
        sql_client = job_client.sql_client
        # DuckDB's catalog is named after the file, so the views leave it out and keep
        # working when the file is renamed or attached under another name.
        keep_catalog = dialect != "duckdb"
        qualified_names = {
            table: ".".join(
                sql_client.make_qualified_table_name_path(table)[0 if keep_catalog else -2 :]
            )
            for table in (*SOURCE_COLUMNS, *VIEW_NAMES)
        }
    columns = {
        table: frozenset(name.lower() for name in found)
        for table, found in storage.items()
        if found
    }
    return dialect, SourceTables(qualified_names=qualified_names, columns=columns)


def view_statements(
    dialect: str,
    tables: SourceTables,
    max_age: timedelta = DEFAULT_MAX_AGE,
    now: datetime | None = None,
) -> list[str]:
    """Build the DROP and CREATE statements of every view, in the destination's dialect."""
    selects = {
        BACKUP_RUNS_VIEW: backup_runs_sql(dialect, tables),
        HEALTH_VIEW: health_sql(dialect, tables, max_age, now),
        DAILY_VIEW: daily_sql(dialect, tables),
    }
    statements = []
    for name, select in selects.items():
        view = tables.qualified_names[name]
        statements.append(f"DROP VIEW IF EXISTS {view}")
        statements.append(f"CREATE VIEW {view} AS\n{select}")
    return statements


def backup_runs_sql(dialect: str, tables: SourceTables) -> str:
    """Return the SELECT of `backup_runs` in `dialect`."""
    return _render(_backup_runs_template(tables), dialect, tables)


def health_sql(
    dialect: str,
    tables: SourceTables,
    max_age: timedelta = DEFAULT_MAX_AGE,
    now: datetime | None = None,
) -> str:
    """Return the SELECT of `database_backup_health` in `dialect`, measured from `now`.

    `now=None` uses the database's current timestamp at query time.
    """
    template = _HEALTH_SQL.format(
        databases=_source_select(settings.DATABASES_TABLE, tables),
        backup_runs=_backup_runs_template(tables),
        now=_now_sql(now),
        max_age_sec=repr(max_age.total_seconds()),
    )
    return _render(template, dialect, tables)


def daily_sql(dialect: str, tables: SourceTables) -> str:
    """Return the SELECT of `backup_daily` in `dialect`."""
    return _render(_DAILY_SQL.format(backup_runs=_backup_runs_template(tables)), dialect, tables)


def _backup_runs_template(tables: SourceTables) -> str:
    return _BACKUP_RUNS_SQL.format(
        backups=_source_select(settings.BACKUPS_TABLE, tables),
        databases=_source_select(settings.DATABASES_TABLE, tables),
        steps=_source_select(settings.BACKUP_STEPS_TABLE, tables),
    )


def _source_select(table: str, tables: SourceTables) -> str:
    """Select the columns a view needs from `table`, with typed NULLs for what is missing."""
    present = tables.columns.get(table)
    expressions = []
    for column, data_type in SOURCE_COLUMNS[table].items():
        if present and column in present:
            expressions.append(column)
        else:
            expressions.append(f"CAST(NULL AS {data_type}) AS {column}")
    listing = ", ".join(expressions)
    if not present:
        return f"SELECT {listing} WHERE 1 = 0"
    return f"SELECT {listing} FROM {_PLACEHOLDER_PREFIX}{table}"


def _now_sql(now: datetime | None) -> str:
    if now is None:
        return "CURRENT_TIMESTAMP"
    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()} is naive: pass a timezone-aware datetime")
    return f"CAST('{now.astimezone(timezone.utc).isoformat()}' AS TIMESTAMPTZ)"


def _render(template: str, dialect: str, tables: SourceTables) -> str:
    """Translate DuckDB SQL to `dialect` and put the qualified table names in place."""
    sql = template
    if dialect != SOURCE_DIALECT:
        sql = sqlglot.transpile(template, read=SOURCE_DIALECT, write=dialect)[0]
    return _PLACEHOLDER_PATTERN.sub(lambda match: tables.qualified_names[match.group(1)], sql)
