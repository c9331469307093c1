"""The image-pipeline part of ``awe demo``: after the calibration sequences have made the
night's BiasFrames and flats, take the science frames to a coadd and its catalogue on the
local DPU, and print what an astronomer looks at first.

The lead's demo calls :func:`run_pipeline_demo` with its Processor once calibration is
done; it returns whether every job finished cleanly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAINS = ("Reduce>Astrometry>Regrid>Coadd", "Coadd>SourceList")


def run_pipeline_demo(
    dpu: Any,
    instrument: str,
    night: str,
    refcat: str | Path,
    filters: list[str] | None = None,
) -> bool:
    """'Reduce>Astrometry>Regrid>Coadd' per filter (``filters``: those only, for which the
    night is calibrated) on the science frames, then 'Coadd>SourceList'; prints the
    astrometric rms, the coadd's statistics and where its PNG preview is."""
    from awe.db.frames import AstrometricParameters, CoaddedRegriddedFrame, RawScienceFrame

    science = RawScienceFrame.select(database=dpu.database, instrument=instrument, date=night)
    ok = True
    chosen = {(f.filter, f.object) for f in science if filters is None or f.filter in filters}
    for filter_name, target in sorted(chosen):
        job_id = dpu.run(
            CHAINS[0], i=instrument, d=night, f=filter_name, o=target, refcat=str(refcat), C=1
        )
        (status,) = dpu.wait(job_id)
        ok &= status.counts["N"] == status.total
        solutions = AstrometricParameters.select(
            database=dpu.database, instrument=instrument, date=night, filter=filter_name
        )
        rms = [s.results["rms_arcsec"] for s in solutions]
        if rms:
            print(
                f"{filter_name}: astrometric rms {min(rms):.3f}-{max(rms):.3f} arcsec over "
                f"{len(rms)} CCDs, median {sorted(rms)[len(rms) // 2]:.3f}"
            )
        coadds = CoaddedRegriddedFrame.select(
            database=dpu.database, instrument=instrument, filter=filter_name
        )
        if coadds:
            c = coadds[-1]
            print(
                f"{filter_name}: coadd of {c.results['frames']} frames, "
                f"{c.results['shape'][1]} x {c.results['shape'][0]} pixels, median "
                f"{c.results['median']:.3g}, rms {c.results['rms']:.3g} (zeropoint 30); "
                f"preview {c.results['preview']} in job {job_id}'s task folder"
            )
        job_id = dpu.run(CHAINS[1], i=instrument, f=filter_name, d=night, o=target, C=1)
        (status,) = dpu.wait(job_id)
        ok &= status.counts["N"] == status.total
    return ok
