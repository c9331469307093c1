"""The image-pipeline part of ``awe demo --pipeline``: after the calibration sequences have
made the night's BiasFrames and flats, take the standard fields to zeropoints and the
science frames to a coadd and its catalogue on the local DPU, and print what an astronomer
looks at first.

The demo calls :func:`run_pipeline_demo` with its Processor once calibration is done; it
returns whether every job finished cleanly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Zeropoints from the standard fields, the science frames to a coadd, its catalogue.
CHAINS = ("Reduce>Photcat>Photom", "Reduce>GAstrometry>Regrid>Coadd", "Coadd>SourceList")


def run_pipeline_demo(
    dpu: Any,
    instrument: str,
    night: str,
    refcat: str | Path,
    filters: list[str] | None = None,
    chip: str | None = None,
) -> bool:
    """Per filter (``filters``: those only, for which the night is calibrated): the
    zeropoints ('Reduce>Photcat>Photom' on the standard fields), then
    'Reduce>GAstrometry>Regrid>Coadd' on the science frames and 'Coadd>SourceList'; prints
    the zeropoints, the astrometric rms, the coadd's statistics and where its preview is.
    ``chip``: that chip only (the ``c`` option), e.g. where only it is calibrated."""
    from awe.db.frames import RawScienceFrame, RawStandardFrame

    where = {"database": dpu.database, "instrument": instrument, "date": night, "chip": chip}
    science, standards = RawScienceFrame.select(**where), RawStandardFrame.select(**where)
    run = {"i": instrument, "d": night, "refcat": str(refcat), "C": 1} | (
        {"c": chip} if chip else {}
    )
    ok = True
    fields = {(f.filter, f.object) for f in standards if filters is None or f.filter in filters}
    for filter_name, field in sorted(fields):
        ok &= _zeropoints(dpu, run, filter_name, field)
    chosen = {(f.filter, f.object) for f in science if filters is None or f.filter in filters}
    for filter_name, target in sorted(chosen):
        ok &= _coadd(dpu, run, filter_name, target)
        job_id = dpu.run(CHAINS[2], i=instrument, f=filter_name, d=night, o=target, C=1)
        ok &= _finished(dpu, job_id)
    return ok


def _finished(dpu: Any, job_id: int) -> bool:
    (status,) = dpu.wait(job_id)
    return status.counts["N"] == status.total


def _zeropoints(dpu: Any, run: dict[str, Any], filter_name: str, field: str) -> bool:
    """The night's zeropoints and extinction; true when Photom fitted them. A standard-field
    frame with too few usable standard stars fails its Photcat (E, the log says why) and
    is left out of the fit, as at a telescope."""
    from awe.db.frames import PhotometricParameters

    job_id = dpu.run(CHAINS[0], f=filter_name, o=field, **run)
    (status,) = dpu.wait(job_id)
    # Photom's products (the same content as an earlier run's is that earlier frame)
    made = dpu.jobs.products(job_id)
    fitted = {p.chip: p.results for p in made if isinstance(p, PhotometricParameters)}
    if fitted:
        zeropoints = [r["zeropoint"] for r in fitted.values()]
        extinction = next(iter(fitted.values()))["extinction"]
        print(
            f"{filter_name}: zeropoints {min(zeropoints):.3f}-{max(zeropoints):.3f} over "
            f"{len(zeropoints)} CCDs, extinction {extinction:.3f} mag/airmass"
        )
    if status.counts["E"]:
        print(
            f"{filter_name}: {status.counts['E']} of {status.total} tasks of job {job_id} "
            f"failed and were left out (why: dpu.get_logs({job_id}))"
        )
    return bool(fitted) and status.counts["A"] == 0


def _coadd(dpu: Any, run: dict[str, Any], filter_name: str, target: str) -> bool:
    from awe.db.frames import AstrometricParameters, CoaddedRegriddedFrame

    job_id = dpu.run(CHAINS[1], f=filter_name, o=target, **run)
    ok = _finished(dpu, job_id)
    solutions = AstrometricParameters.select(
        database=dpu.database, instrument=run["i"], date=run["d"], filter=filter_name
    )
    rms = sorted(s.results["rms_arcsec"] for s in solutions if s.results.get("global"))
    if rms:
        print(f"{filter_name}: global astrometric rms {rms[-1]:.3f} arcsec (GAstrom)")
    coadds = CoaddedRegriddedFrame.select(
        database=dpu.database, instrument=run["i"], filter=filter_name
    )
    if coadds:
        c = coadds[-1]
        print(
            f"{filter_name}: coadd of {c.results['frames']} frames, "
            f"{c.results['shape'][1]} x {c.results['shape'][0]} pixels, median "
            f"{c.results['median']:.3g}, rms {c.results['rms']:.3g} (zeropoint 30); "
            f"preview {c.results['preview']} in job {job_id}'s task folder"
        )
    return ok
