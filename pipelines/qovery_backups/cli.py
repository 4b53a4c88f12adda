"""The `qovery-backups` command line: `run` loads backups, `demo` runs offline on the simulator.

Exit codes:
    0: every database loaded (or skipped because the API does not serve its backups).
    1: the run failed and loaded nothing new (invalid token, API or destination failure).
    2: invalid usage or configuration (bad setting, several organizations to choose from).
    3: the run loaded, but the backups of some databases could not be read (403, an unknown
       database id, or failures that outlasted the retries).

`check` reads the loaded tables only and exits 0 when every database is fresh, 1 when some
database is stale, failing or never backed up, and 2 on invalid usage or when there is no
loaded data to check. `run --check MAX_AGE` returns the run's exit code when it is not 0,
else the check's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

import dlt
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
    LookupTraces,
)
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.destinations.exceptions import DatabaseException
from dlt.pipeline.exceptions import PipelineStepFailed

from qovery_backups import settings
from qovery_backups.analytics import DEFAULT_MAX_AGE
from qovery_backups.check import (
    CheckDataError,
    check_freshness,
    format_json,
    format_text,
    parse_as_of,
    parse_max_age,
)
from qovery_backups.client import (
    QoveryAuthenticationError,
    QoveryConfigurationError,
    QoveryError,
)
from qovery_backups.json_output import JsonLogFormatter, summary_document
from qovery_backups.pipeline import RunResult, build_pipeline, run_source
from qovery_backups.summary import OUTCOME_FAILED, OUTCOME_SKIPPED

logger = logging.getLogger("qovery_backups")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the chosen command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        logger.error(
            "Interrupted. Batches of databases already extracted are loaded by the next run, "
            "which reads the remaining databases from their previous cursors."
        )
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader of stdout went away (`qovery-backups run | head`); the run itself is done.
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except UnknownDestinationModule as error:
        logger.error(
            "Unknown destination %r: use a dlt destination name such as duckdb, postgres, "
            "bigquery, snowflake, motherduck or filesystem.",
            error.ref,
        )
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qovery-backups",
        description="Load the backup history of Qovery databases with dlt.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level of the connector (default: INFO)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="format of the log lines on stderr: text, or json for one JSON object per line "
        "with time, level, logger, message and database_id where relevant (default: text)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="load backups from the Qovery API",
        description="Load the backups of the configured databases. The API token is read "
        "from SOURCES__QOVERY__API_TOKEN or [sources.qovery] api_token in .dlt/secrets.toml.",
    )
    run.add_argument(
        "--database-id",
        dest="database_ids",
        action="append",
        metavar="ID",
        help="a database to load (repeat for several); overrides database_ids in config",
    )
    run.add_argument(
        "--organization-id",
        metavar="ID",
        help="discover and load every database of this organization; overrides "
        "organization_id in config",
    )
    run.add_argument(
        "--environment-mode",
        dest="environment_modes",
        action="append",
        metavar="MODE",
        help="with discovery, keep databases of environments in this mode: PRODUCTION, "
        "STAGING, DEVELOPMENT or PREVIEW (repeat for several)",
    )
    run.add_argument(
        "--project",
        dest="project_names",
        action="append",
        metavar="NAME",
        help="with discovery, keep databases of this project (repeat for several)",
    )
    run.add_argument(
        "--database-type",
        dest="database_types",
        action="append",
        metavar="TYPE",
        help="with discovery, keep databases of this type: POSTGRESQL, MYSQL, MONGODB or "
        "REDIS (repeat for several)",
    )
    run.add_argument("--base-url", help=f"API root URL (default: {settings.DEFAULT_BASE_URL})")
    run.add_argument(
        "--lookback",
        help="how far before each database's cursor to load backups again, e.g. 6h, 90m, 2d "
        f"(default: {settings.DEFAULT_LOOKBACK})",
    )
    add_pipeline_arguments(run)
    run.add_argument(
        "--full-scan",
        action="store_true",
        help="read every database's whole history in this run, to merge late changes to old "
        "backups and mark deleted ones (otherwise done every full_scan_every, default 7d)",
    )
    run.add_argument(
        "--reset",
        action="store_true",
        help="drop the loaded tables and cursors first and reload every backup",
    )
    run.add_argument(
        "--backups-per-extract",
        type=int,
        metavar="N",
        help="start no further database in a load package once it holds N backups; an "
        f"interrupted run keeps every finished package (default: {settings.BACKUPS_PER_EXTRACT})",
    )
    run.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help=f"databases read at once, sharing the request budget (default: {settings.CONCURRENCY})",
    )
    run.add_argument(
        "--progress",
        choices=["auto", "log", "off"],
        default="auto",
        help="show dlt's progress (rows and load steps) on stderr: auto shows it when stderr "
        "is a terminal (default: %(default)s)",
    )
    run.add_argument(
        "--loader-file-format",
        choices=["parquet", "jsonl", "csv"],
        help="format of the files dlt writes, e.g. parquet for the filesystem destination "
        "(default: the destination's preferred format)",
    )
    run.add_argument(
        "--summary-format",
        default="text",
        choices=["text", "json"],
        help="format of the run summary on stdout: text, or json for one JSON object with "
        "requests, rows per table and each database's outcome (default: text)",
    )
    run.add_argument(
        "--check",
        type=parse_max_age,
        metavar="MAX_AGE",
        help="after the run, check backup freshness like the check command with this max "
        "age (e.g. 26h), narrowed by --environment-mode and --project",
    )
    run.set_defaults(handler=command_run)

    demo = commands.add_parser(
        "demo",
        help="load a simulated organization into DuckDB, offline",
        description="Start the bundled Qovery API simulator on 127.0.0.1, load its backups "
        "into DuckDB twice (a backfill, then an incremental run after simulated changes) and "
        "print what was loaded. Needs no token and no network.",
    )
    demo.add_argument(
        "--duckdb-file",
        default="qovery_backups_demo.duckdb",
        help="DuckDB file to load into (default: %(default)s, in the working directory)",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the simulated data")
    demo.set_defaults(handler=command_demo)

    check = commands.add_parser(
        "check",
        help="list databases without a recent successful backup, from the loaded tables",
        description="Read the loaded tables (no API call) and list the databases whose last "
        "successful backup is older than the max age, that never had one, or whose latest "
        "finished backup failed. Exit code 0: all fresh, 1: some need attention, 2: invalid "
        "usage or no loaded data.",
    )
    check.add_argument(
        "--max-age",
        type=parse_max_age,
        default=DEFAULT_MAX_AGE,
        metavar="DURATION",
        help="how old the last successful backup may be, e.g. 90m, 26h, 2d (default: 26h)",
    )
    check.add_argument(
        "--environment-mode",
        dest="environment_modes",
        action="append",
        metavar="MODE",
        help="check only databases of environments in this mode, e.g. PRODUCTION (repeat "
        "for several)",
    )
    check.add_argument(
        "--project",
        dest="project_names",
        action="append",
        metavar="NAME",
        help="check only databases of this project (repeat for several)",
    )
    check.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="output format (default: %(default)s)",
    )
    check.add_argument(
        "--as-of",
        type=parse_as_of,
        metavar="TIMESTAMP",
        help="measure ages from this ISO 8601 time instead of now, e.g. 2026-11-20T06:00:00Z",
    )
    add_pipeline_arguments(check)
    check.set_defaults(handler=command_check)
    return parser


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--destination",
        default=settings.DESTINATION,
        help="dlt destination name, e.g. duckdb, postgres, bigquery (default: %(default)s)",
    )
    parser.add_argument(
        "--dataset-name",
        default=settings.DATASET_NAME,
        help="dataset (schema) to load into (default: %(default)s)",
    )
    parser.add_argument(
        "--pipeline-name",
        default=settings.PIPELINE_NAME,
        help="dlt pipeline name; it also names the DuckDB file (default: %(default)s)",
    )


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
        # Python warnings would otherwise reach stderr as plain text between the JSON lines.
        logging.captureWarnings(True)
        # dlt logs through its own handler and format; route it through the JSON handler.
        dlt_logger = logging.getLogger("dlt")
        for dlt_handler in list(dlt_logger.handlers):
            dlt_logger.removeHandler(dlt_handler)
        dlt_logger.propagate = True
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("qovery_backups").setLevel(level)


def command_run(args: argparse.Namespace) -> int:
    names = (
        "organization_id",
        "database_ids",
        "environment_modes",
        "project_names",
        "database_types",
        "base_url",
        "lookback",
        "loader_file_format",
        "full_scan",
        "concurrency",
    )
    options = {name: getattr(args, name) for name in names if getattr(args, name) not in (None, False, [])}
    pipeline = build_pipeline(
        args.pipeline_name,
        destination_for(args.destination, args.pipeline_name),
        args.dataset_name,
        progress=progress_collector(args.progress),
    )
    if args.backups_per_extract is not None:
        if args.backups_per_extract < 1:
            return fail_configuration("--backups-per-extract must be at least 1.")
        options["backups_per_extract"] = args.backups_per_extract
    code = execute(pipeline, reset=args.reset, summary_format=args.summary_format, **options)
    if args.check is None or code == EXIT_USAGE:
        return code
    check_code = print_freshness(pipeline, args.check, args)
    return code if code != EXIT_OK else check_code


def progress_collector(choice: str) -> str | None:
    """Map --progress to a dlt collector name: `log` prints progress lines to stderr."""
    if choice == "log" or (choice == "auto" and sys.stderr.isatty()):
        return "log"
    return None


def destination_for(name: str, pipeline_name: str):
    """Return the destination to build, placing a DuckDB file in the working directory.

    dlt would otherwise keep using the folder of the pipeline's first run. A DuckDB path set
    in dlt's configuration (`DESTINATION__DUCKDB__CREDENTIALS`) still wins.
    """
    if name != "duckdb":
        return name
    configured = dlt.config.get("destination.duckdb.credentials") or dlt.secrets.get(
        "destination.duckdb.credentials"
    )
    if configured:
        return name
    return dlt.destinations.duckdb(os.path.abspath(f"{pipeline_name}.duckdb"))


def command_check(args: argparse.Namespace) -> int:
    pipeline = build_pipeline(
        args.pipeline_name, destination_for(args.destination, args.pipeline_name), args.dataset_name
    )
    return print_freshness(pipeline, args.max_age, args)


def print_freshness(pipeline, max_age, args: argparse.Namespace) -> int:
    """Check the loaded backups' freshness, print the report and return the check's exit code."""
    try:
        report = check_freshness(
            pipeline,
            max_age,
            now=getattr(args, "as_of", None),
            environment_modes=args.environment_modes,
            project_names=args.project_names,
        )
    except CheckDataError as error:
        logger.error("%s", error)
        return EXIT_USAGE
    except DatabaseException as error:
        logger.error(
            "Could not read the loaded tables: %s. If another process holds the DuckDB file, "
            "close it and run the check again.",
            error,
        )
        return EXIT_USAGE
    output_format = getattr(args, "format", "text")
    print(format_json(report) if output_format == "json" else format_text(report))
    return report.exit_code


def command_demo(args: argparse.Namespace) -> int:
    from qovery_backups.demo import run_demo

    return run_demo(duckdb_file=args.duckdb_file, seed=args.seed)


def execute(
    pipeline, reset: bool = False, title: str = "Run", summary_format: str = "text", **options
) -> int:
    """Run the source once, print its summary (text or one JSON object) and return the exit code.

    On a failed run (exit code 1 or 2) nothing is printed and the logs describe the failure.
    """
    try:
        result = run_source(pipeline, reset=reset, **options)
    except ConfigFieldMissingException as error:
        return fail_configuration(missing_setting_message(error))
    except ConfigValueCannotBeCoercedException as error:
        return fail_configuration(
            f"Invalid configuration value for {error.field_name}: {error.field_value!r} is not "
            f"a {getattr(error.hint, '__name__', error.hint)}. Lists in env variables are JSON, "
            """for example SOURCES__QOVERY__DATABASE_IDS='["<id>", "<id>"]'."""
        )
    except QoveryConfigurationError as error:
        return fail_configuration(str(error))
    except PipelineStepFailed as error:
        return report_failure(error)
    except QoveryError as error:
        return report_failure(error)
    code = EXIT_PARTIAL if result.summary.with_outcome(OUTCOME_FAILED) else EXIT_OK
    if summary_format == "json":
        print(json.dumps(summary_document(result, pipeline, title, code), default=str))
    else:
        print_summary(result, pipeline, title)
    return code


def fail_configuration(message: str) -> int:
    logger.error("%s", message)
    return EXIT_USAGE


def missing_setting_message(error: ConfigFieldMissingException) -> str:
    destination_keys = missing_destination_keys(error.traces)
    if destination_keys:
        destination = destination_keys[0].split("__")[1].lower()
        return (
            f"Missing credentials for destination {destination}. Set "
            f"{', '.join(destination_keys)}, or the same keys under "
            f"[destination.{destination}.credentials] in .dlt/secrets.toml. "
            "docs/destinations.md lists the keys of each destination."
        )
    fields = ", ".join(error.fields)
    if "api_token" in error.fields:
        return (
            "Missing the Qovery API token. Set SOURCES__QOVERY__API_TOKEN, or api_token under "
            "[sources.qovery] in .dlt/secrets.toml. Create a token in the Qovery console "
            "(Organization settings > API tokens)."
        )
    return f"Missing configuration: {fields}. {error}"


def missing_destination_keys(traces: dict) -> list[str]:
    """Return the env variable of each missing destination setting, [] for other settings.

    A setting with alternative specs (BigQuery takes a service account or OAuth) lists the
    keys of the first alternative.
    """
    keys: list[str] = []
    for field_traces in traces.values():
        nested = [trace for trace in field_traces if isinstance(trace, LookupTraces)]
        if nested:
            keys.extend(missing_destination_keys(nested[0].traces))
            continue
        env_keys = [
            trace.key for trace in field_traces if str(trace.key).startswith("DESTINATION__")
        ]
        if env_keys:
            keys.append(env_keys[0])
    return keys


def report_failure(error: BaseException) -> int:
    missing = find_cause(error, ConfigFieldMissingException)
    if missing is not None:
        return fail_configuration(missing_setting_message(missing))
    cause = find_cause(error, QoveryError)
    if isinstance(cause, QoveryConfigurationError):
        return fail_configuration(str(cause))
    if isinstance(cause, QoveryAuthenticationError):
        logger.error("Run failed: %s", cause)
    elif cause is not None:
        logger.error("Run failed: %s", cause)
    else:
        logger.error("Run failed: %s", error)
    logger.error(
        "Any batch of databases extracted before the failure is loaded by the next run; the "
        "other databases are read again from their previous cursors."
    )
    return EXIT_FAILED


def find_cause(error: BaseException, kind: type) -> BaseException | None:
    """Return the first exception of `kind` in the chain of causes of `error`."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def print_summary(result: RunResult, pipeline, title: str = "Run") -> None:
    summary = result.summary
    stats = summary.requests
    lines = [f"{title} finished: pipeline {pipeline.pipeline_name}, dataset {pipeline.dataset_name}"]
    categories = ", ".join(
        f"{category} {count}" for category, count in sorted(stats.by_category.items())
    )
    lines.append(
        f"  requests: {stats.requests} ({categories or 'none'}; {stats.retries} retries, "
        f"{stats.waited_seconds:.1f} s waiting before retries, "
        f"{stats.paced_seconds:.1f} s paced to the request budget)"
    )
    if result.row_counts:
        counts = ", ".join(f"{table}={count}" for table, count in sorted(result.row_counts.items()))
        lines.append(f"  rows loaded: {counts}")
    else:
        lines.append("  rows loaded: none (nothing new or changed)")
    for report in summary.databases.values():
        lines.append(
            f"  database {summary.label(report)}: {report.outcome}, "
            f"{'full scan, ' if report.full_scan else ''}{report.pages} pages, "
            f"{report.rows} backups, stopped on {report.stop_reason or '-'}"
            + (f", {report.marked_deleted} newly marked deleted" if report.marked_deleted else "")
        )
    for report in summary.with_outcome(OUTCOME_SKIPPED):
        lines.append(f"  skipped {summary.label(report)}: {report.message}")
    for report in summary.with_outcome(OUTCOME_FAILED):
        lines.append(f"  FAILED {summary.label(report)}: {report.message}")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
