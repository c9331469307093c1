"""A season of DES single-epoch processing: many exposures, each an ``SE`` job, at most N
at a time (the DESGW image-processing automation).

``submit(dpu, 'exposures.list', season='new', archive=...)`` or ``awe se submit
exposures.list --season new --archive DIR``, or ``dpu.run('SEAutomation', l=..., S=...)``:

- the season is unique in the job database: a used one is refused, ``new`` takes the next
  free one (1-99, 5000 and 6000 are reserved, as the DES seasons table has them);
  ``resume=True`` continues a season instead;
- the list has one EXPNUM per line, optionally with NITE and BAND (the ``exposures.list``
  columns EXPNUM NITE MJD RA DEC BAND ...); without them they come from the raw file;
- at most ``max_in_flight`` (5) exposures run at once, the rest wait in a queue;
- per exposure the CCD completeness (complete / failed / incomplete of the scheduled CCDs)
  comes from the job database; ``usable`` (50) complete CCDs make it usable;
- ``output.txt``: the list of "EXPNUM BAND", the season, the list of nites;
- resuming skips complete exposures (every CCD complete), and has ``dpu.rerun`` run again
  only the failed and unfinished CCDs of the others (with their exposure steps); the
  completeness follows each job's rerun chain; ``O=1`` submits every exposure anew.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awe.errors import AweError
from awe.sequence import Option, TaskContext, sequence

RESERVED = set(range(1, 100)) | {5000, 6000}
FIRST_FREE = 100
DEFAULT_IN_FLIGHT = 5
DEFAULT_USABLE = 50


class SeasonError(AweError):
    """A season that cannot be used."""


@dataclass
class ExposureEntry:
    expnum: int
    nite: str | None = None
    band: str | None = None


@dataclass
class Completeness:
    expnum: int
    band: str
    nite: str
    job_id: int | None
    state: str
    scheduled: list[int] = field(default_factory=list)
    complete: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    chain: list[int] = field(default_factory=list)  # the job, then its reruns

    @property
    def done(self) -> bool:
        """Every scheduled CCD complete: a resume skips the exposure."""
        return bool(self.scheduled) and set(self.complete) >= set(self.scheduled)

    @property
    def incomplete(self) -> list[int]:
        return sorted(set(self.scheduled) - set(self.complete) - set(self.failed))

    def usable(self, threshold: int) -> bool:
        return len(self.complete) >= threshold

    def line(self, threshold: int) -> str:
        verdict = "usable" if self.usable(threshold) else "not usable"
        return (
            f"{self.expnum} {self.band} {self.nite} job {self.job_id or '-'}"
            f"{f' (rerun of {self.chain[-2]})' if len(self.chain) > 1 else ''} {self.state}: "
            f"{len(self.complete)} complete, {len(self.failed)} failed "
            f"{self.failed if self.failed else ''}, {len(self.incomplete)} incomplete "
            f"of {len(self.scheduled)} ({verdict})"
        ).replace("  ", " ")


def read_exposure_list(path: str | Path) -> list[ExposureEntry]:
    """One EXPNUM per line, optionally with NITE (2nd column) and BAND (6th, as in DES's
    ``exposures.list``, or 3rd when there are only three columns). ``#`` starts a comment."""
    entries = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].split()
        if not line or line[0].upper() == "EXPNUM":
            continue
        if not line[0].isdigit():
            raise AweError(f"{path}, line {number}: {line[0]!r} is not an exposure number")
        nite = line[1] if len(line) > 1 else None
        band = line[5] if len(line) > 5 else line[2] if len(line) == 3 else None
        entries.append(ExposureEntry(int(line[0]), nite, band))
    if not entries:
        raise AweError(f"{path} lists no exposure (one EXPNUM per line)")
    return entries


def used_seasons(database: Any) -> set[int]:
    """Seasons of the seasons table and of every SE job's options."""
    from sqlalchemy import select

    from awe.db.des import DesSeason
    from awe.db.models import Job

    with database.session() as session:
        seasons = set(session.scalars(select(DesSeason.season)))
        for options in session.scalars(select(Job.options).where(Job.sequence == "SE")):
            if options.get("season") is not None:
                seasons.add(int(options["season"]))
    return seasons


