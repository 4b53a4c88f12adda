"""Discovery of an organization's databases: organization → projects → environments → databases.

Each level is an unpaginated `{"results": [...]}` list. Discovery reads names, types and modes
only: it never calls `/database/{id}/masterCredentials` and loads no credential.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from qovery_backups.client import (
    QoveryClient,
    QoveryConfigurationError,
    QoveryForbiddenError,
    QoveryNotFoundError,
    QoveryResponseError,
)

logger = logging.getLogger(__name__)

DISCOVERY = "discovery"
ENVIRONMENT_MODES = ("PRODUCTION", "STAGING", "DEVELOPMENT", "PREVIEW")


@dataclass(frozen=True)
class DatabaseInfo:
    """One database with the names of its environment, project and organization.

    This is also the row shape of the `databases` table.
    """

    id: str
    name: str | None = None
    type: str | None = None
    version: str | None = None
    mode: str | None = None
    accessibility: str | None = None
    instance_type: str | None = None
    storage: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    environment_id: str | None = None
    environment_name: str | None = None
    environment_mode: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    organization_id: str | None = None

    @property
    def is_managed(self) -> bool:
        return self.mode == "MANAGED"

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DiscoveryFilters:
    """Filters on discovered databases; an empty tuple lets every value through.

    Values compare case-insensitively.
    """

    environment_modes: tuple[str, ...] = ()
    project_names: tuple[str, ...] = ()
    database_types: tuple[str, ...] = ()

    def accepts(self, database: DatabaseInfo) -> bool:
        return (
            _matches(database.environment_mode, self.environment_modes)
            and _matches(database.project_name, self.project_names)
            and _matches(database.type, self.database_types)
        )


def _matches(value: str | None, allowed: Sequence[str]) -> bool:
    if not allowed:
        return True
    return (value or "").casefold() in {item.casefold() for item in allowed}


def resolve_organization_id(client: QoveryClient) -> str:
    """Return the id of the only organization the token can read, or raise listing them all."""
    organizations = _results(client, "/organization")
    if len(organizations) == 1:
        organization = organizations[0]
        logger.info(
            "Using organization %s (%s), the only one this token sees",
            organization.get("id"),
            organization.get("name"),
        )
        return str(organization["id"])
    if not organizations:
        raise QoveryConfigurationError(
            "The token sees no organization, so there is nothing to discover.",
            path="/organization",
            hint="Check that the token belongs to an organization, or set database_ids.",
        )
    listing = "; ".join(f"{org.get('id')} ({org.get('name')})" for org in organizations)
    raise QoveryConfigurationError(
        f"The token sees {len(organizations)} organizations: {listing}.",
        path="/organization",
        hint="Choose one with --organization-id, SOURCES__QOVERY__ORGANIZATION_ID or "
        "organization_id under [sources.qovery] in .dlt/config.toml.",
    )


def discover_databases(client: QoveryClient, organization_id: str) -> list[DatabaseInfo]:
    """Walk the organization's projects and environments and return every database."""
    databases = []
    try:
        projects = _results(client, f"/organization/{organization_id}/project")
    except (QoveryNotFoundError, QoveryForbiddenError) as error:
        raise QoveryConfigurationError(
            f"Organization {organization_id} was not found or may not be read with this token "
            f"({error.status}).",
            path=error.path,
            hint="Check --organization-id, SOURCES__QOVERY__ORGANIZATION_ID or organization_id "
            "under [sources.qovery], and that the token belongs to that organization.",
        ) from None
    for project in projects:
        environments = _results(client, f"/project/{project['id']}/environment")
        for environment in environments:
            found = _results(client, f"/environment/{environment['id']}/database")
            for database in found:
                databases.append(_database_info(database, environment, project, organization_id))
    logger.info(
        "Discovered %d databases in %d projects of organization %s",
        len(databases),
        len(projects),
        organization_id,
    )
    return databases


