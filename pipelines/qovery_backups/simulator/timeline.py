"""Generation of backups: one backup, or a database's whole timeline.

Every random choice comes from the ``random.Random`` the caller passes, so a
seeded world generates the same backups on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from qovery_backups.simulator.records import Backup, Database, Outcome, random_uuid, truncate_to_milliseconds

# Upper bound of the jitter that moves each generated backup earlier than its slot.
_MAX_JITTER = timedelta(minutes=10)


@dataclass(frozen=True)
class TimelineShape:
    """The shape of a generated timeline.

    Attributes:
        count: Number of backups.
        interval: Time between two consecutive scheduled backups.
        last: Slot of the newest backup. Each backup is created up to a tenth of
            ``interval`` (at most 10 minutes) before its slot.
        in_progress: Number of newest backups that are unfinished, 0 to 2. With 1,
            the newest is ONGOING. With 2, the newest is QUEUED and the one
            before is an ONGOING backup that a user requested 11 to 20 minutes
            (at most half of ``interval``) before the newest slot.
        without_updated_at: Fraction of the finished backups served without ``updated_at``.
        without_steps: Fraction of the finished backups served without ``status.steps``.
        error_fraction: Fraction of the finished backups that end in ERROR.
    """

    count: int
    interval: timedelta
    last: datetime
    in_progress: int = 0
    without_updated_at: float = 0.0
    without_steps: float = 0.0
    error_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"backups={self.count} is invalid: expected 0 or more")
        if not 0 <= self.in_progress <= min(2, self.count):
            raise ValueError(
                f"in_progress={self.in_progress} is invalid: expected 0 to 2 and at most backups={self.count}"
            )
        if self.interval <= timedelta(0):
            raise ValueError(f"interval={self.interval} is invalid: expected a positive duration")
        for name in ("without_updated_at", "without_steps", "error_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} is invalid: expected a fraction between 0 and 1")


def new_backup(
    rng: random.Random,
    database: Database,
    created_at: datetime,
    outcome: Outcome,
    *,
    sequence: int,
    manual: bool,
) -> Backup:
    """Create a backup with random queue and run times that fit its outcome.

    Args:
        rng: Source of the id and the durations.
        database: The database the backup belongs to.
        created_at: Creation time, truncated to milliseconds.
        outcome: The backup's outcome. An unfinished backup has no run time yet.
        sequence: Number of the backup in its database, part of ``execution_id``.
        manual: Whether a user requested the backup, which gives it a ``deployment_request_id``.
    """
    backup_id = random_uuid(rng)
    created_at = truncate_to_milliseconds(created_at)
    queue_seconds = 0 if outcome is Outcome.QUEUED else rng.randint(1, 30)
    if outcome is Outcome.SUCCESS:
        run_seconds = rng.randint(20, 900)
    elif outcome is Outcome.ERROR:
        run_seconds = rng.randint(5, 120)
    else:
        run_seconds = 0
    backup = Backup(
        id=backup_id,
        database_id=database.id,
        name=f"{database.name}-{created_at.strftime('%Y%m%d-%H%M%S')}",
        message="Backup requested by a user" if manual else "Scheduled backup",
        created_at=created_at,
        updated_at=created_at,
        outcome=outcome,
        queue_seconds=queue_seconds,
        run_seconds=run_seconds,
        execution_id=f"{database.id}-{sequence}-{int(created_at.timestamp())}",
        deployment_request_id=random_uuid(rng) if manual else None,
    )
    backup.updated_at = backup.finished_at()
    return backup


def generate_timeline(rng: random.Random, database: Database, shape: TimelineShape) -> list[Backup]:
    """Create a database's backups, oldest first, following ``shape``.

    The fractions of ``shape`` pick exact numbers of finished backups (the
    fraction times their count, rounded), drawn independently, so one backup
    may both end in ERROR and lack ``updated_at``.
    """
    max_jitter_ms = int(min(shape.interval / 10, _MAX_JITTER).total_seconds() * 1000)
    backups: list[Backup] = []
    for age in range(shape.count - 1, -1, -1):
        jitter_ms = rng.randint(0, max_jitter_ms)
        # Half of the backups are created on a whole second, so their timestamps have no fraction.
        if rng.random() < 0.5:
            jitter_ms -= jitter_ms % 1000
        created_at = shape.last - age * shape.interval - timedelta(milliseconds=jitter_ms)
        manual = False
        if age >= shape.in_progress:
            outcome = Outcome.SUCCESS
        elif shape.in_progress == 2 and age == 1:
            outcome = Outcome.ONGOING
            manual = True
            created_at = shape.last - min(shape.interval / 2, timedelta(minutes=rng.randint(11, 20)))
        elif shape.in_progress == 2:
            outcome = Outcome.QUEUED
        else:
            outcome = Outcome.ONGOING
        backups.append(new_backup(rng, database, created_at, outcome, sequence=len(backups) + 1, manual=manual))

    finished = [backup for backup in backups if backup.outcome.is_finished]
    for backup in _sample(rng, finished, shape.error_fraction):
        backup.outcome = Outcome.ERROR
        backup.run_seconds = rng.randint(5, 120)
        backup.updated_at = backup.finished_at()
    for backup in _sample(rng, finished, shape.without_updated_at):
        backup.has_updated_at = False
    for backup in _sample(rng, finished, shape.without_steps):
        backup.has_steps = False
    return backups


def _sample(rng: random.Random, backups: list[Backup], fraction: float) -> list[Backup]:
    return rng.sample(backups, round(fraction * len(backups)))
