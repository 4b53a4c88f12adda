"""An interrupted backfill resumes: finished batches are kept and not fetched again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dlt

from conftest import NOW, TOKEN, assert_tables_match, backup_requests, full_history_pages, run
from qovery_backups.pipeline import build_pipeline
from qovery_backups.simulator import SimulatorServer, World

BACKUPS_PER_DATABASE = 41


def twelve_database_world() -> World:
    return World.generate(
        seed=5, now=NOW, databases=12, backups_per_database=BACKUPS_PER_DATABASE,
        interval=timedelta(hours=12),
    )


def pipeline_in(folder: Path) -> dlt.Pipeline:
    return build_pipeline(
        "qovery_resume",
        dlt.destinations.duckdb(str(folder / "resume.duckdb")),
        "qovery",
        pipelines_dir=str(folder / "data" / "pipelines"),
    )


def wait_for_request(server: SimulatorServer, database_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if database_id in backup_requests(server):
            return
        time.sleep(0.01)
    raise AssertionError(f"no request for database {database_id} within {timeout} s")


def wait_until_idle(server: SimulatorServer, quiet: float = 0.5) -> None:
    """Return once the server has logged no new request for `quiet` seconds."""
    count = server.count()
    while True:
        time.sleep(quiet)
        if server.count() == count:
            return
        count = server.count()


def committed_databases(folder: Path) -> set[str]:
    """Databases whose cursors an extraction committed to the local pipeline state."""
    state_file = folder / "data" / "pipelines" / "qovery_resume" / "state.json"
    if not state_file.exists():
        return set()
    try:
        state = json.loads(state_file.read_text())
    except ValueError:  # caught while dlt rewrites it
        return set()
    resources = state.get("sources", {}).get("qovery", {}).get("resources", {})
    return set(resources.get("backups", {}).get("databases", {}))


def test_sigkill_mid_backfill_resumes_exactly(tmp_path):
    world = twelve_database_world()
    ids = world.backup_database_ids()
    env = dict(
        os.environ,
        RUNTIME__DLTHUB_TELEMETRY="false",
        SOURCES__QOVERY__API_TOKEN=TOKEN,
        DLT_DATA_DIR=str(tmp_path / "data"),
        DESTINATION__DUCKDB__CREDENTIALS=str(tmp_path / "resume.duckdb"),
    )
    with SimulatorServer(world, tokens=(TOKEN,), latency=0.02) as server:
        env["SOURCES__QOVERY__BASE_URL"] = server.base_url
        command = [
            sys.executable, "-m", "qovery_backups.cli", "run",
            "--pipeline-name", "qovery_resume", "--dataset-name", "qovery",
            # Packages of about two databases, so the backfill takes several.
            "--backups-per-extract", "60", "--concurrency", "2",
        ]
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            # Kill once a package is committed and a database outside it is being read.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                committed = committed_databases(tmp_path)
                if committed and set(backup_requests(server)) - committed:
                    break
                time.sleep(0.01)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        committed = committed_databases(tmp_path)
        # Requests the killed process had in flight may still be logged by server threads.
        wait_until_idle(server)
        server.reset_log()

        result = run(pipeline_in(tmp_path), server)

        requests = backup_requests(server)
    assert 0 < len(committed) < len(ids)
    full = full_history_pages(BACKUPS_PER_DATABASE)
    expected = {database_id: 1 if database_id in committed else full for database_id in ids}
    assert requests == expected
    assert_tables_match(pipeline_in(tmp_path), world, ids)
    assert result.summary.with_outcome("failed") == []


def test_failed_database_keeps_others_loaded(tmp_path, pipeline):
    world = twelve_database_world()
    ids = world.backup_database_ids()
    world.set_forbidden(ids[6])
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        result = run(pipeline, server)
        assert [report.database_id for report in result.summary.with_outcome("failed")] == [ids[6]]
        world.set_forbidden(ids[6], False)
        server.reset_log()

        run(pipeline, server)

        requests = backup_requests(server)
    assert requests[ids[6]] == full_history_pages(BACKUPS_PER_DATABASE)
    assert sum(requests.values()) == 11 + full_history_pages(BACKUPS_PER_DATABASE)
    assert_tables_match(pipeline, world, ids)


def test_lost_pipeline_folder_restores_state(tmp_path):
    import shutil

    world = twelve_database_world()
    ids = world.backup_database_ids()
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        run(pipeline_in(tmp_path), server)
        # A fresh CI runner has the destination but not the local pipeline folder.
        shutil.rmtree(tmp_path / "data")
        server.reset_log()

        run(pipeline_in(tmp_path), server)

        assert backup_requests(server) == dict.fromkeys(ids, 1)
    assert_tables_match(pipeline_in(tmp_path), world, ids)