def claim_season(database: Any, season: int | str, username: str, listing: str) -> int:
    """Record a new season (``'new'``: the next free one); a used or reserved one is an
    error. The primary key makes two sessions claiming the same season a clear error too."""
    from sqlalchemy.exc import IntegrityError

    from awe.db.des import DesSeason

    used = used_seasons(database)
    if season == "new":
        number = max(used | {FIRST_FREE - 1}) + 1
        while number in RESERVED:
            number += 1
    else:
        number = int(season)
        if number in RESERVED:
            raise SeasonError(
                f"season {number} is reserved (1-99 are the SN group's and tests', 5000 and "
                f"6000 DES nightly diffimg); use --season new"
            )
        if number in used:
            raise SeasonError(
                f"season {number} is already used (seasons are unique); use --season new, "
                f"or --resume to continue season {number}"
            )
    try:
        database.run(
            lambda session: session.add(
                DesSeason(season=number, username=username, exposures=listing)
            )
        )
    except IntegrityError:
        raise SeasonError(f"season {number} was just taken by another session") from None
    return number


def _fill(entries: list[ExposureEntry], archive: Path) -> None:
    """Nite and band from the raw file where the list does not give them."""
    from astropy.io import fits

    for entry in entries:
        if entry.nite and entry.band:
            continue
        found = sorted((archive / "dts").glob(f"*/DECam_{entry.expnum:08d}.fits*"))
        if not found:
            raise AweError(
                f"exposure {entry.expnum}: no NITE/BAND in the list and no raw file "
                f"{archive}/dts/*/DECam_{entry.expnum:08d}.fits.fz to read them from"
            )
        entry.nite = entry.nite or found[0].parent.name
        entry.band = entry.band or str(fits.getheader(found[0])["BAND"]).strip()


def _rerun(dpu: Any, entry: Any, job_id: int) -> int | None:
    """``dpu.rerun(job_id)``; None, said why, when that job cannot be rerun (it never
    reached its DPU, or its folder there is gone): the exposure is then submitted anew."""
    try:
        return dpu.rerun(job_id)
    except AweError as refused:
        dpu.say(f"Exposure {entry.expnum}: {refused}; submitting it anew")
        return None


def _rerun_chain(jobs: list[Any]) -> list[Any]:
    """The newest job of an exposure that is not a rerun, then its rerun, the rerun of that,
    ... (``dpu.rerun`` links them by ``rerun_of``); the newest rerun where there are two."""
    ids = {job.id for job in jobs}
    chain = [[job for job in jobs if job.rerun_of not in ids][-1]]
    while reruns := [job for job in jobs if job.rerun_of == chain[-1].id]:
        chain.append(reruns[-1])
    return chain


def completeness(database: Any, season: int, expnum: int) -> Completeness:
    """The CCDs of ``expnum`` in ``season`` as the database has them, from its newest SE job
    along that job's rerun chain: a rerun holds only the CCDs it ran again, so each CCD takes
    its newest outcome along the chain. Complete: its SECatalog ended N. Failed: a task of it
    ended E or A. Else incomplete (still running, or skipped)."""
    from sqlalchemy import select

    from awe.db.models import Job, Task, TaskState

    with database.session() as session:
        jobs = [
            j
            for j in session.scalars(select(Job).where(Job.sequence == "SE").order_by(Job.id))
            if j.options.get("season") == season and j.options.get("expnum") == expnum
        ]
        if not jobs:
            return Completeness(expnum, "", "", None, "NOT SUBMITTED")
        chain = _rerun_chain(jobs)
        leaf = chain[-1]
        result = Completeness(
            expnum, leaf.options["band"], str(leaf.options["nite"]), leaf.id, leaf.state.value,
            chain=[job.id for job in chain],
        )  # fmt: skip
        outcome: dict[int, str] = {}
        for job in chain:
            tasks: dict[int, list[Any]] = {}
            for task in session.scalars(select(Task).where(Task.job_id == job.id)):
                if "/" in (task.key or ""):
                    tasks.setdefault(int(task.key.split("/")[1]), []).append(task)
            if job is chain[0]:
                result.scheduled = sorted(
                    ccd for ccd, ts in tasks.items() if any(t.sequence == "SEDetrend" for t in ts)
                )
            for ccd, ts in tasks.items():
                states = {t.sequence: t.state for t in ts}
                if any(state in (TaskState.E, TaskState.A) for state in states.values()):
                    outcome[ccd] = "failed"
                elif states.get("SECatalog") is TaskState.N:
                    outcome[ccd] = "complete"
                else:
                    outcome[ccd] = "incomplete"
    result.complete = sorted(c for c, o in outcome.items() if o == "complete")
    result.failed = sorted(c for c, o in outcome.items() if o == "failed")
    return result


