"""Records of a simulated Qovery organization and their JSON rendering.

Each record's ``to_api`` method returns the JSON object that the matching
schema of ``qovery-openapi-excerpt.yaml`` describes (``Organization``,
``Project``, ``Environment``, ``Database`` and ``Backup``). Fields that the
schemas mark optional are left out where the real API is expected to leave
them out, so that a connector meets the same gaps here.
"""

from __future__ import annotations

import enum
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Default versions and ports per DatabaseTypeEnum value.
DEFAULT_VERSIONS = {"POSTGRESQL": "16", "MYSQL": "8.0", "MONGODB": "7.0", "REDIS": "7"}
DEFAULT_PORTS = {"POSTGRESQL": 5432, "MYSQL": 3306, "MONGODB": 27017, "REDIS": 6379}
DATABASE_TYPES = tuple(DEFAULT_VERSIONS)
DATABASE_MODES = ("CONTAINER", "MANAGED")
ENVIRONMENT_MODES = ("DEVELOPMENT", "PREVIEW", "PRODUCTION", "STAGING")


class Outcome(enum.StrEnum):
    """Outcome of a backup, rendered as the ServiceActionStatusEnum value of ``status_details.status``."""

    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    ONGOING = "ONGOING"
    QUEUED = "QUEUED"

    @property
    def is_finished(self) -> bool:
        """Whether the backup has ended, so its ``steps.total_duration_sec`` is an integer, not null."""
        return self in (Outcome.SUCCESS, Outcome.ERROR)


# NOTE: the specification does not say which StateEnum and ServiceDeploymentStatusEnum
# values a backup's status carries. These pairs are the simulator's choice.
_STATE_BY_OUTCOME = {
    Outcome.SUCCESS: ("DEPLOYED", "UP_TO_DATE"),
    Outcome.ERROR: ("DEPLOYMENT_ERROR", "OUT_OF_DATE"),
    Outcome.ONGOING: ("DEPLOYING", "OUT_OF_DATE"),
    Outcome.QUEUED: ("DEPLOYMENT_QUEUED", "OUT_OF_DATE"),
}


def format_timestamp(moment: datetime) -> str:
    """Format a timezone-aware datetime as ISO 8601 UTC with a ``Z`` suffix.

    Milliseconds appear only when they are non-zero, as in
    ``2026-11-03T02:00:00.512Z`` next to ``2026-11-03T02:00:00Z``, so the
    served timestamps do not sort correctly as plain strings.
    """
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    milliseconds = moment.microsecond // 1000
    if milliseconds:
        text += f".{milliseconds:03d}"
    return text + "Z"


