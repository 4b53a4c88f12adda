"""The analytics views on a small hand-built backup history, on DuckDB and on Postgres.

The Postgres cases need `QOVERY_TEST_POSTGRES_DSN` (a server on 127.0.0.1 and a role that
may create schemas); without it they are skipped. Each Postgres case loads into a schema of
its own and drops it afterwards.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import dlt
import pytest

from conftest import NOW, TOKEN, query, query_dicts, run
from qovery_backups import analytics
from qovery_backups.pipeline import build_pipeline
from qovery_backups.simulator import SimulatorServer, World

# Read at import: the autouse `isolated_config` fixture removes every QOVERY* variable.
POSTGRES_DSN = os.environ.get("QOVERY_TEST_POSTGRES_DSN", "")
NO_POSTGRES = (
    "QOVERY_TEST_POSTGRES_DSN is not set: export it (for example "
    "postgresql://user:password@127.0.0.1:5432/db) to run the view tests on Postgres too"
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass
class History:
    """A world with one database per case, and the ids of the backups the tests look at."""

    world: World
    databases: dict[str, str]
    backups: dict[str, str]


def add_finished(world: World, database_id: str, outcome: str, at: datetime, seconds: int, **options) -> str:
    """Add a backup created at `at` that ends in `outcome` after exactly `seconds`."""
    backup = world.add_backup(database_id, outcome="ONGOING", at=at, **options)
    world.update_backup(backup["id"], outcome, at=at + timedelta(seconds=seconds))
    return backup["id"]


def build_history(now: datetime = NOW) -> History:
    """Build the fixed history, relative to `now` (by default `NOW`, 2026-11-20 06:00 UTC).

    fresh (PRODUCTION, shop): success 2 days ago (600 s), error 1 day ago (120 s), success
        3 hours ago (300 s), one ongoing since 10 minutes.
    stale (PRODUCTION, shop): success 40 days ago (100 s), success 10 days ago without
        `updated_at` (200 s), success 30 hours ago without `steps` (400 s).
    flaky (DEVELOPMENT, tools): success 5 hours ago (60 s), error 2 hours ago (30 s), queued
        since 5 minutes.
    broken (DEVELOPMENT, tools): errors 4 days (50 s) and 2 days ago (70 s) only.
    empty (DEVELOPMENT, tools): no backup. managed (PRODUCTION, shop): MANAGED, no backup list.
    """
    world = World(seed=5, now=now)
    organization = world.add_organization("Acme")
    shop = world.add_project(organization.id, "shop")
    production = world.add_environment(shop.id, "production", "PRODUCTION")
    tools = world.add_project(organization.id, "tools")
    development = world.add_environment(tools.id, "development", "DEVELOPMENT")

    databases = {
        "fresh": world.add_database(production.id, name="fresh", type="POSTGRESQL").id,
        "stale": world.add_database(production.id, name="stale", type="MYSQL").id,
        "managed": world.add_database(production.id, name="managed", type="MONGODB", mode="MANAGED").id,
        "flaky": world.add_database(development.id, name="flaky", type="REDIS").id,
        "broken": world.add_database(development.id, name="broken", type="POSTGRESQL").id,
        "empty": world.add_database(development.id, name="empty", type="POSTGRESQL").id,
    }
    fresh, stale = databases["fresh"], databases["stale"]
    flaky, broken = databases["flaky"], databases["broken"]
    backups = {
        "fresh_old_success": add_finished(world, fresh, "SUCCESS", now - 2 * DAY, 600),
        "fresh_error": add_finished(world, fresh, "ERROR", now - DAY, 120),
        "fresh_success": add_finished(world, fresh, "SUCCESS", now - 3 * HOUR, 300),
        "fresh_ongoing": world.add_backup(fresh, outcome="ONGOING", at=now - timedelta(minutes=10))["id"],
        "stale_outside_30d": add_finished(world, stale, "SUCCESS", now - 40 * DAY, 100),
        "stale_no_updated_at": add_finished(
            world, stale, "SUCCESS", now - 10 * DAY, 200, with_updated_at=False
        ),
        "stale_no_steps": add_finished(world, stale, "SUCCESS", now - 30 * HOUR, 400, with_steps=False),
        "flaky_success": add_finished(world, flaky, "SUCCESS", now - 5 * HOUR, 60),
        "flaky_error": add_finished(world, flaky, "ERROR", now - 2 * HOUR, 30),
        "flaky_queued": world.add_backup(flaky, outcome="QUEUED", at=now - timedelta(minutes=5))["id"],
        "broken_first": add_finished(world, broken, "ERROR", now - 4 * DAY, 50),
        "broken_second": add_finished(world, broken, "ERROR", now - 2 * DAY, 70),
    }
    return History(world, databases, backups)


def make_destination_pipeline(destination: str, directory, name: str) -> tuple[dlt.Pipeline, callable]:
    """Return a pipeline on `destination` and a function that removes what it loaded."""
    pipelines_dir = str(directory / "dlt_pipelines")
    if destination == "duckdb":
        pipeline = build_pipeline(
            name, dlt.destinations.duckdb(str(directory / f"{name}.duckdb")), "qovery", pipelines_dir
        )
        return pipeline, lambda: None
    dataset = f"qovery_analytics_{uuid.uuid4().hex[:10]}"
    pipeline = build_pipeline(
        name, dlt.destinations.postgres(credentials=POSTGRES_DSN), dataset, pipelines_dir
    )

    def drop() -> None:
        with pipeline.sql_client() as client:
            for schema in (dataset, f"{dataset}_staging"):
                client.execute_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return pipeline, drop


DESTINATIONS = [
    "duckdb",
    pytest.param("postgres", marks=pytest.mark.skipif(not POSTGRES_DSN, reason=NO_POSTGRES)),
]


@pytest.fixture(scope="module", params=DESTINATIONS)
def history(request, tmp_path_factory):
    """The fixed history loaded once per destination, with views pinned to `NOW`."""
    built = build_history()
    directory = tmp_path_factory.mktemp(f"analytics_{request.param}")
    pipeline, drop = make_destination_pipeline(request.param, directory, "qovery_analytics")
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        run(pipeline, server)
    assert analytics.create_views(pipeline, now=NOW) == list(analytics.VIEW_NAMES)
    yield pipeline, built
    drop()


def runs_by_backup(pipeline) -> dict[str, dict]:
    return {row["backup_id"]: row for row in query_dicts(pipeline, "SELECT * FROM backup_runs")}


def health_by_name(pipeline) -> dict[str, dict]:
    return {row["database_name"]: row for row in query_dicts(pipeline, "SELECT * FROM database_backup_health")}


def utc(row: dict, column: str) -> datetime | None:
    value = row[column]
    return value.astimezone(timezone.utc) if value is not None else None


# ----- backup_runs -----


def test_runs_have_one_row_per_backup(history):
    pipeline, built = history

    runs = runs_by_backup(pipeline)

    assert sorted(runs) == sorted(built.backups.values())


def test_runs_carry_database_names(history):
    pipeline, built = history

    row = runs_by_backup(pipeline)[built.backups["fresh_success"]]

    assert row["database_id"] == built.databases["fresh"]
    assert row["database_name"] == "fresh"
    assert row["database_type"] == "POSTGRESQL"
    assert row["environment_name"] == "production"
    assert row["environment_mode"] == "PRODUCTION"
    assert row["project_name"] == "shop"


def test_runs_map_status_to_outcome(history):
    pipeline, built = history
    runs = runs_by_backup(pipeline)

    outcomes = {case: (runs[backup_id]["status"], runs[backup_id]["outcome"]) for case, backup_id in built.backups.items()}

    assert outcomes["fresh_success"] == ("SUCCESS", "success")
    assert outcomes["fresh_error"] == ("ERROR", "error")
    assert outcomes["fresh_ongoing"] == ("ONGOING", "ongoing")
    assert outcomes["flaky_queued"] == ("QUEUED", "ongoing")


def test_finished_run_times_and_duration(history):
    pipeline, built = history

    row = runs_by_backup(pipeline)[built.backups["fresh_success"]]

    assert utc(row, "started_at") == NOW - 3 * HOUR
    assert utc(row, "finished_at") == NOW - 3 * HOUR + timedelta(seconds=300)
    assert row["duration_sec"] == 300.0


def test_ongoing_run_has_no_finish(history):
    pipeline, built = history

    row = runs_by_backup(pipeline)[built.backups["fresh_ongoing"]]

    assert utc(row, "started_at") == NOW - timedelta(minutes=10)
    assert row["finished_at"] is None
    assert row["duration_sec"] is None


def test_run_without_updated_at_keeps_duration(history):
    pipeline, built = history

    row = runs_by_backup(pipeline)[built.backups["stale_no_updated_at"]]

    assert row["finished_at"] is None
    assert row["duration_sec"] == 200.0


def test_run_without_steps_uses_timestamps(history):
    pipeline, built = history

    row = runs_by_backup(pipeline)[built.backups["stale_no_steps"]]

    assert row["duration_sec"] == 400.0
    assert row["step_count"] == 0
    assert row["failed_steps"] is None


def test_runs_count_steps(history):
    pipeline, built = history
    runs = runs_by_backup(pipeline)

    assert runs[built.backups["fresh_success"]]["step_count"] == 2
    assert runs[built.backups["fresh_ongoing"]]["step_count"] == 1
    assert runs[built.backups["flaky_queued"]]["step_count"] == 0


def test_runs_list_failed_steps(history):
    pipeline, built = history
    runs = runs_by_backup(pipeline)

    assert runs[built.backups["fresh_error"]]["failed_steps"] == "DEPLOYMENT"
    assert runs[built.backups["fresh_success"]]["failed_steps"] is None


# ----- database_backup_health -----


def test_health_lists_every_database(history):
    pipeline, built = history

    health = health_by_name(pipeline)

    assert sorted(health) == sorted(built.databases)


def test_health_statuses(history):
    pipeline, _ = history

    statuses = {name: row["status"] for name, row in health_by_name(pipeline).items()}

    assert statuses == {
        "fresh": "ok",
        "stale": "stale",
        "flaky": "failing",
        "broken": "failing",
        "empty": "never_backed_up",
        "managed": "managed",
    }


def test_health_of_fresh_database(history):
    pipeline, _ = history

    row = health_by_name(pipeline)["fresh"]

    assert utc(row, "last_backup_at") == NOW - timedelta(minutes=10)
    assert utc(row, "last_success_at") == NOW - 3 * HOUR
    assert row["last_success_age_sec"] == 3 * 3600.0
    assert utc(row, "last_failure_at") == NOW - DAY
    assert row["last_ended_outcome"] == "success"
    assert utc(row, "as_of") == NOW
    assert row["max_age_sec"] == 26 * 3600.0


def test_health_counts_and_rates(history):
    pipeline, _ = history

    row = health_by_name(pipeline)["fresh"]

    assert row["backups_7d"] == 4
    assert row["successes_7d"] == 2
    assert row["failures_7d"] == 1
    # The ongoing backup is not finished, so it counts in neither side of the rate.
    assert row["success_rate_7d"] == pytest.approx(2 / 3)
    assert row["backups_30d"] == 4
    assert row["success_rate_30d"] == pytest.approx(2 / 3)


def test_health_durations_of_successes(history):
    pipeline, _ = history
    health = health_by_name(pipeline)

    assert health["fresh"]["median_duration_sec_30d"] == 450.0
    assert health["fresh"]["p95_duration_sec_30d"] == pytest.approx(585.0)
    assert health["stale"]["median_duration_sec_30d"] == 300.0
    assert health["stale"]["p95_duration_sec_30d"] == pytest.approx(390.0)


def test_health_windows_exclude_old_backups(history):
    pipeline, _ = history

    row = health_by_name(pipeline)["stale"]

    assert row["backups_7d"] == 1
    assert row["backups_30d"] == 2
    assert row["success_rate_30d"] == 1.0
    assert row["last_success_age_sec"] == 30 * 3600.0


def test_health_of_database_with_only_failures(history):
    pipeline, _ = history

    row = health_by_name(pipeline)["broken"]

    assert row["last_success_at"] is None
    assert row["last_success_age_sec"] is None
    assert utc(row, "last_failure_at") == NOW - 2 * DAY
    assert row["success_rate_7d"] == 0.0
    assert row["median_duration_sec_30d"] is None


def test_health_of_database_without_backups(history):
    pipeline, _ = history

    row = health_by_name(pipeline)["empty"]

    assert row["last_backup_at"] is None
    assert row["backups_7d"] == 0
    assert row["backups_30d"] == 0
    assert row["success_rate_7d"] is None


def test_failing_ignores_ongoing_backups(history):
    pipeline, _ = history

    row = health_by_name(pipeline)["flaky"]

    assert row["last_ended_outcome"] == "error"
    assert row["status"] == "failing"


# ----- backup_daily -----


def test_daily_rows_per_database_and_day(history):
    pipeline, built = history

    rows = query(
        pipeline,
        "SELECT day, backups, successes, failures, ongoing, other, median_duration_sec "
        f"FROM backup_daily WHERE database_id = '{built.databases['fresh']}' ORDER BY day",
    )

    assert rows == [
        (date(2026, 11, 18), 1, 1, 0, 0, 0, 600.0),
        (date(2026, 11, 19), 1, 0, 1, 0, 0, None),
        (date(2026, 11, 20), 2, 1, 0, 1, 0, 300.0),
    ]


def test_daily_names_the_database(history):
    pipeline, built = history

    names = query(pipeline, "SELECT DISTINCT database_name FROM backup_daily ORDER BY 1")

    assert names == [("broken",), ("flaky",), ("fresh",), ("stale",)]


# ----- creation -----


@pytest.fixture
def loaded_duckdb(tmp_path):
    built = build_history()
    pipeline, _ = make_destination_pipeline("duckdb", tmp_path, "qovery_views")
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        run(pipeline, server)
    return pipeline, built


def test_run_creates_views(loaded_duckdb):
    pipeline, _ = loaded_duckdb

    views = query(
        pipeline,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'qovery' AND table_type = 'VIEW' ORDER BY 1",
    )

    assert views == [("backup_daily",), ("backup_runs",), ("database_backup_health",)]


def test_default_views_measure_from_current_time(loaded_duckdb):
    pipeline, _ = loaded_duckdb
    before = datetime.now(timezone.utc)

    (as_of,) = query(pipeline, "SELECT DISTINCT as_of FROM database_backup_health")[0]

    assert before - timedelta(seconds=5) <= as_of <= datetime.now(timezone.utc)


def test_create_views_twice_is_harmless(loaded_duckdb):
    pipeline, _ = loaded_duckdb

    assert analytics.create_views(pipeline, now=NOW) == list(analytics.VIEW_NAMES)
    assert analytics.create_views(pipeline, now=NOW) == list(analytics.VIEW_NAMES)
    assert query(pipeline, "SELECT count(*) FROM backup_runs") == [(12,)]


def test_max_age_sets_stale_boundary(loaded_duckdb):
    pipeline, _ = loaded_duckdb

    analytics.create_views(pipeline, max_age=timedelta(hours=30), now=NOW)
    at_limit = health_by_name(pipeline)["stale"]["status"]
    analytics.create_views(pipeline, max_age=timedelta(hours=29, minutes=59), now=NOW)
    past_limit = health_by_name(pipeline)["stale"]["status"]

    assert at_limit == "ok"
    assert past_limit == "stale"


def test_unknown_status_counts_as_other(loaded_duckdb):
    pipeline, built = loaded_duckdb
    backup_id = built.backups["fresh_success"]
    with pipeline.sql_client() as client:
        client.execute_sql(
            "UPDATE backups SET status__status_details__status = 'CANCELED' WHERE id = %s", backup_id
        )

    row = runs_by_backup(pipeline)[backup_id]
    daily = query(
        pipeline,
        "SELECT other FROM backup_daily "
        f"WHERE database_id = '{built.databases['fresh']}' AND day = DATE '2026-11-20'",
    )

    assert row["outcome"] == "other"
    assert utc(row, "finished_at") == NOW - 3 * HOUR + timedelta(seconds=300)
    assert daily == [(1,)]


def test_views_work_without_databases_table(tmp_path):
    built = build_history()
    pipeline, _ = make_destination_pipeline("duckdb", tmp_path, "qovery_by_id")
    ids = [built.databases["fresh"], built.databases["broken"]]
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        run(pipeline, server, database_ids=ids)

    created = analytics.create_views(pipeline, now=NOW)
    health = query(
        pipeline, "SELECT database_id, database_name, status FROM database_backup_health ORDER BY status"
    )

    assert created == list(analytics.VIEW_NAMES)
    assert query(pipeline, "SELECT count(*) FROM backup_runs WHERE database_name IS NULL") == [(6,)]
    assert health == [(built.databases["broken"], None, "failing"), (built.databases["fresh"], None, "ok")]


def test_views_skipped_on_filesystem(tmp_path, caplog):
    pipeline = build_pipeline(
        "qovery_files",
        dlt.destinations.filesystem(str(tmp_path / "files")),
        "qovery",
        pipelines_dir=str(tmp_path / "dlt_pipelines"),
    )
    pipeline.run([{"id": "x"}], table_name="backups")

    with caplog.at_level(logging.WARNING, logger="qovery_backups.analytics"):
        created = analytics.create_views(pipeline)

    assert created == []
    assert "is not a SQL database" in caplog.text


def test_naive_now_is_rejected():
    tables = analytics.SourceTables(qualified_names={}, columns={})

    with pytest.raises(ValueError, match="naive"):
        analytics.health_sql("duckdb", tables, now=datetime(2026, 11, 20))
