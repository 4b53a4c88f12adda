"""Building the dlt pipeline and running the Qovery source through it once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo

from qovery_backups import settings
from qovery_backups.source import qovery_source
from qovery_backups.summary import RunSummary

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
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name,
        pipelines_dir=pipelines_dir,
        progress=progress,
    )


def run_source(
    pipeline: dlt.Pipeline, reset: bool = False, **source_options: Any
) -> RunResult:
    """Extract, normalize and load the Qovery source once.

    Args:
        pipeline: the pipeline from `build_pipeline`.
        reset: drop the source's tables and cursors first, so the run reloads every backup.
        source_options: arguments of `qovery_source` that override configuration; an option
            left out is resolved by dlt from env variables and `.dlt/*.toml`.
    """
    summary = RunSummary()
    source = qovery_source(summary=summary, **source_options)
    if reset:
        logger.info(
            "Resetting: dropping the tables and cursors of source %r in dataset %r",
            settings.SOURCE_NAME,
            pipeline.dataset_name,
        )
    load_info = pipeline.run(source, refresh="drop_sources" if reset else None)
    trace = pipeline.last_trace
    row_counts: dict[str, int] = {}
    if trace and trace.last_normalize_info:
        row_counts = {
            table: count
            for table, count in trace.last_normalize_info.row_counts.items()
            if not table.startswith("_dlt")
        }
    return RunResult(summary=summary, load_info=load_info, row_counts=row_counts)
