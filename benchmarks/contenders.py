"""Run one contender once, in this process, and print what it did as one JSON line.

The harness starts this script in a fresh process per run, so that the peak RSS the
operating system reports for the process belongs to one contender and one run:

    python benchmarks/contenders.py ours --base-url URL --token TOKEN \\
        --database-ids IDS.json --work-dir DIR

Contenders:
    ours: this project's connector, `run_source(build_pipeline(...))`.
    rest_api: dlt's generic `rest_api` source with a cursor paginator on `startId`, an
        incremental on `updated_at` and one resource per database merged into `backups`.
    rest_api_parallel: the same, with `parallelized: True` on every resource.
    floor: a hand-written loader with no state: one requests session, `startId` paging,
        rows flattened by hand and inserted into DuckDB from Arrow tables.
    arrow_prototype: dlt fed with the floor's hand-flattened rows as Arrow tables, merged on
        `id`: what the connector would cost if it yielded Arrow.

The output line contains `seconds`, the wall time of the load itself, without the time this
process spends importing modules.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

# Tables, per contender, that receive the backups and their steps; the harness counts their rows.
TABLES = {
    "ours": ("qovery.backups", "qovery.backups__status__steps__details"),
    "rest_api": ("rest_api.backups", "rest_api.backups__status__steps__details"),
    "rest_api_parallel": ("rest_api.backups", "rest_api.backups__status__steps__details"),
    "floor": ("floor.backups", "floor.backup_steps"),
    "arrow_prototype": ("arrow.backups", "arrow.backup_steps"),
}

PAGE_SIZE = 20

# The floor and the Arrow prototype stop a database after this many pages, so that a
# misbehaving server cannot make them loop.
MAX_PAGES = 100_000


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one benchmark contender once.")
    parser.add_argument("contender", choices=sorted(TABLES))
    parser.add_argument("--base-url", required=True, help="the simulator's URL")
    parser.add_argument("--token", required=True, help="the simulator's API token")
    parser.add_argument("--database-ids", required=True, type=Path, help="JSON file with a list of ids")
    parser.add_argument(
        "--work-dir", required=True, type=Path, help="directory of the DuckDB file and dlt's pipeline folder"
    )
    parser.add_argument(
        "--loader-file-format",
        default=None,
        help="dlt loader file format (insert_values, jsonl, parquet); default: the destination's",
    )
    parser.add_argument(
        "--databases-per-extract", type=int, default=None, help="ours only: databases per load package"
    )
    parser.add_argument(
        "--source-option",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="ours only: an extra keyword argument of run_source, its value as JSON; repeatable",
    )
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument text profile here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    database_ids = json.loads(arguments.database_ids.read_text())
    # The file name differs from every dataset name, because DuckDB names its catalog after the file.
    duckdb_file = arguments.work_dir / f"benchmark_{arguments.contender}.duckdb"
    # Preparing imports the contender's modules, which the timed load then leaves out.
    load = CONTENDERS[arguments.contender](arguments, database_ids, duckdb_file)

    profiler = None
    if arguments.profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.perf_counter()
    load()
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        arguments.profile.write_text(profiler.output_text(unicode=False, color=False, show_all=True))
    sys.stdout.write(json.dumps({"seconds": seconds, "duckdb_file": str(duckdb_file)}) + "\n")


# ----- ours -----


def prepare_ours(arguments: argparse.Namespace, database_ids: list[str], duckdb_file: Path) -> Callable[[], None]:
    import dlt

    from qovery_backups.pipeline import build_pipeline, run_source

    options: dict[str, Any] = {}
    for option in arguments.source_option:
        name, _, value = option.partition("=")
        options[name] = json.loads(value)
    if arguments.databases_per_extract is not None:
        options["databases_per_extract"] = arguments.databases_per_extract

    def load() -> None:
        pipeline = build_pipeline(
            pipeline_name="benchmark_ours",
            destination=dlt.destinations.duckdb(str(duckdb_file)),
            pipelines_dir=str(arguments.work_dir / "pipelines"),
        )
        run_source(
            pipeline,
            loader_file_format=arguments.loader_file_format,
            api_token=arguments.token,
            base_url=arguments.base_url,
            database_ids=database_ids,
            # The connector paces itself to 900 requests an hour by default, which would
            # measure the pacer. The other contenders do not pace either.
            requests_per_hour=0,
            **options,
        )

    return load


# ----- dlt rest_api -----


def rest_api_config(
    base_url: str, token: str, database_ids: list[str], parallelized: bool
) -> dict[str, Any]:
    """Build the `rest_api` configuration a dlt user would write for the backup list."""
    resources = []
    for number, database_id in enumerate(database_ids):
        resources.append(
            {
                "name": f"backups_{number}",
                "table_name": "backups",
                "endpoint": {
                    "path": f"database/{database_id}/backup",
                    "data_selector": "results",
                    "incremental": {
                        "cursor_path": "updated_at",
                        "initial_value": "1970-01-01T00:00:00Z",
                    },
                },
                "processing_steps": [{"map": _tag_database(database_id)}],
            }
        )
    resource_defaults: dict[str, Any] = {"primary_key": "id", "write_disposition": "merge"}
    if parallelized:
        resource_defaults["parallelized"] = True
    return {
        "client": {
            "base_url": base_url,
            "auth": {
                "type": "api_key",
                "name": "Authorization",
                "api_key": f"Token {token}",
                "location": "header",
            },
            "paginator": {"type": "cursor", "cursor_path": "results[-1].id", "cursor_param": "startId"},
        },
        "resource_defaults": resource_defaults,
        "resources": resources,
    }


def _tag_database(database_id: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def tag(row: dict[str, Any]) -> dict[str, Any]:
        row["database_id"] = database_id
        return row

    return tag


def prepare_rest_api(
    arguments: argparse.Namespace, database_ids: list[str], duckdb_file: Path
) -> Callable[[], None]:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    parallelized = arguments.contender == "rest_api_parallel"

    def load() -> None:
        source = rest_api_source(
            rest_api_config(arguments.base_url, arguments.token, database_ids, parallelized), name="rest_api"
        )
        pipeline = dlt.pipeline(
            pipeline_name=f"benchmark_{arguments.contender}",
            destination=dlt.destinations.duckdb(str(duckdb_file)),
            dataset_name="rest_api",
            pipelines_dir=str(arguments.work_dir / "pipelines"),
        )
        pipeline.run(source, loader_file_format=arguments.loader_file_format)

    return load


# ----- hand-written floor -----

BACKUP_COLUMNS = (
    "id",
    "database_id",
    "name",
    "message",
    "created_at",
    "updated_at",
    "status__id",
    "status__state",
    "status__service_deployment_status",
    "status__last_deployment_date",
    "status__is_part_last_deployment",
    "status__steps__total_duration_sec",
    "status__steps__total_computing_duration_sec",
    "status__execution_id",
    "status__status_details__action",
    "status__status_details__status",
    "status__status_details__sub_action",
    "status__deployment_request_id",
    "status__deployment_requests_count",
)

STEP_COLUMNS = ("backup_id", "position", "step_name", "status", "duration_sec")

FLOOR_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS floor;
CREATE OR REPLACE TABLE floor.backups (
    id TEXT NOT NULL, database_id TEXT NOT NULL, name TEXT, message TEXT,
    created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ,
    status__id TEXT, status__state TEXT, status__service_deployment_status TEXT,
    status__last_deployment_date TIMESTAMPTZ, status__is_part_last_deployment BOOLEAN,
    status__steps__total_duration_sec BIGINT, status__steps__total_computing_duration_sec BIGINT,
    status__execution_id TEXT, status__status_details__action TEXT,
    status__status_details__status TEXT, status__status_details__sub_action TEXT,
    status__deployment_request_id TEXT, status__deployment_requests_count BIGINT
);
CREATE OR REPLACE TABLE floor.backup_steps (
    backup_id TEXT NOT NULL, position INTEGER NOT NULL, step_name TEXT, status TEXT, duration_sec BIGINT
);
"""


