"""The pipeline against a real PostgreSQL server: a backfill and an incremental run with changes.

The tests need `QOVERY_TEST_POSTGRES_DSN`, for example
`postgresql://qovery_test:qovery_test@127.0.0.1:5433/qovery_test`. `bash .ci/run postgres`
(Debian, as root) installs and starts such a server on 127.0.0.1 and prints the line to export.
Each test loads into a dataset (a Postgres schema) of its own and drops it, and its staging
schema, afterwards.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import dlt
import pytest

from conftest import NOW, TOKEN, assert_tables_match, backup_requests, query, run
from qovery_backups.pipeline import build_pipeline
from qovery_backups.simulator import SimulatorServer, World

DSN_VARIABLE = "QOVERY_TEST_POSTGRES_DSN"
# Read at import: the autouse `isolated_config` fixture removes every QOVERY* variable
# from the environment before each test runs.
POSTGRES_DSN = os.environ.get(DSN_VARIABLE, "")

START_SERVER_HELP = (
    f"{DSN_VARIABLE} is not set. To run the Postgres tests on Debian, as root: "
    "`bash .ci/run postgres` (runs apt-get install -y postgresql, starts a cluster on "
    "127.0.0.1:5433, creates the role and database), then "
    f"`export {DSN_VARIABLE}=postgresql://qovery_test:qovery_test@127.0.0.1:5433/qovery_test`. "
    "Any other PostgreSQL server works too, for example "
    "`docker run -d -p 127.0.0.1:5433:5432 -e POSTGRES_USER=qovery_test "
    "-e POSTGRES_PASSWORD=qovery_test postgres:16`."
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_DSN, reason=START_SERVER_HELP),
]

IN_FLIGHT = ("QUEUED", "ONGOING", "EXECUTING", "CANCELING")


def describe_server(dsn: str) -> str:
    """Return host, port and database of a DSN, leaving the password out."""
    import psycopg2.extensions

    parts = psycopg2.extensions.parse_dsn(dsn)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """Return the DSN once the server answers; fail (not skip) when it does not."""
    import psycopg2

    try:
        connection = psycopg2.connect(POSTGRES_DSN, connect_timeout=5)
    except psycopg2.OperationalError as error:
        pytest.fail(
            f"{DSN_VARIABLE} is set but PostgreSQL at {describe_server(POSTGRES_DSN)} is "
            f"unreachable: {error}. Start the server (`bash .ci/run postgres`) or unset the "
            "variable to skip these tests.",
            pytrace=False,
        )
    connection.close()
    return POSTGRES_DSN


@pytest.fixture
def postgres_pipeline(postgres_dsn, tmp_path):
    dataset = f"qovery_{uuid.uuid4().hex[:12]}"
    pipeline = build_pipeline(
        "qovery_postgres_test",
        dlt.destinations.postgres(credentials=postgres_dsn),
        dataset,
        pipelines_dir=str(tmp_path / "dlt_pipelines"),
    )
    yield pipeline
    with pipeline.sql_client() as client:
        # Merge loads go through a `<dataset>_staging` schema, which stays behind otherwise.
        with client.with_staging_dataset():
            if client.has_dataset():
                client.drop_dataset()
        if client.has_dataset():
            client.drop_dataset()


@pytest.fixture
def demo_load():
    world = World.demo(NOW)
    (organization,) = world.organizations()
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        yield world, server, organization.id


def in_flight_backups(world: World) -> list[dict]:
    return [
        backup
        for database_id in world.backup_database_ids()
        for backup in world.backups_of(database_id)
        if backup["status"]["status_details"]["status"] in IN_FLIGHT
    ]


def test_postgres_backfill_matches_simulator(postgres_pipeline, demo_load):
    world, server, organization_id = demo_load

    result = run(postgres_pipeline, server, organization_id=organization_id)

    database_ids = world.backup_database_ids()
    assert_tables_match(postgres_pipeline, world, database_ids)
    expected_backups = sum(len(world.backups_of(database_id)) for database_id in database_ids)
    assert result.row_counts["backups"] == expected_backups
    assert query(postgres_pipeline, "SELECT count(*) FROM databases") == [(len(world.databases()),)]


def test_postgres_incremental_run_merges_changes(postgres_pipeline, demo_load):
    world, server, organization_id = demo_load
    run(postgres_pipeline, server, organization_id=organization_id)
    running = in_flight_backups(world)
    assert running, "the demo world must have backups in flight to finish late"

    world.advance(timedelta(hours=3))
    for backup in running:
        world.update_backup(backup["id"], "SUCCESS")
    database_ids = world.backup_database_ids()
    added = [world.add_backup(database_id, outcome="SUCCESS") for database_id in database_ids]
    server.reset_log()

    result = run(postgres_pipeline, server, organization_id=organization_id)

    assert_tables_match(postgres_pipeline, world, database_ids)
    # One request per database, the MANAGED one (404, skipped) included.
    assert backup_requests(server) == {database.id: 1 for database in world.databases()}
    assert result.row_counts["backups"] >= len(added) + len(running)
    finished = query(
        postgres_pipeline,
        "SELECT count(*) FROM backups WHERE status__status_details__status = 'SUCCESS' "
        f"AND id IN ({', '.join(repr(backup['id']) for backup in running)})",
    )
    assert finished == [(len(running),)]


def test_postgres_timestamps_are_timestamptz(postgres_pipeline, demo_load):
    world, server, organization_id = demo_load
    run(postgres_pipeline, server, organization_id=organization_id)

    types = dict(
        query(
            postgres_pipeline,
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{postgres_pipeline.dataset_name}' AND table_name = 'backups'",
        )
    )

    assert types["created_at"] == "timestamp with time zone"
    assert types["updated_at"] == "timestamp with time zone"
    assert types["status__steps__total_duration_sec"] == "bigint"
