"""POGS work units on real DPUs: the local pool and an SSH DPU (OpenSSH on 127.0.0.1) give
byte-identical fit files; assimilation fills pixel_result and the galaxy status; quorum 2
validates, and a unit whose results disagree is reissued by the next FitSED run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from awe.db.pogs import AreaState, GalaxyStatus, PogsArea, PogsGalaxy, PogsPixelResult
from awe.dpu import Processor
from awe.wu.assimilate import assimilate
from awe.wu.fits2wu import Settings, fits2wu
from awe.wu.galaxies import register_galaxy
from awe.wu.library import load_library
from awe.wu.runs import library_paths
from awe.wu.simulate import simulate_galaxy
from awe.wu_demo import setup_demo_run
from awe.wu_results import fit_results

TIMEOUT = 300


def demo_run(database_url: str, sshd, tmp_path: Path, name: str, seed: int):
    """A Processor (local DPU, and 'far' over SSH), the demo run, a simulated galaxy file."""
    dpu = Processor(
        database_url=database_url,
        username="alice",
        dpu_name="local",
        dpus={"far": sshd.dpu(tmp_path / "remote-work", max_workers=2)},
    )
    setup_demo_run(dpu.database, tmp_path / "run0001")
    library = load_library(*library_paths(dpu.database, 1, "0.0300"))
    return dpu, simulate_galaxy(library, tmp_path / name, shape=(7, 9), seed=seed)


@pytest.fixture
def dpu(awe_home: Path, database_url: str, sshd, tmp_path: Path) -> Processor:
    dpu, image = demo_run(database_url, sshd, tmp_path, "POGS_SIM.fits", seed=3)
    register_galaxy(dpu.database, image, "0.03", "SIM", "Sb", "0.1", 3, 1)
    fits2wu(dpu.database, dpu.env.data_root, Settings(), log=lambda _: None)
    return dpu


def contents(dpu: Processor, job: int, folder: Path) -> dict[str, str]:
    return {key: path.read_text() for _, key, path in fit_results(dpu, job, folder)}


def test_local_and_ssh_dpus_fit_alike_and_assimilate(dpu: Processor, tmp_path: Path) -> None:
    local = dpu.run("FitSED>PogsMaps", r=1, C=1)
    remote = dpu.run("FitSED", r=1, dpu="far")
    statuses = dpu.wait([local, remote], timeout=TIMEOUT)
    assert [s.counts["N"] == s.total for s in statuses] == [True, True]
    here, there = contents(dpu, local, tmp_path / "a"), contents(dpu, remote, tmp_path / "b")
    assert here == there and len(here) >= 3
    summary = assimilate(dpu.database, local, fit_results(dpu, local, tmp_path / "c"))
    assert summary["invalid"] == {}
    with dpu.database.session() as session:
        galaxy = session.scalar(select(PogsGalaxy))
        assert galaxy.status_id == GalaxyStatus.PROCESSED
        rows = session.scalars(select(PogsPixelResult)).all()
        assert rows and all(r.m is not None and 5 < r.m < 10 for r in rows)
        assert all(a.workunit_id == local for a in session.scalars(select(PogsArea)))
    products = dpu.get_job_result(local)
    maps = [p for p in products if p.frame_type == "ParameterMap"]
    assert len(maps) == 1 and sum(p.frame_type == "ParameterPreview" for p in products) == 4
    from awe.data.store import DataStore

    with fits.open(DataStore(dpu.env.data_root).path(maps[0].sha256)) as hdul:
        mass = hdul["M"].data
        assert mass.shape == (5, 7, 9) and np.isfinite(mass[2]).sum() == len(rows)
        row = rows[0]
        assert mass[2, row.y, row.x] == pytest.approx(row.m, abs=1e-3)


def test_quorum_two_validates_and_a_mismatch_is_reissued(dpu: Processor, tmp_path: Path) -> None:
    job = dpu.run("FitSED", r=1, q=2)
    (status,) = dpu.wait(job, timeout=TIMEOUT)
    assert status.counts["N"] == status.total and status.total % 2 == 0
    results = fit_results(dpu, job, tmp_path / "r")
    _, key, tampered = next(r for r in results if r[1].endswith("#2"))
    lines = tampered.read_text().splitlines(keepends=True)
    numbers = lines[9].split()
    lines[9] = lines[9].replace(numbers[2], f"{float(numbers[2]) * 1.01:.3f}", 1)
    tampered.write_text("".join(lines))
    summary = assimilate(dpu.database, job, results)
    assert len(summary["invalid"]) == 1 and len(summary["assimilated"]) == status.total // 2 - 1
    with dpu.database.session() as session:
        invalid = session.scalar(select(PogsArea).where(PogsArea.state == AreaState.INVALID.value))
        assert invalid.workunit_name == key.split("#")[0]
    again = dpu.run("FitSED", r=1)
    (status,) = dpu.wait(again, timeout=TIMEOUT)
    assert status.total == 1  # only the invalid unit is issued again
    assimilate(dpu.database, again, fit_results(dpu, again, tmp_path / "s"))
    with dpu.database.session() as session:
        assert session.scalar(select(PogsGalaxy)).status_id == GalaxyStatus.PROCESSED


def test_a_work_unit_whose_worker_was_killed_is_reissued_by_rerun(
    dpu: Processor, tmp_path: Path
) -> None:
    """A FitSED task killed mid-fit ends A; ``dpu.rerun`` issues only that work unit again
    (same description, same parameters) and its results complete the galaxy."""
    import os
    import signal
    import time

    from awe.db.models import Task, TaskState

    slow = {  # one pair per tile, 8 pixels per block: seconds per unit, time to kill one
        "FitSED.process_params.CHUNK_PAIRS": 1,
        "FitSED.process_params.BLOCK_PIXELS": 8,
    }
    job = dpu.run("FitSED", r=1, p=slow)
    deadline, killed = time.monotonic() + TIMEOUT, None
    while killed is None and time.monotonic() < deadline:
        dpu.sync([job])
        with dpu.database.session() as session:
            running = session.scalars(
                select(Task.pid).where(
                    Task.job_id == job, Task.state == TaskState.RUNNING, Task.pid.is_not(None)
                )
            ).all()
        for pid in running:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it finished meanwhile: try the next one
                continue
            killed = pid
            break
        time.sleep(0.2)
    assert killed is not None, "no FitSED task was seen running"
    (status,) = dpu.wait(job, timeout=TIMEOUT)
    assert status.counts["A"] == 1 and status.counts["N"] == status.total - 1
    assimilate(dpu.database, job, fit_results(dpu, job, tmp_path / "a"))
    with dpu.database.session() as session:
        lost = session.scalar(select(Task).where(Task.job_id == job, Task.state == TaskState.A))
        left = session.scalars(select(PogsArea).where(PogsArea.state != AreaState.DONE.value))
        assert [a.workunit_name for a in left] == [lost.key]
    again = dpu.rerun(job)
    (status,) = dpu.wait(again, timeout=TIMEOUT)
    assert status.total == 1 and status.counts["N"] == 1
    assimilate(dpu.database, again, fit_results(dpu, again, tmp_path / "b"))
    with dpu.database.session() as session:
        assert (
            session.scalar(select(PogsArea.workunit_id).where(PogsArea.workunit_name == lost.key))
            == again
        )
        assert session.scalar(select(PogsGalaxy)).status_id == GalaxyStatus.PROCESSED


def test_register_galaxy_and_fits2wu_run_as_sequences(
    awe_home: Path, database_url: str, sshd, tmp_path: Path
) -> None:
    """RegisterGalaxy on the SSH DPU and Fits2WU on the local one, committed: the
    registration (with its S/N cube and tags), the galaxy's areas and observations files
    are what the cube holds, and FitSED fits them. A cube whose layer names no run filter
    is refused at submission."""
    from awe.db.pogs import PogsRegister
    from awe.science import workunits
    from awe.wu.galaxies import GalaxyError

    dpu, image = demo_run(database_url, sshd, tmp_path, "POGS_SEQ.fits", seed=5)
    with fits.open(image) as hdul:  # an S/N cube: 20 everywhere but 8 in SDSSr
        for hdu in hdul[1:]:
            hdu.data = np.full_like(hdu.data, 8.0 if hdu.header["MAGPHYSN"] == "SDSSr" else 20.0)
        hdul.writeto(tmp_path / "POGSSNR_SEQ.fits")
    job = dpu.run(
        "RegisterGalaxy",
        f=str(image),
        z="0.0300",
        g="SEQ",
        t="Sc",
        s=str(tmp_path / "POGSSNR_SEQ.fits"),
        y=5,
        r=1,
        T="disc,sequence",
        C=1,
        dpu="far",
    )
    (status,) = dpu.wait(job, timeout=TIMEOUT)
    assert status.counts["N"] == status.total == 1
    with dpu.database.session() as session:
        reg = session.scalar(select(PogsRegister))
        assert (reg.galaxy_name, reg.priority, reg.sigma) == ("SEQ", 5, None)
        assert sorted(t.tag_text for t in reg.tags) == ["disc", "sequence"]
        assert Path(reg.filename).read_bytes() == image.read_bytes()  # in the data store
    job = dpu.run("Fits2WU", C=1)
    (status,) = dpu.wait(job, timeout=TIMEOUT)
    assert status.counts["N"] == status.total == 1
    with fits.open(image) as hdul:
        cube = np.stack([h.data for h in hdul[1:]])
        names = [h.header["MAGPHYSN"] for h in hdul[1:]]
    snr = np.where(np.array(names) == "SDSSr", 8.0, 20.0).astype(np.float32)
    with dpu.database.session() as session:
        galaxy = session.scalar(select(PogsGalaxy))
        areas = session.scalars(select(PogsArea).order_by(PogsArea.area_id)).all()
        assert session.get(PogsRegister, reg.register_id).create_time is not None
        files = [(a, Path(a.observations).read_text()) for a in areas]
    assert galaxy.name == "SEQ" and galaxy.pixel_count == sum(a.pixels for a, _ in files)
    for area, text in files:
        header, pixels, flux, sigma = workunits.parse_observations(text)
        assert header["area_id"] == area.area_id and len(pixels) == area.pixels
        inside = cube[:, area.top_y : area.bottom_y + 1, area.top_x : area.bottom_x + 1]
        assert np.all(np.isin(flux[flux > 0].astype(np.float32), inside))
        measured = flux > 0
        assert np.allclose(sigma[measured], (flux / snr[None, :])[measured], rtol=1e-6)
    fit = dpu.run("FitSED", r=1)
    (status,) = dpu.wait(fit, timeout=TIMEOUT)
    assert status.counts["N"] == status.total == len(areas)
    with fits.open(image) as hdul:
        hdul[1].header["MAGPHYSN"] = "SDSSq"
        hdul.writeto(tmp_path / "POGS_BAD.fits")
    with pytest.raises(GalaxyError, match="SDSSq are not filters of the run"):
        dpu.run("RegisterGalaxy", f=str(tmp_path / "POGS_BAD.fits"), z="0.03", g="BAD", r=1, C=1)