def record_zeropoints(database: Any, archive: Path, season: int, entry: Completeness) -> int:
    """Put the exposure's ``allZP`` file into the zeropoints table; returns the rows."""
    from sqlalchemy import delete

    from awe.data.des_archive import Archive
    from awe.data.des_bliss import read_zeropoints
    from awe.db.des import DesZeropoint
    from awe.db.models import Job

    with database.session() as session:
        options = session.get(Job, entry.job_id).options
    rnum, pnum = int(options["rnum"]), int(options["pnum"])
    out = Archive.at(archive).output(
        options["destcache"], options["schema"], entry.nite, entry.expnum
    )
    path = out / f"allZP_D{entry.expnum:08d}_r{rnum}p{pnum}.csv"
    if not path.exists():
        return 0
    rows = read_zeropoints(path)

    def write(session: Any) -> None:
        session.execute(
            delete(DesZeropoint).where(
                DesZeropoint.expnum == entry.expnum,
                DesZeropoint.rnum == rnum,
                DesZeropoint.pnum == pnum,
            )
        )
        session.add_all(
            DesZeropoint(
                expnum=entry.expnum,
                ccdnum=r["CCDNUM"],
                band=str(r["BAND"]),
                rnum=rnum,
                pnum=pnum,
                season=season,
                zp=r["ZP"],
                zp_error=r["ZPERR"],
                zp_rms=r["ZPRMS"],
                stars=r["NSTARS"],
                clipped=r["NCLIPPED"],
                flag=r["FLAG"],
                job_id=entry.job_id,
            )  # fmt: skip
            for r in rows
        )

    database.run(write)
    return len(rows)


def write_manifest(path: Path, season: int, entries: Iterable[Completeness]) -> None:
    """``output.txt``: line 1 the list of "EXPNUM BAND" (as post-processing reads it),
    line 2 the season, line 3 the list of nites."""
    entries = list(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"{[f'{e.expnum} {e.band}' for e in entries]!r}\n{season}\n{[e.nite for e in entries]!r}\n"
    )


def submit(
    dpu: Any,
    exposures: str | Path,
    season: int | str,
    archive: str | Path,
    *,
    resume: bool = False,
    max_in_flight: int = DEFAULT_IN_FLIGHT,
    usable: int = DEFAULT_USABLE,
    output: str | Path | None = None,
    poll: float = 2.0,
    se_options: dict[str, Any] | None = None,
) -> list[Completeness]:
    """Run SE on every exposure of the list as season ``season`` (see the module doc);
    returns each exposure's completeness, and writes ``output.txt``."""
    from tqdm.auto import tqdm

    from awe.dpu.progress import bar_disabled

    if max_in_flight < 1:
        raise AweError(f"max_in_flight is at least 1, got {max_in_flight}")
    entries = read_exposure_list(exposures)
    archive = Path(archive).expanduser().resolve()
    _fill(entries, archive)
    listing = Path(exposures).read_text()
    if resume:
        number = int(season)
        if number not in used_seasons(dpu.database):
            raise SeasonError(f"season {number} has never been used: nothing to resume")
    else:
        number = claim_season(dpu.database, season, dpu.env.username, listing)
    dpu.say(f"Season {number}: {len(entries)} exposures, at most {max_in_flight} at a time")
    options = {"C": 1, **(se_options or {})}
    queue, running = _plan(dpu, entries, number, resume, bool(options.get("O")))
    season_bar = {"unit": "exposure", "desc": f"Season {number}", "disable": bar_disabled()}
    with tqdm(total=len(queue) + len(running), **season_bar) as bar:
        while queue or running:
            while queue and len(running) < max_in_flight:
                entry, failed_job = queue.pop(0)
                job = _rerun(dpu, entry, failed_job) if failed_job is not None else None
                if job is None:
                    job = dpu.run(
                        "SE", E=entry.expnum, b=entry.band, n=entry.nite, S=number,
                        a=str(archive), **options,
                    )  # fmt: skip
                running[job] = entry
            dpu.sync(list(running))
            for job in _finished(dpu.database, list(running)):
                running.pop(job)
                bar.update(1)
            if running:
                time.sleep(poll)
    report = []
    for entry in entries:
        state = completeness(dpu.database, number, entry.expnum)
        if state.job_id is not None:
            record_zeropoints(dpu.database, archive, number, state)
        dpu.say(state.line(usable))
        report.append(state)
    manifest = Path(output) if output else Path("image_proc_outputs") / "output.txt"
    write_manifest(manifest, number, [r for r in report if r.usable(usable)])
    dpu.say(f"Manifest of the usable exposures: {manifest}")
    return report