def truncate_to_milliseconds(moment: datetime) -> datetime:
    """Return the moment in UTC without its sub-millisecond part, the precision the simulator serves."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class Organization:
    """An organization, the root of the discovery tree."""

    id: str
    name: str
    created_at: datetime
    owner: str
    plan: str = "TEAM_2025"

    def to_api(self) -> dict[str, Any]:
        """Render the organization as an ``Organization`` object."""
        return {
            "id": self.id,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.created_at),
            "name": self.name,
            "description": None,
            "plan": self.plan,
            "website_url": None,
            "repository": None,
            "logo_url": None,
            "icon_url": None,
            "admin_emails": None,
            "owner": self.owner,
            "billing_deployment_restriction": None,
            "organization_plan": {"plan": self.plan, "audit_logs_retention_in_days": 30},
        }


@dataclass
class Project:
    """A project of an organization."""

    id: str
    name: str
    organization_id: str
    created_at: datetime

    def to_api(self, environments_count: int) -> dict[str, Any]:
        """Render the project as a ``Project`` object with its current number of environments."""
        return {
            "id": self.id,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.created_at),
            "name": self.name,
            "description": f"Services of {self.name}",
            "associated_environments_count": environments_count,
            "organization": {"id": self.organization_id},
        }


@dataclass
class Environment:
    """An environment of a project, with an EnvironmentModeEnum ``mode``."""

    id: str
    name: str
    mode: str
    project_id: str
    organization_id: str
    cluster_id: str
    last_updated_by: str
    created_at: datetime

    def to_api(self) -> dict[str, Any]:
        """Render the environment as an ``Environment`` object."""
        return {
            "id": self.id,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.created_at),
            "name": self.name,
            "organization": {"id": self.organization_id},
            "project": {"id": self.project_id},
            "last_updated_by": self.last_updated_by,
            "cloud_provider": {"provider": "aws", "cluster": "eu-west-3"},
            "mode": self.mode,
            "cluster_id": self.cluster_id,
            "cluster_name": "simulated-cluster",
            "expires_at": None,
        }


@dataclass
class Database:
    """A database of an environment, with the ids of its environment, project and organization."""

    id: str
    name: str
    type: str
    version: str
    mode: str
    environment_id: str
    project_id: str
    organization_id: str
    created_at: datetime
    accessibility: str = "PRIVATE"
    storage_gb: int = 10

    @property
    def serves_backups(self) -> bool:
        """Whether the backup list is served, which is false for MANAGED databases (404)."""
        return self.mode == "CONTAINER"

    def to_api(self) -> dict[str, Any]:
        """Render the database as a ``Database`` object.

        ``instance_type`` is set only for MANAGED databases. The specification
        states that it is null for container databases but does not mark it nullable,
        so the simulator leaves it out to stay valid.
        """
        short_id = self.id[:8]
        rendered: dict[str, Any] = {
            "id": self.id,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.created_at),
            "name": self.name,
            "description": f"{self.type} database {self.name}",
            "type": self.type,
            "version": self.version,
            "mode": self.mode,
            "accessibility": self.accessibility,
            "cpu": 500,
            "memory": 512,
            "storage": self.storage_gb,
            "annotations_groups": [],
            "labels_groups": [],
            "icon_uri": f"app://qovery-console/{self.type.lower()}",
            "environment": {"id": self.environment_id},
            "host": f"z{short_id}-{self.name}.simulated.invalid",
            "port": DEFAULT_PORTS[self.type],
            "maximum_cpu": 2000,
            "maximum_memory": 4096,
            "disk_encrypted": self.mode == "MANAGED",
            "disk_type": "gp3" if self.mode == "MANAGED" else None,
            "service_type": "DATABASE",
        }
        if self.mode == "MANAGED":
            rendered["instance_type"] = "db.t3.medium"
        return rendered


@dataclass
class Backup:
    """A backup of a database and the timings its status is rendered from.

    ``queue_seconds`` is the time spent queued and ``run_seconds`` the time
    spent running, both whole seconds. ``run_seconds`` is 0 while the backup
    is QUEUED or ONGOING. ``updated_at`` is always stored but rendered only
    when ``has_updated_at`` is true, and ``steps`` only when ``has_steps`` is.
    """

    id: str
    database_id: str
    name: str
    message: str
    created_at: datetime
    updated_at: datetime
    outcome: Outcome
    queue_seconds: int
    run_seconds: int
    execution_id: str
    deployment_request_id: str | None
    has_updated_at: bool = True
    has_steps: bool = True

    def set_outcome(self, outcome: Outcome, at: datetime) -> None:
        """Move the backup to ``outcome`` as observed at ``at``.

        A finished outcome takes its running time from ``at``, rounded down to
        whole seconds. The stored ``updated_at`` becomes ``at`` exactly.
        """
        at = truncate_to_milliseconds(at)
        elapsed = max(0, int((at - self.created_at).total_seconds()))
        self.outcome = outcome
        if outcome is Outcome.QUEUED:
            self.queue_seconds = elapsed
            self.run_seconds = 0
        elif outcome is Outcome.ONGOING:
            self.queue_seconds = min(self.queue_seconds, elapsed)
            self.run_seconds = 0
        else:
            self.queue_seconds = min(self.queue_seconds, elapsed)
            self.run_seconds = elapsed - self.queue_seconds
        self.updated_at = at

    def finished_at(self) -> datetime:
        """Return the moment the backup's last recorded step ended."""
        return self.created_at + timedelta(seconds=self.queue_seconds + self.run_seconds)

    def _steps(self) -> dict[str, Any]:
        details: list[dict[str, Any]] = []
        if self.outcome is not Outcome.QUEUED:
            details.append(
                {"step_name": "DEPLOYMENT_QUEUEING", "status": "SUCCESS", "duration_sec": self.queue_seconds}
            )
        if self.outcome.is_finished:
            details.append(
                {"step_name": "DEPLOYMENT", "status": self.outcome.value, "duration_sec": self.run_seconds}
            )
        total = self.queue_seconds + self.run_seconds if self.outcome.is_finished else None
        return {
            "total_duration_sec": total,
            "total_computing_duration_sec": self.run_seconds,
            "details": details,
        }

    def to_api(self) -> dict[str, Any]:
        """Render the backup as a ``Backup`` object (Base, BackupRequest and ``status``)."""
        state, deployment_status = _STATE_BY_OUTCOME[self.outcome]
        status: dict[str, Any] = {
            "id": self.id,
            "state": state,
            "service_deployment_status": deployment_status,
            "last_deployment_date": format_timestamp(self.created_at),
            "is_part_last_deployment": True,
        }
        if self.has_steps:
            status["steps"] = self._steps()
        status.update(
            {
                "execution_id": self.execution_id,
                "status_details": {"action": "DEPLOY", "status": self.outcome.value, "sub_action": "NONE"},
                "deployment_request_id": self.deployment_request_id,
                "deployment_requests_count": 0 if self.deployment_request_id is None else 1,
            }
        )
        rendered: dict[str, Any] = {"id": self.id, "created_at": format_timestamp(self.created_at)}
        if self.has_updated_at:
            rendered["updated_at"] = format_timestamp(self.updated_at)
        rendered.update({"name": self.name, "message": self.message, "status": status})
        return rendered


def random_uuid(rng: random.Random) -> str:
    """Return a version 4 UUID string drawn from ``rng``, so seeded worlds repeat their ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
