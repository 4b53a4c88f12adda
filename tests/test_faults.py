"""The pipeline under the simulator's faults: each run ends exact or fails clearly, and the
next clean run is exact, with no row lost or duplicated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import NOW, TOKEN, assert_tables_match, make_pipeline, query, run
from qovery_backups.simulator import Faults, SimulatorServer, World

# The faults fire by the server's request counter, so the matrix reads one database at a time
# to keep which request meets which fault the same on every run.
FAST_RETRIES = {"retry_backoff": 0.01, "max_attempts": 4, "read_timeout": 0.5, "concurrency": 1}


def small_world() -> World:
    return World.generate(
        seed=21, now=NOW, databases=4, backups_per_database=[45, 20, 7, 33],
        interval=timedelta(hours=8), without_updated_at=0.1, without_steps=0.1,
        error_fraction=0.1,
    )


def duplicate_ids(pipeline) -> list:
    return query(pipeline, "SELECT id FROM backups GROUP BY id HAVING count(*) > 1")


RECOVERABLE = {
    "rate limit": Faults(rate_limit_every=5, retry_after_seconds=0),
    "5xx burst": Faults(server_error_burst=(3, 3, 502)),
    "dropped connections": Faults(drop_connection_every=4),
    "truncated json": Faults(truncate_json_every=3),
    "slow responses": Faults(slow_seconds=1.0, slow_every=6),
    "all at once": Faults(
        rate_limit_every=7, retry_after_seconds=0, drop_connection_every=5,
        truncate_json_every=6, server_error_burst=(2, 2, 500),
    ),
}


@pytest.mark.parametrize("faults", RECOVERABLE.values(), ids=RECOVERABLE.keys())
def test_recoverable_fault_ends_exact(tmp_path, faults):
    world = small_world()
    ids = world.backup_database_ids()
    pipeline = make_pipeline(tmp_path)
    with SimulatorServer(world, tokens=(TOKEN,), faults=faults) as server:
        result = run(pipeline, server, database_ids=ids, **FAST_RETRIES)
        assert result.summary.with_outcome("failed") == []
        assert result.summary.requests.retries > 0
        assert_tables_match(pipeline, world, ids)

        # An incremental run under the same faults stays exact too.
        world.advance(timedelta(hours=8))
        for database_id in ids:
            world.add_backup(database_id)
        run(pipeline, server, database_ids=ids, **FAST_RETRIES)
    assert_tables_match(pipeline, world, ids)
    assert duplicate_ids(pipeline) == []


FATAL_FOR_A_DATABASE = {
    "5xx outlasting retries": Faults(server_error_burst=(2, 40, 503)),
    "server ignoring startId": Faults(ignore_start_id=True),
}


@pytest.mark.parametrize("faults", FATAL_FOR_A_DATABASE.values(), ids=FATAL_FOR_A_DATABASE.keys())
def test_unrecoverable_fault_fails_clearly_then_recovers(tmp_path, faults):
    world = small_world()
    ids = world.backup_database_ids()
    pipeline = make_pipeline(tmp_path)
    with SimulatorServer(world, tokens=(TOKEN,), faults=faults) as server:
        result = run(pipeline, server, database_ids=ids, **FAST_RETRIES)
        failed = result.summary.with_outcome("failed")
        assert failed != []
        for report in failed:
            assert report.message.startswith("GET /database/")
        assert duplicate_ids(pipeline) == []

        server.faults = Faults()
        result = run(pipeline, server, database_ids=ids, **FAST_RETRIES)
    assert result.summary.with_outcome("failed") == []
    assert_tables_match(pipeline, world, ids)
    assert duplicate_ids(pipeline) == []


def test_concurrent_reads_survive_a_5xx_burst(tmp_path):
    """A burst of 3 errors meets one database at most 3 times, fewer than its 4 attempts,
    however the 4 workers interleave."""
    world = small_world()
    ids = world.backup_database_ids()
    pipeline = make_pipeline(tmp_path)
    with SimulatorServer(world, tokens=(TOKEN,), faults=Faults(server_error_burst=(2, 3, 503))) as server:
        result = run(pipeline, server, database_ids=ids, **{**FAST_RETRIES, "concurrency": 4})
    assert result.summary.with_outcome("failed") == []
    assert result.summary.requests.retries == 3
    assert_tables_match(pipeline, world, ids)


def test_read_timeout_is_retried(tmp_path):
    world = small_world()
    ids = world.backup_database_ids()[:1]
    pipeline = make_pipeline(tmp_path)
    slow = Faults(slow_seconds=4.0, slow_every=2)
    with SimulatorServer(world, tokens=(TOKEN,), faults=slow) as server:
        # The margin between the read timeout and the slow answers keeps this exact on a
        # loaded machine.
        result = run(pipeline, server, database_ids=ids, **{**FAST_RETRIES, "read_timeout": 1.5})
    # Requests 2 and 4 sleep past the 1.5 s read timeout. The 3 pages of 45 backups take
    # requests 1, 3 (page 2 retried) and 5 (page 3 retried).
    assert result.summary.requests.retries == 2
    assert result.summary.requests.requests == 5
    assert_tables_match(pipeline, world, ids)
