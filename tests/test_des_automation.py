"""Seasons of SE jobs: unique seasons, at most N exposures in flight, completeness and
zeropoints from the database, output.txt, resumption, and ``awe se``."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from awe.cli import main
from awe.db.des import DesZeropoint
from awe.db.models import Job
from awe.dpu import Processor, se_automation
from awe.dpu.se_automation import SeasonError
from tests.des_archive import NITE, make_archive

EXPOSURES = (668439, 668440)
TIMEOUT = 600


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    archive, _ = make_archive(tmp_path_factory.mktemp("season"), EXPOSURES)
    return archive


@pytest.fixture
def dpu(awe_home: Path) -> Processor:
    return Processor(username="alice")  # the home's SQLite database, as `awe se` finds it


def test_a_season_runs_its_exposures_n_at_a_time(dpu, archive, tmp_path, capsys) -> None:
    listing = tmp_path / "exposures.list"
    # One line as DES's exposures.list has it (EXPNUM NITE MJD RA DEC BAND ...), one bare.
    listing.write_text(f"668439 {NITE} 57983.04 315.9 -45.0 i 90 2017B-0110 object 0.9 x\n668440\n")
    manifest = tmp_path / "image_proc_outputs" / "output.txt"
    report = se_automation.submit(
        dpu, listing, "new", archive.root, max_in_flight=1, usable=2, output=manifest,
        se_options={"c": "1,2,3"},
    )  # fmt: skip
    assert [r.expnum for r in report] == list(EXPOSURES)
    for entry in report:
        assert (entry.scheduled, entry.complete, entry.failed) == ([1, 3], [1, 3], [])
        assert entry.usable(2) and not entry.usable(3)
    with dpu.database.session() as session:
        jobs = list(session.scalars(select(Job).order_by(Job.id)))
        assert [j.options["season"] for j in jobs] == [100, 100]  # the first free season
        assert jobs[1].submitted_at >= jobs[0].finished_at  # at most one in flight
        zeropoints = list(session.scalars(select(DesZeropoint).order_by(DesZeropoint.id)))
    assert sorted((z.expnum, z.ccdnum) for z in zeropoints) == [
        (e, c) for e in EXPOSURES for c in (0, 1, 3)
    ]
    assert all(-31.5 < z.zp < -31.3 and z.season == 100 for z in zeropoints)
    lines = manifest.read_text().splitlines()
    assert ast.literal_eval(lines[0]) == ["668439 i", "668440 i"]
    assert lines[1] == "100" and ast.literal_eval(lines[2]) == [NITE, NITE]

    # A used season is refused; 'new' takes the next free one; reserved ones are refused.
    with pytest.raises(SeasonError, match="season 100 is already used"):
        se_automation.submit(dpu, listing, 100, archive.root)
    with pytest.raises(SeasonError, match="season 50 is reserved"):
        se_automation.claim_season(dpu.database, 50, "alice", "")
    assert se_automation.claim_season(dpu.database, "new", "alice", "") == 101

    # Resuming the season skips the usable exposures: no new job.
    se_automation.submit(dpu, listing, 100, archive.root, resume=True, usable=2, output=manifest)
    with dpu.database.session() as session:
        assert len(session.scalars(select(Job)).all()) == 2
    capsys.readouterr()

    # The live view, from the shell.
    assert main(["se", "status", "--season", "100", "--usable", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"668439 i {NITE} job 1 FINISHED: 2 complete, 0 failed" in printed
    assert "(usable)" in printed


def test_resuming_reruns_only_the_failed_ccds_through_dpu_rerun(dpu, archive, tmp_path) -> None:
    listing = tmp_path / "exposures.list"
    listing.write_text("668440\n")
    moved = tmp_path / "calib-03.fits"
    calibration = archive.calibration_file("Y7", 3)
    shutil.move(calibration, moved)  # CCD 3 fails for want of its calibration
    season = {"usable": 2, "output": tmp_path / "o.txt", "se_options": {"c": "1,3", "r": 5}}
    try:
        (first,) = se_automation.submit(dpu, listing, 300, archive.root, **season)
    finally:
        shutil.move(moved, calibration)
    assert (first.complete, first.failed) == ([1], [3])  # the exposure went on without 3
    assert not first.done
    out = archive.output("persistent", "gw", NITE, 668440)
    ccd1 = out / "D00668440_i_01_r5p7_fullcat.fits"
    before = ccd1.stat().st_mtime_ns

    (second,) = se_automation.submit(dpu, listing, 300, archive.root, resume=True, **season)
    assert (second.complete, second.failed, second.incomplete) == ([1, 3], [], [])
    assert second.done and second.chain == [first.job_id, second.job_id]
    with dpu.database.session() as session:
        rerun = session.get(Job, second.job_id)
        assert rerun.rerun_of == first.job_id  # dpu.rerun's job, not a new SE job
        ran = sorted(t.name for t in rerun.tasks)
        zeropoints = session.scalars(select(DesZeropoint).where(DesZeropoint.rnum == 5)).all()
    # Only CCD 3 ran again, with its exposure's (tolerant) steps; CCD 1 was not remade.
    assert ran == [
        "SECalibrate[668440]", "SECatalog[668440/03]", "SEDetrend[668440/03]", "SESky[668440]"
    ]  # fmt: skip
    assert ccd1.stat().st_mtime_ns == before
    assert "sky over 2 CCDs" in "\n".join(dpu.get_logs(second.job_id)[second.job_id])
    assert sorted(z.ccdnum for z in zeropoints) == [0, 1, 3]
    assert {z.job_id for z in zeropoints} == {second.job_id}

    # Complete now: a resume submits nothing; O=1 forces a new SE job that remakes CCD 1.
    se_automation.submit(dpu, listing, 300, archive.root, resume=True, **season)
    assert season_jobs(dpu) == [first.job_id, second.job_id]
    forced = {**season, "se_options": {**season["se_options"], "O": 1}}
    (third,) = se_automation.submit(dpu, listing, 300, archive.root, resume=True, **forced)
    assert third.chain == [third.job_id] and third.job_id > second.job_id and third.done
    assert ccd1.stat().st_mtime_ns > before


def test_a_job_that_cannot_be_rerun_is_submitted_anew(dpu, archive, tmp_path, capsys) -> None:
    """Its folder on the DPU is gone (cleaned up, a scratch purge): dpu.rerun refuses,
    saying why, and the resume submits the exposure as a new SE job instead of stopping."""
    listing = tmp_path / "exposures.list"
    listing.write_text("668440\n")
    moved = tmp_path / "calib-03.fits"
    calibration = archive.calibration_file("Y7", 3)
    shutil.move(calibration, moved)
    season = {"usable": 2, "output": tmp_path / "o.txt", "se_options": {"c": "1,3", "r": 5}}
    try:
        (first,) = se_automation.submit(dpu, listing, 301, archive.root, **season)
    finally:
        shutil.move(moved, calibration)
    assert first.failed == [3]
    with dpu.database.session() as session:
        shutil.rmtree(session.get(Job, first.job_id).work_dir)
    (second,) = se_automation.submit(dpu, listing, 301, archive.root, resume=True, **season)
    assert second.done and second.chain == [second.job_id] and second.job_id > first.job_id
    out = capsys.readouterr().out
    assert f"job {first.job_id}'s folder" in out and "is gone from DPU" in out
    assert "Exposure 668440: " in out and "submitting it anew" in out


def season_jobs(dpu: Processor) -> list[int]:
    """The ids of the season-300 jobs."""
    with dpu.database.session() as session:
        jobs = session.scalars(select(Job).order_by(Job.id)).all()
        return [j.id for j in jobs if j.options.get("season") == 300]


def test_a_list_without_exposures_is_a_clear_error(dpu, archive, tmp_path) -> None:
    listing = tmp_path / "exposures.list"
    listing.write_text("# nothing\nEXPNUM NITE\nabc\n")
    with pytest.raises(Exception, match="line 3: 'abc' is not an exposure number"):
        se_automation.submit(dpu, listing, "new", archive.root)
    assert se_automation.used_seasons(dpu.database) == set()
