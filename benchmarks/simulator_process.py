"""Serve a generated simulator world from its own process, for the benchmarks.

The measured contenders run in other processes, so the server's CPU time and memory are
not counted in theirs. The server listens on 127.0.0.1 only. It prints one JSON line on
stdout once it listens (`base_url`, `token`, `database_ids`, `backups`, `steps`), then
reads one command per line on stdin and replies to each with one JSON line:

- `counts`: the number of requests received per URL path since the last `reset`;
- `reset`: empty the request log;
- `quit` (or end of input): stop the server and exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime

from qovery_backups.simulator import SimulatorServer, World

TOKEN = "qov_benchmark_token"

# A fixed clock, so that the same seed serves the same data on every run.
WORLD_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", type=int, required=True, help="number of databases")
    parser.add_argument("--backups", type=int, required=True, help="backups per database")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    world = World.generate(
        arguments.seed, WORLD_NOW, databases=arguments.databases, backups_per_database=arguments.backups
    )
    database_ids = world.backup_database_ids()
    steps = sum(
        len((backup["status"].get("steps") or {}).get("details") or [])
        for database_id in database_ids
        for backup in world.backups_of(database_id)
    )
    server = SimulatorServer(world, tokens=[TOKEN], latency=arguments.latency)
    with server:
        _write(
            {
                "base_url": server.base_url,
                "token": TOKEN,
                "database_ids": database_ids,
                "backups": arguments.databases * arguments.backups,
                "steps": steps,
            }
        )
        for line in sys.stdin:
            command = line.strip()
            if command == "counts":
                _write({"by_path": dict(Counter(record.path for record in server.requests))})
            elif command == "reset":
                server.reset_log()
                _write({"reset": True})
            elif command == "quit":
                break
            else:
                _write({"error": f"unknown command {command!r}: use counts, reset or quit"})


def _write(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
