"""``awe demo``: a small simulated WFI night, ingested, listed, then processed on the local DPU.

The demo drives the DPU, so it sits at the top of AWE beside the command line. It is a list
of steps (:data:`STEPS`), each a plain function of the :class:`Demo` that prints what it
does and returns whether it went well; a new sequence joins the demo by adding its step
to the list (one line), e.g. a step that runs ``dpu.run('Bias', ...)`` on the demo night
and prints its products. The simulated night is kept in the AWE home, so a second run
only ingests (nothing new) and processes again.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from awe.data.commands import open_installation, scale_factor

if TYPE_CHECKING:
    from awe.data.store import DataStore
    from awe.db.database import Database
    from awe.dpu.processor import Processor
    from awe.env import Env

INSTRUMENT = "WFI"
NIGHT = "2000-04-28"
SCALE = 0.125
#: The demo night differs from the instrument's plan where the image pipeline needs it: the
#: standard field observed at three airmasses as it sets, so that Photom fits the extinction.
PLAN = {"standard": {"count": 1, "exposure_time": 300.0, "hours": [8.0, 10.5, 11.75]}}


@dataclass
class Demo:
    """What the steps share: the settings, the database and data store, the demo night's
    folder, the local DPU (created on first use) and the example lines printed at the end."""

    env: Env
    database: Database
    store: DataStore
    scale: float
    seed: int
    examples: list[str] = field(default_factory=list)
    _dpu: Processor | None = None

    @property
    def folder(self) -> Path:
        return Path(self.env.home) / "demo" / f"{INSTRUMENT}-{NIGHT}-scale{self.scale:g}"

    @property
    def dpu(self) -> Processor:
        """A Processor on the local DPU, with this session's settings."""
        if self._dpu is None:
            from awe.dpu.processor import Processor

            self._dpu = Processor(self.env, dpu_name="local")
        return self._dpu


Step = Callable[[Demo], bool]


def simulate_and_ingest(demo: Demo) -> bool:
    """Simulate the night (once per scale and seed) and ingest it; ingesting it again adds
    nothing."""
    from awe.data.ingestion import ingest
    from awe.data.simulate import simulate_night

    truth = demo.folder / "truth" / "night.json"
    if truth.exists() and json.loads(truth.read_text())["seed"] == demo.seed:
        print(f"Simulated night already in {demo.folder}")
    else:
        print(f"Simulating a {INSTRUMENT} night ({NIGHT}, scale {demo.scale:g})...")
        result = simulate_night(
            INSTRUMENT, NIGHT, demo.folder, seed=demo.seed, scale=demo.scale, plan=PLAN
        )
        print(f"Wrote {len(result.files)} exposures to {demo.folder} in {result.seconds:.1f} s")
    report = ingest([demo.folder], database=demo.database, store=demo.store)
    return report.ok


def list_frames(demo: Demo) -> bool:
    """The night's frames per type: how many, on how many chips, in which filters."""
    from awe.database_url import mask_url
    from awe.db.frames import frame_counts

    counts = frame_counts(INSTRUMENT, NIGHT, database=demo.database)
    print()
    print(f"Frames of {INSTRUMENT}, night {NIGHT}, in {mask_url(demo.database.url)}:")
    print(f"  {'frame type':<22} {'frames':>6} {'chips':>5}  filters")
    for row in counts:
        filters = ", ".join(row.filters) or "-"
        print(f"  {row.frame_type:<22} {row.frames:>6} {row.chips:>5}  {filters}")
    if not counts:
        print("  (none)")
    example = f"instrument='{INSTRUMENT}', date='{NIGHT}', chip='ccd50'"
    demo.examples += ["from awe.db.frames import RawBiasFrame", f"RawBiasFrame.select({example})"]
    return True


def read_noise(demo: Demo) -> bool:
    """ReadNoise on the demo night, on the local DPU: submit, wait, status, logs, products."""
    print()
    dpu = demo.dpu
    job_id = dpu.run("ReadNoise", i=INSTRUMENT, d=NIGHT, C=1)
    (status,) = dpu.wait(job_id)  # prints the final status line
    dpu.get_logs(job_id)
    dpu.get_job_result(job_id)
    demo.examples.append(f"dpu.run('ReadNoise', i='{INSTRUMENT}', d='{NIGHT}', c='ccd50', C=1)")
    return status.counts["N"] == status.total


def calibration(demo: Demo) -> bool:
    """The night's calibration with C=1 (Bias, HotPixels, flats in filter #842, ColdPixels,
    MasterFlat, Gain, QuickCheck), then the calibration overview."""
    from awe.calibration_cli import demo_calibration

    print()
    demo.examples.append(f"dpu.show_calibration(i='{INSTRUMENT}', d='{NIGHT}')")
    return demo_calibration(demo.dpu, INSTRUMENT, NIGHT, filter="#842")


def image_pipeline(demo: Demo) -> bool:
    """After calibration, in filter #842: the zeropoints from the standard fields, then
    'Reduce>GAstrometry>Regrid>Coadd' on the science frames and 'Coadd>SourceList'; prints
    the zeropoints, the astrometric rms and the coadd's statistics."""
    from awe.data.simulate import REFCAT_FOLDER
    from awe.pipeline_demo import run_pipeline_demo

    print()
    refcat = demo.folder / REFCAT_FOLDER
    demo.examples.append(
        f"dpu.run('Reduce>GAstrometry>Regrid>Coadd', i='{INSTRUMENT}', d='{NIGHT}', "
        f"f='#842', refcat='{refcat}', C=1)"
    )
    return run_pipeline_demo(demo.dpu, INSTRUMENT, NIGHT, refcat, filters=["#842"])


#: The demo, in order. Add a step here to show a new sequence.
STEPS: list[Step] = [simulate_and_ingest, list_frames, read_noise, calibration]
#: With ``awe demo --pipeline``: the image pipeline after the calibration.
PIPELINE_STEPS: list[Step] = [image_pipeline]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``awe demo`` to ``awe``'s subcommands."""
    demo = commands.add_parser("demo", help="simulate a small WFI night, ingest it and list it")
    demo.add_argument("--scale", type=scale_factor, default=SCALE, help=f"default {SCALE}")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--pogs", action="store_true", help="the POGS work-unit demo instead")
    demo.add_argument(
        "--pipeline",
        action="store_true",
        help="go on to zeropoints, GAstrometry, a coadd, its catalogue",
    )


def run(args: argparse.Namespace) -> int:
    """Run every step, even after one failed; the exit status is 1 if any did."""
    if args.pogs:
        from awe.wu_demo import pogs_demo

        return pogs_demo(args.seed)
    env, database, store = open_installation()
    demo = Demo(env, database, store, scale=args.scale, seed=args.seed)
    try:
        steps = STEPS + (PIPELINE_STEPS if getattr(args, "pipeline", False) else [])
        ok = [step(demo) for step in steps]
    finally:
        database.dispose()
    print()
    print("At the awe> prompt, for example:")
    for line in demo.examples:
        print(f"  {line}")
    return 0 if all(ok) else 1
