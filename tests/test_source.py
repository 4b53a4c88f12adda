"""The source against the simulator: backfill, incremental runs across API changes, cursors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import (
    NOW,
    TOKEN,
    assert_tables_match,
    backup_requests,
    full_history_pages,
    loaded_backup_rows,
    query,
    run,
)
from qovery_backups.simulator import SimulatorServer, World
from qovery_backups.source import STOP_LOOKBACK


def database_states(pipeline) -> dict:
    resource = pipeline.state["sources"]["qovery"]["resources"].get("backups", {})
    return resource.get("databases", {})


def two_timeline_world() -> tuple[World, str, str, str]:
    """A world with a daily database, an hourly one, and one whose history ended long ago."""
    world = World(seed=11, now=NOW)
    organization = world.add_organization("Timelines")
    project = world.add_project(organization.id, "main")
    environment = world.add_environment(project.id, "production", "PRODUCTION")
    daily = world.add_database(
        environment.id, name="daily", backups=45, in_progress=1, without_updated_at=0.1,
        without_steps=0.1, error_fraction=0.1,
    )
    hourly = world.add_database(
        environment.id, name="hourly", backups=30, interval=timedelta(hours=1), in_progress=1,
    )
    old = world.add_database(
        environment.id, name="old", backups=25, end=NOW - timedelta(days=120),
    )
    return world, daily.id, hourly.id, old.id


@pytest.fixture
def timelines():
    world, daily, hourly, old = two_timeline_world()
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        yield world, server, [daily, hourly, old]


def test_backfill_loads_every_backup(pipeline, timelines):
    world, server, ids = timelines

    result = run(pipeline, server, database_ids=ids)

    assert_tables_match(pipeline, world, ids)
    assert backup_requests(server) == {
        ids[0]: full_history_pages(45),
        ids[1]: full_history_pages(30),
        ids[2]: full_history_pages(25),
    }
    assert result.row_counts["backups"] == 100
    assert {report.stop_reason for report in result.summary.databases.values()} == {"short page"}


def test_three_runs_follow_api_changes_exactly(pipeline, timelines):
    world, server, (daily, hourly, old) = timelines
    ids = [daily, hourly, old]
    run(pipeline, server, database_ids=ids)
    hourly_running = world.backups_of(hourly)[0]
    daily_running = world.backups_of(daily)[0]
    assert hourly_running["status"]["status_details"]["status"] == "ONGOING"
    assert daily_running["status"]["status_details"]["status"] == "ONGOING"

    # Run 2: 22 hourly backups push the running one to page 2 before it finishes late;
    # the daily database gets a new backup and its running one fails; a backup arrives
    # without updated_at.
    for hour in range(1, 23):
        world.add_backup(hourly, at=NOW + timedelta(hours=hour))
    world.advance(timedelta(hours=23))
    world.update_backup(hourly_running["id"], "SUCCESS")
    world.update_backup(daily_running["id"], "ERROR")
    world.add_backup(daily, outcome="SUCCESS")
    world.add_backup(daily, outcome="QUEUED", with_updated_at=False)
    position = [backup["id"] for backup in world.backups_of(hourly)].index(hourly_running["id"])
    assert position >= 20, "the late change must sit beyond the first page"
    server.reset_log()

    run(pipeline, server, database_ids=ids)

    assert_tables_match(pipeline, world, ids)
    # The hourly database's running backup was 22 backups deep: it is followed to page 2.
    assert backup_requests(server) == {daily: 1, hourly: 2, old: 1}

    # Run 3: nothing changed, so each database costs exactly one request.
    server.reset_log()
    result = run(pipeline, server, database_ids=ids)

    assert_tables_match(pipeline, world, ids)
    assert backup_requests(server) == {daily: 1, hourly: 1, old: 1}
    assert server.count() == 3
    assert {report.stop_reason for report in result.summary.databases.values()} == {STOP_LOOKBACK}


def test_database_behind_another_cursor_gets_new_backups(pipeline, timelines):
    world, server, (daily, hourly, old) = timelines
    run(pipeline, server, database_ids=[daily, old])
    states = database_states(pipeline)
    assert states[old]["cursor"] < states[daily]["cursor"]

    # Far older than the daily database's cursor, but newer than the old database's.
    late = world.add_backup(old, at=NOW - timedelta(days=60))
    server.reset_log()
    run(pipeline, server, database_ids=[daily, old])

    assert late["id"] in loaded_backup_rows(pipeline)
    assert_tables_match(pipeline, world, [daily, old])


def test_database_added_later_gets_full_history(pipeline, timelines):
    world, server, (daily, hourly, old) = timelines
    run(pipeline, server, database_ids=[daily])
    server.reset_log()

    run(pipeline, server, database_ids=[daily, hourly])

    assert_tables_match(pipeline, world, [daily, hourly])
    assert backup_requests(server) == {daily: 1, hourly: full_history_pages(30)}


def test_backup_without_updated_at_loads(pipeline, timelines):
    world, server, (daily, hourly, old) = timelines
    run(pipeline, server, database_ids=[old])
    world.advance(timedelta(days=1))
    added = world.add_backup(old, outcome="SUCCESS", with_updated_at=False)
    assert "updated_at" not in added

    run(pipeline, server, database_ids=[old])

    row = loaded_backup_rows(pipeline)[added["id"]]
    assert row["updated_at"] is None
    assert database_states(pipeline)[old]["cursor"] == world.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert_tables_match(pipeline, world, [old])


def test_updated_backup_replaces_its_steps(pipeline, timelines):
    world, server, (daily, hourly, old) = timelines
    run(pipeline, server, database_ids=[daily])
    running = world.backups_of(daily)[0]
    steps_sql = (
        "SELECT s.step_name, s.status FROM backups__status__steps__details AS s "
        f"JOIN backups AS b ON s._dlt_parent_id = b._dlt_id WHERE b.id = '{running['id']}' "
        "ORDER BY s._dlt_list_idx"
    )
    before = [(step["step_name"], step["status"]) for step in running["status"]["steps"]["details"]]
    assert query(pipeline, steps_sql) == before

    world.advance(timedelta(hours=2))
    updated = world.update_backup(running["id"], "ERROR")
    run(pipeline, server, database_ids=[daily])

    after = [(step["step_name"], step["status"]) for step in updated["status"]["steps"]["details"]]
    assert after != before
    assert query(pipeline, steps_sql) == after
    assert_tables_match(pipeline, world, [daily])


def test_reset_reloads_everything(pipeline, timelines):
    world, server, (daily, hourly, old) = timelines
    run(pipeline, server, database_ids=[daily])
    server.reset_log()

    result = run(pipeline, server, database_ids=[daily], reset=True)

    assert backup_requests(server) == {daily: full_history_pages(45)}
    assert result.row_counts["backups"] == 45
    assert_tables_match(pipeline, world, [daily])


def test_float_page_size_pages_the_same(pipeline):
    world, daily, hourly, old = two_timeline_world()
    with SimulatorServer(world, tokens=(TOKEN,), page_size_as_float=True) as server:
        run(pipeline, server, database_ids=[daily])
        assert backup_requests(server) == {daily: full_history_pages(45)}
    assert_tables_match(pipeline, world, [daily])


def test_server_ignoring_start_id_fails_that_database(pipeline):
    from qovery_backups.simulator import Faults

    world, daily, hourly, old = two_timeline_world()
    with SimulatorServer(world, tokens=(TOKEN,), faults=Faults(ignore_start_id=True)) as server:
        result = run(pipeline, server, database_ids=[daily, old])
        assert backup_requests(server) == {daily: 2, old: 2}

    for database_id in (daily, old):
        report = result.summary.databases[database_id]
        assert report.outcome == "failed"
        assert "ignore startId" in report.message
    # Rows read before the repeat are kept, but no state is stored, so a later run rereads.
    assert database_states(pipeline) == {}
