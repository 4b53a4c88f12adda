"""Building the dlt pipeline and running the Qovery source through it once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo

from qovery_backups import reconcile, settings
from qovery_backups.analytics import create_views
from qovery_backups.source import qovery_source
from qovery_backups.summary import OUTCOME_LOADED, RunSummary

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Rows loaded and requests spent by one pipeline run."""

    summary: RunSummary
    load_info: LoadInfo | None = None
    row_counts: dict[str, int] = field(default_factory=dict)


def build_pipeline(
    pipeline_name: str = settings.PIPELINE_NAME,
    destination: Any = settings.DESTINATION,
    dataset_name: str = settings.DATASET_NAME,
    pipelines_dir: str | None = None,
    progress: str | None = None,
) -> dlt.Pipeline:
    """Create (or attach to) the pipeline that loads Qovery backups.

    `destination` is a dlt destination name (`duckdb`, `postgres`, `bigquery`, …) or a
    destination object; credentials come from dlt's configuration as usual.
    """
    options: dict[str, Any] = {"progress": progress} if progress else {}
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name,
        pipelines_dir=pipelines_dir,
        **options,
    )


def run_source(
    pipeline: dlt.Pipeline,
    reset: bool = False,
    databases_per_extract: int = settings.DATABASES_PER_EXTRACT,
    backups_per_extract: int = settings.BACKUPS_PER_EXTRACT,
    loader_file_format: str | None = None,
    **source_options: Any,
) -> RunResult:
    """Extract the Qovery source in batches of databases, then normalize and load it.

    A batch ends when it has started `databases_per_extract` databases or yielded
    `backups_per_extract` backups; databases already being read then finish in it.

    After the load, the analytics views are created or replaced (see `analytics`).

    Each batch is extracted into its own load package, and dlt commits the batch's cursors
    to the local pipeline state with it. A run that is interrupted (error, Ctrl-C, kill)
    therefore keeps the batches it finished: the next run loads those packages first and
    reads their databases incrementally, so their history is not fetched again.

    Args:
        pipeline: the pipeline from `build_pipeline`.
        reset: drop the source's tables and cursors first, so the run reloads every backup.
        databases_per_extract: the maximum number of databases in one load package.
        backups_per_extract: once a package holds this many backups, no further database
            starts in it. Smaller packages resume at a finer grain and need less memory;
            larger ones cost less dlt bookkeeping per database.
        loader_file_format: the format of the load files, such as `parquet` for the
            `filesystem` destination. None picks Parquet for DuckDB and MotherDuck and the
            destination's preferred format elsewhere.
        source_options: arguments of `qovery_source` that override configuration; an option
            left out is resolved by dlt from env variables and `.dlt/*.toml`.
    """
    if databases_per_extract < 1:
        raise ValueError(f"databases_per_extract must be at least 1, not {databases_per_extract}")
    if loader_file_format is None:
        loader_file_format = _default_file_format(pipeline)
    summary = RunSummary()
    result = RunResult(summary=summary)
    source = qovery_source(summary=summary, **source_options)

    # Packages an interrupted run extracted go first. Syncing before they load would wipe
    # them: dlt drops the local state of a pipeline whose dataset the destination lacks.
    if pipeline.has_pending_data:
        logger.warning(
            "Loading the data an interrupted run of pipeline %s extracted but did not load",
            pipeline.pipeline_name,
        )
        _normalize(pipeline, result)
        result.load_info = pipeline.load()
    # Restores the state from the destination when the local pipeline folder is gone, as on
    # a fresh CI runner, so that scheduled runs stay incremental.
    pipeline.sync_destination()

    if reset:
        logger.info(
            "Resetting: dropping the tables and cursors of source %r in dataset %r",
            settings.SOURCE_NAME,
            pipeline.dataset_name,
        )
    remaining = summary.catalog.databases()
    number = 0
    while True:
        summary.catalog.select(
            [database.id for database in remaining],
            max_databases=databases_per_extract,
            max_backups=backups_per_extract,
        )
        resources = [settings.BACKUPS_TABLE]
        if number == 0:
            resources.append(settings.DATABASES_TABLE)
        pipeline.extract(
            source.with_resources(*resources),
            refresh="drop_sources" if reset and number == 0 else None,
            loader_file_format=loader_file_format,
        )
        _normalize(pipeline, result)
        started = set(summary.catalog.started_ids)
        remaining = [database for database in remaining if database.id not in started]
        number += 1
        logger.info(
            "Extracted batch %d (%d databases); %d databases remain",
            number,
            len(started),
            len(remaining),
        )
        if not remaining or not started:
            break
    result.load_info = pipeline.load()
    _reconcile(pipeline, result)
    create_views(pipeline)
    return result


def _reconcile(pipeline: dlt.Pipeline, result: RunResult) -> None:
    """Mark backups a full scan no longer found, and databases discovery no longer finds.

    NOTE: the marks are written after the load, while the scan's time is already stored in the
    state. A run that dies in between leaves deleted backups unmarked until the database's
    next full scan.
    """
    summary = result.summary
    scanned = [
        report.database_id
        for report in summary.databases.values()
        if report.full_scan and report.outcome == OUTCOME_LOADED and report.cursor_before
    ]
    catalog = summary.catalog
    discovered = catalog is not None and catalog.found_ids is not None
    if not scanned and not discovered:
        return
    if not reconcile.supports_sql(pipeline):
        logger.warning(
            "Destination %s has no SQL access, so deleted backups and databases are not marked",
            pipeline.destination.destination_name,
        )
        return
    load_ids = list(result.load_info.loads_ids) if result.load_info else []
    marked = reconcile.mark_deleted_backups(pipeline, scanned, load_ids, summary.started_at)
    for database_id, count in marked.items():
        summary.databases[database_id].marked_deleted = count
    if discovered:
        summary.databases_marked_deleted = reconcile.mark_deleted_databases(
            pipeline, catalog.organization_id, catalog.found_ids, summary.started_at
        )


def _default_file_format(pipeline: dlt.Pipeline) -> str | None:
    """Parquet for DuckDB: its default, one INSERT statement per file, made a 20,000-backup
    backfill 2.2 times slower and 2.4 times heavier in memory (see docs/benchmarks.md)."""
    destination = pipeline.destination
    if destination is not None and destination.destination_name in ("duckdb", "motherduck"):
        return "parquet"
    return None


def _normalize(pipeline: dlt.Pipeline, result: RunResult) -> None:
    info = pipeline.normalize()
    for table, count in info.row_counts.items():
        if not table.startswith("_dlt"):
            result.row_counts[table] = result.row_counts.get(table, 0) + count
