"""`--log-format json` and `--summary-format json`: what a scheduler reads from a run.

The CLI runs in a subprocess, so stderr and stdout are exactly what a scheduler captures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NOW, TOKEN
from qovery_backups.simulator import SimulatorServer, World

LOG_KEYS = {"time", "level", "logger", "message"}


@pytest.fixture
def demo_server():
    world = World.demo(NOW)
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        yield world, server


def run_cli(tmp_path: Path, *arguments: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SOURCES__", "DESTINATION__", "QOVERY"))
    }
    environment.update(
        SOURCES__QOVERY__API_TOKEN=token,
        DLT_DATA_DIR=str(tmp_path / "dlt_data"),
        RUNTIME__DLTHUB_TELEMETRY="false",
    )
    return subprocess.run(
        [sys.executable, "-m", "qovery_backups.cli", *arguments],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def parse_log_lines(stderr: str) -> list[dict]:
    lines = stderr.splitlines()
    assert lines, "the run logged nothing"
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"stderr line is not JSON: {line!r}")
    return records


def organization_id(world: World) -> str:
    (organization,) = world.organizations()
    return organization.id


def test_json_logs_one_object_per_line(tmp_path, demo_server):
    world, server = demo_server

    completed = run_cli(
        tmp_path,
        "--log-format", "json",
        "--log-level", "DEBUG",
        "run",
        "--organization-id", organization_id(world),
        "--base-url", server.base_url,
    )

    assert completed.returncode == 0, completed.stderr
    records = parse_log_lines(completed.stderr)
    for record in records:
        assert LOG_KEYS <= record.keys(), record
        assert record["time"].endswith("Z"), record
    assert {record["level"] for record in records} >= {"INFO", "DEBUG"}
    assert TOKEN not in completed.stderr


def test_json_logs_name_database_id(tmp_path, demo_server):
    world, server = demo_server

    completed = run_cli(
        tmp_path,
        "--log-format", "json",
        "run",
        "--organization-id", organization_id(world),
        "--base-url", server.base_url,
    )

    records = parse_log_lines(completed.stderr)
    per_database = [record for record in records if record["message"].startswith("Database ")]
    assert per_database
    for record in per_database:
        assert record.get("database_id") in record["message"], record
    logged_ids = {record["database_id"] for record in per_database}
    assert logged_ids == {database.id for database in world.databases()}


def test_json_logs_on_failed_run(tmp_path, demo_server):
    world, server = demo_server

    completed = run_cli(
        tmp_path,
        "--log-format", "json",
        "run",
        "--organization-id", organization_id(world),
        "--base-url", server.base_url,
        "--summary-format", "json",
        token="qov_wrong_5e1d9c3b7a",
    )

    assert completed.returncode == 1
    assert completed.stdout == ""
    records = parse_log_lines(completed.stderr)
    errors = [record for record in records if record["level"] == "ERROR"]
    assert errors
    assert any("401" in record["message"] for record in errors)


def test_summary_json_is_one_object(tmp_path, demo_server):
    world, server = demo_server
    forbidden = world.backup_database_ids()[0]
    world.set_forbidden(forbidden)

    completed = run_cli(
        tmp_path,
        "run",
        "--organization-id", organization_id(world),
        "--base-url", server.base_url,
        "--summary-format", "json",
    )

    assert completed.returncode == 3, completed.stderr
    (line,) = completed.stdout.splitlines()
    summary = json.loads(line)
    assert summary["exit_code"] == 3
    assert summary["pipeline"] == "qovery_backups"
    assert summary["dataset"] == "qovery"
    assert summary["destination"] == "duckdb"

    serving = [database_id for database_id in world.backup_database_ids() if database_id != forbidden]
    expected_backups = sum(len(world.backups_of(database_id)) for database_id in serving)
    assert summary["rows"]["backups"] == expected_backups
    assert summary["rows"]["databases"] == len(world.databases())
    assert set(summary["rows"]) >= {"backups", "databases", "backups__status__steps__details"}

    requests = summary["requests"]
    assert requests["requests"] == sum(requests["by_category"].values())
    assert set(requests["by_category"]) == {"discovery", "backups"}
    assert requests["by_category"]["backups"] == len(server.requests) - requests["by_category"]["discovery"]
    assert requests["retries"] == 0

    outcomes = {database["id"]: database["outcome"] for database in summary["databases"]}
    managed = {database.id for database in world.databases()} - set(world.backup_database_ids())
    assert outcomes == {
        **{database_id: "loaded" for database_id in serving},
        **{database_id: "skipped" for database_id in managed},
        forbidden: "failed",
    }
    failed = next(database for database in summary["databases"] if database["id"] == forbidden)
    assert "403" in failed["stop_reason"]
    assert failed["message"]
