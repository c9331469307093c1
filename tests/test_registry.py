"""Where sequences come from, for real: an installed package's entry point (a dist-info on
the path, as pip leaves it) and a user's file, with a broken file reported and skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from awe.dpu import Processor
from tests.test_dpu import SEQUENCES, TIMEOUT

PACKAGE = '''
from awe.sequence import sequence


@sequence(fan_out="global")
def FromEntryPoint(task):
    """Declared by an installed package."""
    task.log.info("hello from an installed package")
'''


@pytest.fixture
def installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package installed the way pip leaves one: a module and its dist-info with an
    ``awe.sequences`` entry point, in a folder on the path (here and in the runner)."""
    site = tmp_path / "site"
    (site / "awe_f13_extra-1.0.dist-info").mkdir(parents=True)
    (site / "awe_f13_extra.py").write_text(PACKAGE)
    info = site / "awe_f13_extra-1.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: awe-f13-extra\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[awe.sequences]\nextra = awe_f13_extra\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


def test_an_entry_point_sequence_is_found_and_runs(
    installed_package: Path, awe_home: Path, database_url: str
) -> None:
    dpu = Processor(database_url=database_url, username="alice")
    assert "FromEntryPoint" in dpu.get_sequence_identifiers()
    job_id = dpu.run("FromEntryPoint", send_code=False)
    (status,) = dpu.wait(job_id, timeout=TIMEOUT)
    assert status.counts["N"] == 1
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert "hello from an installed package" in logs


def test_a_broken_sequence_file_is_reported_and_skipped(awe_home: Path, capsys) -> None:
    folder = awe_home / "sequences"
    folder.mkdir(parents=True)
    shutil.copy(SEQUENCES, folder / "testing.py")
    (folder / "broken.py").write_text("from awe.sequence import sequence\n\ndef oops(:\n")
    dpu = Processor(username="alice")
    identifiers = dpu.get_sequence_identifiers()
    assert {"Hello", "Total"} <= set(identifiers)  # the good file still counts
    printed = capsys.readouterr().out
    assert f"WARNING: sequence not loaded: {folder / 'broken.py'}, line 3: SyntaxError" in printed
    (folder / "broken.py").write_text(
        "from awe.sequence import sequence\n\n\n@sequence()\ndef Mended(task):\n    pass\n"
    )
    assert "Mended" in dpu.get_sequence_identifiers()  # fixed: picked up, no restart
    assert "WARNING" not in capsys.readouterr().out
