"""GalFit and GalPhot: the morphology of the galaxies of a catalogued frame.

Per frame (a reduced, regridded or coadded frame with its SourceList), the galaxies are
the catalogue's sources that are bright (Kron S/N) and larger than its stars, or, with
``pos``, the sources nearest to given sky positions. **GalFit** fits each with a
PSF-convolved Sersic profile (:func:`awe.science.galaxies.fit_sersic`; the PSF is a Moffat
fitted to the frame's stacked stars), **GalPhot** measures its elliptical isophotes
(:func:`awe.science.galaxies.isophote_photometry`, photutils' ``Ellipse``). Neighbours in
a galaxy's cutout are masked. Products: ``GalFitList`` (table ``GALFIT``) and
``GalPhotList`` (tables ``GALAXIES`` and ``ISOPHOTES``), read at the prompt with
``GalFitList.select(...)[-1].get_fits()`` and ``get_isophotes(galaxy)``.

``dpu.run('SourceList>GalFit', i='WFI', d='2000-04-28', f='#842', C=1)``, or from stored
SourceLists ``dpu.run('GalFit', i='WFI', f='#842', C=1)``; ``'Coadd>SourceList>GalPhot'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awe.sequence import NoInputs, Option, SelectionContext, TaskContext, Unit, sequence
from sequences.imaging import (
    SELECTION,
    frame_input,
    frame_unit_key,
    inputs_of,
    product_keys,
    select_frames,
    stem,
)
from sequences.sourcelist import (
    SOURCE_FRAMES,
    header_without_data,
    images_of,
    sky_positions,
    weight_plane,
)

FRAME_TYPES = ", ".join(SOURCE_FRAMES)
OPTIONS = [
    *SELECTION,
    Option("t", "frame_type", str, help=f"only SourceLists of this frame type: {FRAME_TYPES}"),
    Option("pos", "positions", list, help="[[ra, dec], ...] degrees: the sources nearest these"),
    Option("r", "radius", float, 2.0, help="arcsec within which a pos must find its source"),
]
#: What both steps share: which sources are galaxies (S/N, size relative to the stars, how
#: many), the cutout's half size (times the half-light radius, at most MAX_CUTOUT pixels)
#: and how far around each neighbour is masked (times its a, b).
SELECTION_PARAMETERS = {
    "MIN_SNR": 50.0,
    "MIN_SIZE": 1.5,
    "MAX_GALAXIES": 20,
    "CUTOUT_SCALE": 5.0,
    "MAX_CUTOUT": 60,
    "MASK_SCALE": 3.0,
}
FIT_PARAMETERS = {
    f"GalFit.process_params.{name}": value
    for name, value in [*SELECTION_PARAMETERS.items(), ("OVERSAMPLE", 5), ("PSF_RADIUS", 15),
                        ("PSF_BETA", 3.0)]
}  # fmt: skip
PHOT_PARAMETERS = {
    f"GalPhot.process_params.{name}": value
    for name, value in [*SELECTION_PARAMETERS.items(), ("STEP", 0.2), ("MAX_SMA_SCALE", 4.0)]
}


def select_catalogued_frames(options: Mapping[str, Any], context: SelectionContext) -> list[Unit]:
    """Per frame: the step before's (SourceList) units, or each stored SourceList with
    the frame it catalogues."""
    from awe.db import frames as types

    if context.previous:
        if context.previous_step != "SourceList":
            raise NoInputs(
                f"galaxies need a SourceList; chain them after one ('{context.previous_step}"
                ">SourceList>...'), not after {context.previous_step}"
            )
        return [Unit(key=u.key, inputs=_carried(u)) for u in context.previous]
    kind = options.get("frame_type")
    if kind and kind not in SOURCE_FRAMES:
        raise NoInputs(f"frame_type {kind!r}: use one of {SOURCE_FRAMES}")
    root = context.env.data_root
    units: dict[str, Unit] = {}
    for catalogue in select_frames(types.SourceList, options, context):
        image = _catalogued_frame(catalogue, types, context)
        if image is None or (kind and type(image).__name__ != kind):
            continue
        units[frame_unit_key(image)] = Unit(  # the newest list of each frame
            key=frame_unit_key(image),
            inputs=(frame_input(catalogue, root, "sourcelist"), frame_input(image, root, "image")),
        )
    if not units:
        raise NoInputs(
            f"no SourceList with its frame for {dict(options)}: run SourceList first, or "
            "chain it: 'SourceList>GalFit'"
        )
    return [units[k] for k in sorted(units)]


def _carried(unit: Unit) -> tuple[Any, ...]:
    """A SourceList unit's stored frame (shipped again to this step) and keys."""
    return tuple(i for i in unit.inputs if isinstance(i, dict) and ("keys" in i))


