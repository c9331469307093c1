"""What the image-pipeline sequences share: frames as task inputs, units keyed by
exposure and chip, selection of a step's inputs from the database or from the step
before it in a chain, and the keys a product carries into the database.

A unit of the per-chip steps (Reduce, Astrometry, Regrid, SourceList) is one CCD of one
exposure, keyed ``'<chip>.<exposure number>'``, so that in 'Reduce>Astrometry' the
Astrometry of ccd50 of exposure 1001 waits for the Reduce of the same CCD only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from awe.messages import INHERITED_COLUMNS
from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit

INSTRUMENT = Option("i", "instrument", str, required=True, help="instrument, e.g. WFI")
DATE = Option("d", "date", str, help="observing night YYYY-MM-DD")
CHIP = Option("c", "chip", str, help="one chip, e.g. ccd50 (default: all)")
FILTER = Option("f", "filter", str, help="filter, e.g. '#842' (default: all)")
OBJECT = Option("o", "object", str, help="object name, wildcards * and ? allowed")
#: The options that pick the frames a per-chip step works on.
SELECTION = [INSTRUMENT, DATE, CHIP, FILTER, OBJECT]


def unit_key(chip: str | None, exposure_number: int | None) -> str:
    return f"{chip}.{exposure_number}"


def frame_unit_key(frame: Any) -> str:
    """A CCD of an exposure by chip and exposure number; a mosaic product (a coadd) by id."""
    if frame.chip is None or frame.exposure_number is None:
        return f"{type(frame).__name__}.{frame.id}"
    return unit_key(frame.chip, frame.exposure_number)


def frame_keys(frame: Any) -> dict[str, Any]:
    """The keys a product of ``frame`` inherits, plus its night."""
    keys = {name: getattr(frame, name) for name in INHERITED_COLUMNS}
    keys["night"] = frame.night.isoformat() if frame.night else None
    return keys


def frame_input(frame: Any, data_root: str | Path, role: str) -> dict[str, Any]:
    """A stored frame as a task input: its file (shipped by content hash to a remote DPU)
    with its id, type and keys."""
    from awe.data.store import DataStore

    return {
        "path": str(DataStore(data_root).path(frame.sha256)),
        "sha256": frame.sha256,
        "name": frame.filename,
        "frame_id": frame.id,
        "frame_type": type(frame).__name__,
        "role": role,
        "keys": frame_keys(frame),
    }


def select_frames(
    cls: type,
    options: Mapping[str, Any],
    context: SelectionContext,
    filenames: Iterable[str] | None = None,
) -> list[Any]:
    """Frames of ``cls`` matching the options i, d, c, f, o (and a list of file names)."""
    frames = cls.select(
        database=context.database,
        instrument=options["instrument"],
        date=options.get("date"),
        chip=options.get("chip"),
        filter=options.get("filter"),
        object=options.get("object"),
    )
    if filenames:
        wanted = set(filenames)
        frames = [f for f in frames if f.filename in wanted]
    return frames


def describe_search(cls_name: str, options: Mapping[str, Any]) -> str:
    parts = [f"{cls_name} for {options['instrument']}"]
    for long, label in (("date", "night"), ("chip", "chip"), ("filter", "filter")):
        if options.get(long):
            parts.append(f"{label} {options[long]}")
    if options.get("object"):
        parts.append(f"object {options['object']!r}")
    return " ".join(parts)


def per_chip_units(
    cls: type,
    role: str,
    options: Mapping[str, Any],
    context: SelectionContext,
    filenames: Iterable[str] | None = None,
    hint: str = "",
) -> list[Unit]:
    """One unit per CCD of each exposure: the units of the step before in a chain (whose
    products arrive as ``task.upstream``), otherwise the stored frames of ``cls``."""
    if context.previous:
        return [Unit(key=unit.key, inputs=carried_keys(unit)) for unit in context.previous]
    frames = select_frames(cls, options, context, filenames)
    units = {}
    for frame in frames:  # the newest product of each CCD and exposure
        units[frame_unit_key(frame)] = frame
    if not units:
        raise NoInputs(f"searched {describe_search(cls.__name__, options)}: found none{hint}")
    return [
        Unit(key=key, inputs=(frame_input(frame, context.env.data_root, role),))
        for key, frame in sorted(units.items())
    ]


def reduced_units(options: Mapping[str, Any], context: SelectionContext, chain: str) -> list[Unit]:
    """Per CCD, the reduced frame (``red=`` names it, else the newest of the selection) or
    the unit of the step before; with no frame, the error names the ``chain`` to run.

    After a global step (GAstrom in 'Reduce>GAstrometry>Regrid') the chips are those of the
    last per-chip step: each task waits for that chip's task too and receives its frames."""
    from awe.db.frames import ReducedScienceFrame

    if context.previous and context.previous[0].key is None and context.keyed_before:
        return [Unit(key=u.key, inputs=carried_keys(u)) for u in context.keyed_before]
    return per_chip_units(
        ReducedScienceFrame,
        "image",
        options,
        context,
        options.get("red_filenames"),
        hint=f"; run Reduce first, or chain it: '{chain}'",
    )


def carried_keys(unit: Unit) -> tuple[dict[str, Any], ...]:
    """The frame keys of a previous step's unit (its first input's), for a chained step
    that must know its CCD's pointing or filter before the product exists."""
    for given in unit.inputs:
        if isinstance(given, dict) and "keys" in given:
            return ({"role": "previous", "keys": given["keys"]},)
    return ()


def unit_frame_keys(unit: Unit) -> dict[str, Any]:
    """The keys of the frame a unit covers (given or carried), empty if none."""
    for given in unit.inputs:
        if isinstance(given, dict) and "keys" in given:
            return dict(given["keys"])
    return {}


def inputs_of(task: TaskContext, kind: str, role: str) -> list[dict[str, Any]]:
    """The task's inputs of one kind: products of the step before in a chain (as
    ``{'path', 'name', 'keys'}``), else the frames its unit was given."""
    chained = [
        {
            "path": p.path,
            "name": Path(p.path).name,
            "sha256": p.sha256,
            "frame_id": None,
            "keys": dict(p.metadata),
        }
        for p in task.upstream
        if p.kind == kind
    ]
    if chained:
        return chained
    return [i for i in task.unit.inputs if isinstance(i, dict) and i.get("role") == role]


def product_keys(keys: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """Metadata for ``task.add_product``: the inherited keys that are set, plus ``extra``."""
    metadata = {k: v for k, v in keys.items() if (k in INHERITED_COLUMNS or k == "night")}
    metadata = {k: v for k, v in metadata.items() if v is not None}
    metadata.update(extra)
    return metadata


def stem(name: str) -> str:
    for suffix in (".fits.fz", ".fits"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem
