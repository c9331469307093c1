"""The example notebooks in docs/notebooks/, executed with nbclient on the AWE kernel as a
reader would run them: any error cell fails the test. Each works on scaled-down data, in a
fresh AWE home, so they take seconds."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from awe.kernel import install_kernel
from tests.test_prompt import BANNER

NOTEBOOKS = sorted((Path(__file__).parent.parent / "docs" / "notebooks").glob("*.ipynb"))
#: What each notebook must show besides running: its tables and image previews.
SHOWS = {
    "first-sequence": "<td>NoiseFrame.process_params.SIGMA</td><td>3.0</td>",
    "calibrate-a-night": '<img src="data:image/png;base64,',  # the master flat's preview
    "se-on-an-exposure": "image/png",
    "fit-a-galaxy": "<td>ParameterMap</td>",
}


def test_every_example_is_tested_and_has_no_stored_outputs() -> None:
    names = {path.stem for path in NOTEBOOKS}
    assert {"first-sequence", "calibrate-a-night", "se-on-an-exposure", "fit-a-galaxy"} <= names
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata.kernelspec.name == "awe", path.name
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_example_notebook_runs_without_an_error(path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    install_kernel(user=True)  # as `awe kernel install --user` (tests/test_kernel.py) does
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="awe", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    first = outputs[0]
    assert first.output_type == "stream" and first.text.lstrip().startswith(BANNER[0])
    rich = [f"{kind} {value}" for o in outputs for kind, value in o.get("data", {}).items()]
    assert any(SHOWS[path.stem] in shown for shown in rich), path.stem
