"""Discovery of an organization's databases, its filters, and the `databases` table."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timezone
from typing import Any

import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from conftest import (
    NOW,
    TOKEN,
    assert_tables_match,
    backup_requests,
    full_history_pages,
    make_pipeline,
    query,
    query_dicts,
    run,
)
from qovery_backups import cli
from qovery_backups.client import QoveryConfigurationError
from qovery_backups.simulator import RequestRecord, SimulatorServer, World
from qovery_backups.timeutil import parse_timestamp

# Backup counts of the demo world's databases that serve a backup list (see World.demo).
DEMO_BACKUPS = {"orders": 120, "sessions": 90, "orders-staging": 60, "inventory": 45, "legacy-billing": 75}

DISCOVERY_PATH_PREFIXES = ("/organization", "/project/", "/environment/")


def organization_id(world: World) -> str:
    (organization,) = world.organizations()
    return organization.id


def ids_named(world: World, *names: str) -> set[str]:
    """Return the ids of the databases with these names, failing on a name the world lacks."""
    by_name = {database.name: database.id for database in world.databases()}
    return {by_name[name] for name in names}


def serving_ids(world: World, ids: set[str]) -> list[str]:
    """Return the ids among `ids` that serve a backup list, in the world's order."""
    return [database_id for database_id in world.backup_database_ids() if database_id in ids]


def expected_database_rows(world: World) -> dict[str, dict[str, Any]]:
    """The `databases` rows the simulator's discovery endpoints call for, keyed by database id."""
    environments = {environment.id: environment for environment in world.environments()}
    projects = {project.id: project for project in world.projects()}
    rows = {}
    for database in world.databases():
        served = database.to_api()
        environment = environments[served["environment"]["id"]]
        project = projects[environment.project_id]
        rows[database.id] = {
            "id": served["id"],
            "name": served["name"],
            "type": served["type"],
            "version": served["version"],
            "mode": served["mode"],
            "accessibility": served["accessibility"],
            "instance_type": served.get("instance_type"),
            "storage": served["storage"],
            "created_at": parse_timestamp(served["created_at"]),
            "updated_at": parse_timestamp(served["updated_at"]),
            "environment_id": environment.id,
            "environment_name": environment.name,
            "environment_mode": environment.mode,
            "project_id": project.id,
            "project_name": project.name,
            "organization_id": project.organization_id,
            "deleted_at": None,
        }
    return rows


def loaded_database_rows(pipeline) -> dict[str, dict[str, Any]]:
    """The `databases` table without dlt's own columns, keyed by id, timestamps in UTC."""
    loaded = {}
    for row in query_dicts(pipeline, "SELECT * FROM databases"):
        row = {column: value for column, value in row.items() if not column.startswith("_dlt")}
        for column in ("created_at", "updated_at"):
            if row[column] is not None:
                row[column] = row[column].astimezone(timezone.utc)
        loaded[row["id"]] = row
    return loaded


def assert_databases_match(pipeline, world: World, ids: set[str]) -> None:
    """Assert that the `databases` table contains exactly the rows of `ids`, value by value."""
    expected = {database_id: row for database_id, row in expected_database_rows(world).items() if database_id in ids}
    loaded = loaded_database_rows(pipeline)
    assert sorted(loaded) == sorted(expected), "database ids differ from the simulator's"
    for database_id, expected_row in expected.items():
        assert loaded[database_id] == expected_row, f"database {database_id} differs"


def find_cause(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
    return None


def is_discovery_path(path: str) -> bool:
    return path.startswith(DISCOVERY_PATH_PREFIXES)


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """Give in-process CLI runs the test token and a dlt data folder inside tmp_path."""
    monkeypatch.setenv("SOURCES__QOVERY__API_TOKEN", TOKEN)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))


# ----- the whole organization -----


class RecordList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class OrganizationLoad:
    """One run over the whole demo organization, shared by the tests that only read it."""

    world: World
    pipeline: Any
    result: Any
    requests: list[RequestRecord]
    log: list[logging.LogRecord]


@pytest.fixture(scope="module")
def organization_load(tmp_path_factory) -> OrganizationLoad:
    world = World.demo(NOW)
    pipeline = make_pipeline(tmp_path_factory.mktemp("organization_load"))
    handler = RecordList()
    logger = logging.getLogger("qovery_backups")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in list(os.environ):
                if name.startswith(("SOURCES__", "DESTINATION__")):
                    patch.delenv(name)
            with SimulatorServer(world, tokens=(TOKEN,)) as server:
                result = run(pipeline, server, organization_id=organization_id(world))
                requests = server.requests
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return OrganizationLoad(world, pipeline, result, requests, handler.records)


