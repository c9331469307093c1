"""The "AWE" Jupyter kernel for real: installed with ``awe kernel install --user`` into a
private Jupyter data folder, started by jupyter_client as a notebook server starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_prompt import AWE, BANNER
from tests.test_scripts import COUNT

WIDGET = "application/vnd.jupyter.widget-view+json"


def install_awe_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``awe kernel install --user`` into a Jupyter data folder of this test's own."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    installed = subprocess.run([AWE, "kernel", "install", "--user"], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    spec = json.loads((tmp_path / "jupyter" / "kernels" / "awe" / "kernel.json").read_text())
    assert spec["display_name"] == "AWE"
    # The interpreter the `awe` script runs under: the same file as this one, whichever name
    # (python, python3.11) its shebang spells it by.
    assert os.path.samefile(spec["argv"][0], sys.executable), spec["argv"]
    assert spec["argv"][1:3] == ["-m", "awe.kernel"]


@pytest.fixture
def awe_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, awe_home: Path) -> Iterator:
    """The AWE kernel, installed for this 'user' only, started; its client."""
    from jupyter_client.manager import start_new_kernel

    install_awe_kernel(tmp_path, monkeypatch)
    (awe_home / "sequences").mkdir(parents=True)
    (awe_home / "sequences" / "count.py").write_text(COUNT)
    manager, client = start_new_kernel(kernel_name="awe", env=dict(os.environ))
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(client, code: str) -> tuple[str, list[dict]]:
    """Run ``code``; its reply status and its outputs (messages other than status)."""
    outputs: list[dict] = []

    def keep(message: dict) -> None:
        if message["msg_type"] not in ("status", "execute_input"):
            outputs.append({"type": message["msg_type"], **message["content"]})

    reply = client.execute_interactive(code, timeout=90, output_hook=keep)
    return reply["content"]["status"], outputs


def text(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") for o in outputs if o["type"] == "stream")


def test_awe_kernel_is_the_prompt_in_a_notebook(awe_kernel) -> None:
    _, client = awe_kernel
    status, outputs = execute(client, "names = sorted(['dpu', 'Pars', 'BiasFrame']); 1")
    assert status == "ok"
    first = outputs[0]
    assert first["type"] == "stream" and first["text"].lstrip().startswith(BANNER[0])
    for line in BANNER:
        assert line in first["text"]
    status, outputs = execute(client, "from awe import dpu as d; print(d is dpu, Pars, BiasFrame)")
    assert "True <class 'awe.dpu.pars.Pars'> <class 'awe.db.frames.BiasFrame'>" in text(outputs)

    status, outputs = execute(client, "dpu.run('ReadNoise', i='WFI', d='2000-04-29')")
    assert status == "error"
    (error,) = [o for o in outputs if o["type"] == "error"]
    assert error["ename"] == "PlanError" and len(error["traceback"]) == 1
    assert error["traceback"][0].startswith("PlanError: ReadNoise: nothing to process")
    _, outputs = execute(client, "%tb")
    (full,) = [o for o in outputs if o["type"] == "error"]
    assert any("planner.py" in frame for frame in full["traceback"])

    status, outputs = execute(client, "{}['a bug']")
    (bug,) = [o for o in outputs if o["type"] == "error"]
    assert bug["ename"] == "KeyError" and len(bug["traceback"]) > 1  # keeps its traceback


def test_wait_shows_a_widget_for_jobs_submitted_elsewhere_after_a_restart(awe_kernel) -> None:
    manager, client = awe_kernel
    _, outputs = execute(client, "job = dpu.run('Count', n=2, s=4.0)\nprint('job', job)")
    job = int(text(outputs).split("job ")[-1])
    manager.restart_kernel(now=True)
    client.wait_for_ready(timeout=60)
    status, outputs = execute(client, "statuses = dpu.wait()")  # this session submitted none
    assert status == "ok"
    widgets = [o for o in outputs if o["type"] == "display_data" and WIDGET in o["data"]]
    assert widgets, outputs  # tqdm's notebook bar, not text
    assert f"Jobid {job} has status FINISHED N/E/A/S/U 2/0/0/0/0" in text(outputs), outputs
    status, outputs = execute(client, "dpu.get_status(job)")
    assert not [o for o in outputs if o["type"] == "execute_result"]  # printed, not echoed
    _, outputs = execute(client, "statuses")
    (result,) = [o for o in outputs if o["type"] == "execute_result"]
    html = result["data"]["text/html"]
    assert html.startswith("<table>") and f"<td>{job}</td><td>Count</td><td>FINISHED</td>" in html
    _, outputs = execute(client, "statuses[0]")
    (one,) = [o for o in outputs if o["type"] == "execute_result"]
    assert one["data"]["text/plain"] == f"<Job {job} Count FINISHED N/E/A/S/U 2/0/0/0/0>"


def test_kernel_install_under_a_prefix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from awe.cli import main

    assert main(["kernel", "install", "--prefix", str(tmp_path / "env")]) == 0
    folder = tmp_path / "env" / "share" / "jupyter" / "kernels" / "awe"
    assert f'Installed the "AWE" Jupyter kernel in {folder}' in capsys.readouterr().out
    assert json.loads((folder / "kernel.json").read_text())["argv"][-2:] == [
        "-f",
        "{connection_file}",
    ]