def _catalogued_frame(catalogue: Any, types: Any, context: SelectionContext) -> Any:
    """The frame a stored SourceList was made of: its provenance, else its file name."""
    for frame in catalogue.inputs:
        if type(frame).__name__ in SOURCE_FRAMES:
            return frame
    name = (catalogue.results or {}).get("image")
    for kind in SOURCE_FRAMES:
        found = getattr(types, kind).select(database=context.database, filename=name)
        if name and found:
            return found[-1]
    return None


@sequence(
    options=OPTIONS,
    parameters=FIT_PARAMETERS,
    fan_out="chip",
    select=select_catalogued_frames,
    estimate=20.0,
)
def GalFit(task: TaskContext) -> None:
    """PSF-convolved Sersic fits of the galaxies of each catalogued frame."""
    import numpy as np
    from astropy.io import fits
    from astropy.table import Table

    from awe.science.galaxies import fit_sersic, galaxy_cutout

    params = _parameters(task, "GalFit")
    for frame in _frames(task):
        chosen, sizes = _galaxies(task, frame, params)
        psf, profile = _psf(task, frame, params)
        rows = []
        for index, half in zip(chosen, sizes, strict=True):
            data, weight, (ox, oy) = galaxy_cutout(
                frame.image, frame.inverse_variance, frame.sources, index, half,
                params["MASK_SCALE"],
            )  # fmt: skip
            try:
                fit = fit_sersic(
                    data, weight, psf, oversample=int(params["OVERSAMPLE"]),
                    zeropoint=frame.zeropoint, gain=frame.gain,
                )  # fmt: skip
            except ValueError as error:
                task.log.warning("Galaxy %d: no fit (%s)", frame.sources["number"][index], error)
                continue
            row = fit.as_row() | {"number": int(frame.sources["number"][index])}
            row["at_bound"] = "bound" in fit.message  # a parameter ended on its limit
            row["x"], row["y"] = fit.x + ox, fit.y + oy
            rows.append(row)
            task.log.info(
                "Galaxy %d at (%.1f, %.1f): n %.2f +- %.2f, r_e %.2f +- %.2f pixels, "
                "ellipticity %.3f, theta %.1f deg, mag %.3f, chi2 %.2f%s",
                row["number"], row["x"], row["y"], fit.n, row["n_err"], fit.r_eff,
                row["r_eff_err"], fit.ellipticity, np.degrees(fit.theta), fit.magnitude,
                fit.chi2, f" ({fit.message})" if fit.message else "",
            )  # fmt: skip
        table = Table(rows=rows) if rows else Table(names=["number", "x", "y"])
        table["ra"], table["dec"] = sky_positions(frame.header, table["x"], table["y"])
        out = task.work_dir / f"{stem(frame.name)}.galfit.fits"
        primary = fits.PrimaryHDU(header=header_without_data(frame.header))
        primary.header["PSF_FWHM"] = (profile["fwhm"], "Moffat FWHM of the PSF (pixels)")
        primary.header["PSF_BETA"] = (profile["beta"], "Moffat beta of the PSF")
        fits.HDUList([primary, fits.BinTableHDU(table, name="GALFIT")]).writeto(out)
        results = {
            "galaxies": len(rows),
            "psf_fwhm_pixels": profile["fwhm"],
            "psf_beta": profile["beta"],
            "psf_stars": profile.get("stars", 0),
            "image": frame.name,
            "median_n": float(np.median(table["n"])) if rows else None,
        }
        task.log.info("Fitted %d galaxies of %s", len(rows), frame.name)
        task.add_product(out, "GalFitList", **frame.product_metadata(results))


