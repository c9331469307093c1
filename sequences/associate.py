"""AssociateList: the sources of several SourceLists linked within a radius.

One global task reads the lists (the step before's, or the stored ones selected by
``i d c f o``), links every source to the sources of the other lists within ``r`` arcsec,
and keeps the connected groups (chains: one source followed through the dithers and
nights that saw it; :func:`awe.science.associate.chains`) as a FITS table, product
``AssociateList``. ``dpu.run('AssociateList', i='WFI', f='#842', r=1.0, C=1)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, sequence
from sequences.imaging import (
    CHIP,
    DATE,
    FILTER,
    INSTRUMENT,
    OBJECT,
    frame_input,
    inputs_of,
    select_frames,
)

OPTIONS = [
    INSTRUMENT,
    DATE,
    CHIP,
    FILTER,
    OBJECT,
    Option("r", "radius", float, 1.0, help="association radius (arcsec)"),
]


def select_source_lists(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """One global task over the step before's SourceLists, or the stored ones."""
    from awe.db.frames import SourceList

    if context.previous:
        return [Unit()]
    found = select_frames(SourceList, options, context)
    if len(found) < 2:
        raise NoInputs(
            f"found {len(found)} SourceList for {dict(options)}: associating needs at least "
            "two; run SourceList first, or widen the selection"
        )
    root = context.env.data_root
    return [Unit(inputs=tuple(frame_input(f, root, "sourcelist") for f in found))]


@sequence(
    options=OPTIONS,
    fan_out="global",
    select=select_source_lists,
    estimate=2.0,
)
def AssociateList(task: TaskContext) -> None:
    """Chains of sources within a radius across source lists."""
    import numpy as np
    from astropy.io import fits

    from awe.science.associate import chains

    given = inputs_of(task, "SourceList", "sourcelist")
    if len(given) < 2:
        raise NoInputs(f"{len(given)} SourceList among the inputs: associating needs two")
    radius = float(task.options.get("radius") or 1.0)
    lists = []
    for item in given:
        table = fits.getdata(item["path"], "SOURCES")
        lists.append((np.asarray(table["ra"], float), np.asarray(table["dec"], float)))
    groups = chains(lists, radius)
    rows = np.array([(g, li, si) for g, group in enumerate(groups) for li, si in group], int)
    group_of, list_of, source_of = rows.reshape(-1, 3).T
    ra = np.array([lists[i][0][j] for i, j in zip(list_of, source_of, strict=True)], float)
    dec = np.array([lists[i][1][j] for i, j in zip(list_of, source_of, strict=True)], float)
    ids = np.array([item.get("frame_id") or -1 for item in given], int)
    columns = [
        fits.Column(name="GROUP", format="K", array=group_of),
        fits.Column(name="LIST", format="K", array=list_of),
        fits.Column(name="SOURCELIST_ID", format="K", array=ids[list_of]),
        fits.Column(name="SOURCE", format="K", array=source_of),
        fits.Column(name="RA", format="D", array=ra),
        fits.Column(name="DEC", format="D", array=dec),
    ]
    header = fits.Header()
    header["RADIUS"] = (radius, "association radius (arcsec)")
    header["NLISTS"] = (len(lists), "source lists associated")
    sizes = np.bincount(group_of) if group_of.size else np.empty(0, int)
    task.log.info(
        "Associated %d lists within %.2f arcsec: %d chains (%d of them through every list)",
        len(lists),
        radius,
        len(groups),
        int((sizes == len(lists)).sum()),
    )
    keys = given[0]["keys"]
    name = f"AssociateList_{keys['instrument']}_{keys.get('filter') or 'all'}"
    out = task.work_dir / (name.replace("#", "").replace("/", "_") + ".fits")
    fits.HDUList(
        [
            fits.PrimaryHDU(header=header),
            fits.BinTableHDU.from_columns(columns, name="ASSOCIATIONS"),
        ]
    ).writeto(out, overwrite=True)
    metadata = {k: keys[k] for k in ("instrument", "filter", "object", "night") if keys.get(k)}
    task.add_product(
        out,
        "AssociateList",
        **metadata,
        results={
            "lists": len(lists),
            "chains": len(groups),
            "complete_chains": int((sizes == len(lists)).sum()),
            "radius_arcsec": radius,
            "inputs": [int(i) for i in ids if i >= 0],
        },
    )
