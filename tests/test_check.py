"""The freshness check on the fixed history of test_analytics: report, formats, filters, CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from conftest import NOW, TOKEN, run
from qovery_backups import check
from qovery_backups.cli import main
from qovery_backups.pipeline import build_pipeline
from qovery_backups.simulator import SimulatorServer
from test_analytics import build_history, make_destination_pipeline


@pytest.fixture
def loaded(tmp_path):
    built = build_history()
    pipeline, _ = make_destination_pipeline("duckdb", tmp_path, "qovery_check")
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        run(pipeline, server)
    return pipeline, built


@pytest.fixture
def cli_data_dir(monkeypatch, tmp_path):
    """Keep the pipelines folders of CLI runs inside tmp_path rather than in ~/.dlt."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", TOKEN)


def statuses(report: check.FreshnessReport) -> dict[str, str]:
    return {database.label: database.status for database in report.problems}


def test_report_lists_problems(loaded):
    pipeline, _ = loaded

    report = check.check_freshness(pipeline, now=NOW)

    assert statuses(report) == {
        "broken": "failing",
        "flaky": "failing",
        "stale": "stale",
        "empty": "never_backed_up",
    }
    assert report.exit_code == 1


def test_fresh_databases_exit_0(loaded):
    pipeline, _ = loaded

    report = check.check_freshness(pipeline, max_age=timedelta(hours=31), now=NOW, project_names=["shop"])

    assert [database.label for database in report.databases] == ["fresh", "managed", "stale"]
    assert report.problems == []
    assert report.exit_code == 0


def test_max_age_is_applied(loaded):
    pipeline, _ = loaded

    report = check.check_freshness(pipeline, max_age=timedelta(hours=2), now=NOW, project_names=["shop"])

    assert statuses(report) == {"fresh": "stale", "stale": "stale"}


def test_environment_mode_filter(loaded):
    pipeline, _ = loaded

    report = check.check_freshness(pipeline, now=NOW, environment_modes=["production"])

    assert statuses(report) == {"stale": "stale"}


def test_project_filter_repeats(loaded):
    pipeline, _ = loaded

    report = check.check_freshness(pipeline, now=NOW, project_names=["tools", "shop"])

    assert len(report.databases) == 6


def test_text_format(loaded):
    pipeline, _ = loaded

    text = check.format_text(check.check_freshness(pipeline, now=NOW))

    assert text.splitlines() == [
        "4 of 5 databases need attention (max age 26h, as of 2026-11-20 06:00 UTC):",
        "  FAILING          broken  no successful backup loaded; last failure 2026-11-18 06:00 UTC "
        "[DEVELOPMENT, project tools]",
        "  FAILING          flaky   last success 2026-11-20 01:00 UTC (5h ago); last failure "
        "2026-11-20 04:00 UTC [DEVELOPMENT, project tools]",
        "  STALE            stale   last success 2026-11-19 00:00 UTC (30h ago) [PRODUCTION, "
        "project shop]",
        "  NEVER BACKED UP  empty   no successful backup loaded [DEVELOPMENT, project tools]",
    ]


def test_text_format_when_all_fresh(loaded):
    pipeline, _ = loaded
    report = check.check_freshness(pipeline, max_age=timedelta(hours=31), now=NOW, project_names=["shop"])

    text = check.format_text(report)

    assert text == (
        "All 2 databases checked have a successful backup younger than 31h (as of "
        "2026-11-20 06:00 UTC). 1 MANAGED databases were left out: their cloud provider backs "
        "them up."
    )


def test_json_format(loaded):
    pipeline, built = loaded

    document = json.loads(check.format_json(check.check_freshness(pipeline, now=NOW)))

    assert document["as_of"] == "2026-11-20T06:00:00+00:00"
    assert document["max_age_sec"] == 26 * 3600.0
    assert document["checked"] == 6
    assert [problem["database_name"] for problem in document["problems"]] == [
        "broken",
        "flaky",
        "stale",
        "empty",
    ]
    assert document["problems"][2] == {
        "database_id": built.databases["stale"],
        "database_name": "stale",
        "environment_name": "production",
        "environment_mode": "PRODUCTION",
        "project_name": "shop",
        "status": "stale",
        "last_success_at": "2026-11-19T00:00:00+00:00",
        "last_success_age_sec": 108000.0,
        "last_failure_at": None,
    }


