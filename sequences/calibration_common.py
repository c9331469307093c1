"""What the calibration sequences share: their options, how they select raw frames and
the newest valid calibration in the database, how they read raw chips and write products.

Selection happens when a job is planned (in ``select``), so every task receives its
inputs as file references (path and sha256: a remote DPU receives the files) tagged with
a ``role`` ("raw", "bias", "dome", "sky", ...); the calibration frames used are named in
the task's log. Products are FITS files whose primary HDU is the trimmed chip image
(float32; pixel maps uint8, 1 good 0 bad) with the keywords INSTRUME, CHIPNAME and FILTER
(see docs/calibration.md), valid from the noon that starts the night for
``VALIDITY_NIGHTS`` nights.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit
from sequences import imaging
from sequences.imaging import CHIP, FILTER, INSTRUMENT, OBJECT  # noqa: F401 (common.CHIP, ...)

VALIDITY_NIGHTS = 1

#: The image pipeline's selection options; a calibration always needs its night.
DATE = replace(imaging.DATE, required=True)
OVERSCAN = Option(
    "oc", "overscan", int, help="overscan correction method 0-10 (default: the parameter, 6)"
)
FLAGGED = Option(
    "F", "flagged", int, 0, help="1: also use calibration frames that failed a quality check"
)


def frame_input(frame: Any, store: Any, role: str) -> dict[str, Any]:
    """A frame as a task input: its file by path and hash, and the keys the task logs."""
    return {
        "path": str(store.path(frame.sha256)),
        "sha256": frame.sha256,
        "name": frame.filename,
        "frame_id": frame.id,
        "role": role,
        "type": type(frame).__name__,
        "chip": frame.chip,
        "filter": frame.filter,
        "exposure_time": frame.exposure_time,
        "created_at": frame.created_at.isoformat() if frame.created_at else None,
        "job_id": frame.job_id,
    }


def store_of(context: SelectionContext) -> Any:
    from awe.data.store import DataStore

    return DataStore(context.env.data_root)


def describe_search(type_name: str, options: Mapping[str, Any], chip: str | None = None) -> str:
    """'RawDomeFlatFrame for WFI chip ccd50 filter #842 on night 2000-04-28'."""
    parts = [f"{type_name} for {options['instrument']}"]
    chip = chip or options.get("chip")
    if chip:
        parts.append(f"chip {chip}")
    if options.get("filter"):
        parts.append(f"filter {options['filter']}")
    if options.get("object"):
        parts.append(f"object {options['object']}")
    parts.append(f"on night {options['date']}")
    return " ".join(parts)


def usable(frames: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    """(frames to use, frames left out because they are invalid or flagged)."""
    good, bad = [], []
    for frame in frames:
        (good if frame.is_valid and not frame.quality_flags else bad).append(frame)
    return good, bad


def raw_groups(
    options: Mapping[str, Any],
    context: SelectionContext,
    type_name: str,
    *,
    per_filter: bool,
    minimum: int,
) -> tuple[dict[tuple[str, str | None], list[Any]], list[Any]]:
    """The night's usable raw frames of ``type_name`` by (chip, filter) with at least
    ``minimum`` each, and the frames left out; NoInputs naming what is missing."""
    from awe.db.frames import frame_class
    from awe.science.overscan import describe

    if options.get("overscan") is not None:
        describe(int(options["overscan"]))  # an unknown method: refused before anything runs
    cls = frame_class(type_name)
    good, bad = usable(imaging.select_frames(cls, options, context))
    groups: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    for frame in good:
        groups[(frame.chip, frame.filter if per_filter else None)].append(frame)
    enough = {key: group for key, group in groups.items() if len(group) >= minimum}
    if not enough:
        found = f"found {len(good)} usable"
        if bad:
            found += f" and {len(bad)} flagged or invalid (left out: {_names(bad)})"
        few = ""
        if groups:
            smallest = min(groups.items(), key=lambda item: len(item[1]))
            (chip, filt), group = smallest
            where = f"chip {chip}" + (f" filter {filt}" if filt else "")
            few = f"; {where} has {len(group)}"
        raise NoInputs(
            f"searched {describe_search(type_name, options)}: {found}{few}; "
            f"a chip{' and filter' if per_filter else ''} needs {minimum}"
        )
    return dict(sorted(enough.items(), key=lambda item: (item[0][0], item[0][1] or ""))), bad


def unit_key(chip: str, filt: str | None, groups: Mapping[tuple[str, str | None], Any]) -> str:
    """The task key: the chip, or 'chip filter' when a job covers several filters."""
    filters = {f for _c, f in groups}
    return chip if len(filters) <= 1 else f"{chip} {filt}"


def newest_calibration(
    type_name: str,
    options: Mapping[str, Any],
    context: SelectionContext,
    chip: str,
    filt: str | None = None,
) -> Any:
    """The newest valid ``type_name`` frame for this chip (and filter) and night; with
    option F=1 a frame that failed a quality check may be chosen too. NoInputs names
    exactly what was searched for."""
    from awe.db.frames import frame_class

    cls = frame_class(type_name)
    keys = dict(instrument=options["instrument"], chip=chip, night=options["date"])
    if cls.filter_dependent:
        keys["filter"] = filt
    found = cls.newest_valid(database=context.database, **keys)
    if found is not None and found.quality_flags and not options.get("flagged"):
        found = None
    if found is None and options.get("flagged"):
        found = _newest_flagged(cls, context, keys)
    if found is None:
        what = f"{type_name} for {options['instrument']} chip {chip}"
        if cls.filter_dependent:
            what += f" filter {filt}"
        raise NoInputs(
            f"no valid, unflagged {what} covering night {options['date']}; make one "
            f"first (dpu.run('{_SEQUENCE_OF.get(type_name, type_name)}', "
            f"i='{options['instrument']}', d='{options['date']}', C=1)), or pass F=1 to "
            f"accept one that failed a quality check"
        )
    return found


_SEQUENCE_OF = {
    "BiasFrame": "Bias",
    "DomeFlatFrame": "DomeFlat",
    "TwilightFlatFrame": "TwilightFlat",
    "NightSkyFlatFrame": "NightSkyFlat",
    "MasterFlatFrame": "MasterFlat",
    "FringeFrame": "FringeFlat",
    "HotPixelMap": "HotPixels",
    "ColdPixelMap": "ColdPixels",
}


def made_by(type_name: str) -> str | None:
    """The sequence that makes frames of ``type_name`` (None for raw frames)."""
    return _SEQUENCE_OF.get(type_name)


def calibration_input(
    type_name: str,
    options: Mapping[str, Any],
    context: SelectionContext,
    chip: str,
    filt: str | None,
    role: str,
) -> dict[str, Any]:
    """The ``type_name`` frame a task of this chip (and filter) uses, as an input tagged
    ``role``: in a chain whose step before makes that type ('Bias>HotPixels'), the one that
    step's task of this chip is making (it does not exist yet; the task receives it as an
    upstream product, see ``inputs_with_role``); otherwise the newest valid one stored."""
    step = context.previous_step
    if step is not None and made_by(type_name) == step:
        return {"role": role, "type": type_name, "chip": chip, "filter": filt, "chained": step}
    frame = newest_calibration(type_name, options, context, chip, filt)
    return frame_input(frame, store_of(context), role)


def one_filter_in_a_chain(context: SelectionContext, filters: Sequence[str | None]) -> None:
    """A per-filter step chained after a per-chip one ('Bias>DomeFlat') must cover one
    filter: its tasks are matched to the step before by chip."""
    per_chip_before = any(" " not in str(unit.key) for unit in context.previous)
    if per_chip_before and len(set(filters)) > 1:
        night = ", ".join(sorted(map(str, set(filters))))
        raise NoInputs(
            f"after {context.previous_step} in a chain, this step makes one frame per chip and "
            f"filter: give one filter (f=...; the night has {night}) or run the steps as "
            f"separate jobs"
        )


def _newest_flagged(cls: Any, context: SelectionContext, keys: dict[str, Any]) -> Any:
    """Newest frame of the type for these keys, flagged or not (F=1)."""
    from sqlalchemy import select

    from awe.db.frames import _night

    night = _night(keys.pop("night"))
    query = (
        select(cls)
        .where(*(getattr(cls, k) == v for k, v in keys.items() if v is not None))
        .where(cls.night <= night)
        .order_by(cls.night.desc(), cls.created_at.desc(), cls.id.desc())
        .limit(1)
    )
    with context.database.session() as session:
        return session.scalar(query)


def _names(frames: Sequence[Any]) -> str:
    shown = ", ".join(f"{f.filename} [{f.chip}]" for f in frames[:5])
    return shown + (f" and {len(frames) - 5} more" if len(frames) > 5 else "")


def note_input(left_out: Sequence[Any], chip: str) -> dict[str, Any]:
    """An input that only carries the names of frames left out, for the task's log."""
    return {"role": "note", "left_out": [f.filename for f in left_out if f.chip == chip]}


