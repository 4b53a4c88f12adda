"""The simulated Qovery organization tree and its deterministic generator.

A :class:`World` contains organizations, projects, environments, databases and
backups, and a clock ``now``. Every id comes from one ``random.Random`` seeded
at construction, so the same seed, clock and sequence of calls build the same
ids and data. All public methods hold one lock, so tests may change the world
while a :class:`~qovery_backups.simulator.server.SimulatorServer` serves it.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from qovery_backups.simulator.records import (
    DATABASE_MODES,
    DATABASE_TYPES,
    DEFAULT_VERSIONS,
    ENVIRONMENT_MODES,
    Backup,
    Database,
    Environment,
    Organization,
    Outcome,
    Project,
    format_timestamp,
    random_uuid,
    truncate_to_milliseconds,
)
from qovery_backups.simulator.timeline import TimelineShape, generate_timeline, new_backup

# Number of backups in one page of listDatabaseBackup, as the specification states.
PAGE_SIZE = 20

# Offset of the newest generated backup before the clock, longer than any generated duration,
# so that no generated updated_at lies after world.now.
_DEFAULT_TIMELINE_LAG = timedelta(hours=1)


def _require_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()} is invalid: pass a timezone-aware UTC datetime")
    return truncate_to_milliseconds(moment)


class World:
    """A Qovery organization tree with backups and a clock.

    Attributes:
        now: The simulated current time, timezone-aware UTC, at millisecond precision.
    """

    def __init__(self, seed: int, now: datetime) -> None:
        self.now = _require_utc(now)
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._organizations: dict[str, Organization] = {}
        self._projects: dict[str, Project] = {}
        self._environments: dict[str, Environment] = {}
        self._databases: dict[str, Database] = {}
        self._backups: dict[str, list[Backup]] = {}
        self._database_of_backup: dict[str, str] = {}
        # Each database's backups in page order, with the position of each id, built on the
        # first read after a backup is added or deleted. A status change keeps the order,
        # because the order depends only on created_at and id, which never change.
        self._page_order: dict[str, tuple[list[Backup], dict[str, int]]] = {}
        self._forbidden: set[str] = set()

    @property
    def lock(self) -> threading.RLock:
        """The lock every public method holds. Hold it to read several lists as one snapshot."""
        return self._lock

    # ----- construction -----

    @classmethod
    def generate(
        cls,
        seed: int,
        now: datetime,
        *,
        organizations: int = 1,
        projects: int = 1,
        environments: int = 1,
        databases_per_environment: int = 1,
        databases: int | None = None,
        backups_per_database: int | Sequence[int] = 30,
        interval: timedelta = timedelta(days=1),
        without_updated_at: float = 0.0,
        without_steps: float = 0.0,
        error_fraction: float = 0.0,
    ) -> World:
        """Build a world of CONTAINER databases, each with a backup timeline ending one hour before ``now``.

        Args:
            seed: Seed of every id and random choice.
            now: The world's clock, timezone-aware.
            organizations: Number of organizations.
            projects: Number of projects per organization.
            environments: Number of environments per project. Their modes cycle through
                PRODUCTION, STAGING, DEVELOPMENT and PREVIEW.
            databases_per_environment: Number of databases per environment. Their types cycle
                through POSTGRESQL, MYSQL, MONGODB and REDIS.
            databases: If set, builds this many databases in one organization, project and
                environment, and the four shape arguments above are ignored.
            backups_per_database: Backups of every database, or one count per database in
                creation order (organization by organization, then project, environment).
            interval: Time between two consecutive backups of a database.
            without_updated_at: Fraction of each database's finished backups served without
                ``updated_at``, rounded to a whole number of backups.
            without_steps: Fraction of each database's finished backups served without
                ``status.steps``, rounded the same way.
            error_fraction: Fraction of each database's backups that end in ERROR.

        Raises:
            ValueError: If ``backups_per_database`` is a list whose length is not the number of
                databases, or a fraction lies outside 0..1.
        """
        if databases is not None:
            organizations = projects = environments = 1
            databases_per_environment = databases
        total = organizations * projects * environments * databases_per_environment
        if isinstance(backups_per_database, int):
            counts = [backups_per_database] * total
        else:
            counts = list(backups_per_database)
            if len(counts) != total:
                raise ValueError(
                    f"backups_per_database has {len(counts)} entries but the world has {total} databases: "
                    "pass one count per database"
                )
        world = cls(seed, now)
        modes = ("PRODUCTION", "STAGING", "DEVELOPMENT", "PREVIEW")
        database_index = 0
        for organization_number in range(organizations):
            organization = world.add_organization(f"organization-{organization_number + 1}")
            for project_number in range(projects):
                project = world.add_project(organization.id, f"project-{project_number + 1}")
                for environment_number in range(environments):
                    environment = world.add_environment(
                        project.id, f"environment-{environment_number + 1}", modes[environment_number % len(modes)]
                    )
                    for _ in range(databases_per_environment):
                        database_type = DATABASE_TYPES[database_index % len(DATABASE_TYPES)]
                        world.add_database(
                            environment.id,
                            name=f"database-{database_index + 1}",
                            type=database_type,
                            backups=counts[database_index],
                            interval=interval,
                            without_updated_at=without_updated_at,
                            without_steps=without_steps,
                            error_fraction=error_fraction,
                        )
                        database_index += 1
        return world

    @classmethod
    def demo(cls, now: datetime, seed: int = 7) -> World:
        """Build the demo world: one organization with six databases on different timelines.

        Project ``storefront`` has two environments. PRODUCTION contains
        ``orders`` (POSTGRESQL, 120 daily backups, the newest QUEUED and the one
        before ONGOING), ``sessions`` (REDIS, 90) and ``catalog`` (MONGODB,
        MANAGED, no backup list). STAGING contains ``orders-staging``
        (POSTGRESQL, 60) and ``inventory`` (MYSQL, 45, the newest ONGOING).
        Project ``internal-tools`` has a DEVELOPMENT environment with
        ``legacy-billing`` (MYSQL 5.7, 75 backups ending 200 days before
        ``now``). In each timeline, 5 % of the finished backups (rounded) end in
        ERROR, 5 % lack ``updated_at`` and 5 % lack ``steps``.
        """
        world = cls(seed, now)
        mixed = {"without_updated_at": 0.05, "without_steps": 0.05, "error_fraction": 0.05}
        organization = world.add_organization("Acme Robotics")
        storefront = world.add_project(organization.id, "storefront")
        production = world.add_environment(storefront.id, "production", "PRODUCTION")
        staging = world.add_environment(storefront.id, "staging", "STAGING")
        internal = world.add_project(organization.id, "internal-tools")
        development = world.add_environment(internal.id, "development", "DEVELOPMENT")

        world.add_database(production.id, name="orders", type="POSTGRESQL", backups=120, in_progress=2, **mixed)
        world.add_database(production.id, name="sessions", type="REDIS", backups=90, **mixed)
        world.add_database(production.id, name="catalog", type="MONGODB", mode="MANAGED")
        world.add_database(staging.id, name="orders-staging", type="POSTGRESQL", version="15", backups=60, **mixed)
        world.add_database(staging.id, name="inventory", type="MYSQL", backups=45, in_progress=1, **mixed)
        world.add_database(
            development.id,
            name="legacy-billing",
            type="MYSQL",
            version="5.7",
            backups=75,
            end=world.now - timedelta(days=200),
            **mixed,
        )
        return world

    def _created_before_now(self, days: int) -> datetime:
        return self.now - timedelta(days=days, seconds=self._rng.randrange(86_400))

    def add_organization(self, name: str) -> Organization:
        """Create an organization created about a year before ``now``."""
        with self._lock:
            organization = Organization(random_uuid(self._rng), name, self._created_before_now(400), owner=random_uuid(self._rng))
            self._organizations[organization.id] = organization
            return copy.copy(organization)

    def add_project(self, organization_id: str, name: str) -> Project:
        """Create a project in an organization.

        Raises:
            KeyError: If the organization does not exist.
        """
        with self._lock:
            self._organizations[organization_id]  # noqa: B018 - raises KeyError for an unknown id
            project = Project(random_uuid(self._rng), name, organization_id, self._created_before_now(390))
            self._projects[project.id] = project
            return copy.copy(project)

    def add_environment(self, project_id: str, name: str, mode: str = "PRODUCTION") -> Environment:
        """Create an environment in a project, with an EnvironmentModeEnum ``mode``.

        Raises:
            KeyError: If the project does not exist.
            ValueError: If ``mode`` is not an EnvironmentModeEnum value.
        """
        if mode not in ENVIRONMENT_MODES:
            raise ValueError(f"environment mode {mode!r} is invalid: expected one of {', '.join(ENVIRONMENT_MODES)}")
        with self._lock:
            project = self._projects[project_id]
            environment = Environment(
                id=random_uuid(self._rng),
                name=name,
                mode=mode,
                project_id=project.id,
                organization_id=project.organization_id,
                cluster_id=random_uuid(self._rng),
                last_updated_by=random_uuid(self._rng),
                created_at=self._created_before_now(380),
            )
            self._environments[environment.id] = environment
            return copy.copy(environment)

    def add_database(
        self,
        environment_id: str,
        *,
        name: str | None = None,
        type: str = "POSTGRESQL",  # noqa: A002 - the API's field name
        version: str | None = None,
        mode: str = "CONTAINER",
        backups: int = 0,
        interval: timedelta = timedelta(days=1),
        end: datetime | None = None,
        in_progress: int = 0,
        without_updated_at: float = 0.0,
        without_steps: float = 0.0,
        error_fraction: float = 0.0,
    ) -> Database:
        """Create a database in an environment, with a timeline of ``backups`` backups.

        ``end`` is the slot of the newest backup (default: one hour before
        ``now``). The timeline arguments are those of
        :class:`~qovery_backups.simulator.timeline.TimelineShape`, which
        describes the timeline.

        Raises:
            KeyError: If the environment does not exist.
            ValueError: If an argument is invalid, or a MANAGED database is given backups,
                because the API does not list those.
        """
        if type not in DATABASE_TYPES:
            raise ValueError(f"database type {type!r} is invalid: expected one of {', '.join(DATABASE_TYPES)}")
        if mode not in DATABASE_MODES:
            raise ValueError(f"database mode {mode!r} is invalid: expected one of {', '.join(DATABASE_MODES)}")
        if mode == "MANAGED" and backups:
            raise ValueError("a MANAGED database has no backup list: pass backups=0")
        with self._lock:
            shape = TimelineShape(
                count=backups,
                interval=interval,
                last=_require_utc(end) if end is not None else self.now - _DEFAULT_TIMELINE_LAG,
                in_progress=in_progress,
                without_updated_at=without_updated_at,
                without_steps=without_steps,
                error_fraction=error_fraction,
            )
            environment = self._environments[environment_id]
            database = Database(
                id=random_uuid(self._rng),
                name=name or f"database-{len(self._databases) + 1}",
                type=type,
                version=version or DEFAULT_VERSIONS[type],
                mode=mode,
                environment_id=environment.id,
                project_id=environment.project_id,
                organization_id=environment.organization_id,
                created_at=self._created_before_now(370),
            )
            self._databases[database.id] = database
            if database.serves_backups:
                self._backups[database.id] = []
                for backup in generate_timeline(self._rng, database, shape):
                    self._store(backup)
            return copy.copy(database)

    def _store(self, backup: Backup) -> None:
        self._backups[backup.database_id].append(backup)
        self._database_of_backup[backup.id] = backup.database_id
        self._page_order.pop(backup.database_id, None)

    # ----- mutations -----

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new ``now``."""
        with self._lock:
            self.now = truncate_to_milliseconds(self.now + delta)
            return self.now

    def add_backup(
        self,
        database_id: str,
        outcome: Outcome | str = Outcome.SUCCESS,
        with_updated_at: bool = True,
        with_steps: bool = True,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Create a backup requested at ``at`` (default ``now``) and return it as the API serves it.

        The stored ``updated_at`` is ``created_at`` plus the generated queue and
        run time, so it lies after ``now`` unless the outcome is QUEUED.

        Raises:
            KeyError: If the database does not exist or does not serve backups (MANAGED).
        """
        with self._lock:
            database = self._serving_database(database_id)
            sequence = len(self._backups[database_id]) + 1
            created_at = _require_utc(at) if at is not None else self.now
            backup = new_backup(self._rng, database, created_at, Outcome(outcome), sequence=sequence, manual=True)
            backup.has_updated_at = with_updated_at
            backup.has_steps = with_steps
            self._store(backup)
            return backup.to_api()

    def update_backup(self, backup_id: str, outcome: Outcome | str, at: datetime | None = None) -> dict[str, Any]:
        """Change a backup's outcome as observed at ``at`` (default ``now``) and return it as served.

        The status and steps follow the new outcome and ``updated_at`` becomes
        ``at``, unless the backup is served without ``updated_at``, which stays so.

        Raises:
            KeyError: If no backup has this id.
        """
        with self._lock:
            backup = self._find_backup(backup_id)
            backup.set_outcome(Outcome(outcome), _require_utc(at) if at is not None else self.now)
            return backup.to_api()

    def delete_backup(self, backup_id: str) -> None:
        """Delete a backup, so no page serves it any more.

        Raises:
            KeyError: If no backup has this id.
        """
        with self._lock:
            backup = self._find_backup(backup_id)
            self._backups[backup.database_id].remove(backup)
            del self._database_of_backup[backup_id]
            self._page_order.pop(backup.database_id, None)

    def delete_backup_for_restore(self, backup_id: str) -> Backup:
        """Delete a backup like ``delete_backup`` and return its record for ``restore_backup``."""
        with self._lock:
            backup = self._find_backup(backup_id)
            self.delete_backup(backup_id)
            return backup

    def restore_backup(self, backup: Backup) -> None:
        """Serve a deleted backup again, unchanged, as an API that lists it once more would."""
        with self._lock:
            self._serving_database(backup.database_id)
            self._store(backup)

    def remove_database(self, database_id: str) -> None:
        """Delete a database with its backups, so discovery no longer finds it.

        Raises:
            KeyError: If the database does not exist.
        """
        with self._lock:
            del self._databases[database_id]
            for backup in self._backups.pop(database_id, []):
                self._database_of_backup.pop(backup.id, None)
            self._page_order.pop(database_id, None)
            self._forbidden.discard(database_id)

    def set_forbidden(self, database_id: str, forbidden: bool = True) -> None:
        """Make the database's backup list return 403 (or serve it again with ``forbidden=False``).

        Raises:
            KeyError: If the database does not exist.
        """
        with self._lock:
            self._databases[database_id]  # noqa: B018 - raises KeyError for an unknown id
            if forbidden:
                self._forbidden.add(database_id)
            else:
                self._forbidden.discard(database_id)

    def _find_backup(self, backup_id: str) -> Backup:
        database_id = self._database_of_backup.get(backup_id)
        if database_id is None:
            raise KeyError(f"backup {backup_id} not found")
        return next(backup for backup in self._backups[database_id] if backup.id == backup_id)

    def _serving_database(self, database_id: str) -> Database:
        database = self._databases.get(database_id)
        if database is None or not database.serves_backups:
            raise KeyError(f"database {database_id} not found or does not serve backups (MANAGED)")
        return database

    # ----- reads -----

    def databases(self) -> list[Database]:
        """Return copies of all databases in creation order, with their environment, project and organization ids."""
        with self._lock:
            return [copy.copy(database) for database in self._databases.values()]

    def backup_database_ids(self) -> list[str]:
        """Return the ids of the databases that serve a backup list (all but MANAGED), in creation order."""
        with self._lock:
            return [database.id for database in self._databases.values() if database.serves_backups]

    def database(self, database_id: str) -> Database | None:
        """Return a copy of the database, or None if it does not exist."""
        with self._lock:
            database = self._databases.get(database_id)
            return copy.copy(database) if database is not None else None

    def is_forbidden(self, database_id: str) -> bool:
        """Return whether the database's backup list returns 403."""
        with self._lock:
            return database_id in self._forbidden

    def backups_of(self, database_id: str) -> list[dict[str, Any]]:
        """Return every backup of a database as the API serves them across all pages.

        The list is newest first by ``created_at``, ties broken by id in
        descending order, and contains new dicts the caller may change.

        Raises:
            KeyError: If the database does not exist or does not serve backups (MANAGED).
        """
        with self._lock:
            self._serving_database(database_id)
            return [backup.to_api() for backup in self._ordered_backups(database_id)]

    def _ordered_backups(self, database_id: str) -> list[Backup]:
        return self._page_order_of(database_id)[0]

    def _page_order_of(self, database_id: str) -> tuple[list[Backup], dict[str, int]]:
        cached = self._page_order.get(database_id)
        if cached is None:
            ordered = sorted(
                self._backups[database_id], key=lambda backup: (backup.created_at, backup.id), reverse=True
            )
            positions: dict[str, int] = {}
            for index, backup in enumerate(ordered):
                positions.setdefault(backup.id, index)
            cached = (ordered, positions)
            self._page_order[database_id] = cached
        return cached

    def backup_page(self, database_id: str, start_id: str | None) -> tuple[int, list[dict[str, Any]]]:
        """Return the page number and the backups of one listDatabaseBackup page.

        Without ``start_id``, the page contains the 20 newest backups. With it, the
        page contains the 20 backups after the one with that id, and its number is
        the 1-based page that follows the page ``start_id`` ends. An unknown
        ``start_id`` returns page 1 with no backups: the simulator's choice,
        because the specification does not say what the API does then.

        Raises:
            KeyError: If the database does not exist or does not serve backups (MANAGED).
        """
        with self._lock:
            self._serving_database(database_id)
            ordered, positions = self._page_order_of(database_id)
            first = 0
            if start_id is not None:
                position = positions.get(start_id)
                if position is None:
                    return 1, []
                first = position + 1
            page = [backup.to_api() for backup in ordered[first : first + PAGE_SIZE]]
            return first // PAGE_SIZE + 1, page

    def organizations(self) -> list[Organization]:
        """Return copies of all organizations in creation order."""
        with self._lock:
            return [copy.copy(organization) for organization in self._organizations.values()]

    def projects(self) -> list[Project]:
        """Return copies of all projects in creation order."""
        with self._lock:
            return [copy.copy(project) for project in self._projects.values()]

    def environments(self) -> list[Environment]:
        """Return copies of all environments in creation order."""
        with self._lock:
            return [copy.copy(environment) for environment in self._environments.values()]

    def summary(self) -> str:
        """Return a one-line description of the world's size and clock, for logs."""
        with self._lock:
            backups = sum(len(backups) for backups in self._backups.values())
            return (
                f"{len(self._organizations)} organizations, {len(self._projects)} projects, "
                f"{len(self._environments)} environments, {len(self._databases)} databases, "
                f"{backups} backups, now={format_timestamp(self.now)}"
            )
