"""The scheduling recipes: the cron line runs as written, the workflow and the DAG parse."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import NOW, TOKEN
from qovery_backups.simulator import SimulatorServer, World

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-actions-workflow.yml"
DAG = ROOT / "examples" / "airflow_dag.py"
SCHEDULING = ROOT / "docs" / "scheduling.md"
CRON_DIRECTORY = "/srv/qovery-backups"


def cron_line() -> str:
    block = re.search(r"```cron\n(.*?)\n```", SCHEDULING.read_text(), re.DOTALL)
    assert block, "docs/scheduling.md has no cron block"
    (line,) = block.group(1).splitlines()
    return line


def test_cron_line_has_schedule_and_lock():
    fields = cron_line().split(maxsplit=5)

    assert fields[:5] == ["17", "*", "*", "*", "*"]
    assert "flock --nonblock" in fields[5]
    assert "qovery-backups --log-format json run --summary-format json" in fields[5]


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) is not installed")
def test_cron_command_loads(tmp_path):
    world = World.demo(NOW)
    (organization,) = world.organizations()
    project = tmp_path / "srv"
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "qovery-backups").symlink_to(
        Path(sys.executable).parent / "qovery-backups"
    )
    (project / ".dlt").mkdir()
    (project / ".dlt" / "secrets.toml").write_text(f'[sources.qovery]\napi_token = "{TOKEN}"\n')
    command = cron_line().split(maxsplit=5)[5].replace(CRON_DIRECTORY, str(project))
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SOURCES__", "DESTINATION__", "QOVERY"))
    }
    environment.update(DLT_DATA_DIR=str(tmp_path / "dlt_data"), RUNTIME__DLTHUB_TELEMETRY="false")

    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        (project / ".dlt" / "config.toml").write_text(
            f'[sources.qovery]\nbase_url = "{server.base_url}"\n'
            f'organization_id = "{organization.id}"\n'
        )
        for _ in range(2):
            completed = subprocess.run(
                ["/bin/sh", "-c", command], env=environment, capture_output=True, text=True, timeout=120
            )
            assert completed.returncode == 0, (project / "logs" / "qovery-backups.log").read_text()

    summaries = [json.loads(line) for line in (project / "logs" / "summaries.jsonl").read_text().splitlines()]
    assert [summary["exit_code"] for summary in summaries] == [0, 0]
    assert summaries[0]["rows"]["backups"] == sum(
        len(world.backups_of(database_id)) for database_id in world.backup_database_ids()
    )
    # The second run is incremental: one backup request per database.
    assert summaries[1]["requests"]["by_category"]["backups"] == len(world.databases())
    log_lines = (project / "logs" / "qovery-backups.log").read_text().splitlines()
    assert log_lines
    assert all(json.loads(line)["level"] for line in log_lines)
    assert (project / "qovery_backups.duckdb").exists()


def test_workflow_runs_qovery_backups():
    workflow = yaml.safe_load(WORKFLOW.read_text())

    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["schedule"][0]["cron"] == "17 * * * *"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    (job,) = workflow["jobs"].values()
    commands = [" ".join(step["run"].split()) for step in job["steps"] if "run" in step]
    load = [command for command in commands if "qovery-backups" in command and " run " in command]
    assert load, commands
    assert "qovery-backups --log-format json run --destination postgres" in load[0]
    (load_step,) = [step for step in job["steps"] if "run" in step and "qovery-backups" in step["run"]]
    assert load_step["shell"] == "bash"
    assert load_step["env"]["SOURCES__QOVERY__API_TOKEN"] == "${{ secrets.QOVERY_API_TOKEN }}"
    assert load_step["env"]["DESTINATION__POSTGRES__CREDENTIALS"] == "${{ secrets.POSTGRES_DSN }}"
    cached = [step["with"]["path"] for step in job["steps"] if "actions/cache" in step.get("uses", "")]
    assert cached == ["~/.dlt/pipelines/qovery_backups"] * 2


def test_airflow_dag_compiles():
    source = DAG.read_text()

    compile(source, str(DAG), "exec")
    tree = ast.parse(source)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert {"PipelineTasksGroup", "build_pipeline", "qovery_source"} <= imported
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert "add_run" in calls


def method_parameters(path: Path, class_name: str) -> dict[str, set[str]]:
    """Return the parameter names of each method of a class, read from its source file."""
    tree = ast.parse(path.read_text())
    (definition,) = [
        node for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name == class_name
    ]
    methods = {}
    for node in definition.body:
        if isinstance(node, ast.FunctionDef):
            arguments = node.args.args + node.args.kwonlyargs
            methods[node.name] = {argument.arg for argument in arguments}
    return methods


def test_airflow_dag_keywords_exist_in_dlt():
    # dlt's helper imports Airflow, so its signatures are read from the source instead.
    helper = Path(importlib.util.find_spec("dlt").origin).parent / "helpers" / "airflow_helper.py"
    methods = method_parameters(helper, "PipelineTasksGroup")
    tree = ast.parse(DAG.read_text())
    calls = {"PipelineTasksGroup": "__init__", "add_run": "add_run"}
    checked = set()

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in calls:
            keywords = {keyword.arg for keyword in node.keywords}
            # add_run passes keywords it does not know on to the Airflow task.
            known = methods[calls[name]] | ({"trigger_rule", "retries"} if name == "add_run" else set())
            assert keywords <= known, f"{name} has no parameters {keywords - known}"
            checked.add(name)

    assert checked == set(calls)
