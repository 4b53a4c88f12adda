"""The API token never reaches a log line, an error, the pipeline state, its files or a table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import TOKEN, make_pipeline, query, run
from qovery_backups.cli import main
from qovery_backups.client import QoveryAuth, QoveryClient
from qovery_backups.simulator import SimulatorServer

SECRET = "qov_SENTINEL_9d8c7b6a5f4e"


def files_containing(folder: Path, needle: str) -> list[str]:
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    ]


def test_token_absent_from_logs_state_files_and_tables(tmp_path, demo_world, caplog):
    caplog.set_level(logging.DEBUG)
    pipeline = make_pipeline(tmp_path)
    with SimulatorServer(demo_world, tokens=(SECRET,)) as server:
        run(pipeline, server, api_token=SECRET)
        run(pipeline, server, api_token=SECRET)

    assert SECRET not in caplog.text
    assert len(caplog.records) > 20
    assert SECRET not in repr(pipeline.state)
    assert SECRET not in repr(pipeline.last_trace)
    assert files_containing(tmp_path, SECRET) == []
    tables = [row[0] for row in query(pipeline, "SELECT table_name FROM information_schema.tables")]
    assert "backups" in tables
    for table in tables:
        rows = query(pipeline, f'SELECT * FROM "{table}"')
        assert SECRET not in repr(rows), f"table {table} contains the token"


def test_token_absent_from_401_error_and_cli_output(demo_world, capsys, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", SECRET)
    with SimulatorServer(demo_world, tokens=(TOKEN,)) as server:
        code = main(["--log-level", "DEBUG", "run", "--base-url", server.base_url])

    assert code == 1
    output = capsys.readouterr()
    assert "401" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in output.out
    assert SECRET not in output.err


def test_auth_repr_redacts_token():
    auth = QoveryAuth(SECRET)
    assert SECRET not in repr(auth)
    assert auth.scheme == "Token"


def test_redirect_is_not_followed(demo_world):
    """A redirect could carry the Authorization header to another address."""
    import http.server
    import threading

    seen = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:9/steal")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        client = QoveryClient(f"http://127.0.0.1:{httpd.server_port}", SECRET)
        with pytest.raises(Exception) as caught:
            client.get_json("/organization")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen == [f"Token {SECRET}"]
    assert "redirected (302)" in str(caught.value)
    assert SECRET not in str(caught.value)
