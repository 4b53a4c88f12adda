"""Full scans: late changes deep in the history, deleted backups and vanished databases."""

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


def daily_world() -> World:
    world = World(seed=31, now=NOW)
    organization = world.add_organization("Reconcile")
    project = world.add_project(organization.id, "main")
    environment = world.add_environment(project.id, "production", "PRODUCTION")
    world.add_database(environment.id, name="alpha", backups=70, without_updated_at=0.05)
    world.add_database(environment.id, name="beta", backups=33)
    return world


@pytest.fixture
def daily():
    world = daily_world()
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        yield world, server, world.backup_database_ids()


def backup_states(pipeline) -> dict:
    return pipeline.state["sources"]["qovery"]["resources"]["backups"]["databases"]


def test_deep_change_and_deletion_need_a_full_scan(pipeline, daily):
    world, server, ids = daily
    alpha, beta = ids
    run(pipeline, server, database_ids=ids)
    history = world.backups_of(alpha)
    deep = history[45]
    gone = history[30]
    world.advance(timedelta(hours=1))
    world.update_backup(deep["id"], "ERROR")
    world.delete_backup(gone["id"])
    server.reset_log()

    result = run(pipeline, server, database_ids=ids)

    # The incremental run costs one request per database and cannot see either change.
    assert backup_requests(server) == {alpha: 1, beta: 1}
    assert [report.full_scan for report in result.summary.databases.values()] == [False, False]
    loaded = loaded_backup_rows(pipeline)
    assert loaded[deep["id"]]["status__status_details__status"] == "SUCCESS"
    assert loaded[gone["id"]]["deleted_at"] is None

    server.reset_log()
    result = run(pipeline, server, database_ids=ids, full_scan=True)

    assert backup_requests(server) == {alpha: full_history_pages(69), beta: full_history_pages(33)}
    assert_tables_match(pipeline, world, ids, deleted=[gone["id"]])
    assert result.summary.databases[alpha].full_scan is True
    assert result.summary.databases[alpha].marked_deleted == 1
    assert result.summary.databases[beta].marked_deleted == 0
    deleted_at = loaded_backup_rows(pipeline)[gone["id"]]["deleted_at"]
    assert deleted_at == result.summary.started_at

    # The mark stays put on the next full scan: it records when the backup was first missed.
    run(pipeline, server, database_ids=ids, full_scan=True)
    assert loaded_backup_rows(pipeline)[gone["id"]]["deleted_at"] == deleted_at


def test_reappearing_backup_is_unmarked(pipeline, daily):
    world, server, ids = daily
    run(pipeline, server, database_ids=ids)
    gone = world.backups_of(ids[0])[50]
    record = world.delete_backup_for_restore(gone["id"])
    run(pipeline, server, database_ids=ids, full_scan=True)
    assert loaded_backup_rows(pipeline)[gone["id"]]["deleted_at"] is not None

    world.restore_backup(record)
    run(pipeline, server, database_ids=ids, full_scan=True)

    assert_tables_match(pipeline, world, ids)


def test_forbidden_database_is_never_marked_deleted(pipeline, daily):
    world, server, ids = daily
    run(pipeline, server, database_ids=ids)
    world.set_forbidden(ids[1])

    result = run(pipeline, server, database_ids=ids, full_scan=True)

    assert result.summary.databases[ids[1]].outcome == "failed"
    assert query(pipeline, "SELECT count(*) FROM backups WHERE deleted_at IS NOT NULL") == [(0,)]
    world.set_forbidden(ids[1], False)
    assert_tables_match(pipeline, world, ids)


def test_full_scan_cadence_is_tracked_per_database(pipeline, daily):
    world, server, ids = daily
    run(pipeline, server, database_ids=ids[:1])
    first_scan = backup_states(pipeline)[ids[0]]["last_full_scan"]
    assert first_scan is not None

    result = run(pipeline, server, database_ids=ids, full_scan_every="7d")

    # The new database gets its first full read; the other is not due for 7 days.
    assert result.summary.databases[ids[0]].full_scan is False
    assert result.summary.databases[ids[1]].full_scan is True
    assert backup_states(pipeline)[ids[0]]["last_full_scan"] == first_scan

    server.reset_log()
    result = run(pipeline, server, database_ids=ids, full_scan_every="0s")

    assert [report.full_scan for report in result.summary.databases.values()] == [True, True]
    assert backup_requests(server) == {ids[0]: full_history_pages(70), ids[1]: full_history_pages(33)}
    assert backup_states(pipeline)[ids[0]]["last_full_scan"] > first_scan


def test_vanished_database_is_marked_and_keeps_backups(pipeline, daily):
    world, server, ids = daily
    organization_id = world.organizations()[0].id
    run(pipeline, server, organization_id=organization_id)
    beta_backups = query(pipeline, f"SELECT count(*) FROM backups WHERE database_id = '{ids[1]}'")

    world.remove_database(ids[1])
    result = run(pipeline, server, organization_id=organization_id)

    assert result.summary.databases_marked_deleted == 1
    rows = dict(query(pipeline, "SELECT id, deleted_at IS NOT NULL FROM databases"))
    assert rows == {ids[0]: False, ids[1]: True}
    assert query(pipeline, f"SELECT count(*) FROM backups WHERE database_id = '{ids[1]}'") == beta_backups
    assert query(pipeline, "SELECT count(*) FROM backups WHERE deleted_at IS NOT NULL") == [(0,)]
