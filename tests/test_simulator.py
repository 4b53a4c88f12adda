"""Tests of the Qovery API simulator: schemas, paging, auth, world mutations and faults."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT4

from qovery_backups.simulator import PAGE_SIZE, Faults, Outcome, SimulatorServer, World

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
TOKEN = "qov_simulator_test"
EXCERPT_URI = "urn:qovery-openapi-excerpt"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
DEMO_BACKUP_COUNTS = {"orders": 120, "sessions": 90, "orders-staging": 60, "inventory": 45, "legacy-billing": 75}


# ----- schema helpers -----


def _openapi_to_json_schema(node: Any) -> Any:
    """Convert OpenAPI 3.0 ``nullable: true`` into a JSON Schema ``anyOf`` with null."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _openapi_to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _is_timestamp(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return TIMESTAMP.match(value) is not None and datetime.fromisoformat(value) is not None


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


class Excerpt:
    """The OpenAPI excerpt shipped with the simulator, with validators for its schemas."""

    def __init__(self) -> None:
        text = resources.files("qovery_backups.simulator").joinpath("qovery-openapi-excerpt.yaml").read_text()
        self.document = yaml.safe_load(text)
        resource = DRAFT4.create_resource(_openapi_to_json_schema(self.document))
        self.registry = Registry().with_resource(EXCERPT_URI, resource)
        self.format_checker = jsonschema.FormatChecker(formats=())
        self.format_checker.checks("date-time")(_is_timestamp)
        self.format_checker.checks("uuid")(_is_uuid)
        self.format_checker.checks("uri")(_is_uri)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def operation(self, path: str) -> dict[str, Any]:
        return self.document["paths"][path]["get"]

    def response_schema_ref(self, path: str) -> str:
        schema = self.operation(path)["responses"]["200"]["content"]["application/json"]["schema"]
        return schema["$ref"]

    def validate(self, path: str, body: Any) -> None:
        """Validate ``body`` against the 200 schema of the GET on ``path``, formats and undeclared keys included."""
        ref = self.response_schema_ref(path)
        validator = jsonschema.Draft4Validator(
            {"$ref": EXCERPT_URI + ref}, registry=self.registry, format_checker=self.format_checker
        )
        validator.validate(body)
        undeclared = self.undeclared_keys(body, {"$ref": ref}, "$")
        assert undeclared == [], f"keys not declared in {ref}: {undeclared}"

    def declared_properties(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema = self.resolve(schema)
        properties = dict(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            properties.update(self.declared_properties(part))
        return properties

    def undeclared_keys(self, instance: Any, schema: dict[str, Any], where: str) -> list[str]:
        """List the JSON paths of object keys that the schema, its allOf parts included, does not declare."""
        schema = self.resolve(schema)
        found: list[str] = []
        if isinstance(instance, dict):
            properties = self.declared_properties(schema)
            for key, value in instance.items():
                if key not in properties:
                    found.append(f"{where}.{key}")
                else:
                    found.extend(self.undeclared_keys(value, properties[key], f"{where}.{key}"))
        elif isinstance(instance, list) and "items" in schema:
            for index, item in enumerate(instance):
                found.extend(self.undeclared_keys(item, schema["items"], f"{where}[{index}]"))
        return found


@pytest.fixture(scope="module")
def excerpt() -> Excerpt:
    return Excerpt()


# ----- server helpers -----


@pytest.fixture
def world() -> World:
    return World.demo(NOW)


@pytest.fixture
def server(world: World) -> Iterator[SimulatorServer]:
    with SimulatorServer(world, tokens=(TOKEN,)) as running:
        yield running


def _get(server: SimulatorServer, path: str, token: str | None = TOKEN, scheme: str = "Token", **params: str) -> requests.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return requests.get(server.base_url + path, headers=headers, params=params, timeout=5)


def _walk_pages(server: SimulatorServer, database_id: str) -> list[dict[str, Any]]:
    """Fetch every page of a database's backups, stopping at the first page shorter than 20."""
    pages = []
    params: dict[str, str] = {}
    while True:
        response = _get(server, f"/database/{database_id}/backup", **params)
        assert response.status_code == 200
        body = response.json()
        pages.append(body)
        if len(body["results"]) < PAGE_SIZE:
            return pages
        params = {"startId": body["results"][-1]["id"]}


def _database_named(world: World, name: str) -> str:
    return next(database.id for database in world.databases() if database.name == name)


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


# ----- the excerpt and the schemas -----


def test_excerpt_refs_resolve(excerpt: Excerpt) -> None:
    text = json.dumps(excerpt.document)
    refs = set(re.findall(r'"\$ref": "([^"]+)"', text))

    assert len(refs) > 40
    for ref in refs:
        assert excerpt.resolve({"$ref": ref}), ref


def test_excerpt_lists_served_operations(excerpt: Excerpt) -> None:
    operations = {path: item["get"]["operationId"] for path, item in excerpt.document["paths"].items()}

    assert operations == {
        "/organization": "listOrganization",
        "/organization/{organizationId}/project": "listProject",
        "/project/{projectId}/environment": "listEnvironment",
        "/environment/{environmentId}/database": "listDatabase",
        "/database/{databaseId}/backup": "listDatabaseBackup",
    }


def test_schema_check_rejects_invalid_backup(excerpt: Excerpt, world: World) -> None:
    database_id = world.backup_database_ids()[0]
    page, results = world.backup_page(database_id, None)
    body = {"page": page, "page_size": PAGE_SIZE, "results": results}
    excerpt.validate("/database/{databaseId}/backup", body)

    missing_message = json.loads(json.dumps(body))
    del missing_message["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        excerpt.validate("/database/{databaseId}/backup", missing_message)

    bad_timestamp = json.loads(json.dumps(body))
    bad_timestamp["results"][0]["created_at"] = "2026-11-03 02:00:00"
    with pytest.raises(jsonschema.ValidationError):
        excerpt.validate("/database/{databaseId}/backup", bad_timestamp)

    extra_key = json.loads(json.dumps(body))
    extra_key["results"][0]["status"]["progress"] = 50
    with pytest.raises(AssertionError, match=r"\$\.results\[0\]\.status\.progress"):
        excerpt.validate("/database/{databaseId}/backup", extra_key)


def test_every_demo_response_matches_schema(server: SimulatorServer, excerpt: Excerpt, world: World) -> None:
    organizations = _get(server, "/organization").json()
    excerpt.validate("/organization", organizations)
    databases: list[dict[str, Any]] = []
    for organization in organizations["results"]:
        projects = _get(server, f"/organization/{organization['id']}/project").json()
        excerpt.validate("/organization/{organizationId}/project", projects)
        for project in projects["results"]:
            environments = _get(server, f"/project/{project['id']}/environment").json()
            excerpt.validate("/project/{projectId}/environment", environments)
            for environment in environments["results"]:
                listed = _get(server, f"/environment/{environment['id']}/database").json()
                excerpt.validate("/environment/{environmentId}/database", listed)
                databases.extend(listed["results"])

    backup_count = 0
    for database in databases:
        if database["mode"] == "MANAGED":
            continue
        for page in _walk_pages(server, database["id"]):
            excerpt.validate("/database/{databaseId}/backup", page)
            backup_count += len(page["results"])

    assert len(organizations["results"]) == 1
    assert len(databases) == 6
    assert backup_count == sum(DEMO_BACKUP_COUNTS.values())
    # Discovery: 1 organization list, 1 project list, 2 environment lists, 3 database lists.
    # Backup pages per database: 120 -> 7, 90 -> 5, 60 -> 4, 45 -> 3, 75 -> 4.
    assert server.count() == 7 + 23


def test_error_statuses_are_declared(server: SimulatorServer, excerpt: Excerpt, world: World) -> None:
    declared = set(excerpt.operation("/database/{databaseId}/backup")["responses"])
    world.set_forbidden(_database_named(world, "orders"))

    statuses = {
        _get(server, f"/database/{_database_named(world, 'orders')}/backup", token="wrong").status_code,
        _get(server, f"/database/{_database_named(world, 'orders')}/backup").status_code,
        _get(server, f"/database/{uuid.uuid4()}/backup").status_code,
    }

    assert statuses == {401, 403, 404}
    assert {str(status) for status in statuses} <= declared


# ----- the demo world -----


def test_demo_world_shape(world: World) -> None:
    databases = world.databases()
    environments = world.environments()

    assert len(world.organizations()) == 1
    assert len(world.projects()) == 2
    assert sorted(environment.mode for environment in environments) == ["DEVELOPMENT", "PRODUCTION", "STAGING"]
    assert len(databases) == 6
    assert {database.type for database in databases} == {"POSTGRESQL", "MYSQL", "MONGODB", "REDIS"}
    assert [database.name for database in databases if database.mode == "MANAGED"] == ["catalog"]
    assert len(world.backup_database_ids()) == 5
    counts = {database.name: len(world.backups_of(database.id)) for database in databases if database.mode == "CONTAINER"}
    assert counts == DEMO_BACKUP_COUNTS


def test_demo_legacy_timeline_is_older(world: World) -> None:
    legacy = world.backups_of(_database_named(world, "legacy-billing"))
    others = [
        backup
        for database_id in world.backup_database_ids()
        if database_id != _database_named(world, "legacy-billing")
        for backup in world.backups_of(database_id)
    ]

    newest_legacy = max(_parse(backup["created_at"]) for backup in legacy)
    oldest_other = min(_parse(backup["created_at"]) for backup in others)
    assert newest_legacy < oldest_other
    assert newest_legacy < NOW - timedelta(days=200)


def test_demo_backup_variety(world: World) -> None:
    backups = [backup for database_id in world.backup_database_ids() for backup in world.backups_of(database_id)]
    outcomes = [backup["status"]["status_details"]["status"] for backup in backups]
    orders = world.backups_of(_database_named(world, "orders"))
    inventory = world.backups_of(_database_named(world, "inventory"))

    assert outcomes.count("SUCCESS") > outcomes.count("ERROR") > 10
    assert outcomes.count("ONGOING") == 2
    assert outcomes.count("QUEUED") == 1
    assert [backup["status"]["status_details"]["status"] for backup in orders[:3]] == ["QUEUED", "ONGOING", "SUCCESS"]
    assert inventory[0]["status"]["status_details"]["status"] == "ONGOING"
    assert orders[0]["status"]["steps"]["total_duration_sec"] is None
    assert orders[1]["status"]["steps"]["total_duration_sec"] is None
    assert sum("updated_at" not in backup for backup in backups) > 10
    assert sum("steps" not in backup["status"] for backup in backups) > 10
    assert any("." not in backup["created_at"] for backup in backups)
    assert any("." in backup["created_at"] for backup in backups)


def test_error_backups_have_error_step(world: World) -> None:
    backups = [backup for database_id in world.backup_database_ids() for backup in world.backups_of(database_id)]
    errors = [backup for backup in backups if backup["status"]["status_details"]["status"] == "ERROR"]
    with_steps = [backup for backup in errors if "steps" in backup["status"]]

    assert with_steps
    for backup in with_steps:
        assert backup["status"]["state"] == "DEPLOYMENT_ERROR"
        assert backup["status"]["steps"]["details"][-1]["status"] == "ERROR"


def test_finished_backup_updated_after_duration(world: World) -> None:
    backups = [backup for database_id in world.backup_database_ids() for backup in world.backups_of(database_id)]
    checked = 0
    for backup in backups:
        status = backup["status"]
        if "updated_at" in backup and "steps" in status and status["steps"]["total_duration_sec"] is not None:
            elapsed = _parse(backup["updated_at"]) - _parse(backup["created_at"])
            assert elapsed == timedelta(seconds=status["steps"]["total_duration_sec"])
            assert status["steps"]["total_duration_sec"] == sum(
                step["duration_sec"] for step in status["steps"]["details"]
            )
            checked += 1

    assert checked > 300


def test_backups_of_newest_first(world: World) -> None:
    for database_id in world.backup_database_ids():
        created = [_parse(backup["created_at"]) for backup in world.backups_of(database_id)]
        assert created == sorted(created, reverse=True)
        assert len(set(created)) == len(created)


def test_demo_is_deterministic() -> None:
    first = World.demo(NOW)
    second = World.demo(NOW)
    other_seed = World.demo(NOW, seed=8)

    assert [database.id for database in first.databases()] == [database.id for database in second.databases()]
    for database_id in first.backup_database_ids():
        assert first.backups_of(database_id) == second.backups_of(database_id)
    assert first.databases()[0].id != other_seed.databases()[0].id


def test_generate_is_deterministic() -> None:
    first = World.generate(3, NOW, organizations=2, projects=2, environments=2, backups_per_database=5)
    second = World.generate(3, NOW, organizations=2, projects=2, environments=2, backups_per_database=5)

    assert first.summary() == second.summary()
    assert [database.id for database in first.databases()] == [database.id for database in second.databases()]
    for database_id in first.backup_database_ids():
        assert first.backups_of(database_id) == second.backups_of(database_id)


def test_generate_tree_shape() -> None:
    world = World.generate(1, NOW, organizations=2, projects=3, environments=2, databases_per_environment=2)

    assert len(world.organizations()) == 2
    assert len(world.projects()) == 6
    assert len(world.environments()) == 12
    assert len(world.databases()) == 24
    assert {database.mode for database in world.databases()} == {"CONTAINER"}


def test_generate_flat_databases_shape() -> None:
    world = World.generate(1, NOW, databases=7, backups_per_database=3, interval=timedelta(minutes=5))
    databases = world.databases()

    assert len(world.organizations()) == 1
    assert len(world.environments()) == 1
    assert len(databases) == 7
    assert {database.environment_id for database in databases} == {world.environments()[0].id}
    created = [_parse(backup["created_at"]) for backup in world.backups_of(databases[0].id)]
    assert created[0] - created[1] > timedelta(minutes=4)
    assert created[0] - created[1] < timedelta(minutes=6)


def test_generate_per_database_counts() -> None:
    world = World.generate(1, NOW, databases=3, backups_per_database=[0, 21, 40])

    counts = [len(world.backups_of(database_id)) for database_id in world.backup_database_ids()]
    assert counts == [0, 21, 40]


def test_generate_rejects_wrong_count_list() -> None:
    with pytest.raises(ValueError, match="backups_per_database has 2 entries but the world has 3 databases"):
        World.generate(1, NOW, databases=3, backups_per_database=[1, 2])


def test_generate_exact_fractions() -> None:
    world = World.generate(1, NOW, databases=1, backups_per_database=40, without_updated_at=0.25, without_steps=0.1)
    backups = world.backups_of(world.backup_database_ids()[0])

    assert sum("updated_at" not in backup for backup in backups) == 10
    assert sum("steps" not in backup["status"] for backup in backups) == 4


def test_world_rejects_naive_clock() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        World(1, datetime(2026, 11, 3))


# ----- paging -----


def test_pages_walk_matches_backups_of(server: SimulatorServer, world: World) -> None:
    for database_id in world.backup_database_ids():
        server.reset_log()
        expected = world.backups_of(database_id)

        pages = _walk_pages(server, database_id)

        served = [backup for page in pages for backup in page["results"]]
        assert served == expected
        assert [page["page"] for page in pages] == list(range(1, len(pages) + 1))
        assert {page["page_size"] for page in pages} == {20}
        assert [len(page["results"]) for page in pages[:-1]] == [PAGE_SIZE] * (len(pages) - 1)
        assert len(pages[-1]["results"]) == len(expected) % PAGE_SIZE
        assert len(pages) == len(expected) // PAGE_SIZE + 1
        assert server.count(f"/database/{database_id}/backup") == len(pages)


def test_start_id_sends_next_twenty(server: SimulatorServer, world: World) -> None:
    database_id = _database_named(world, "inventory")
    expected = world.backups_of(database_id)

    response = _get(server, f"/database/{database_id}/backup", startId=expected[4]["id"])

    body = response.json()
    assert body["page"] == 1
    assert [backup["id"] for backup in body["results"]] == [backup["id"] for backup in expected[5:25]]


def test_unknown_start_id_returns_empty_page(server: SimulatorServer, world: World) -> None:
    database_id = _database_named(world, "orders")

    response = _get(server, f"/database/{database_id}/backup", startId=str(uuid.uuid4()))

    assert response.status_code == 200
    assert response.json() == {"page": 1, "page_size": 20, "results": []}


def test_page_size_as_float(world: World) -> None:
    with SimulatorServer(world, tokens=(TOKEN,), page_size_as_float=True) as server:
        response = _get(server, f"/database/{world.backup_database_ids()[0]}/backup")

    assert '"page_size": 20.0' in response.text
    assert '"page": 1,' in response.text


def test_response_headers(server: SimulatorServer) -> None:
    response = _get(server, "/organization")

    assert response.headers["Content-Type"] == "application/json"
    assert server.base_url.startswith("http://127.0.0.1:")


# ----- auth and errors -----


@pytest.mark.parametrize(
    ("token", "scheme", "expected"),
    [
        (None, "Token", 401),
        ("wrong", "Token", 401),
        (TOKEN, "Basic", 401),
        (TOKEN, "Token", 200),
        (TOKEN, "Bearer", 200),
        (TOKEN, "bearer", 200),
    ],
)
def test_authorization_header(server: SimulatorServer, world: World, token: str | None, scheme: str, expected: int) -> None:
    for path in ("/organization", f"/database/{world.backup_database_ids()[0]}/backup"):
        response = _get(server, path, token=token, scheme=scheme)

        assert response.status_code == expected
        if expected == 401:
            assert response.json()["status"] == 401
            assert response.json()["message"] == "access token is missing or invalid"


def test_several_tokens_accepted(world: World) -> None:
    with SimulatorServer(world, tokens=("qov_a", "qov_b")) as server:
        statuses = [_get(server, "/organization", token=token).status_code for token in ("qov_a", "qov_b", "qov_c")]

    assert statuses == [200, 200, 401]


def test_not_found_paths(server: SimulatorServer, world: World) -> None:
    managed = _database_named(world, "catalog")
    container = _database_named(world, "orders")
    paths = [
        f"/database/{uuid.uuid4()}/backup",
        f"/database/{managed}/backup",
        f"/database/{container}/masterCredentials",
        f"/organization/{uuid.uuid4()}/project",
        f"/project/{uuid.uuid4()}/environment",
        f"/environment/{uuid.uuid4()}/database",
        "/organization/",
        "/",
    ]

    for path in paths:
        response = _get(server, path)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404, path


def test_other_methods_get_405(server: SimulatorServer, world: World) -> None:
    url = f"{server.base_url}/database/{world.backup_database_ids()[0]}/backup"

    response = requests.post(url, headers={"Authorization": f"Token {TOKEN}"}, json={"name": "x"}, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert server.requests[-1].method == "POST"


def test_forbidden_database(server: SimulatorServer, world: World) -> None:
    database_id = _database_named(world, "sessions")
    world.set_forbidden(database_id)

    forbidden = _get(server, f"/database/{database_id}/backup")
    other = _get(server, f"/database/{_database_named(world, 'orders')}/backup")
    world.set_forbidden(database_id, False)
    allowed = _get(server, f"/database/{database_id}/backup")

    assert forbidden.status_code == 403
    assert forbidden.json()["status"] == 403
    assert other.status_code == 200
    assert allowed.status_code == 200


# ----- mutations -----


def test_add_backup_served_first(server: SimulatorServer, world: World) -> None:
    database_id = _database_named(world, "sessions")
    world.advance(timedelta(hours=2))

    added = world.add_backup(database_id, outcome=Outcome.ONGOING, with_updated_at=False)
    first_page = _get(server, f"/database/{database_id}/backup").json()

    assert added["created_at"] == "2026-11-03T14:00:00Z"
    assert "updated_at" not in added
    assert added["status"]["deployment_request_id"] is not None
    assert first_page["results"][0] == added
    assert len(world.backups_of(database_id)) == 91


def test_add_backup_without_steps(world: World) -> None:
    added = world.add_backup(_database_named(world, "orders"), outcome="SUCCESS", with_steps=False)

    assert "steps" not in added["status"]
    assert added["status"]["status_details"]["status"] == "SUCCESS"


def test_update_backup_late(world: World) -> None:
    database_id = _database_named(world, "orders")
    ongoing = world.backups_of(database_id)[1]
    world.advance(timedelta(minutes=30))

    updated = world.update_backup(ongoing["id"], outcome=Outcome.SUCCESS)

    assert updated["id"] == ongoing["id"]
    assert updated["created_at"] == ongoing["created_at"]
    assert updated["updated_at"] == "2026-11-03T12:30:00Z"
    assert updated["status"]["status_details"]["status"] == "SUCCESS"
    assert updated["status"]["state"] == "DEPLOYED"
    elapsed = _parse(updated["updated_at"]) - _parse(updated["created_at"])
    assert updated["status"]["steps"]["total_duration_sec"] == int(elapsed.total_seconds())
    assert world.backups_of(database_id)[1] == updated


def test_update_backup_at_given_time(world: World) -> None:
    backup = world.backups_of(_database_named(world, "inventory"))[0]
    at = _parse(backup["created_at"]) + timedelta(minutes=5, milliseconds=250)

    updated = world.update_backup(backup["id"], outcome="ERROR", at=at)

    steps = updated["status"]["steps"]
    assert _parse(updated["updated_at"]) == at
    assert [step["step_name"] for step in steps["details"]] == ["DEPLOYMENT_QUEUEING", "DEPLOYMENT"]
    assert steps["details"][-1]["status"] == "ERROR"
    assert steps["total_duration_sec"] == 300
    assert steps["details"][0]["duration_sec"] + steps["details"][1]["duration_sec"] == 300


def test_update_keeps_missing_updated_at(world: World) -> None:
    backups = [backup for database_id in world.backup_database_ids() for backup in world.backups_of(database_id)]
    without = [backup for backup in backups if "updated_at" not in backup]

    updated = world.update_backup(without[0]["id"], outcome=Outcome.ERROR)

    assert "updated_at" not in updated
    assert updated["status"]["status_details"]["status"] == "ERROR"


def test_delete_backup_removes_it(server: SimulatorServer, world: World) -> None:
    database_id = _database_named(world, "inventory")
    victim = world.backups_of(database_id)[3]

    world.delete_backup(victim["id"])
    served = [backup for page in _walk_pages(server, database_id) for backup in page["results"]]

    assert len(served) == 44
    assert victim["id"] not in {backup["id"] for backup in served}
    with pytest.raises(KeyError):
        world.delete_backup(victim["id"])


def test_add_database_is_discovered(server: SimulatorServer, world: World, excerpt: Excerpt) -> None:
    environment = world.environments()[0]

    added = world.add_database(environment.id, name="reports", type="MONGODB", backups=25)
    listed = _get(server, f"/environment/{environment.id}/database").json()

    excerpt.validate("/environment/{environmentId}/database", listed)
    assert added.id in {database["id"] for database in listed["results"]}
    assert added.id in world.backup_database_ids()
    assert [len(page["results"]) for page in _walk_pages(server, added.id)] == [20, 5]


def test_add_database_rejects_managed_backups(world: World) -> None:
    with pytest.raises(ValueError, match="MANAGED database has no backup list"):
        world.add_database(world.environments()[0].id, mode="MANAGED", backups=3)


def test_mutations_reject_managed_and_unknown(world: World) -> None:
    with pytest.raises(KeyError):
        world.add_backup(_database_named(world, "catalog"))
    with pytest.raises(KeyError):
        world.backups_of(_database_named(world, "catalog"))
    with pytest.raises(KeyError):
        world.update_backup(str(uuid.uuid4()), outcome=Outcome.SUCCESS)


# ----- request log -----


def test_request_log_records_every_request(server: SimulatorServer, world: World) -> None:
    database_id = world.backup_database_ids()[0]
    _get(server, "/organization")
    _get(server, "/organization", token="wrong")
    _get(server, f"/database/{database_id}/backup", startId="abc")

    records = server.requests
    assert [(record.number, record.path, record.status) for record in records] == [
        (1, "/organization", 200),
        (2, "/organization", 401),
        (3, f"/database/{database_id}/backup", 200),
    ]
    assert records[2].query == {"startId": "abc"}
    assert records[0].headers["Authorization"] == f"Token {TOKEN}"
    assert server.count("/organization") == 2
    assert server.count("/database/") == 1

    server.reset_log()
    _get(server, "/organization")
    assert [record.number for record in server.requests] == [1]


def test_server_is_quiet(capfd: pytest.CaptureFixture[str], world: World) -> None:
    with SimulatorServer(world, tokens=(TOKEN,)) as server:
        _get(server, "/organization")
        _get(server, "/nowhere")

    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_latency_delays_each_request(world: World) -> None:
    with SimulatorServer(world, tokens=(TOKEN,), latency=0.2) as server:
        started = time.monotonic()
        _get(server, "/organization")
        _get(server, "/organization")
        elapsed = time.monotonic() - started

    assert elapsed >= 0.4


def test_stop_closes_port(world: World) -> None:
    server = SimulatorServer(world, tokens=(TOKEN,)).start()
    base_url = server.base_url
    server.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(base_url + "/organization", timeout=2)


def test_main_serves_demo_until_interrupted() -> None:
    command = [sys.executable, "-m", "qovery_backups.simulator", "--port", "0", "--seed", "7", "--token", TOKEN]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        response = requests.get(base_url + "/organization", headers={"Authorization": f"Token {TOKEN}"}, timeout=5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
    assert response.status_code == 200
    assert response.json()["results"][0]["name"] == "Acme Robotics"
    assert process.returncode == 0
    assert f"listening on {base_url}" in stderr
    assert "stopped, requests received: 1" in stderr


# ----- faults -----


def _statuses(server: SimulatorServer) -> list[int | None]:
    return [record.status for record in server.requests]


def _serve_with(world: World, faults: Faults) -> SimulatorServer:
    return SimulatorServer(world, tokens=(TOKEN,), faults=faults)


def test_rate_limit_every_third(world: World) -> None:
    with _serve_with(world, Faults(rate_limit_every=3, retry_after_seconds=7)) as server:
        responses = [_get(server, "/organization") for _ in range(7)]

    assert [response.status_code for response in responses] == [200, 200, 429, 200, 200, 429, 200]
    assert _statuses(server) == [200, 200, 429, 200, 200, 429, 200]
    limited = responses[2]
    assert limited.headers["Retry-After"] == "7"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(time.time()) + 6
    assert limited.json()["status"] == 429


def test_server_error_burst(world: World) -> None:
    with _serve_with(world, Faults(server_error_burst=(2, 3, 503))) as server:
        statuses = [_get(server, "/organization").status_code for _ in range(6)]

    assert statuses == [200, 503, 503, 503, 200, 200]
    assert _statuses(server) == statuses


def test_faults_fire_before_auth(world: World) -> None:
    with _serve_with(world, Faults(server_error_burst=(1, 1, 502))) as server:
        statuses = [_get(server, "/organization", token=None).status_code for _ in range(2)]

    assert statuses == [502, 401]


def test_drop_connection_every_second(world: World) -> None:
    with _serve_with(world, Faults(drop_connection_every=2)) as server:
        outcomes: list[int | str] = []
        with requests.Session() as session:
            session.headers["Authorization"] = f"Token {TOKEN}"
            for _ in range(4):
                try:
                    outcomes.append(session.get(server.base_url + "/organization", timeout=5).status_code)
                except requests.ConnectionError:
                    outcomes.append("dropped")

    assert outcomes == [200, "dropped", 200, "dropped"]
    assert _statuses(server) == [200, None, 200, None]


def test_truncate_json_every_second(world: World) -> None:
    with _serve_with(world, Faults(truncate_json_every=2)) as server:
        whole = _get(server, "/organization")
        cut = _get(server, "/organization")
        whole_again = _get(server, "/organization")

    assert whole.status_code == 200
    assert cut.status_code == 200
    assert len(cut.content) == len(whole.content) // 2
    assert whole.content.startswith(cut.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert whole_again.json() == whole.json()


def test_truncate_skips_error_responses(world: World) -> None:
    with _serve_with(world, Faults(truncate_json_every=1)) as server:
        response = _get(server, "/organization", token="wrong")

    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_slow_requests_time_out(world: World) -> None:
    with _serve_with(world, Faults(slow_seconds=0.5, slow_every=2)) as server:
        fast = _get(server, "/organization")
        with pytest.raises(requests.Timeout):
            requests.get(server.base_url + "/organization", headers={"Authorization": f"Token {TOKEN}"}, timeout=0.2)
        time.sleep(0.5)

    assert fast.status_code == 200
    assert [record.number for record in server.requests] == [1, 2]


def test_ignore_start_id_serves_first_page(world: World) -> None:
    database_id = _database_named(world, "orders")
    with _serve_with(world, Faults(ignore_start_id=True)) as server:
        first = _get(server, f"/database/{database_id}/backup").json()
        second = _get(server, f"/database/{database_id}/backup", startId=first["results"][-1]["id"]).json()

    assert second == first
    assert second["results"] == world.backups_of(database_id)[:20]


def test_faults_replaceable_while_running(world: World) -> None:
    with _serve_with(world, Faults()) as server:
        before = _get(server, "/organization").status_code
        server.faults = Faults(rate_limit_every=1)
        after = _get(server, "/organization").status_code

    assert (before, after) == (200, 429)


@pytest.mark.parametrize(
    "arguments",
    [
        {"rate_limit_every": -1},
        {"server_error_burst": (0, 2, 500)},
        {"server_error_burst": (1, 2, 404)},
        {"slow_seconds": -0.1},
    ],
)
def test_faults_reject_invalid_settings(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid|negative"):
        Faults(**arguments)
