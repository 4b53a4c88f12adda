"""The documented MotherDuck, BigQuery and Snowflake configuration, checked without network.

The BigQuery and Snowflake client libraries are not installed. The check therefore stops
where dlt resolves a destination's configuration (`Destination.configuration`), which is the
first thing a run does with a destination and needs no client library. Opening a connection
is not tested.
"""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path

import pytest

from conftest import TOKEN
from qovery_backups.cli import EXIT_USAGE, main
from qovery_backups.pipeline import build_pipeline

DOCS = Path(__file__).resolve().parents[1] / "docs" / "destinations.md"

DESTINATIONS = {"motherduck": "MotherDuck", "bigquery": "BigQuery", "snowflake": "Snowflake"}

# The credential fields dlt requires, by destination, as dlt 1.31 reports them when missing.
REQUIRED_KEYS = {
    "motherduck": ["DESTINATION__MOTHERDUCK__CREDENTIALS__PASSWORD"],
    "bigquery": [
        "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID",
        "DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY",
        "DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL",
    ],
    "snowflake": [
        "DESTINATION__SNOWFLAKE__CREDENTIALS__DATABASE",
        "DESTINATION__SNOWFLAKE__CREDENTIALS__HOST",
    ],
}


def documented_env(heading: str) -> dict[str, str]:
    """Return the `export NAME=value` lines of the first bash block under a `## heading`."""
    text = DOCS.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, f"no bash block under '## {heading}' in {DOCS.name}"
    variables = {}
    for line in block.group(1).splitlines():
        if line.startswith("export "):
            (assignment,) = shlex.split(line[len("export "):])
            name, value = assignment.split("=", 1)
            variables[name] = value
    return variables


def resolve_destination_config(pipeline):
    """Resolve the pipeline's destination configuration as a run does, without a client."""
    initial = pipeline.destination.spec()
    initial.dataset_name = pipeline.dataset_name
    return pipeline.destination.configuration(initial)


@pytest.fixture
def no_motherduck_token(monkeypatch):
    # dlt also takes the MotherDuck token from these, which would hide a missing password.
    monkeypatch.delenv("motherduck_token", raising=False)
    monkeypatch.delenv("MOTHERDUCK_TOKEN", raising=False)


@pytest.mark.parametrize("destination", sorted(DESTINATIONS))
def test_documented_config_resolves(destination, monkeypatch, tmp_path, no_motherduck_token):
    variables = documented_env(DESTINATIONS[destination])
    assert variables
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    pipeline = build_pipeline(
        "qovery_destination_test", destination, "qovery", pipelines_dir=str(tmp_path / "pipelines")
    )
    config = resolve_destination_config(pipeline)

    prefix = f"DESTINATION__{destination.upper()}__CREDENTIALS__"
    for name, value in variables.items():
        if name.startswith(prefix):
            field = name[len(prefix):].lower()
            # dlt ends a private key with a newline when the value has none.
            assert str(getattr(config.credentials, field)).rstrip("\n") == value, field
    for name in REQUIRED_KEYS[destination]:
        assert name in variables, f"docs miss {name}"


def test_documented_bigquery_location(monkeypatch, tmp_path):
    for name, value in documented_env("BigQuery").items():
        monkeypatch.setenv(name, value)

    pipeline = build_pipeline("qovery_destination_test", "bigquery", "qovery", pipelines_dir=str(tmp_path))

    assert resolve_destination_config(pipeline).location == "EU"


@pytest.mark.parametrize("destination", sorted(DESTINATIONS))
def test_missing_credentials_message(destination, server, caplog, no_motherduck_token):
    with caplog.at_level(logging.ERROR, logger="qovery_backups"):
        code = main(
            [
                "run",
                "--destination", destination,
                "--database-id", "3f6d0a8e-5b7c-4d2e-9f1a-2b3c4d5e6f70",
                "--base-url", server.base_url,
            ]
        )

    assert code == EXIT_USAGE
    (message,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert message.startswith(f"Missing credentials for destination {destination}.")
    for name in REQUIRED_KEYS[destination]:
        assert name in message
    assert "docs/destinations.md" in message
    # The run stops before its first API request.
    assert server.count() == 0
    assert TOKEN not in message


@pytest.fixture(autouse=True)
def token_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", TOKEN)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
