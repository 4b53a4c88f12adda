"""The `qovery-backups` command line against the simulator: exit codes, config, output, demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dlt
import duckdb
import pytest
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

from conftest import (
    NOW,
    TOKEN,
    assert_tables_match,
    backup_requests,
    expected_step_rows,
    full_history_pages,
)
from qovery_backups.cli import main
from qovery_backups.simulator import SimulatorServer, World

CONSOLE_SCRIPT = Path(sys.executable).parent / "qovery-backups"
WRONG_TOKEN = "qov_wrong_5e1d9c3b7a"
# Three base64url parts separated by dots, as in a JWT. The simulator compares only the string.
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJxb3ZlcnktdGVzdCJ9.c2lnbmF0dXJlLXBhcnQ"
UNKNOWN_DATABASE_ID = "0b5c7e2a-9d41-4f3e-8a6b-1c2d3e4f5a6b"

# Backup counts of the demo world's databases that serve a backup list (see World.demo).
DEMO_BACKUPS = {"orders": 120, "sessions": 90, "orders-staging": 60, "inventory": 45, "legacy-billing": 75}


@pytest.fixture(autouse=True)
def dlt_data_dir(monkeypatch, tmp_path) -> Path:
    """Keep the pipelines folders of CLI runs inside tmp_path rather than in ~/.dlt."""
    data_dir = tmp_path / "dlt_data"
    monkeypatch.setenv("DLT_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", TOKEN)


def database_id(world: World, name: str) -> str:
    (found,) = [database.id for database in world.databases() if database.name == name]
    return found


def attach(data_dir: Path, name: str = "qovery_backups") -> dlt.Pipeline:
    """Attach to a pipeline that a CLI run created, to query what it loaded."""
    return dlt.attach(pipeline_name=name, pipelines_dir=str(data_dir / "pipelines"))


def count_rows(duckdb_file: Path, table: str) -> int:
    with duckdb.connect(str(duckdb_file), read_only=True) as connection:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return count


def output_line(output: str, prefix: str) -> str:
    """Return the one output line that starts with `prefix` after its indentation."""
    (line,) = [line.strip() for line in output.splitlines() if line.strip().startswith(prefix)]
    return line


def reload_config_providers() -> None:
    """Make dlt read `.dlt/*.toml` of the working directory again, as a new process does."""
    Container()[PluggableRunContext].reload_providers()


@pytest.fixture
def small_world():
    """One database with five backups, for tests that only look at requests or exit codes."""
    world = World(seed=5, now=NOW)
    organization = world.add_organization("Small")
    project = world.add_project(organization.id, "main")
    environment = world.add_environment(project.id, "production", "PRODUCTION")
    database = world.add_database(environment.id, name="solo", backups=5)
    with SimulatorServer(world, tokens=(TOKEN, JWT)) as server:
        yield world, server, database.id


# ----- failures and exit codes -----


@pytest.mark.parametrize("selection", [[], ["--database-id", UNKNOWN_DATABASE_ID]], ids=["discovery", "ids"])
def test_wrong_token_exits_1(server, monkeypatch, capsys, caplog, selection):
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", WRONG_TOKEN)

    code = main(["run", "--base-url", server.base_url, *selection])

    assert code == 1
    assert [record.status for record in server.requests] == [401]
    assert "Check the API token" in caplog.text
    output = capsys.readouterr()
    assert WRONG_TOKEN not in output.out
    assert WRONG_TOKEN not in output.err
    assert WRONG_TOKEN not in caplog.text


def test_unknown_database_id_exits_3(server, token_env, capsys, caplog):
    code = main(["run", "--base-url", server.base_url, "--database-id", UNKNOWN_DATABASE_ID])

    assert code == 3
    assert backup_requests(server) == {UNKNOWN_DATABASE_ID: 1}
    failed = output_line(capsys.readouterr().out, f"FAILED {UNKNOWN_DATABASE_ID}")
    assert "404" in failed
    assert "Check the id" in failed
    assert f"Database {UNKNOWN_DATABASE_ID}: backups not loaded" in caplog.text


def test_invalid_database_id_exits_2(server, token_env, caplog):
    code = main(["run", "--base-url", server.base_url, "--database-id", "orders-db"])

    assert code == 2
    assert "'orders-db'" in caplog.text
    assert "SOURCES__QOVERY__DATABASE_IDS" in caplog.text
    assert server.requests == []


def test_missing_token_exits_2(server, caplog):
    code = main(["run", "--base-url", server.base_url])

    assert code == 2
    assert "SOURCES__QOVERY__API_TOKEN" in caplog.text
    assert server.requests == []


def test_ftp_base_url_exits_2(token_env, caplog):
    code = main(["run", "--base-url", "ftp://x"])

    assert code == 2
    assert "'ftp://x'" in caplog.text
    assert "https://" in caplog.text


def test_comma_separated_ids_exit_2(server, token_env, monkeypatch, demo_world, caplog):
    ids = [database_id(demo_world, "orders"), database_id(demo_world, "inventory")]
    monkeypatch.setenv("SOURCES__QOVERY__BASE_URL", server.base_url)
    monkeypatch.setenv("SOURCES__QOVERY__DATABASE_IDS", ",".join(ids))

    code = main(["run"])

    assert code == 2
    assert "Lists in env variables are JSON" in caplog.text
    assert server.requests == []


# ----- configuration -----


def test_env_config_loads_exactly(server, demo_world, monkeypatch, dlt_data_dir):
    ids = [database_id(demo_world, "orders"), database_id(demo_world, "inventory")]
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__QOVERY__BASE_URL", server.base_url)
    monkeypatch.setenv("SOURCES__QOVERY__DATABASE_IDS", f'["{ids[0]}", "{ids[1]}"]')

    code = main(["run"])

    assert code == 0
    assert backup_requests(server) == {ids[0]: full_history_pages(120), ids[1]: full_history_pages(45)}
    assert_tables_match(attach(dlt_data_dir), demo_world, ids)


@pytest.fixture
def toml_config(tmp_path):
    """Yield a writer of `.dlt/secrets.toml` and `.dlt/config.toml`, and forget them afterwards."""
    settings_dir = tmp_path / ".dlt"
    settings_dir.mkdir()

    def write(secrets: str, config: str) -> None:
        (settings_dir / "secrets.toml").write_text(secrets)
        (settings_dir / "config.toml").write_text(config)
        reload_config_providers()

    yield write
    shutil.rmtree(settings_dir)
    reload_config_providers()


def test_toml_config_loads_exactly(server, demo_world, toml_config, dlt_data_dir):
    ids = [database_id(demo_world, "sessions"), database_id(demo_world, "legacy-billing")]
    toml_config(
        f'[sources.qovery]\napi_token = "{TOKEN}"\n',
        f'[sources.qovery]\nbase_url = "{server.base_url}"\ndatabase_ids = ["{ids[0]}", "{ids[1]}"]\n',
    )

    code = main(["run"])

    assert code == 0
    assert backup_requests(server) == {ids[0]: full_history_pages(90), ids[1]: full_history_pages(75)}
    assert_tables_match(attach(dlt_data_dir), demo_world, ids)


def test_pipeline_options_are_honoured(small_world, token_env, monkeypatch, tmp_path, dlt_data_dir, capsys):
    world, server, solo = small_world
    duckdb_file = tmp_path / "custom.duckdb"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(duckdb_file))

    code = main(
        [
            "run",
            "--base-url", server.base_url,
            "--database-id", solo,
            "--pipeline-name", "nightly_backups",
            "--dataset-name", "qovery_raw",
            "--destination", "duckdb",
        ]
    )

    assert code == 0
    assert count_rows(duckdb_file, "qovery_raw.backups") == 5
    assert (dlt_data_dir / "pipelines" / "nightly_backups").is_dir()
    assert not (tmp_path / "qovery_backups.duckdb").exists()
    assert "pipeline nightly_backups, dataset qovery_raw" in capsys.readouterr().out


# ----- output -----


def test_summary_lists_rows_requests_and_stops(server, demo_world, token_env, capsys):
    world = demo_world
    (organization,) = world.organizations()

    code = main(["run", "--base-url", server.base_url, "--organization-id", organization.id])

    assert code == 0
    output = capsys.readouterr().out
    backups = sum(full_history_pages(count) for count in DEMO_BACKUPS.values()) + 1
    requests = output_line(output, "requests:")
    assert requests.startswith(f"requests: {backups + 6} (backups {backups}, discovery 6; 0 retries")
    steps = len(expected_step_rows(world, world.backup_database_ids()))
    rows = output_line(output, "rows loaded:")
    assert rows == (
        f"rows loaded: backups={sum(DEMO_BACKUPS.values())}, "
        f"backups__status__steps__details={steps}, databases=6"
    )
    for name, count in DEMO_BACKUPS.items():
        line = output_line(output, f"database {name} ({database_id(world, name)}):")
        # A full last page needs one more request, which returns an empty page.
        stop = "empty page" if count % 20 == 0 else "short page"
        assert line.endswith(
            f"loaded, full scan, {full_history_pages(count)} pages, {count} backups, stopped on {stop}"
        )
    catalog = output_line(output, f"database catalog ({database_id(world, 'catalog')}):")
    assert catalog.endswith("skipped, 0 pages, 0 backups, stopped on skipped (404)")


@pytest.mark.parametrize(
    ("token", "scheme_setting", "expected"),
    [
        (JWT, None, f"Bearer {JWT}"),
        (TOKEN, None, f"Token {TOKEN}"),
        (TOKEN, "Bearer", f"Bearer {TOKEN}"),
        (JWT, "Token", f"Token {JWT}"),
    ],
)
def test_authorization_header_scheme(small_world, monkeypatch, token, scheme_setting, expected):
    world, server, solo = small_world
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", token)
    if scheme_setting is not None:
        monkeypatch.setenv("SOURCES__QOVERY__AUTH_SCHEME", scheme_setting)

    code = main(["run", "--base-url", server.base_url, "--database-id", solo])

    assert code == 0
    assert len(server.requests) == 1
    assert server.requests[0].headers["Authorization"] == expected


def test_reset_reloads_everything(server, demo_world, token_env, dlt_data_dir, capsys):
    inventory = database_id(demo_world, "inventory")
    arguments = ["run", "--base-url", server.base_url, "--database-id", inventory]
    assert main(arguments) == 0
    server.reset_log()
    capsys.readouterr()

    code = main([*arguments, "--reset"])

    assert code == 0
    assert backup_requests(server) == {inventory: full_history_pages(45)}
    assert "backups=45," in output_line(capsys.readouterr().out, "rows loaded:")
    assert_tables_match(attach(dlt_data_dir), demo_world, [inventory])


# ----- demo -----


def demo_table(output: str) -> dict[str, tuple[str, str, str]]:
    """Parse the demo's printed query result into {database: (env_mode, type, backups)}."""
    lines = output.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("env_mode"))
    table = {}
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        env_mode, database, database_type, backups = line.split()[:4]
        table[database] = (env_mode, database_type, backups)
    return table