def test_empty_dataset_is_data_error(tmp_path):
    pipeline, _ = make_destination_pipeline("duckdb", tmp_path, "qovery_nothing")

    with pytest.raises(check.CheckDataError, match="run `qovery-backups run` first"):
        check.check_freshness(pipeline, now=NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("26h", timedelta(hours=26)), ("2d", timedelta(days=2))],
)
def test_max_age_parses_durations(text, expected):
    assert check.parse_max_age(text) == expected


@pytest.mark.parametrize("text", ["26", "0h", "-1h", "soon"])
def test_bad_max_age_exits_2(cli_data_dir, text):
    with pytest.raises(SystemExit) as raised:
        main(["check", "--max-age", text])

    assert raised.value.code == 2


def test_format_age():
    assert check.format_age(45 * 60) == "45m"
    assert check.format_age(26 * 3600) == "26h"
    assert check.format_age(26.5 * 3600) == "26h 30m"
    assert check.format_age(76 * 3600) == "3d 4h"


# ----- command line -----


def load_for_cli(now: datetime):
    """Load the history, built relative to `now`, as `qovery-backups run` does by default."""
    built = build_history(now)
    pipeline = build_pipeline()
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        run(pipeline, server)
    return built


def test_check_command_exit_1_and_text(cli_data_dir, capsys):
    load_for_cli(NOW)

    code = main(["check", "--as-of", "2026-11-20T06:00:00Z"])

    assert code == 1
    assert capsys.readouterr().out.startswith("4 of 5 databases need attention (max age 26h")


def test_check_command_exit_0_with_filters(cli_data_dir, capsys):
    load_for_cli(NOW)

    code = main(
        ["check", "--as-of", "2026-11-20T06:00:00Z", "--max-age", "31h", "--project", "shop",
         "--environment-mode", "PRODUCTION"]
    )

    assert code == 0
    assert capsys.readouterr().out.startswith("All 2 databases checked")


def test_check_command_json(cli_data_dir, capsys):
    load_for_cli(NOW)

    code = main(["check", "--as-of", "2026-11-20T06:00:00Z", "--format", "json"])
    document = json.loads(capsys.readouterr().out)

    assert code == 1
    assert len(document["problems"]) == 4


def test_check_without_data_exits_2(cli_data_dir, caplog):
    code = main(["check", "--pipeline-name", "never_ran"])

    assert code == 2
    assert "run `qovery-backups run` first" in caplog.text


def test_run_with_check_reports_problems(cli_data_dir, capsys):
    built = build_history(datetime.now(timezone.utc))
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        code = main(["run", "--base-url", server.base_url, "--project", "shop", "--check", "26h"])
    output = capsys.readouterr().out

    assert code == 1
    assert "1 of 2 databases need attention (max age 26h" in output
    assert "STALE            stale" in output


def test_run_with_check_exit_0(cli_data_dir, capsys):
    built = build_history(datetime.now(timezone.utc))
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        code = main(
            ["run", "--base-url", server.base_url, "--database-id", built.databases["fresh"],
             "--check", "26h"]
        )

    assert code == 0
    assert "All 1 databases checked" in capsys.readouterr().out


def test_run_exit_code_wins_over_check(cli_data_dir, capsys):
    built = build_history(datetime.now(timezone.utc))
    built.world.set_forbidden(built.databases["stale"])
    with SimulatorServer(built.world, tokens=(TOKEN,)) as server:
        code = main(
            ["run", "--base-url", server.base_url, "--database-id", built.databases["fresh"],
             "--database-id", built.databases["stale"], "--check", "26h"]
        )

    assert code == 3
    assert "All 1 databases checked" in capsys.readouterr().out