def _database_info(
    database: Mapping[str, Any],
    environment: Mapping[str, Any],
    project: Mapping[str, Any],
    organization_id: str,
) -> DatabaseInfo:
    return DatabaseInfo(
        id=str(database["id"]),
        name=database.get("name"),
        type=database.get("type"),
        version=database.get("version"),
        mode=database.get("mode"),
        accessibility=database.get("accessibility"),
        instance_type=database.get("instance_type"),
        storage=database.get("storage"),
        created_at=database.get("created_at"),
        updated_at=database.get("updated_at"),
        environment_id=str(environment["id"]),
        environment_name=environment.get("name"),
        environment_mode=environment.get("mode"),
        project_id=str(project["id"]),
        project_name=project.get("name"),
        organization_id=organization_id,
    )


def _results(client: QoveryClient, path: str) -> list[dict[str, Any]]:
    body = client.get_json(path, category=DISCOVERY)
    results = body.get("results") if isinstance(body, Mapping) else None
    if results is None and isinstance(body, Mapping):
        return []
    if not isinstance(results, list) or not all(
        isinstance(item, Mapping) and item.get("id") for item in results
    ):
        raise QoveryResponseError(
            f"GET {path} returned a body without a list of objects with ids in `results`.",
            path=path,
            body_excerpt=repr(body)[:200],
        )
    return results


@dataclass
class DatabaseCatalog:
    """The databases one run loads, resolved once and shared by the source's resources.

    Discovery runs on first use, when an organization is configured or when neither an
    organization nor database ids are; explicit `database_ids` then narrow the discovered set.
    With ids and no organization, nothing is discovered and each id is loaded as given.
    """

    client: QoveryClient
    organization_id: str | None = None
    database_ids: tuple[str, ...] = ()
    filters: DiscoveryFilters = field(default_factory=DiscoveryFilters)
    _databases: list[DatabaseInfo] | None = None
    # Configured ids that discovery did not find in the organization at all.
    missing_ids: tuple[str, ...] = ()
    # Every database discovery found, before filters; None when discovery did not run.
    found_ids: tuple[str, ...] | None = None
    _selection: frozenset[str] | None = None
    max_databases: int | None = None
    max_backups: int | None = None
    # Databases the current extraction has started to read, in start order.
    started_ids: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def uses_discovery(self) -> bool:
        return bool(self.organization_id) or not self.database_ids

    def databases(self) -> list[DatabaseInfo]:
        """Return the databases to load, discovering them on the first call."""
        with self._lock:
            if self._databases is None:
                self._databases = self._resolve()
            return self._databases

    def select(
        self,
        database_ids: Iterable[str] | None,
        max_databases: int | None = None,
        max_backups: int | None = None,
    ) -> None:
        """Restrict the next extraction to these databases (None lifts the restriction).

        The extraction starts no further database once it has started `max_databases` or
        yielded `max_backups` backups; `started_ids` then lists the databases it read.
        """
        self._selection = None if database_ids is None else frozenset(database_ids)
        self.max_databases = max_databases
        self.max_backups = max_backups
        self.started_ids = []

    def selected(self) -> list[DatabaseInfo]:
        """Return the databases the current extraction reads: all, unless `select` narrowed them."""
        databases = self.databases()
        if self._selection is None:
            return databases
        return [database for database in databases if database.id in self._selection]

    def _resolve(self) -> list[DatabaseInfo]:
        if not self.uses_discovery:
            return [DatabaseInfo(id=database_id) for database_id in self.database_ids]
        organization_id = self.organization_id or resolve_organization_id(self.client)
        self.organization_id = organization_id
        found = discover_databases(self.client, organization_id)
        self.found_ids = tuple(database.id for database in found)
        selected = [database for database in found if self.filters.accepts(database)]
        if self.database_ids:
            wanted = set(self.database_ids)
            self.missing_ids = tuple(sorted(wanted - {database.id for database in found}))
            filtered_out = wanted - {database.id for database in selected} - set(self.missing_ids)
            if filtered_out:
                logger.info(
                    "Configured databases left out by the filters: %s",
                    ", ".join(sorted(filtered_out)),
                )
            selected = [database for database in selected if database.id in wanted]
        if len(selected) != len(found):
            logger.info("Filters keep %d of %d discovered databases", len(selected), len(found))
        return selected


def normalize_choices(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """Turn a config value (list, or comma-separated string) into a tuple of stripped items."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = values.split(",")
    return tuple(str(value).strip() for value in values if str(value).strip())
