"""``awe demo`` is a list of steps: every step runs, even after one failed, and the exit
status says whether all went well (the whole demo runs in tests/test_data_cli.py)."""

from __future__ import annotations

import argparse

import pytest

from awe import demo


def test_every_step_runs_and_a_failure_sets_the_exit_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    ran = []

    def failing(session: demo.Demo) -> bool:
        ran.append(("failing", session.folder.name))
        return False

    def passing(session: demo.Demo) -> bool:
        ran.append(("passing", session.database.dialect))
        session.examples.append("dpu.run('Next')")
        return True

    monkeypatch.setattr(demo, "STEPS", [failing, passing])
    assert demo.run(argparse.Namespace(scale=0.25, seed=1, pogs=False)) == 1
    assert ran == [("failing", "WFI-2000-04-28-scale0.25"), ("passing", "sqlite")]
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "At the awe> prompt, for example:",
        "  dpu.run('Next')",
    ]
    monkeypatch.setattr(demo, "STEPS", [passing])
    assert demo.run(argparse.Namespace(scale=0.25, seed=1, pogs=False)) == 0
