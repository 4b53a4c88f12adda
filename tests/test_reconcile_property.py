"""A stateful property test: random API changes and runs, checked against the simulator.

After every full scan the tables equal the API's truth, with the backups it stopped listing
kept and marked deleted. After every incremental run, every backup created inside the
lookback window is exact. CI runs a fixed seed and few examples; for a longer local run:

    QOVERY_PROPERTY_EXAMPLES=200 .venv/bin/python -m pytest tests/test_reconcile_property.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import (
    NOW,
    TOKEN,
    assert_tables_match,
    expected_backup_rows,
    loaded_backup_rows,
    make_pipeline,
    run,
)
from qovery_backups.simulator import SimulatorServer, World
from qovery_backups.timeutil import parse_timestamp

LOOKBACK = timedelta(hours=6)
EXAMPLES = int(os.environ.get("QOVERY_PROPERTY_EXAMPLES", "6"))
OUTCOMES = st.sampled_from(["SUCCESS", "ERROR", "ONGOING", "QUEUED"])


class BackupHistory(RuleBasedStateMachine):
    """The simulator's world is the model; the DuckDB tables are the system under test."""

    @initialize()
    def start(self):
        self.folder = Path(tempfile.mkdtemp(prefix="qovery-property-"))
        self.world = World(seed=41, now=NOW)
        organization = self.world.add_organization("Property")
        project = self.world.add_project(organization.id, "main")
        self.environment = self.world.add_environment(project.id, "production", "PRODUCTION")
        self.world.add_database(
            self.environment.id, backups=25, interval=timedelta(hours=3), without_updated_at=0.1
        )
        self.world.add_database(self.environment.id, backups=8, interval=timedelta(days=1))
        self.server = SimulatorServer(self.world, tokens=(TOKEN,)).start()
        self.pipeline = make_pipeline(self.folder)
        self.loaded_ids: set[str] = set()
        self.ran = False

    def teardown(self):
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def ids(self) -> list[str]:
        return self.world.backup_database_ids()

    def listed_ids(self) -> set[str]:
        return set(expected_backup_rows(self.world, self.ids()))

    # ----- API changes -----

    @rule(index=st.integers(0, 9), outcome=OUTCOMES, with_updated_at=st.booleans(), hours=st.integers(1, 12))
    def new_backup(self, index, outcome, with_updated_at, hours):
        self.world.advance(timedelta(hours=hours))
        database_id = self.ids()[index % len(self.ids())]
        self.world.add_backup(database_id, outcome=outcome, with_updated_at=with_updated_at)

    @rule(index=st.integers(0, 9), position=st.integers(0, 60), outcome=OUTCOMES)
    def late_change(self, index, position, outcome):
        database_id = self.ids()[index % len(self.ids())]
        history = self.world.backups_of(database_id)
        if history:
            self.world.advance(timedelta(minutes=30))
            self.world.update_backup(history[position % len(history)]["id"], outcome)

    @rule(index=st.integers(0, 9), position=st.integers(0, 60))
    def delete(self, index, position):
        database_id = self.ids()[index % len(self.ids())]
        history = self.world.backups_of(database_id)
        if len(history) > 1:
            self.world.delete_backup(history[position % len(history)]["id"])

    @rule(backups=st.integers(0, 30))
    def new_database(self, backups):
        if len(self.ids()) < 4:
            self.world.add_database(self.environment.id, backups=backups, interval=timedelta(hours=5))

    # ----- runs -----

    @rule()
    def incremental_run(self):
        cursors = self.cursors()
        result = run(self.pipeline, self.server, database_ids=self.ids(), lookback="6h", full_scan_every="365d")
        assert result.summary.with_outcome("failed") == []
        self.loaded_ids |= {row for row in loaded_backup_rows(self.pipeline)}
        self.ran = True
        self.check_window(cursors)

    @rule()
    def full_scan(self):
        result = run(self.pipeline, self.server, database_ids=self.ids(), lookback="6h", full_scan=True)
        assert result.summary.with_outcome("failed") == []
        deleted = set(loaded_backup_rows(self.pipeline)) - self.listed_ids()
        assert_tables_match(self.pipeline, self.world, self.ids(), deleted=deleted)
        self.ran = True

    # ----- checks -----

    def cursors(self) -> dict[str, str]:
        resources = self.pipeline.state.get("sources", {}).get("qovery", {}).get("resources", {})
        states = resources.get("backups", {}).get("databases", {})
        return {database_id: entry.get("cursor") for database_id, entry in states.items()}

    def check_window(self, cursors_before: dict[str, str]) -> None:
        """Every backup created at or after its database's `cursor - lookback` is exact."""
        loaded = loaded_backup_rows(self.pipeline)
        for database_id in self.ids():
            cursor = parse_timestamp(cursors_before.get(database_id))
            window_start = cursor - LOOKBACK if cursor else None
            expected = expected_backup_rows(self.world, [database_id])
            for backup_id, row in expected.items():
                if window_start is not None and row["created_at"] < window_start:
                    continue
                assert backup_id in loaded, f"backup {backup_id} inside the window is missing"
                differences = {
                    column: (loaded[backup_id].get(column), value)
                    for column, value in row.items()
                    if loaded[backup_id].get(column) != value
                }
                assert differences == {}, f"backup {backup_id} differs: {differences}"

    @precondition(lambda self: self.ran)
    @invariant()
    def no_duplicate_rows(self):
        loaded = loaded_backup_rows(self.pipeline)
        from conftest import query

        rows = query(self.pipeline, "SELECT count(*) FROM backups")
        assert rows == [(len(loaded),)]


BackupHistory.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_backup_history = BackupHistory.TestCase