@sequence(
    options=OPTIONS,
    parameters=PHOT_PARAMETERS,
    fan_out="chip",
    select=select_catalogued_frames,
    estimate=20.0,
)
def GalPhot(task: TaskContext) -> None:
    """Elliptical isophote photometry of the galaxies of each catalogued frame."""
    import numpy as np
    from astropy.io import fits
    from astropy.table import Table, vstack

    from awe.science.galaxies import galaxy_cutout, isophote_photometry

    params = _parameters(task, "GalPhot")
    for frame in _frames(task):
        chosen, sizes = _galaxies(task, frame, params)
        galaxies, isophotes = [], []
        for number, (index, half) in enumerate(zip(chosen, sizes, strict=True)):
            data, weight, (ox, oy) = galaxy_cutout(
                frame.image, frame.inverse_variance, frame.sources, index, half,
                params["MASK_SCALE"],
            )  # fmt: skip
            s = frame.sources
            radius = float(s["flux_radius"][index])
            table = isophote_photometry(
                data - float(s["background"][index]),
                x=float(s["x"][index]) - ox,
                y=float(s["y"][index]) - oy,
                sma=max(radius, 2.0),
                mask=weight <= 0,
                maxsma=min(params["MAX_SMA_SCALE"] * radius, half - 1),
                step=params["STEP"],
            )
            table["x0"] += ox
            table["y0"] += oy
            table["galaxy"] = np.full(len(table), number, int)
            isophotes.append(table)
            galaxies.append(
                {"galaxy": number, "number": int(s["number"][index]), "x": float(s["x"][index]),
                 "y": float(s["y"][index]), "isophotes": len(table)}
            )  # fmt: skip
            outer = table[table["sma"] >= radius]
            task.log.info(
                "Galaxy %d at (%.1f, %.1f): %d isophotes to sma %.1f pixels; beyond r_half "
                "ellipticity %.3f, PA %.1f deg",
                galaxies[-1]["number"], galaxies[-1]["x"], galaxies[-1]["y"], len(table),
                float(np.max(table["sma"])) if len(table) else 0.0,
                float(np.median(outer["ellipticity"])) if len(outer) else float("nan"),
                float(np.degrees(np.median(outer["pa"]))) if len(outer) else float("nan"),
            )  # fmt: skip
        summary = Table(rows=galaxies) if galaxies else Table(names=["galaxy", "number"])
        summary["ra"], summary["dec"] = sky_positions(frame.header, summary["x"], summary["y"])
        rows = vstack(isophotes) if isophotes else Table(names=["galaxy", "sma"])
        out = task.work_dir / f"{stem(frame.name)}.galphot.fits"
        fits.HDUList(
            [
                fits.PrimaryHDU(header=header_without_data(frame.header)),
                fits.BinTableHDU(summary, name="GALAXIES"),
                fits.BinTableHDU(rows, name="ISOPHOTES"),
            ]
        ).writeto(out)
        results = {"galaxies": len(galaxies), "isophotes": len(rows), "image": frame.name}
        task.log.info("Isophotes of %d galaxies of %s", len(galaxies), frame.name)
        task.add_product(out, "GalPhotList", **frame.product_metadata(results))


class _Frame:
    """A frame with its catalogue, as both steps read them."""

    def __init__(self, image: Mapping[str, Any], catalogue: Mapping[str, Any]) -> None:
        import numpy as np
        from astropy.io import fits

        from awe.science.pixels import robust_background

        self.name, self.keys = image["name"], image["keys"]
        self.shas = [image["sha256"], catalogue["sha256"]]
        with fits.open(image["path"], memmap=False) as hdul:
            self.image = hdul[0].data.astype(np.float64)
            self.header = hdul[0].header
            weight = weight_plane(hdul)
        weight = np.ones(self.image.shape) if weight is None else np.asarray(weight, float)
        _level, rms = robust_background(self.image[weight > 0])
        # the weight is relative; the background's rms sets its scale
        self.inverse_variance = weight / (rms * rms * np.median(weight[weight > 0]))
        self.zeropoint = float(self.header.get("MAGZP", 0.0))
        self.gain = float(self.header["GAIN"]) if self.header.get("GAIN") else None
        table = fits.getdata(catalogue["path"], "SOURCES")
        self.sources = {name: np.asarray(table[name]) for name in table.names}

    def product_metadata(self, results: dict[str, Any]) -> dict[str, Any]:
        return product_keys(self.keys, results=results, input_sha256=self.shas)