def inputs_with_role(task: TaskContext, role: str) -> list[dict[str, Any]]:
    """The task's inputs tagged ``role``; one made by the chain's step before is taken from
    the task's upstream products."""
    return [
        _made_upstream(task, item) if "chained" in item else item
        for item in task.unit.inputs
        if item.get("role") == role
    ]


def _made_upstream(task: TaskContext, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The upstream product a chained input names, in the shape of ``frame_input``; a
    product that failed its quality checks is refused unless F=1, as a stored one is."""
    kind, chip, filt, step = wanted["type"], wanted["chip"], wanted["filter"], wanted["chained"]
    for product in task.upstream:
        meta = product.metadata
        if product.kind == kind and meta.get("chip") == chip and meta.get("filter") == filt:
            break
    else:
        raise RuntimeError(
            f"the {step} step of this job reported no {kind} for chip {chip}"
            + (f" filter {filt}" if filt else "")
        )
    name = Path(product.path).name
    if meta.get("quality_flags") and not task.options.get("flagged"):
        raise ValueError(
            f"the {kind} {name} that {step} made in this job failed a quality check (see "
            f"its log); run the chain again with F=1 to use it anyway"
        )
    return {
        "path": product.path,
        "sha256": product.sha256,
        "name": name,
        "frame_id": None,
        "role": wanted["role"],
        "type": kind,
        "chip": chip,
        "filter": filt,
        "exposure_time": None,
        "created_at": f"by {step} in this chain",
        "job_id": task.job_id,
    }


def log_left_out(task: TaskContext) -> None:
    for item in inputs_with_role(task, "note"):
        for name in item["left_out"]:
            task.log.warning("Not using %s: it is flagged or invalid", name)


# ---- reading --------------------------------------------------------------------------------
def read_raw(path: str) -> tuple[Any, Any]:
    """(raw image as stored, header) of one raw chip file."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        return hdul[0].data, hdul[0].header


def regions(instrument: Any, header: Any) -> list[Any]:
    """The amplifier regions (numpy slices) of a raw chip, from its header."""
    from awe.science.overscan import Region

    detector = instrument.detector.from_header(header)
    return [
        Region(
            data=amp.data.slices,
            overscan=amp.overscan.slices,
            prescan=amp.prescan.slices if amp.prescan is not None else None,
        )
        for amp in detector.amplifiers
    ]


def matching_overscan(task: TaskContext, bias: Mapping[str, Any]) -> int:
    """The overscan method of a step that subtracts ``bias``: the bias's own (a master bias
    made with another method holds another bias level), or an error when ``oc`` asks for
    a different one."""
    from astropy.io import fits

    from awe.science.overscan import describe

    made_with = int(fits.getheader(bias["path"]).get("OVERSCAN", 6))
    asked = task.options.get("overscan")
    if asked is not None and int(asked) != made_with:
        raise ValueError(
            f"oc={asked} but the BiasFrame {bias['name']} was made with overscan method "
            f"{made_with}; subtracting it would leave the difference of the two bias levels. "
            f"Run Bias with oc={asked} first, or leave oc out"
        )
    task.log.info(
        "Overscan correction method %d (as the BiasFrame): %s", made_with, describe(made_with)
    )
    return made_with


def read_calibration(path: str) -> Any:
    """The image of a calibration product (primary HDU)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        return hdul[0].data


def read_stack(
    items: Sequence[Mapping[str, Any]],
    instrument: Any,
    overscan: int,
    bias: Any = None,
) -> tuple[Any, list[Any]]:
    """Overscan-corrected, trimmed (and bias-subtracted) float32 stack of raw chips, read
    one by one into a preallocated array; and their regions."""
    import numpy as np

    from awe.science.overscan import correct, trimmed_box

    stack = None
    chip_regions: list[Any] = []
    for index, item in enumerate(items):
        raw, header = read_raw(item["path"])
        chip_regions = regions(instrument, header)
        if stack is None:
            box = trimmed_box(chip_regions)
            shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
            stack = np.empty((len(items), *shape), dtype=np.float32)
        correct(raw, chip_regions, overscan, out=stack[index])
        if bias is not None:
            if bias.shape != stack.shape[1:]:
                raise ValueError(
                    f"the master bias is {bias.shape} and {item['name']} trimmed is "
                    f"{stack.shape[1:]}: not the same chip layout"
                )
            stack[index] -= bias
    return stack, chip_regions


# ---- writing --------------------------------------------------------------------------------
def validity(instrument: Any, night: str, nights: int = VALIDITY_NIGHTS) -> tuple[str, str]:
    """(valid_from, valid_to) ISO instants: from the noon that starts the night."""
    start = instrument.site.local_time(date.fromisoformat(night), 0.0)
    return start.isoformat(), (start + timedelta(days=nights)).isoformat()


def write_product(
    task: TaskContext,
    image: Any,
    kind: str,
    instrument: Any,
    *,
    chip: str,
    filt: str | None,
    checks: Sequence[Any] = (),
    results: Mapping[str, Any] | None = None,
    header: Mapping[str, Any] | None = None,
    inputs: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write a calibration product (trimmed image in the primary HDU) and report it,
    with its quality checks: a failed check sets QualityFlag.OUTSIDE_LIMITS and leaves
    the frame invalid, so later steps do not select it unless asked (F=1)."""
    from astropy.io import fits

    from awe.db.frames import QualityFlag

    failed = [c for c in checks if not c.passed]
    for check in checks:
        log = task.log.warning if not check.passed else task.log.info
        log("Quality check %s", check.describe())
    flags = QualityFlag.OUTSIDE_LIMITS if failed else 0
    if failed:
        task.log.warning(
            "%s %s is flagged (quality flags %d): %s",
            kind,
            chip,
            flags,
            ", ".join(c.name for c in failed),
        )
    hdu = fits.PrimaryHDU(image)
    hdu.header["INSTRUME"] = instrument.name
    hdu.header["CHIPNAME"] = chip
    hdu.header["FILTER"] = filt or ""
    hdu.header["AWETYPE"] = (kind, "AWE frame type")
    hdu.header["NIGHT"] = task.options["date"]
    hdu.header["QUALITY"] = (flags, "quality flags (0: no known problem)")
    for key, value in (header or {}).items():
        hdu.header[key] = value
    suffix = f"_{_safe(filt)}" if filt else ""
    path = task.work_dir / f"{kind}_{instrument.name}_{task.options['date']}_{chip}{suffix}.fits"
    hdu.writeto(path, overwrite=True)
    valid_from, valid_to = validity(instrument, task.options["date"])
    task.add_product(
        path,
        kind,
        instrument=instrument.name,
        chip=chip,
        filter=filt,
        night=task.options["date"],
        quality_flags=flags,
        is_valid=not failed,
        valid_from=valid_from,
        valid_to=valid_to,
        input_ids=[item["frame_id"] for item in inputs if item.get("frame_id") is not None],
        input_sha256=[item["sha256"] for item in inputs if item.get("frame_id", 0) is None],
        results={
            **(results or {}),
            "checks": {
                c.name: {"value": c.value, "limit": c.limit, "passed": c.passed} for c in checks
            },
        },
    )
    task.log.info("Wrote %s %s", kind, path.name)
    return path


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_") or "x"


def units_for(
    groups: Mapping[tuple[str, str | None], Sequence[Any]],
    extra: Any,
) -> list[Unit]:
    """One Unit per (chip, filter): the raw frames, plus ``extra(chip, filter)`` inputs."""
    return [
        Unit(key=unit_key(chip, filt, groups), inputs=(*raws, *extra(chip, filt)))
        for (chip, filt), raws in groups.items()
    ]