def test_demo_loads_and_resets(tmp_path, capsys):
    duckdb_file = tmp_path / "demo.duckdb"
    # The demo's 390 generated backups plus the one new backup per serving database that
    # its second run loads.
    demo_backups = sum(DEMO_BACKUPS.values()) + len(DEMO_BACKUPS)
    assert demo_backups == 395

    code = main(["demo", "--duckdb-file", str(duckdb_file)])

    assert code == 0
    assert demo_table(capsys.readouterr().out) == {
        "orders": ("PRODUCTION", "POSTGRESQL", "121"),
        "sessions": ("PRODUCTION", "REDIS", "91"),
        "catalog": ("PRODUCTION", "MONGODB", "0"),
        "orders-staging": ("STAGING", "POSTGRESQL", "61"),
        "inventory": ("STAGING", "MYSQL", "46"),
        "legacy-billing": ("DEVELOPMENT", "MYSQL", "76"),
    }
    assert count_rows(duckdb_file, "qovery.backups") == demo_backups
    assert count_rows(duckdb_file, "qovery.databases") == 6

    assert main(["demo", "--duckdb-file", str(duckdb_file)]) == 0
    assert count_rows(duckdb_file, "qovery.backups") == demo_backups
    assert count_rows(duckdb_file, "qovery.databases") == 6


