"""Benchmark the connector against dlt's rest_api source and a hand-written floor.

    .venv/bin/python benchmarks/run_benchmarks.py --databases 20 --backups 1000 --latency 0.05

The simulator serves a generated world from its own process on 127.0.0.1. Each contender
then runs in a fresh process on the same data: a backfill into an empty DuckDB file, and,
for the two dlt contenders, a second run with nothing changed. For each run the script
reports the wall time of the load, the peak RSS of the process, the requests the simulator
received and the rows read back from the DuckDB file, with ratios to the floor's backfill.
Results go to stdout as a Markdown table and, with `--json`, to a file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contenders import TABLES
from harness import Measurement, SimulatorProcess, machine_description, run_contender

DLT_CONTENDERS = ("ours", "rest_api", "rest_api_parallel", "arrow_prototype")

# Contenders that keep state, and so get a second run with nothing changed.
STATEFUL_CONTENDERS = ("ours", "rest_api", "rest_api_parallel")

# The backfill may take 1.5 times the floor's wall time, and a run may peak at 300 MB.
MAX_BACKFILL_RATIO = 1.5
MAX_RSS_MB = 300.0

# With latency, the wall time may be 1.3 times the requests' latency divided by the concurrency.
LATENCY_SLACK = 1.3


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure wall time, peak RSS, requests and rows of several ways to load the "
        "simulated backup history into DuckDB."
    )
    parser.add_argument("--databases", type=int, default=20, help="number of databases (default: 20)")
    parser.add_argument("--backups", type=int, default=1000, help="backups per database (default: 1000)")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds the simulator waits before each response (default: 0)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (default: 1)")

    parser.add_argument(
        "--contenders",
        default="ours,rest_api,floor",
        help="comma-separated contenders among ours, rest_api, rest_api_parallel, floor, "
        "arrow_prototype (default: ours,rest_api,floor)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each contender; the table shows medians (default: 1)"
    )

    parser.add_argument(
        "--loader-file-format",
        default=None,
        help="dlt contenders: insert_values, jsonl or parquet (default: DuckDB's preferred, insert_values)",
    )
    parser.add_argument(
        "--databases-per-extract", type=int, default=None, help="ours: databases per load package"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="dlt contenders: an environment variable such as DATA_WRITER__BUFFER_MAX_ITEMS=5000; repeatable",
    )
    parser.add_argument(
        "--source-option",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="ours: an extra keyword argument of run_source, its value as JSON; repeatable",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="requests ours sends at once, for the latency target (default: 1, sequential)",
    )

    parser.add_argument(
        "--profile", type=Path, default=None, help="after the runs, profile one backfill of ours into this text file"
    )
    parser.add_argument("--json", type=Path, default=None, help="write every measurement to this JSON file")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="keep the DuckDB files here (default: a temporary directory)"
    )

    arguments = parser.parse_args(argv)
    arguments.contenders = [name.strip() for name in arguments.contenders.split(",") if name.strip()]
    unknown = [name for name in arguments.contenders if name not in TABLES]
    if unknown:
        parser.error(f"unknown contender {unknown[0]!r}: choose among {', '.join(sorted(TABLES))}")
    if arguments.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {arguments.repeat}")
    for setting in arguments.env:
        if "=" not in setting:
            parser.error(f"invalid --env {setting!r}: use NAME=VALUE")
    return arguments


def contender_arguments(arguments: argparse.Namespace, contender: str) -> tuple[list[str], dict[str, str]]:
    """Return the command-line arguments and environment of one contender's process."""
    extra: list[str] = []
    env: dict[str, str] = {}
    if contender in DLT_CONTENDERS:
        if arguments.loader_file_format:
            extra.append(f"--loader-file-format={arguments.loader_file_format}")
        env = dict(setting.split("=", 1) for setting in arguments.env)
    if contender == "ours":
        if arguments.databases_per_extract is not None:
            extra.append(f"--databases-per-extract={arguments.databases_per_extract}")
        extra.extend(f"--source-option={option}" for option in arguments.source_option)
    return extra, env


def run_all(arguments: argparse.Namespace, simulator: SimulatorProcess, root: Path) -> list[Measurement]:
    """Run every contender `repeat` times, alternating contenders so drift hits all alike."""
    measurements = []
    for repetition in range(arguments.repeat):
        for contender in arguments.contenders:
            work_dir = root / f"run{repetition}" / contender
            extra, env = contender_arguments(arguments, contender)
            phases = ("backfill", "incremental") if contender in STATEFUL_CONTENDERS else ("backfill",)
            for phase in phases:
                measurement = run_contender(
                    contender, phase, simulator, work_dir, TABLES[contender], extra, env
                )
                print(
                    f"  {contender:<17} {phase:<11} {measurement.seconds:7.2f} s  "
                    f"{measurement.max_rss_mb:6.0f} MB  {measurement.backup_requests} requests",
                    file=sys.stderr,
                    flush=True,
                )
                measurements.append(measurement)
    return measurements


def summarize(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Return one row per contender and phase, with the median time and RSS over repetitions."""
    groups: dict[tuple[str, str], list[Measurement]] = defaultdict(list)
    for measurement in measurements:
        groups[(measurement.contender, measurement.phase)].append(measurement)
    rows = []
    for (contender, phase), group in groups.items():
        first = group[0]
        rows.append(
            {
                "contender": contender,
                "phase": phase,
                "runs": len(group),
                "seconds": statistics.median(m.seconds for m in group),
                "process_seconds": statistics.median(m.process_seconds for m in group),
                "max_rss_mb": statistics.median(m.max_rss_mb for m in group),
                "backup_requests": first.backup_requests,
                "requests_per_database": (min(first.requests_per_database), max(first.requests_per_database)),
                "other_requests": first.other_requests,
                "backups_rows": first.backups_rows,
                "steps_rows": first.steps_rows,
            }
        )
    return rows


def markdown_table(rows: list[dict[str, Any]], latency: float) -> str:
    floor = next((row for row in rows if row["contender"] == "floor" and row["phase"] == "backfill"), None)
    header = [
        "contender",
        "run",
        "wall s",
        "× floor",
        "process s",
        "peak RSS MB",
        "× floor",
        "backup requests",
        "per database",
        "backups",
        "step rows",
    ]
    if latency:
        header += ["requests × latency s", "effective concurrency"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        low, high = row["requests_per_database"]
        cells = [
            row["contender"],
            row["phase"],
            f"{row['seconds']:.2f}",
            f"{row['seconds'] / floor['seconds']:.2f}" if floor else "—",
            f"{row['process_seconds']:.2f}",
            f"{row['max_rss_mb']:.0f}",
            f"{row['max_rss_mb'] / floor['max_rss_mb']:.2f}" if floor else "—",
            str(row["backup_requests"]),
            str(low) if low == high else f"{low}–{high}",
            str(row["backups_rows"]),
            str(row["steps_rows"]),
        ]
        if latency:
            request_time = row["backup_requests"] * latency
            cells += [f"{request_time:.1f}", f"{request_time / row['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_targets(
    rows: list[dict[str, Any]], arguments: argparse.Namespace, expected_backups: int, expected_steps: int
) -> list[str]:
    """Return one line per target of ours: met or missed, with the measured value."""
    by_key = {(row["contender"], row["phase"]): row for row in rows}
    ours_backfill = by_key.get(("ours", "backfill"))
    ours_incremental = by_key.get(("ours", "incremental"))
    floor = by_key.get(("floor", "backfill"))
    lines = []

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    for row in rows:
        if row["phase"] == "backfill" and (row["backups_rows"], row["steps_rows"]) != (expected_backups, expected_steps):
            lines.append(
                f"MISSED {row['contender']} loaded {row['backups_rows']} backups and {row['steps_rows']} "
                f"step rows; the simulator serves {expected_backups} and {expected_steps}"
            )
    if ours_backfill is None:
        return lines
    full_read = arguments.backups // 20 + 1
    low, high = ours_backfill["requests_per_database"]
    lines.append(f"{verdict(low == high == full_read)} backfill requests per database: {low}–{high}, target {full_read}")
    if ours_incremental is not None:
        low, high = ours_incremental["requests_per_database"]
        lines.append(f"{verdict(low == high == 1)} incremental requests per database: {low}–{high}, target 1")
    peak = max(row["max_rss_mb"] for row in rows if row["contender"] == "ours")
    lines.append(f"{verdict(peak < MAX_RSS_MB)} peak RSS of ours: {peak:.0f} MB, target under {MAX_RSS_MB:.0f} MB")
    if floor is not None and not arguments.latency:
        ratio = ours_backfill["seconds"] / floor["seconds"]
        lines.append(f"{verdict(ratio <= MAX_BACKFILL_RATIO)} backfill wall time: {ratio:.2f} × floor, target {MAX_BACKFILL_RATIO} ×")
    if arguments.latency:
        bound = LATENCY_SLACK * ours_backfill["backup_requests"] * arguments.latency / arguments.concurrency
        lines.append(
            f"{verdict(ours_backfill['seconds'] <= bound)} backfill under latency: {ours_backfill['seconds']:.1f} s, "
            f"target {bound:.1f} s ({LATENCY_SLACK} × {ours_backfill['backup_requests']} requests × "
            f"{arguments.latency} s ÷ concurrency {arguments.concurrency})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    command = " ".join([".venv/bin/python", "benchmarks/run_benchmarks.py", *map(shlex.quote, sys.argv[1:])])
    machine = machine_description()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"Starting the simulator: {arguments.databases} databases × {arguments.backups} backups", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="qovery-benchmarks-") as temporary:
        root = arguments.work_dir or Path(temporary)
        with SimulatorProcess(arguments.databases, arguments.backups, arguments.latency, arguments.seed) as simulator:
            expected_backups = simulator.info["backups"]
            expected_steps = simulator.info["steps"]
            measurements = run_all(arguments, simulator, root)
            profile_text = None
            if arguments.profile is not None:
                extra, env = contender_arguments(arguments, "ours")
                extra.append(f"--profile={arguments.profile.resolve()}")
                run_contender("ours", "profile", simulator, root / "profile", TABLES["ours"], extra, env)
                profile_text = arguments.profile.read_text()
    rows = summarize(measurements)
    targets = check_targets(rows, arguments, expected_backups, expected_steps)

    print(f"\n{command}\n{started_at}, {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB")
    print(f"{expected_backups} backups and {expected_steps} step rows served, latency {arguments.latency} s\n")
    print(markdown_table(rows, arguments.latency))
    print()
    print("\n".join(targets))
    if profile_text is not None:
        print(f"\nProfile of one backfill of ours: {arguments.profile}")
    if arguments.json is not None:
        arguments.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "started_at": started_at,
                    "machine": machine,
                    "size": {
                        "databases": arguments.databases,
                        "backups_per_database": arguments.backups,
                        "backups": expected_backups,
                        "steps": expected_steps,
                        "latency": arguments.latency,
                    },
                    "summary": rows,
                    "targets": targets,
                    "measurements": [measurement.as_dict() for measurement in measurements],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
