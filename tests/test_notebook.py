"""The backup history notebook runs top to bottom, and is stored without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "backup_history.ipynb"
KERNEL_NAME = "qovery-backups-test"


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch) -> str:
    """Register a kernel that runs this interpreter, so the notebook imports the venv's packages.

    JUPYTER_PATH is searched before the user's and the system's kernel folders, and the
    kernel's name is unique, so no kernel installed elsewhere can be picked instead.
    """
    kernel_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "qovery-backups venv",
        "language": "python",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # The notebook runs the demo into a tempfile.mkdtemp folder: keep it inside tmp_path.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return KERNEL_NAME


def test_notebook_runs_on_demo_data(venv_kernel, tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=venv_kernel,
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )

    client.execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert [output for output in outputs if output.output_type == "error"] == []
    assert len(images) == 4
    assert (tmp_path / "qovery_backups_demo.duckdb").exists() is False


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]

    assert [cell.outputs for cell in code_cells if cell.outputs] == []
    assert [cell.execution_count for cell in code_cells if cell.execution_count is not None] == []
