"""The notebooks and the ``%load_ext imprun`` magics executed in a real kernel (nbclient) against the
live stack: the kernel is this venv's python with ``platform`` and the repo root on PYTHONPATH."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from tests.fixtures.live_stack import SMALL_BUNDLE, LiveStack

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def execute(notebook: Any, live_stack: LiveStack, workdir: Path) -> Any:
    env = live_stack.env(
        PYTHONPATH=os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
        IMPRUN_CONFIG_DIR=str(workdir / "config"),
    )
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=env)
    return notebook


def text_of(cell: Any, stream: str | None = None) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream" and stream in (None, output["name"]):
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data") and stream in (None, "result"):
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def cell_with(notebook: Any, needle: str) -> Any:
    return next(c for c in notebook.cells if c.cell_type == "code" and needle in c.source)


@pytest.mark.parametrize("name", ["01-quickstart.ipynb", "02-prototype-with-data.ipynb"])
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_quickstart(live_stack: LiveStack, tmp_path: Path) -> None:
    notebook = execute(nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4), live_stack, tmp_path)
    magic = cell_with(notebook, "%%imprun_function $")
    out = text_of(magic, "stdout")
    assert "saved " in out and "as version 1" in out
    assert "debug-run: 200" in out and "greeting world" in out and '"message": "Hello, world."' in out
    assert text_of(magic, "stderr") == ""
    assert "Hello, Grace." in text_of(cell_with(notebook, 'fn.call({"name": "Grace"})'))
    assert "Hello, Linus!" in text_of(cell_with(notebook, "%imprun_call $"))
    assert "'Deleted'" in text_of(notebook.cells[-1])


def test_prototype_with_data(live_stack: LiveStack, tmp_path: Path) -> None:
    notebook = execute(
        nbformat.read(NOTEBOOKS / "02-prototype-with-data.ipynb", as_version=4), live_stack, tmp_path
    )
    assert "debug-run: 200" in text_of(cell_with(notebook, "%%imprun_function $"), "stdout")
    assert "422" in text_of(cell_with(notebook, '"price": "cheap"'))
    listed = text_of(cell_with(notebook, "%imprun_call $"))
    assert "'apple'" in listed and "'bread'" in listed and "'total': 4.7" in listed
    history = text_of(cell_with(notebook, "fn.history()"))
    assert "'add the total'" in history
    deployments = text_of(cell_with(notebook, "gw.deployments()"))
    assert "'prod', 2, 'staging'" in deployments and "'staging', 2, 'dev'" in deployments


def test_the_magics_show_compile_errors_and_api_errors(live_stack: LiveStack, tmp_path: Path) -> None:
    gw = live_stack.gateway_id("magic")
    with live_stack.client() as client:
        client.create_gateway("magic", gateway_id=gw, bundle=SMALL_BUNDLE)
        client.wait_for_gateway(gw, timeout=240)
        notebook = new_notebook(
            cells=[
                new_code_cell("%load_ext imprun"),
                new_code_cell(f"%%imprun_function {gw}/broken\nimport imp\n\ndef main(:\n    return 1\n"),
                new_code_cell(
                    f'%%imprun_function {gw}/echo --data \'{{"word": "hi"}}\'\ndef main(word: str):\n    return word * 2\n'
                ),
                new_code_cell(f"%imprun_call {gw}/dev/missing"),
                new_code_cell("%imprun_call nonsense"),
            ]
        )
        execute(notebook, live_stack, tmp_path)
        client.delete_gateway(gw)
    broken = text_of(notebook.cells[1], "stderr")
    assert "error: invalid (400)" in broken and "line 3, column" in broken
    echoed = text_of(notebook.cells[2], "stdout")
    assert "debug-run: 200" in echoed and "hihi" in echoed
    assert "unauthorized (401)" in text_of(notebook.cells[3], "stderr")  # key-auth answers before routing
    assert "expected <gateway>/<environment>/<function>" in text_of(notebook.cells[4], "stderr")
