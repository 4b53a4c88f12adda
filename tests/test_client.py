"""The HTTP client's retries, waits, typed errors and pacing, against the simulator's faults."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from conftest import TOKEN
from qovery_backups.client import (
    QoveryAuthenticationError,
    QoveryClient,
    QoveryConfigurationError,
    QoveryForbiddenError,
    QoveryNotFoundError,
    QoveryRetriableError,
    RetryPolicy,
    _retry_after_seconds,
    detect_auth_scheme,
)
from qovery_backups.pacing import RequestPacer
from qovery_backups.simulator import Faults, SimulatorServer

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"


class Sleeps:
    """Records requested sleeps instead of sleeping."""

    def __init__(self):
        self.calls = []

    def __call__(self, seconds):
        self.calls.append(seconds)


def client_for(server, sleeps=None, **kwargs) -> QoveryClient:
    """A client whose backoff and pacing waits are recorded or simulated, never slept."""
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, backoff_seconds=0.01))
    clock = FakeClock()
    kwargs.setdefault("pacer", RequestPacer(0, clock=clock, sleep=clock.sleep))
    return QoveryClient(server.base_url, TOKEN, sleep=sleeps or Sleeps(), **kwargs)


@pytest.fixture
def sim(demo_world):
    with SimulatorServer(demo_world, tokens=(TOKEN,)) as server:
        yield server


@pytest.mark.parametrize(
    ("token", "scheme"),
    [("qov_abc123", "Token"), (JWT, "Bearer"), ("a.b", "Token"), ("a.b.c.d", "Token")],
)
def test_auth_scheme_detection(token, scheme):
    assert detect_auth_scheme(token) == scheme


def test_429_retry_after_is_honoured(sim, caplog):
    sim.faults = Faults(rate_limit_every=1, retry_after_seconds=7)
    sleeps = Sleeps()
    client = client_for(sim, sleeps)
    caplog.set_level(logging.WARNING)

    with pytest.raises(QoveryRetriableError) as caught:
        client.get_json("/organization")

    assert caught.value.status == 429
    assert sim.count() == 4
    assert sleeps.calls == [7, 7, 7]
    assert client.stats.retries == 3
    assert client.stats.waited_seconds == 21
    retry_lines = [record for record in caplog.records if "retrying in" in record.getMessage()]
    assert len(retry_lines) == 3
    assert "attempt 1 of 4, status 429" in retry_lines[0].getMessage()
    assert "/organization" in retry_lines[0].getMessage()


def test_server_error_burst_recovers(sim):
    sim.faults = Faults(server_error_burst=(1, 2, 503))
    client = client_for(sim)

    body = client.get_json("/organization")

    assert len(body["results"]) == 1
    assert [record.status for record in sim.requests] == [503, 503, 200]
    assert client.stats.requests == 3


def test_dropped_connection_and_truncated_json_are_retried(sim):
    sim.faults = Faults(drop_connection_every=3, truncate_json_every=2)
    client = client_for(sim)
    for _ in range(3):
        assert "results" in client.get_json("/organization")
    assert client.stats.retries >= 2


def test_total_wait_bound_stops_retries(sim):
    sim.faults = Faults(rate_limit_every=1, retry_after_seconds=100)
    sleeps = Sleeps()
    client = client_for(sim, sleeps, retry=RetryPolicy(max_attempts=10, max_total_wait_seconds=250))
    with pytest.raises(QoveryRetriableError):
        client.get_json("/organization")
    assert sleeps.calls == [100, 100]
    assert sim.count() == 3


@pytest.mark.parametrize(
    ("path", "kind", "status"),
    [
        ("/database/00000000-0000-4000-8000-000000000000/backup", QoveryNotFoundError, 404),
    ],
)
def test_typed_errors_carry_status_and_path(sim, path, kind, status):
    with pytest.raises(kind) as caught:
        client_for(sim).get_json(path, {"startId": "abc"})
    assert caught.value.status == status
    assert caught.value.path == path
    assert "startId" not in str(caught.value)
    assert sim.count() == 1


def test_401_is_not_retried(demo_world):
    with SimulatorServer(demo_world, tokens=("qov_other",)) as server:
        with pytest.raises(QoveryAuthenticationError) as caught:
            client_for(server).get_json("/organization")
        assert server.count() == 1
    assert "Check the API token" in str(caught.value)


def test_403_is_typed(demo_world):
    database_id = demo_world.backup_database_ids()[0]
    demo_world.set_forbidden(database_id)
    with SimulatorServer(demo_world, tokens=(TOKEN,)) as server:
        with pytest.raises(QoveryForbiddenError) as caught:
            client_for(server).get_json(f"/database/{database_id}/backup")
    assert caught.value.status == 403
    assert caught.value.body_excerpt != ""


def test_bearer_header_for_jwt(demo_world):
    with SimulatorServer(demo_world, tokens=(JWT,)) as server:
        QoveryClient(server.base_url, JWT).get_json("/organization")
        assert server.requests[0].headers["Authorization"] == f"Bearer {JWT}"


@pytest.mark.parametrize("url", ["ftp://api.qovery.com", "api.qovery.com", "", "https://"])
def test_invalid_base_url_is_rejected(url):
    with pytest.raises(QoveryConfigurationError) as caught:
        QoveryClient(url, TOKEN)
    assert "base_url" in str(caught.value) or "BASE_URL" in str(caught.value)


@pytest.mark.parametrize("token", ["", "   "])
def test_empty_token_is_rejected(token):
    with pytest.raises(QoveryConfigurationError) as caught:
        QoveryClient("https://api.qovery.com", token)
    assert "SOURCES__QOVERY__API_TOKEN" in str(caught.value)


def response_with(headers: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    return response


def test_retry_after_http_date():
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    seconds = _retry_after_seconds(response_with({"Retry-After": format_datetime(when, usegmt=True)}))
    assert 115 <= seconds <= 120


def test_retry_after_seconds_and_rate_limit_reset():
    assert _retry_after_seconds(response_with({"Retry-After": "30"})) == 30
    assert _retry_after_seconds(response_with({"Retry-After": "soon"})) is None
    assert _retry_after_seconds(response_with({})) is None


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_pacer_holds_requests_to_budget():
    clock = FakeClock()
    pacer = RequestPacer(3, clock=clock, sleep=clock.sleep)
    waits = [pacer.acquire() for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 3600.0, 0.0]
    assert pacer.waited_seconds == 3600.0


def test_pacer_honours_spent_server_budget():
    clock = FakeClock()
    pacer = RequestPacer(0, clock=clock, sleep=clock.sleep, wall_clock=lambda: 5000.0)
    pacer.observe("0", "5042")
    assert pacer.acquire() == 42.0
    pacer.observe("17", "6000")
    assert pacer.acquire() == 0.0


def test_pacer_time_is_reported(sim):
    clock = FakeClock()
    client = client_for(sim, pacer=RequestPacer(2, clock=clock, sleep=clock.sleep))
    for _ in range(3):
        client.get_json("/organization")
    assert client.stats.paced_seconds == 3600.0
