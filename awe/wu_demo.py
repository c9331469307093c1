"""``awe demo --pogs``: a run with the shipped library, a simulated galaxy, fits2wu, the fit
on the local DPU, assimilation and parameter maps."""

from __future__ import annotations

import tempfile
from pathlib import Path

DEMO_RUN = 1
DEMO_GALAXY = "SIMGAL1"
DEMO_REDSHIFT = "0.0300"


def setup_demo_run(database, folder: Path, run_id: int = DEMO_RUN) -> None:
    """filters.dat for the demo filters, the demo library split per redshift, the run row."""
    from awe.db.pogs import PogsRun
    from awe.wu.library import DEMO_FILTERS, split_demo_library
    from awe.wu.runs import register_run

    with database.session() as session:
        if session.get(PogsRun, run_id) is not None:
            return
    numbers = {
        "GALEXFUV": 123,
        "GALEXNUV": 124,
        "SDSSu": 229,
        "SDSSg": 230,
        "SDSSr": 231,
        "SDSSi": 232,
        "SDSSz": 233,
        "WISEW1": 280,
        "WISEW2": 281,
        "WISEW3": 282,
        "WISEW4": 283,
    }
    eff = {
        "GALEXFUV": 0.152,
        "GALEXNUV": 0.231,
        "SDSSu": 0.3534,
        "SDSSg": 0.4742,
        "SDSSr": 0.6189,
        "SDSSi": 0.7595,
        "SDSSz": 0.9032,
        "WISEW1": 3.4,
        "WISEW2": 4.6,
        "WISEW3": 12.0,
        "WISEW4": 22.0,
    }
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["#name lambda_eff filter_id fit?"]
    lines += [f"{name} {eff[name]} {numbers[name]} 1" for name, _ in DEMO_FILTERS]
    (folder / "filters.dat").write_text("\n".join(lines) + "\n")
    split_demo_library(folder, [name for name, _ in DEMO_FILTERS])
    register_run(database, run_id, folder, "demo: GALEX + SDSS + WISE, BC03 x DL07", 1.26, 1.82)


def pogs_demo(seed: int = 1) -> int:
    from awe.dpu.processor import Processor
    from awe.wu.assimilate import assimilate
    from awe.wu.fits2wu import Settings, fits2wu
    from awe.wu.galaxies import register_galaxy
    from awe.wu.library import load_library
    from awe.wu.runs import library_paths
    from awe.wu.simulate import simulate_galaxy
    from awe.wu_results import fit_results

    dpu = Processor(dpu_name="local")
    database, home = dpu.database, Path(dpu.env.home)
    setup_demo_run(database, home / "pogs" / "run0001")
    library = load_library(*library_paths(database, DEMO_RUN, "0.0300"))
    image = simulate_galaxy(
        library, home / "pogs" / "galaxies" / f"POGS_{DEMO_GALAXY}.fits", seed=seed
    )
    print(f"Simulated {DEMO_GALAXY} at z = {DEMO_REDSHIFT}: {image}")
    register_galaxy(database, image, DEMO_REDSHIFT, DEMO_GALAXY, "Sb", "0.1", 10, DEMO_RUN)
    fits2wu(database, dpu.env.data_root, Settings(), None)
    job = dpu.run("FitSED>PogsMaps", r=DEMO_RUN, g=DEMO_GALAXY, C=1)
    (status,) = dpu.wait(job)  # prints the final status line
    with tempfile.TemporaryDirectory() as scratch:
        summary = assimilate(database, job, fit_results(dpu, job, Path(scratch)))
    print(f"Assimilated {len(summary['assimilated'])} work units")
    dpu.get_job_result(job)
    return 0 if status.counts["N"] == status.total else 1
