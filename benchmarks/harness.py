"""Processes behind the benchmarks: the simulator server and one measured run per child.

Each contender run is a fresh child process, waited for with `os.wait4`, whose `ru_maxrss`
is the peak resident set size of that process (on Linux, also of any child it waited for,
such as a normalize worker). Requests are counted on the simulator's request log, which
lives in a separate server process so that the server's CPU and memory stay out of the
measured process.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

BENCHMARKS_DIR = Path(__file__).resolve().parent
CONTENDERS_SCRIPT = BENCHMARKS_DIR / "contenders.py"
SIMULATOR_SCRIPT = BENCHMARKS_DIR / "simulator_process.py"

# Lines of a failed run's stderr shown in the error.
STDERR_TAIL_LINES = 30

PACKAGES = ("dlt", "duckdb", "pyarrow", "requests", "orjson")


class SimulatorProcess:
    """The simulator serving a generated world from a child process, as a context manager."""

    def __init__(self, databases: int, backups: int, latency: float, seed: int) -> None:
        self.command = [
            sys.executable,
            str(SIMULATOR_SCRIPT),
            f"--databases={databases}",
            f"--backups={backups}",
            f"--latency={latency}",
            f"--seed={seed}",
        ]
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> SimulatorProcess:
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        # The first line arrives once the world is generated and the server listens.
        self.info = self._read()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is None:
            return
        try:
            self._send("quit")
        except (BrokenPipeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def base_url(self) -> str:
        return self.info["base_url"]

    @property
    def token(self) -> str:
        return self.info["token"]

    @property
    def database_ids(self) -> list[str]:
        return self.info["database_ids"]

    def reset_log(self) -> None:
        self._send("reset")
        self._read()

    def counts_by_path(self) -> dict[str, int]:
        self._send("counts")
        return self._read()["by_path"]

    def _send(self, command: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator exited with code {self.process.poll()}; its stderr is above")
        return json.loads(line)


@dataclass
class Measurement:
    """Cost and result of one run of one contender: time, memory, requests and rows."""

    contender: str
    phase: str
    seconds: float
    process_seconds: float
    max_rss_mb: float
    backup_requests: int
    other_requests: int
    requests_per_database: list[int]
    backups_rows: int
    steps_rows: int
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_contender(
    contender: str,
    phase: str,
    simulator: SimulatorProcess,
    work_dir: Path,
    tables: tuple[str, str],
    extra_arguments: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Measurement:
    """Run one contender once in a fresh process and measure it.

    Raises:
        RuntimeError: if the child process fails, with the end of its stderr.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    ids_file = work_dir / "database_ids.json"
    ids_file.write_text(json.dumps(simulator.database_ids))
    command = [
        sys.executable,
        str(CONTENDERS_SCRIPT),
        contender,
        f"--base-url={simulator.base_url}",
        f"--token={simulator.token}",
        f"--database-ids={ids_file}",
        f"--work-dir={work_dir}",
        *(extra_arguments or []),
    ]
    child_env = child_environment(env)
    simulator.reset_log()
    stderr_file = work_dir / f"{contender}-{phase}.stderr"
    started = time.perf_counter()
    with stderr_file.open("w") as stderr:
        # The work directory is the child's cwd, so no `.dlt/` folder of the caller applies.
        process = subprocess.Popen(
            command, cwd=work_dir, env=child_env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        assert process.stdout is not None
        output = process.stdout.read()
        _, wait_status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(wait_status)
    process_seconds = time.perf_counter() - started
    if process.returncode != 0:
        error_lines = stderr_file.read_text().splitlines()[-STDERR_TAIL_LINES:]
        raise RuntimeError(
            f"{contender} ({phase}) failed with exit code {process.returncode}; the end of its "
            "stderr follows\n" + "\n".join(error_lines)
        )
    result = json.loads(output.strip().splitlines()[-1])
    by_path = simulator.counts_by_path()
    per_database = [by_path.get(f"/database/{database_id}/backup", 0) for database_id in simulator.database_ids]
    backup_requests = sum(per_database)
    backups_rows, steps_rows = count_rows(Path(result["duckdb_file"]), tables)
    return Measurement(
        contender=contender,
        phase=phase,
        seconds=result["seconds"],
        process_seconds=process_seconds,
        # Linux reports ru_maxrss in kibibytes.
        max_rss_mb=usage.ru_maxrss / 1024,
        backup_requests=backup_requests,
        other_requests=sum(by_path.values()) - backup_requests,
        requests_per_database=per_database,
        backups_rows=backups_rows,
        steps_rows=steps_rows,
    )


def child_environment(overrides: dict[str, str] | None) -> dict[str, str]:
    """Return the environment of a contender process: this one's, without dlt settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SOURCES__", "DESTINATION__", "NORMALIZE__", "DATA_WRITER__", "EXTRACT__", "LOAD__"))
    }
    # dlt's anonymous telemetry would send a request to dlthub's servers after each run.
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["RUNTIME__LOG_LEVEL"] = "WARNING"
    env.update(overrides or {})
    return env


def count_rows(duckdb_file: Path, tables: tuple[str, str]) -> tuple[int, int]:
    """Return the row counts of the backups table and the steps table in a DuckDB file."""
    connection = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        counts = []
        for table in tables:
            counts.append(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        connection.close()
    return counts[0], counts[1]


def machine_description() -> dict[str, Any]:
    """Describe the machine and the software versions, for the results page."""
    cpu_model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }
