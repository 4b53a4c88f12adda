"""The `filesystem` destination writing Parquet files to a local folder, read back with DuckDB.

dlt 1.31 has no merge for plain files: it logs "Falling back to `append`" and every run adds
the rows it read as new files. The latest row of each backup is the one with the highest
`_dlt_load_id`, and its step rows are the ones whose `_dlt_parent_id` is that row's `_dlt_id`.
These tests check that this reading equals the simulator's truth.
"""

from __future__ import annotations

import logging
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from conftest import (
    NOW,
    TIMESTAMP_COLUMNS,
    TOKEN,
    assert_backup_rows_equal,
    expected_backup_rows,
    expected_step_rows,
    run,
)
from qovery_backups.pipeline import build_pipeline
from qovery_backups.simulator import SimulatorServer, World

# The queries docs/destinations.md gives for reading the files.
LATEST_BACKUPS_SQL = """
SELECT * EXCLUDE (version_rank) FROM (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY _dlt_load_id DESC) AS version_rank
    FROM read_parquet('{lake}/qovery/backups/*.parquet', union_by_name = true)
)
WHERE version_rank = 1
"""
LATEST_STEPS_SQL = """
SELECT b.id, s._dlt_list_idx, s.step_name, s.status, s.duration_sec
FROM latest_backups AS b
JOIN read_parquet('{lake}/qovery/backups__status__steps__details/*.parquet',
                  union_by_name = true) AS s
  ON s._dlt_parent_id = b._dlt_id
"""


@pytest.fixture
def lake(tmp_path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def filesystem_pipeline(tmp_path, lake) -> dlt.Pipeline:
    return build_pipeline(
        "qovery_filesystem_test",
        dlt.destinations.filesystem(bucket_url=str(lake)),
        "qovery",
        pipelines_dir=str(tmp_path / "dlt_pipelines"),
    )


@pytest.fixture
def demo_load():
    world = World.demo(NOW)
    (organization,) = world.organizations()
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        yield world, server, organization.id


def run_parquet(pipeline: dlt.Pipeline, server: SimulatorServer, organization_id: str):
    return run(pipeline, server, organization_id=organization_id, loader_file_format="parquet")


def read_latest(lake: Path) -> tuple[dict[str, dict[str, Any]], list[tuple]]:
    """Read the latest row of every backup and that row's steps from the Parquet files."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(
        "CREATE TEMP VIEW latest_backups AS " + LATEST_BACKUPS_SQL.format(lake=lake)
    )
    cursor = connection.execute("SELECT * FROM latest_backups")
    columns = [description[0] for description in cursor.description]
    backups = {}
    for values in cursor.fetchall():
        row = dict(zip(columns, values))
        for column in TIMESTAMP_COLUMNS & row.keys():
            if row[column] is not None:
                row[column] = row[column].astimezone(timezone.utc)
        backups[row["id"]] = row
    steps = sorted(connection.execute(LATEST_STEPS_SQL.format(lake=lake)).fetchall())
    connection.close()
    return backups, steps


def count_rows(lake: Path, table: str) -> int:
    files = f"{lake}/qovery/{table}/*.parquet"
    connection = duckdb.connect()
    (count,) = connection.execute(
        f"SELECT count(*) FROM read_parquet('{files}', union_by_name = true)"
    ).fetchone()
    connection.close()
    return count


def assert_files_match(lake: Path, world: World) -> None:
    database_ids = world.backup_database_ids()
    expected = expected_backup_rows(world, database_ids)
    loaded, steps = read_latest(lake)

    assert_backup_rows_equal(loaded, expected)
    assert steps == expected_step_rows(world, database_ids)


def test_backfill_writes_parquet_files(filesystem_pipeline, lake, demo_load):
    world, server, organization_id = demo_load

    result = run_parquet(filesystem_pipeline, server, organization_id)

    backup_files = list((lake / "qovery" / "backups").iterdir())
    assert backup_files
    assert {path.suffix for path in backup_files} == {".parquet"}
    assert_files_match(lake, world)
    assert count_rows(lake, "backups") == result.row_counts["backups"]


def test_second_run_appends_versions(filesystem_pipeline, lake, demo_load, caplog):
    world, server, organization_id = demo_load
    first = run_parquet(filesystem_pipeline, server, organization_id)
    running = [
        backup
        for database_id in world.backup_database_ids()
        for backup in world.backups_of(database_id)
        if backup["status"]["status_details"]["status"] in ("QUEUED", "ONGOING")
    ]
    assert running, "the demo world must have backups in flight to finish late"
    world.advance(timedelta(hours=3))
    for backup in running:
        world.update_backup(backup["id"], "ERROR")
    for database_id in world.backup_database_ids():
        world.add_backup(database_id, outcome="SUCCESS")

    with caplog.at_level(logging.WARNING, logger="dlt"):
        second = run_parquet(filesystem_pipeline, server, organization_id)

    # The files keep both versions of every backup the second run read again.
    assert count_rows(lake, "backups") == first.row_counts["backups"] + second.row_counts["backups"]
    assert second.row_counts["backups"] < first.row_counts["backups"]
    assert any("Falling back to `append`" in record.getMessage() for record in caplog.records)
    assert_files_match(lake, world)