def _plan(
    dpu: Any, entries: list[ExposureEntry], season: int, resume: bool, overwrite: bool
) -> tuple[list[tuple[ExposureEntry, int | None]], dict[int, ExposureEntry]]:
    """What to submit: (exposure, None) for a new SE job, (exposure, job) for
    ``dpu.rerun(job)``; and the jobs still running that a resume only waits for.

    Resuming, an exposure with every CCD complete is skipped, one whose newest job (along
    its rerun chain) ended with failed or unfinished CCDs has that job rerun (only those
    CCDs, and its exposure steps), one never submitted gets its SE job; ``overwrite`` (O=1)
    submits a new SE job for every exposure, redoing complete CCDs."""
    queue: list[tuple[ExposureEntry, int | None]] = []
    running: dict[int, ExposureEntry] = {}
    for entry in entries:
        state = completeness(dpu.database, season, entry.expnum) if resume else None
        if state is None or state.job_id is None or overwrite:
            queue.append((entry, None))
        elif state.done:
            dpu.say(f"{entry.expnum}: complete already in season {season} (job {state.job_id})")
        elif state.state in ("QUEUED", "RUNNING"):
            dpu.say(f"{entry.expnum}: job {state.job_id} is still {state.state}, waiting for it")
            running[state.job_id] = entry
        else:
            dpu.say(
                f"{entry.expnum}: CCDs {state.failed + state.incomplete} of job "
                f"{state.job_id} did not complete; rerunning them"
            )
            queue.append((entry, state.job_id))
    return queue, running


def _finished(database: Any, job_ids: list[int]) -> list[int]:
    from sqlalchemy import select

    from awe.db.models import Job, JobState

    with database.session() as session:
        rows = session.execute(select(Job.id, Job.state).where(Job.id.in_(job_ids))).all()
    return [job for job, state in rows if state in (JobState.FINISHED, JobState.CANCELLED)]


def status(dpu: Any, season: int, usable: int = DEFAULT_USABLE) -> list[Completeness]:
    """Each exposure of ``season`` with its state and completeness (printed)."""
    from sqlalchemy import select

    from awe.db.models import Job

    with dpu.database.session() as session:
        jobs = [
            j.id
            for j in session.scalars(select(Job).where(Job.sequence == "SE"))
            if j.options.get("season") == season
        ]
        exposures = sorted({session.get(Job, j).options["expnum"] for j in jobs})
    if season not in used_seasons(dpu.database):
        raise SeasonError(f"season {season} has never been used")
    dpu.sync(jobs)
    report = [completeness(dpu.database, season, e) for e in exposures]
    for entry in report:
        dpu.say(entry.line(usable))
    return report


@sequence(
    options=[
        Option("l", "exposure_list", str, required=True, help="file: one EXPNUM per line"),
        Option("S", "season", str, "new", help="season number, or 'new'"),
        Option("a", "archive", str, required=True, help="archive folder of SE"),
        Option("N", "max_in_flight", int, DEFAULT_IN_FLIGHT, help="exposures at once"),
        Option("u", "usable", int, DEFAULT_USABLE, help="complete CCDs for a usable exposure"),
        Option("R", "resume", int, 0, help="1: continue the season"),
        Option("o", "output", str, "", help="manifest path (default image_proc_outputs/)"),
        Option("O", "overwrite", int, 0, help="1: redo complete exposures and CCDs"),
    ],
    fan_out="global",
    estimate=3600.0,
    time_limit=7 * 86400.0,
)
def SEAutomation(task: TaskContext) -> None:
    """A season of SE jobs, N exposures at a time, then completeness and output.txt. Its
    DPU must reach the job database (the local DPU, or a cluster sharing MariaDB)."""
    from awe.dpu.processor import Processor

    o = task.options
    dpu = Processor()
    season: int | str = o["season"] if o["season"] == "new" else int(o["season"])
    report = submit(
        dpu, o["exposure_list"], season, o["archive"], resume=bool(o["resume"]),
        max_in_flight=o["max_in_flight"], usable=o["usable"],
        output=o["output"] or task.work_dir / "output.txt",
        se_options={"O": 1} if o["overwrite"] else None,
    )  # fmt: skip
    manifest = Path(o["output"]) if o["output"] else task.work_dir / "output.txt"
    task.add_product(manifest, "SEManifest", exposures=[r.expnum for r in report])
