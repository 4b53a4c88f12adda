"""The GET endpoints the simulator serves, as functions of the world and the request.

Paths and bodies follow ``qovery-openapi-excerpt.yaml``. Error bodies are
``{"status": <code>, "error": <reason>, "message": <text>}``: the
specification documents no body for 401, 403 and 404, so this shape is the
simulator's choice. Every other path returns 404, including
``/database/{databaseId}/masterCredentials``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from qovery_backups.simulator.world import PAGE_SIZE, World


@dataclass(frozen=True)
class Response:
    """A status, a JSON body and extra headers, before any fault changes them."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteOptions:
    """Server settings that change how the backup list is served.

    Attributes:
        page_size_as_float: Serve ``page_size`` as ``20.0``, which the spec's ``number`` type allows.
        ignore_start_id: Serve the first page whatever the ``startId`` parameter is.
    """

    page_size_as_float: bool = False
    ignore_start_id: bool = False


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Build an error response with the simulator's JSON error body."""
    body = {"status": status, "error": HTTPStatus(status).phrase, "message": message}
    return Response(status, body, headers or {})


def _list_organizations(world: World, _: str, __: Mapping[str, str], ___: RouteOptions) -> Response:
    return Response(200, {"results": [organization.to_api() for organization in world.organizations()]})


def _list_projects(world: World, organization_id: str, _: Mapping[str, str], __: RouteOptions) -> Response:
    with world.lock:
        if organization_id not in {organization.id for organization in world.organizations()}:
            return error_response(404, f"organization {organization_id} not found")
        environments = world.environments()
        results = []
        for project in world.projects():
            if project.organization_id == organization_id:
                count = sum(1 for environment in environments if environment.project_id == project.id)
                results.append(project.to_api(count))
    return Response(200, {"results": results})


def _list_environments(world: World, project_id: str, _: Mapping[str, str], __: RouteOptions) -> Response:
    with world.lock:
        if project_id not in {project.id for project in world.projects()}:
            return error_response(404, f"project {project_id} not found")
        results = [environment.to_api() for environment in world.environments() if environment.project_id == project_id]
    return Response(200, {"results": results})


def _list_databases(world: World, environment_id: str, _: Mapping[str, str], __: RouteOptions) -> Response:
    with world.lock:
        if environment_id not in {environment.id for environment in world.environments()}:
            return error_response(404, f"environment {environment_id} not found")
        results = [database.to_api() for database in world.databases() if database.environment_id == environment_id]
    return Response(200, {"results": results})


def _list_backups(world: World, database_id: str, query: Mapping[str, str], options: RouteOptions) -> Response:
    with world.lock:
        database = world.database(database_id)
        if database is None:
            return error_response(404, f"database {database_id} not found")
        if not database.serves_backups:
            # The cloud provider keeps the backups of a MANAGED database, and the real API may return 404 for them.
            return error_response(404, f"database {database_id} is MANAGED and has no backup list")
        if world.is_forbidden(database_id):
            return error_response(403, f"reading the backups of database {database_id} is forbidden for this token")
        start_id = None if options.ignore_start_id else query.get("startId")
        page, results = world.backup_page(database_id, start_id)
    page_size: float = float(PAGE_SIZE) if options.page_size_as_float else PAGE_SIZE
    return Response(200, {"page": page, "page_size": page_size, "results": results})


_Handler = Callable[[World, str, Mapping[str, str], RouteOptions], Response]

_ROUTES: list[tuple[re.Pattern[str], _Handler]] = [
    (re.compile(r"/organization()"), _list_organizations),
    (re.compile(r"/organization/([^/]+)/project"), _list_projects),
    (re.compile(r"/project/([^/]+)/environment"), _list_environments),
    (re.compile(r"/environment/([^/]+)/database"), _list_databases),
    (re.compile(r"/database/([^/]+)/backup"), _list_backups),
]


def is_known_path(path: str) -> bool:
    """Return whether a GET on ``path`` is served, so that other methods on it get 405."""
    return any(pattern.fullmatch(path) for pattern, _ in _ROUTES)


def route(world: World, path: str, query: Mapping[str, str], options: RouteOptions) -> Response:
    """Build the response to a GET on ``path`` with ``query``, once the caller has checked the token."""
    for pattern, handler in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            return handler(world, match.group(1), query, options)
    return error_response(404, f"no resource at {path}")
