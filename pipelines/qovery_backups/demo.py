"""The offline demo: the real pipeline against the bundled simulator, loading into DuckDB."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta, timezone

import dlt

from qovery_backups.cli import EXIT_OK, execute
from qovery_backups.pipeline import build_pipeline
from qovery_backups.simulator import SimulatorServer, World

logger = logging.getLogger(__name__)

DEMO_PIPELINE_NAME = "qovery_backups_demo"

EXAMPLE_QUERY = """
SELECT
    d.environment_mode AS env_mode,
    d.name AS database,
    d.type,
    count(b.id) AS backups,
    count(b.id) FILTER (WHERE b.status__status_details__status = 'ERROR') AS failed,
    max(b.created_at) FILTER (WHERE b.status__status_details__status = 'SUCCESS')
        AS last_success
FROM qovery.databases AS d
LEFT JOIN qovery.backups AS b ON b.database_id = d.id
GROUP BY ALL
ORDER BY env_mode, database
"""


def run_demo(duckdb_file: str, seed: int = 7) -> int:
    """Load the demo organization twice (backfill, then incremental) and print a query's result.

    Between the two runs the simulated clock moves on a day. Every database gets a new backup
    and the backups that were still running finish. The second run therefore shows the
    incremental cursor at work (one request per database) and merges late status changes.
    """
    # The simulated clock starts a day back, so that after the simulated day the data ends
    # at the real present and freshness queries read naturally.
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    world = World.demo(now - timedelta(days=1), seed=seed)
    token = f"qov_demo_{secrets.token_hex(12)}"
    pipeline = build_pipeline(DEMO_PIPELINE_NAME, dlt.destinations.duckdb(duckdb_file))

    with SimulatorServer(world, tokens=(token,)) as server:
        logger.info("Simulator serving %s at %s", world.summary(), server.base_url)
        code = execute(
            pipeline,
            reset=True,
            title="Backfill",
            api_token=token,
            base_url=server.base_url,
        )
        if code != EXIT_OK:
            return code

        unfinished = _advance_one_day(world)
        logger.info(
            "Simulated one day: a new backup on every database, %d running backups finished",
            unfinished,
        )
        code = execute(pipeline, title="Incremental run", api_token=token, base_url=server.base_url)

    print(f"\nLoaded into {duckdb_file}. Example query:{EXAMPLE_QUERY}")
    print(_format_table(*_query(pipeline, EXAMPLE_QUERY)))
    print(
        f"\nExplore it with the duckdb CLI (duckdb {duckdb_file}) or from Python: "
        f"duckdb.connect({duckdb_file!r}).sql('FROM qovery.backups LIMIT 5')"
    )
    return code


def _advance_one_day(world: World) -> int:
    """Finish every running backup and add one new backup per database; return how many finished."""
    finished = 0
    for database_id in world.backup_database_ids():
        for backup in world.backups_of(database_id)[:3]:
            state = (backup.get("status") or {}).get("status_details", {}).get("status")
            if state in ("QUEUED", "ONGOING"):
                world.update_backup(backup["id"], "SUCCESS")
                finished += 1
    world.advance(timedelta(days=1))
    for database_id in world.backup_database_ids():
        world.add_backup(database_id, outcome="SUCCESS")
    return finished


def _query(pipeline: dlt.Pipeline, sql: str) -> tuple[list[str], list[tuple]]:
    with pipeline.sql_client() as client:
        with client.execute_query(sql) as cursor:
            columns = [description[0] for description in cursor.description]
            return columns, cursor.fetchall()


def _format_table(columns: list[str], rows: list[tuple]) -> str:
    cells = [columns] + [["" if value is None else str(value) for value in row] for row in rows]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