def flatten_backup(backup: dict[str, Any], database_id: str, backups: dict[str, list], steps: dict[str, list]) -> None:
    """Append one backup's columns to `backups` and its steps' columns to `steps`."""
    status = backup.get("status") or {}
    step_summary = status.get("steps") or {}
    details = status.get("status_details") or {}
    values = (
        backup["id"],
        database_id,
        backup.get("name"),
        backup.get("message"),
        backup.get("created_at"),
        backup.get("updated_at"),
        status.get("id"),
        status.get("state"),
        status.get("service_deployment_status"),
        status.get("last_deployment_date"),
        status.get("is_part_last_deployment"),
        step_summary.get("total_duration_sec"),
        step_summary.get("total_computing_duration_sec"),
        status.get("execution_id"),
        details.get("action"),
        details.get("status"),
        details.get("sub_action"),
        status.get("deployment_request_id"),
        status.get("deployment_requests_count"),
    )
    for column, value in zip(BACKUP_COLUMNS, values):
        backups[column].append(value)
    for position, step in enumerate(step_summary.get("details") or []):
        steps["backup_id"].append(backup["id"])
        steps["position"].append(position)
        steps["step_name"].append(step.get("step_name"))
        steps["status"].append(step.get("status"))
        steps["duration_sec"].append(step.get("duration_sec"))


def prepare_floor(arguments: argparse.Namespace, database_ids: list[str], duckdb_file: Path) -> Callable[[], None]:
    import duckdb
    import pyarrow as pa
    import requests

    def load() -> None:
        _load_floor(arguments, database_ids, duckdb_file, duckdb, pa, requests)

    return load