# ----- the installed console script -----


def test_console_script_runs(small_world, tmp_path):
    world, server, solo = small_world
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SOURCES__", "DESTINATION__"))
    }
    environment.update(
        {
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DLT_DATA_DIR": str(tmp_path / "dlt_data"),
            "SOURCES__QOVERY__API_TOKEN": TOKEN,
            "SOURCES__QOVERY__BASE_URL": server.base_url,
        }
    )

    completed = subprocess.run(
        [str(CONSOLE_SCRIPT), "run", "--database-id", solo],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert f"database {solo}: loaded, full scan, 1 pages, 5 backups" in completed.stdout
    assert TOKEN not in completed.stdout
    assert TOKEN not in completed.stderr
    assert count_rows(tmp_path / "qovery_backups.duckdb", "qovery.backups") == 5


# ----- input a user mistypes, and where the data lands -----


def test_unknown_environment_mode_exits_2(server, token_env, caplog):
    code = main(["run", "--base-url", server.base_url, "--environment-mode", "PRODUCTON"])

    assert code == 2
    assert "Invalid environment mode 'PRODUCTON'" in caplog.text
    assert server.count() == 0


def test_unknown_organization_exits_2(server, token_env, caplog):
    code = main(["run", "--base-url", server.base_url, "--organization-id", UNKNOWN_DATABASE_ID])

    assert code == 2
    assert f"Organization {UNKNOWN_DATABASE_ID} was not found" in caplog.text
    assert "--organization-id" in caplog.text


def test_unknown_destination_exits_2(token_env, caplog):
    code = main(["run", "--destination", "postgress", "--database-id", UNKNOWN_DATABASE_ID])

    assert code == 2
    assert "Unknown destination 'postgress'" in caplog.text


def test_uppercase_database_id_is_canonical(server, demo_world, token_env, dlt_data_dir):
    orders = database_id(demo_world, "orders")

    code = main(["run", "--base-url", server.base_url, "--database-id", orders.upper()])

    assert code == 0
    assert count_rows(Path("qovery_backups.duckdb"), "qovery.backups") == 120


def test_duckdb_file_follows_working_directory(server, token_env, tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    arguments = ["run", "--base-url", server.base_url]

    monkeypatch.chdir(first)
    assert main(arguments) == 0
    monkeypatch.chdir(second)
    assert main(arguments) == 0

    assert (first / "qovery_backups.duckdb").exists()
    assert (second / "qovery_backups.duckdb").exists()
    assert count_rows(second / "qovery_backups.duckdb", "qovery.databases") == 6