def _frames(task: TaskContext) -> list[_Frame]:
    """Each frame with its SourceList (matched by the list's ``image``)."""
    images = {i["name"]: i for i in images_of(task)}
    catalogues = inputs_of(task, "SourceList", "sourcelist")
    pairs = []
    for catalogue in catalogues:
        name = catalogue["keys"].get("results", {}).get("image")
        image = images.get(name) or (next(iter(images.values())) if len(images) == 1 else None)
        if image is not None:
            pairs.append(_Frame(image, catalogue))
    if not pairs:
        raise NoInputs("no frame with its SourceList among the inputs")
    return pairs


def _parameters(task: TaskContext, step: str) -> dict[str, float]:
    prefix = f"{step}.process_params."
    return {k[len(prefix) :]: v for k, v in task.parameters.items() if k.startswith(prefix)}


def _psf(task: TaskContext, frame: _Frame, params: Mapping[str, Any]) -> tuple[Any, dict]:
    """The frame's PSF from its stars; with fewer than 3 usable stars, a Moffat profile of
    the point-like sources' median FWHM and beta ``PSF_BETA`` (with a warning)."""
    import numpy as np

    from awe.science.des_psf import moffat
    from awe.science.galaxies import frame_psf, point_sources

    radius = int(params["PSF_RADIUS"])
    try:
        psf, profile = frame_psf(frame.image, frame.sources, radius)
    except ValueError as error:
        s = frame.sources
        stars = point_sources(s) & (s["flags"] <= 1)
        fwhm = float(np.nanmedian(s["fwhm"][stars])) if stars.any() else float("nan")
        if not np.isfinite(fwhm):
            raise
        beta = float(params["PSF_BETA"])
        task.log.warning("%s: a Moffat PSF of the sources' FWHM and beta %.2f instead", error, beta)
        psf = moffat(radius, fwhm, beta)
        return psf / psf.sum(), {"fwhm": fwhm, "beta": beta, "stars": 0}
    task.log.info(
        "PSF from %d stars: Moffat FWHM %.2f pixels, beta %.2f",
        profile["stars"], profile["fwhm"], profile["beta"],
    )  # fmt: skip
    return psf, profile


def _galaxies(task: TaskContext, frame: _Frame, params: Mapping[str, Any]) -> tuple[list, list]:
    """The sources to measure and their cutouts' half sizes: those nearest the ``pos``
    sky positions, or the brightest extended ones."""
    import numpy as np

    from awe.science.galaxies import select_galaxies, star_radius

    s = frame.sources
    positions = task.options.get("positions")
    if positions:
        radius = float(task.options.get("radius") or 2.0)
        chosen = []
        cos_dec = np.cos(np.radians(s["dec"]))
        for ra, dec in positions:
            distance = np.hypot((s["ra"] - ra) * cos_dec, s["dec"] - dec) * 3600.0
            nearest = int(np.nanargmin(distance)) if np.isfinite(distance).any() else -1
            if nearest < 0 or distance[nearest] > radius:
                task.log.warning("No source within %.1f arcsec of (%.6f, %.6f)", radius, ra, dec)
                continue
            chosen.append(nearest)
    else:
        stars_radius = star_radius(s)
        if not np.isfinite(stars_radius):
            raise NoInputs(f"no point source in {frame.name} to tell galaxies from stars by")
        chosen = select_galaxies(
            s, stars_radius, min_snr=params["MIN_SNR"], min_size=params["MIN_SIZE"]
        )[: int(params["MAX_GALAXIES"])].tolist()
        task.log.info(
            "%d galaxies: Kron S/N >= %.0f, half-light radius >= %.1f x the stars' %.2f pixels",
            len(chosen), params["MIN_SNR"], params["MIN_SIZE"], stars_radius,
        )  # fmt: skip
    sizes = [
        int(np.clip(params["CUTOUT_SCALE"] * s["flux_radius"][i], 15, params["MAX_CUTOUT"]))
        for i in chosen
    ]
    return chosen, sizes