def _load_floor(
    arguments: argparse.Namespace, database_ids: list[str], duckdb_file: Path, duckdb: Any, pa: Any, requests: Any
) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {arguments.token}"
    connection = duckdb.connect(str(duckdb_file))
    connection.execute(FLOOR_SCHEMA)
    for database_id in database_ids:
        backups: dict[str, list] = {column: [] for column in BACKUP_COLUMNS}
        steps: dict[str, list] = {column: [] for column in STEP_COLUMNS}
        for page in iterate_pages(session, arguments.base_url, database_id):
            for backup in page:
                flatten_backup(backup, database_id, backups, steps)
        # DuckDB reads the Arrow tables by their Python variable names.
        backups_table = pa.table(backups)  # noqa: F841
        steps_table = pa.table(steps)  # noqa: F841
        connection.execute(
            "INSERT INTO floor.backups SELECT * REPLACE ("
            "CAST(created_at AS TIMESTAMPTZ) AS created_at, "
            "CAST(updated_at AS TIMESTAMPTZ) AS updated_at, "
            "CAST(status__last_deployment_date AS TIMESTAMPTZ) AS status__last_deployment_date"
            ") FROM backups_table"
        )
        connection.execute("INSERT INTO floor.backup_steps SELECT * FROM steps_table")
    connection.close()
    session.close()


def iterate_pages(session: Any, base_url: str, database_id: str) -> Iterator[list[dict[str, Any]]]:
    """Yield one database's backup pages, newest first, until a short or empty page."""
    url = f"{base_url}/database/{database_id}/backup"
    params: dict[str, str] = {}
    for _ in range(MAX_PAGES):
        response = session.get(url, params=params, timeout=30)
        response.raise_for_status()
        results = response.json().get("results") or []
        if results:
            yield results
        if len(results) < PAGE_SIZE:
            return
        params = {"startId": results[-1]["id"]}
    raise RuntimeError(f"database {database_id} still had backups after {MAX_PAGES} pages")


# ----- dlt with hand-flattened Arrow tables -----

TIMESTAMP_COLUMNS = ("created_at", "updated_at", "status__last_deployment_date")

# Backups gathered before they are yielded as one Arrow table.
ARROW_BATCH_ROWS = 1000


def prepare_arrow_prototype(
    arguments: argparse.Namespace, database_ids: list[str], duckdb_file: Path
) -> Callable[[], None]:
    """Prepare dlt fed with Arrow tables that the resource flattens itself.

    This is a prototype of the connector's extraction shape, not a contender a user would
    write: it measures what dlt costs once its JSON normalizer is out of the path. Steps
    go to `backup_steps` with the key (`backup_id`, `position`) and the merge key
    `backup_id`, so that an updated backup's steps are replaced as the connector's nested
    table is.
    """
    import dlt
    import pyarrow as pa
    import pyarrow.compute as pc
    import requests

    def to_arrow(columns: dict[str, list]) -> Any:
        table = pa.table(columns)
        for name in TIMESTAMP_COLUMNS:
            if name in columns:
                index = table.schema.get_field_index(name)
                table = table.set_column(index, name, pc.cast(table[name], pa.timestamp("ms", tz="UTC")))
        return table

    @dlt.resource(name="backups", primary_key="id", write_disposition={"disposition": "merge", "strategy": "delete-insert"})
    def backups() -> Iterator[Any]:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {arguments.token}"
        steps_hints = dlt.mark.make_hints(
            table_name="backup_steps",
            primary_key=["backup_id", "position"],
            merge_key="backup_id",
            write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        )
        for database_id in database_ids:
            batch: dict[str, list] = {column: [] for column in BACKUP_COLUMNS}
            steps: dict[str, list] = {column: [] for column in STEP_COLUMNS}
            for page in iterate_pages(session, arguments.base_url, database_id):
                for backup in page:
                    flatten_backup(backup, database_id, batch, steps)
                if len(batch["id"]) >= ARROW_BATCH_ROWS:
                    yield to_arrow(batch)
                    yield dlt.mark.with_hints(to_arrow(steps), steps_hints, create_table_variant=True)
                    batch = {column: [] for column in BACKUP_COLUMNS}
                    steps = {column: [] for column in STEP_COLUMNS}
            if batch["id"]:
                yield to_arrow(batch)
                yield dlt.mark.with_hints(to_arrow(steps), steps_hints, create_table_variant=True)
        session.close()

    def load() -> None:
        pipeline = dlt.pipeline(
            pipeline_name="benchmark_arrow_prototype",
            destination=dlt.destinations.duckdb(str(duckdb_file)),
            dataset_name="arrow",
            pipelines_dir=str(arguments.work_dir / "pipelines"),
        )
        pipeline.run(backups(), loader_file_format=arguments.loader_file_format)

    return load


# Each contender's preparation imports its modules and returns the load to time.
CONTENDERS: dict[str, Callable[[argparse.Namespace, list[str], Path], Callable[[], None]]] = {
    "ours": prepare_ours,
    "rest_api": prepare_rest_api,
    "rest_api_parallel": prepare_rest_api,
    "floor": prepare_floor,
    "arrow_prototype": prepare_arrow_prototype,
}


if __name__ == "__main__":
    main()
