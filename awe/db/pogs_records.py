"""The rows a POGS registration and a converted galaxy add, written in the caller's
transaction: by the ``awe wu`` commands directly, and by the commit (``C=1``) of the
RegisterGalaxy and Fits2WU sequences' products (:mod:`awe.db.frames`), so both give the
same rows and the same observations files.

A :class:`GalaxyPlan` is what fits2wu works out from a registered galaxy's files (areas,
their pixels, fluxes and sigmas, credit); it travels as an ``.npz`` file, fluxes kept as
the FITS file's float32 so the observations files are the same digits either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from awe.db.models import utcnow
from awe.db.pogs import PogsArea, PogsGalaxy, PogsPixelResult, PogsRegister, PogsTag
from awe.science import workunits

#: The registration values a RegisterGalaxy product carries (``results``).
REGISTRATION_KEYS = ("galaxy_name", "redshift", "galaxy_type", "sigma", "priority", "run_id")


@dataclass
class GalaxyPlan:
    """A registration's galaxy as fits2wu cuts it; ``error`` set: it could not be."""

    meta: dict[str, Any]  # register_id, name, run_id, redshift, sigma, dims, credit, ...
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    flux: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    sigma: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def save(self, path: Path) -> Path:
        np.savez(
            path,
            meta=json.dumps(self.meta, sort_keys=True),
            boxes=self.boxes,
            counts=self.counts,
            xy=self.xy,
            flux=self.flux,
            sigma=self.sigma,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> GalaxyPlan:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("boxes", "counts", "xy", "flux", "sigma")}
            return cls(meta=json.loads(str(data["meta"])), **arrays)


def record_registration(
    session: Any, values: Mapping[str, Any], filename: str, sigma_filename: str | None
) -> int:
    """A ``pogs_register`` row (and its tags); its id."""
    row = PogsRegister(
        **{key: values[key] for key in REGISTRATION_KEYS if key not in ("redshift", "sigma")},
        **_decimals(values),
        filename=filename,
        sigma_filename=sigma_filename,
    )
    for text in values.get("tags") or ():
        tag = session.scalar(select(PogsTag).where(PogsTag.tag_text == text))
        row.tags.append(tag or PogsTag(tag_text=text))
    session.add(row)
    session.flush()
    return row.register_id


def mark_converted(session: Any, register_id: int, error: str | None = None) -> None:
    """fits2wu is done with a registration (``error``: why it made nothing of it)."""
    row = session.get(PogsRegister, register_id)
    row.create_time, row.error = utcnow(), error


def record_galaxy(session: Any, plan: GalaxyPlan, folder: Path) -> tuple[int, int]:
    """The galaxy, its areas and pixel rows, and each area's observations file in
    ``folder``; (galaxy id, work units). A plan with an error only marks its registration."""
    meta = plan.meta
    if meta.get("error"):
        mark_converted(session, meta["register_id"], meta["error"])
        return 0, 0
    galaxy = PogsGalaxy(
        **{
            key: meta[key]
            for key in (
                "run_id",
                "register_id",
                "name",
                "dimension_x",
                "dimension_y",
                "dimension_z",
                "galaxy_type",
                "priority",
                "ra_cent",
                "dec_cent",
                "credit_per_pixel",
                "fpops_per_pixel",
            )
        },
        **_decimals(meta),
    )
    session.add(galaxy)
    session.flush()
    folder.mkdir(parents=True, exist_ok=True)
    starts = np.concatenate([[0], np.cumsum(plan.counts)])
    for (top_x, top_y, bottom_x, bottom_y), first, last in zip(
        plan.boxes.tolist(), starts[:-1], starts[1:], strict=True
    ):
        row = PogsArea(
            galaxy_id=galaxy.galaxy_id,
            top_x=top_x,
            top_y=top_y,
            bottom_x=bottom_x,
            bottom_y=bottom_y,
            workunit_name="",
            observations="",
            pixels=int(last - first),
            credit=0.0,
            fpops_est=0.0,
            fpops_bound=0.0,
        )
        session.add(row)
        session.flush()
        pixels = [
            PogsPixelResult(area_id=row.area_id, galaxy_id=galaxy.galaxy_id, x=x, y=y)
            for x, y in plan.xy[first:last].tolist()
        ]
        session.add_all(pixels)
        session.flush()
        name = f"{galaxy.name}_area{row.area_id}"
        estimate, bound, credit = workunits.workunit_cost(
            len(pixels), meta["fpops_per_pixel"], meta["credit_per_pixel"]
        )
        text = workunits.observations_text(
            {
                "galaxy": galaxy.name,
                "run_id": galaxy.run_id,
                "galaxy_id": galaxy.galaxy_id,
                "area_id": row.area_id,
                "pixels": len(pixels),
                "top_x": top_x,
                "top_y": top_y,
                "bottom_x": bottom_x,
                "bottom_y": bottom_y,
            },
            [p.pxresult_id for p in pixels],
            meta["redshift"],
            [
                list(zip(plan.flux[p], plan.sigma[p], strict=True))
                for p in range(int(first), int(last))
            ],
        )
        path = folder / f"{name}.obs"
        path.write_text(text)
        row.workunit_name, row.observations = name, str(path)
        row.credit, row.fpops_est, row.fpops_bound = credit, estimate, bound
    galaxy.pixel_count = int(plan.counts.sum())
    mark_converted(session, meta["register_id"])
    return galaxy.galaxy_id, len(plan.counts)


def _decimals(values: Mapping[str, Any]) -> dict[str, Decimal | None]:
    """redshift and sigma (texts as they travel) as the columns' decimals."""
    sigma = values.get("sigma")
    return {
        "redshift": Decimal(str(values["redshift"])),
        "sigma": None if sigma is None else Decimal(str(sigma)),
    }