def test_organization_loads_every_database(organization_load):
    world, pipeline = organization_load.world, organization_load.pipeline

    assert_tables_match(pipeline, world, world.backup_database_ids())
    assert_databases_match(pipeline, world, {database.id for database in world.databases()})
    assert organization_load.result.row_counts["backups"] == sum(DEMO_BACKUPS.values())
    assert organization_load.result.row_counts["databases"] == 6


def test_databases_table_has_typed_columns(organization_load):
    types = dict(
        query(
            organization_load.pipeline,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'qovery' AND table_name = 'databases'",
        )
    )

    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["storage"] == "BIGINT"
    # instance_type is null for every CONTAINER database but declared all the same.
    assert types["instance_type"] == "VARCHAR"


def test_managed_database_is_skipped(organization_load):
    (catalog,) = ids_named(organization_load.world, "catalog")

    report = organization_load.result.summary.databases[catalog]
    assert report.outcome == "skipped"
    backup_paths = [record.path for record in organization_load.requests if record.path.endswith("/backup")]
    assert backup_paths.count(f"/database/{catalog}/backup") == 1
    managed = [
        record
        for record in organization_load.log
        if catalog in record.getMessage() and "managed by the cloud provider" in record.getMessage()
    ]
    assert [record.levelno for record in managed] == [logging.INFO]


def test_summary_counts_requests_by_category(organization_load):
    paths = [record.path for record in organization_load.requests]
    discovery = sum(1 for path in paths if is_discovery_path(path))
    backups = sum(1 for path in paths if path.startswith("/database/") and path.endswith("/backup"))

    assert discovery + backups == len(paths)
    # One project list, one environment list per project (2), one database list per environment (3).
    assert discovery == 1 + 2 + 3
    # Every serving database's full history, plus one 404 for the MANAGED database.
    assert backups == sum(full_history_pages(count) for count in DEMO_BACKUPS.values()) + 1
    stats = organization_load.result.summary.requests
    assert stats.by_category == {"discovery": discovery, "backups": backups}
    assert stats.requests == len(paths)


def test_no_master_credentials_request(organization_load):
    paths = [record.path for record in organization_load.requests]

    assert [path for path in paths if "masterCredentials" in path] == []
    assert {record.method for record in organization_load.requests} == {"GET"}


def test_added_database_gets_full_history(pipeline, server, demo_world):
    world = demo_world
    run(pipeline, server, organization_id=organization_id(world))
    (staging,) = [environment for environment in world.environments() if environment.name == "staging"]
    added = world.add_database(staging.id, name="reports", type="MYSQL", backups=30)
    server.reset_log()

    run(pipeline, server, organization_id=organization_id(world))

    assert backup_requests(server)[added.id] == full_history_pages(30)
    assert_tables_match(pipeline, world, world.backup_database_ids())
    assert_databases_match(pipeline, world, {database.id for database in world.databases()})


def test_filtered_out_database_keeps_its_rows(pipeline, server, demo_world):
    # The simulator cannot delete a database, so a filter takes the place of one that
    # leaves discovery. Either way the later run yields no row for it.
    world = demo_world
    run(pipeline, server, organization_id=organization_id(world))
    kept = ids_named(world, "orders", "sessions", "catalog", "orders-staging", "inventory")
    server.reset_log()

    run(pipeline, server, organization_id=organization_id(world), project_names=["storefront"])

    assert ids_named(world, "legacy-billing").isdisjoint(backup_requests(server))
    assert_tables_match(pipeline, world, world.backup_database_ids())
    assert_databases_match(pipeline, world, kept | ids_named(world, "legacy-billing"))


# ----- choosing the organization -----


def test_only_organization_is_used(pipeline, server, demo_world, caplog):
    caplog.set_level(logging.INFO, logger="qovery_backups")
    world = demo_world

    result = run(pipeline, server)

    assert_tables_match(pipeline, world, world.backup_database_ids())
    assert_databases_match(pipeline, world, {database.id for database in world.databases()})
    assert [record.path for record in server.requests][0] == "/organization"
    assert f"Using organization {organization_id(world)} (Acme Robotics)" in caplog.text
    # The organization list, then the same walk as with organization_id set.
    discovery = sum(1 for record in server.requests if is_discovery_path(record.path))
    assert discovery == 1 + 1 + 2 + 3
    assert result.summary.requests.by_category["discovery"] == discovery


@pytest.fixture
def two_organizations():
    world = World.demo(NOW)
    second = world.add_organization("Beta Labs")
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        yield world, server, second


