#!/usr/bin/env python3
"""Set up the project's virtual environment and run its demo or its tests.

    python3 tasks.py demo    # load a simulated Qovery organization into DuckDB, offline
    python3 tasks.py test    # run the test suite
    python3 tasks.py setup   # only create or update .venv

Needs nothing but Python 3.11 or newer. The virtual environment lives in `.venv` next to this
file and is reinstalled whenever `pyproject.toml` changes. Extra arguments after `test` go to
pytest, and after `demo` to `qovery-backups demo`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed-pyproject-sha256"


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        sys.stderr.write(f"Python 3.11 or newer is required; this is {sys.version.split()[0]}.\n")
        return 2
    if not argv or argv[0] not in ("demo", "test", "setup"):
        sys.stderr.write(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    ensure_environment()
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false")
    if command == "demo":
        return subprocess.call([str(BIN / "qovery-backups"), "demo", *extra], env=env)
    if command == "test":
        return subprocess.call([str(PYTHON), "-m", "pytest", *extra], cwd=ROOT, env=env)
    return 0


def ensure_environment() -> None:
    """Create `.venv` and install the package with its test extras, unless already current."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return
    if not PYTHON.exists():
        print(f"Creating a virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing qovery-backups and its test dependencies into .venv", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.check_call([*pip, "install", "--upgrade", "pip"])
    subprocess.check_call([*pip, "install", "--editable", f"{ROOT}[test]"])
    STAMP.write_text(digest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
