"""Measure the connector's backfill under dlt settings, each against the same data.

    .venv/bin/python benchmarks/tune.py --databases 20 --backups 1000 --repeat 2

Every variant below is one backfill of `ours` into an empty DuckDB file, in a fresh
process, with the variant's loader file format, `run_source` arguments and dlt
environment variables. The table shows the median wall time and peak RSS of the repeats,
and the ratio of each to the `default` variant.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from contenders import TABLES
from harness import SimulatorProcess, run_contender


@dataclass(frozen=True)
class Variant:
    """One configuration of the connector's run."""

    name: str
    loader_file_format: str | None = None
    databases_per_extract: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    def arguments(self) -> list[str]:
        extra = []
        if self.loader_file_format:
            extra.append(f"--loader-file-format={self.loader_file_format}")
        if self.databases_per_extract is not None:
            extra.append(f"--databases-per-extract={self.databases_per_extract}")
        return extra


PARQUET_NO_COMPRESSION = {"DATA_WRITER__DISABLE_COMPRESSION": "true"}

VARIANTS = [
    Variant("default"),
    Variant("jsonl", "jsonl"),
    Variant("parquet", "parquet"),
    Variant("insert_values, 5000 rows per file", env={"DATA_WRITER__FILE_MAX_ITEMS": "5000"}),
    Variant("parquet, 20 databases per extract", "parquet", 20),
    Variant("parquet, 1 database per extract", "parquet", 1),
    Variant("parquet, uncompressed extract files", "parquet", env=PARQUET_NO_COMPRESSION),
    Variant("parquet, 2 normalize workers", "parquet", env={"NORMALIZE__WORKERS": "2"}),
    Variant("parquet, buffer 100 items", "parquet", env={"DATA_WRITER__BUFFER_MAX_ITEMS": "100"}),
    Variant("parquet, buffer 20000 items", "parquet", env={"DATA_WRITER__BUFFER_MAX_ITEMS": "20000"}),
    Variant(
        "parquet, 20 per extract, uncompressed",
        "parquet",
        20,
        env=PARQUET_NO_COMPRESSION,
    ),
    Variant(
        "parquet, DuckDB memory_limit 256MB",
        "parquet",
        env={"DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": '{"memory_limit": "256MB"}'},
    ),
]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure the connector's backfill under dlt settings.")
    parser.add_argument("--databases", type=int, default=20, help="number of databases (default: 20)")
    parser.add_argument("--backups", type=int, default=1000, help="backups per database (default: 1000)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each response (default: 0)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (default: 1)")
    parser.add_argument("--repeat", type=int, default=2, help="backfills per variant (default: 2)")
    parser.add_argument(
        "--variants",
        default=None,
        help="comma-separated variant numbers to run, from 0 (default: all); --list shows them",
    )
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.list:
        for number, variant in enumerate(VARIANTS):
            print(f"{number}: {variant.name}")
        return 0

    chosen = VARIANTS
    if arguments.variants:
        chosen = [VARIANTS[int(number)] for number in arguments.variants.split(",")]
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="qovery-tuning-") as temporary:
        root = Path(temporary)
        with SimulatorProcess(arguments.databases, arguments.backups, arguments.latency, arguments.seed) as simulator:
            samples: dict[str, list[tuple[float, float]]] = {variant.name: [] for variant in chosen}
            # Variants alternate within each repeat, so that drift on the machine hits all alike.
            for repetition in range(arguments.repeat):
                for number, variant in enumerate(chosen):
                    work_dir = root / f"run{repetition}-{number}"
                    measurement = run_contender(
                        "ours", "backfill", simulator, work_dir, TABLES["ours"], variant.arguments(), variant.env
                    )
                    if measurement.backups_rows != simulator.info["backups"]:
                        raise RuntimeError(
                            f"variant {variant.name!r} loaded {measurement.backups_rows} backups, "
                            f"not {simulator.info['backups']}"
                        )
                    samples[variant.name].append((measurement.seconds, measurement.max_rss_mb))
                    print(
                        f"  {variant.name:<40} {measurement.seconds:6.2f} s {measurement.max_rss_mb:6.0f} MB",
                        file=sys.stderr,
                        flush=True,
                    )
            for name, values in samples.items():
                results[name] = (
                    statistics.median(seconds for seconds, _ in values),
                    statistics.median(rss for _, rss in values),
                )

    baseline = results.get("default")
    print(f"\n{arguments.databases} databases × {arguments.backups} backups, {arguments.repeat} runs each, medians\n")
    print("| variant | wall s | × default | peak RSS MB | × default |")
    print("|---|---|---|---|---|")
    for name, (seconds, rss) in results.items():
        time_ratio = f"{seconds / baseline[0]:.2f}" if baseline else "—"
        rss_ratio = f"{rss / baseline[1]:.2f}" if baseline else "—"
        print(f"| {name} | {seconds:.2f} | {time_ratio} | {rss:.0f} | {rss_ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