def test_several_organizations_fail_the_run(pipeline, two_organizations):
    world, server, second = two_organizations
    first = organization_id_of(world, "Acme Robotics")

    # The error surfaces wrapped by dlt when discovery runs inside the extract step.
    with pytest.raises((PipelineStepFailed, QoveryConfigurationError)) as raised:
        run(pipeline, server)

    error = find_cause(raised.value, QoveryConfigurationError)
    assert error is not None
    message = str(error)
    assert f"{first} (Acme Robotics)" in message
    assert f"{second.id} (Beta Labs)" in message
    assert "--organization-id" in message
    assert "SOURCES__QOVERY__ORGANIZATION_ID" in message
    assert backup_requests(server) == {}


def test_several_organizations_exit_2(two_organizations, cli_env, caplog):
    world, server, second = two_organizations

    code = cli.main(["run", "--base-url", server.base_url])

    assert code == 2
    assert f"{second.id} (Beta Labs)" in caplog.text
    assert "--organization-id" in caplog.text
    assert backup_requests(server) == {}


def test_chosen_organization_of_several_loads(pipeline, two_organizations):
    world, server, second = two_organizations

    run(pipeline, server, organization_id=organization_id_of(world, "Acme Robotics"))

    assert_tables_match(pipeline, world, world.backup_database_ids())
    assert_databases_match(pipeline, world, {database.id for database in world.databases()})


def organization_id_of(world: World, name: str) -> str:
    (found,) = [organization.id for organization in world.organizations() if organization.name == name]
    return found


# ----- filters -----


@pytest.mark.parametrize(
    ("option", "values", "names"),
    [
        ("environment_modes", ["production"], ("orders", "sessions", "catalog")),
        ("project_names", ["Internal-Tools"], ("legacy-billing",)),
        ("database_types", ["mysql"], ("inventory", "legacy-billing")),
        ("database_types", ["PostgreSQL", "mongodb"], ("orders", "orders-staging", "catalog")),
    ],
)
def test_filter_selects_databases(pipeline, server, demo_world, option, values, names):
    world = demo_world
    selected = ids_named(world, *names)

    run(pipeline, server, organization_id=organization_id(world), **{option: values})

    assert set(backup_requests(server)) == selected
    assert_tables_match(pipeline, world, serving_ids(world, selected))
    assert_databases_match(pipeline, world, selected)


def test_database_ids_narrow_discovery(pipeline, server, demo_world):
    world = demo_world
    selected = ids_named(world, "orders", "inventory")

    run(pipeline, server, organization_id=organization_id(world), database_ids=sorted(selected))

    assert set(backup_requests(server)) == selected
    assert_tables_match(pipeline, world, serving_ids(world, selected))
    assert_databases_match(pipeline, world, selected)


def test_undiscovered_database_id_fails(pipeline, server, demo_world, caplog):
    world = demo_world
    orders = ids_named(world, "orders")
    stranger = "3f6d0a8e-5b7c-4d2e-9f1a-2b3c4d5e6f70"

    result = run(
        pipeline, server, organization_id=organization_id(world), database_ids=[*orders, stranger]
    )

    assert set(backup_requests(server)) == orders
    assert [report.database_id for report in result.summary.with_outcome("failed")] == [stranger]
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert any(stranger in message and "not found" in message for message in errors)


# ----- databases whose backups cannot be read -----


def test_managed_database_exits_0(server, demo_world, cli_env):
    code = cli.main(
        ["run", "--base-url", server.base_url, "--organization-id", organization_id(demo_world)]
    )

    assert code == 0


def test_forbidden_database_fails_alone(pipeline, server, demo_world, caplog):
    world = demo_world
    (sessions,) = ids_named(world, "sessions")
    world.set_forbidden(sessions)

    result = run(pipeline, server, organization_id=organization_id(world))

    assert result.summary.databases[sessions].outcome == "failed"
    others = [database_id for database_id in world.backup_database_ids() if database_id != sessions]
    assert_tables_match(pipeline, world, others)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert any(sessions in record.getMessage() and "403" in record.getMessage() for record in warnings)
    # The database is still discovered, so its row is loaded.
    assert_databases_match(pipeline, world, {database.id for database in world.databases()})


def test_forbidden_database_exits_3(server, demo_world, cli_env):
    (sessions,) = ids_named(demo_world, "sessions")
    demo_world.set_forbidden(sessions)

    code = cli.main(
        ["run", "--base-url", server.base_url, "--organization-id", organization_id(demo_world)]
    )

    assert code == 3
