"""Shared fixtures: a simulated Qovery API, a DuckDB pipeline in a temporary folder, and
helpers that compare the loaded tables with the simulator's truth."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Iterable

import dlt
import pytest

from qovery_backups.pipeline import RunResult, build_pipeline, run_source
from qovery_backups.simulator import SimulatorServer, World
from qovery_backups.timeutil import parse_timestamp

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

TOKEN = "qov_test_4f1c2e9a7b"
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch, tmp_path):
    """Keep each test away from the user's dlt config, secrets and env settings."""
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__", "QOVERY")) or name == "API_TOKEN":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # Pipelines a test creates by name (through the CLI) must not land in the user's dlt
    # folder, where a later real run would attach to them.
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))


@pytest.fixture
def demo_world() -> World:
    return World.demo(NOW)


@pytest.fixture
def server(demo_world):
    with SimulatorServer(demo_world, tokens=(TOKEN,)) as running:
        yield running


@pytest.fixture
def pipeline(tmp_path) -> dlt.Pipeline:
    return make_pipeline(tmp_path)


def make_pipeline(tmp_path, name: str = "qovery_test") -> dlt.Pipeline:
    return build_pipeline(
        name,
        dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
        "qovery",
        pipelines_dir=str(tmp_path / "dlt_pipelines"),
    )


def run(pipeline: dlt.Pipeline, server: SimulatorServer, **options: Any) -> RunResult:
    """Run the source against the simulator with the test token."""
    options.setdefault("api_token", TOKEN)
    options.setdefault("base_url", server.base_url)
    return run_source(pipeline, **options)


def query(pipeline: dlt.Pipeline, sql: str) -> list[tuple]:
    with pipeline.sql_client() as client:
        with client.execute_query(sql) as cursor:
            return cursor.fetchall()


def query_dicts(pipeline: dlt.Pipeline, sql: str) -> list[dict[str, Any]]:
    with pipeline.sql_client() as client:
        with client.execute_query(sql) as cursor:
            columns = [description[0] for description in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with dlt's `__` separator, leaving lists out."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}__"))
        elif not isinstance(value, list):
            flat[name] = value
    return flat


TIMESTAMP_COLUMNS = {"created_at", "updated_at", "status__last_deployment_date"}


def expected_backup_rows(world: World, database_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The `backups` rows the simulator's truth calls for, keyed by backup id."""
    rows = {}
    for database_id in database_ids:
        for backup in world.backups_of(database_id):
            row = flatten(backup)
            for column in TIMESTAMP_COLUMNS & row.keys():
                row[column] = parse_timestamp(row[column])
            row["database_id"] = database_id
            rows[row["id"]] = row
    return rows


def expected_step_rows(world: World, database_ids: Iterable[str]) -> list[tuple]:
    """The `backups__status__steps__details` rows as (backup id, position, name, status, seconds)."""
    rows = []
    for database_id in database_ids:
        for backup in world.backups_of(database_id):
            details = ((backup.get("status") or {}).get("steps") or {}).get("details") or []
            for position, step in enumerate(details):
                rows.append(
                    (
                        backup["id"],
                        position,
                        step.get("step_name"),
                        step.get("status"),
                        step.get("duration_sec"),
                    )
                )
    return sorted(rows)


def loaded_backup_rows(pipeline: dlt.Pipeline) -> dict[str, dict[str, Any]]:
    rows = query_dicts(pipeline, "SELECT * FROM backups")
    loaded = {}
    for row in rows:
        for column in TIMESTAMP_COLUMNS & row.keys():
            if row[column] is not None:
                row[column] = row[column].astimezone(timezone.utc)
        loaded[row["id"]] = row
    return loaded


def loaded_step_rows(pipeline: dlt.Pipeline) -> list[tuple]:
    return sorted(
        query(
            pipeline,
            "SELECT b.id, s._dlt_list_idx, s.step_name, s.status, s.duration_sec "
            "FROM backups__status__steps__details AS s "
            "JOIN backups AS b ON s._dlt_parent_id = b._dlt_id",
        )
    )


def assert_backup_rows_equal(
    loaded: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]
) -> None:
    """Assert that loaded rows, keyed by backup id, hold exactly the expected values."""
    assert sorted(loaded) == sorted(expected), "backup ids differ from the simulator's"
    for backup_id, expected_row in expected.items():
        loaded_row = loaded[backup_id]
        differences = {
            column: (loaded_row.get(column), value)
            for column, value in expected_row.items()
            if loaded_row.get(column) != value
        }
        assert differences == {}, f"backup {backup_id} differs (loaded, expected): {differences}"
        # A field the API no longer sends must not keep a stale value either.
        stale = {
            column: value
            for column, value in loaded_row.items()
            if not column.startswith("_dlt") and column not in expected_row and value is not None
        }
        assert stale == {}, f"backup {backup_id} keeps values the API does not send: {stale}"


def assert_tables_match(
    pipeline: dlt.Pipeline,
    world: World,
    database_ids: Iterable[str],
    deleted: Iterable[str] = (),
) -> None:
    """Assert that `backups` and its steps table equal the simulator's truth, value by value.

    `deleted` names backups the API no longer lists: their rows must remain, marked with
    `deleted_at`, and are left out of the value comparison.
    """
    database_ids = list(database_ids)
    deleted = set(deleted)
    expected = expected_backup_rows(world, database_ids)
    loaded = loaded_backup_rows(pipeline)
    for backup_id in deleted:
        assert backup_id in loaded, f"deleted backup {backup_id} lost its row"
        assert loaded.pop(backup_id)["deleted_at"] is not None, f"backup {backup_id} not marked deleted"
    assert_backup_rows_equal(loaded, expected)
    loaded_steps = [row for row in loaded_step_rows(pipeline) if row[0] not in deleted]
    assert loaded_steps == expected_step_rows(world, database_ids)
    orphans = query(
        pipeline,
        "SELECT count(*) FROM backups__status__steps__details AS s "
        "LEFT JOIN backups AS b ON s._dlt_parent_id = b._dlt_id WHERE b._dlt_id IS NULL",
    )
    assert orphans == [(0,)]


def backup_requests(server: SimulatorServer) -> dict[str, int]:
    """Count the backup list requests per database id."""
    counts: dict[str, int] = {}
    for record in server.requests:
        parts = record.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "database" and parts[2] == "backup":
            counts[parts[1]] = counts.get(parts[1], 0) + 1
    return counts


def full_history_pages(backup_count: int, page_size: int = 20) -> int:
    """Requests a full read of `backup_count` backups takes: a full last page needs one more."""
    return backup_count // page_size + 1
