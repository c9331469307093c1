"""MAGPHYS' per-pixel SED fit, vectorised over pixels and model pairs.

For every pixel and every allowed (stellar, dust) model pair the best scaling
``a = sum(w o m) / sum(w m^2)`` (the stellar mass, w = 1/sigma^2) and the chi-square over
the filters of stellar light (rest wavelength < 10 microns: MAGPHYS' stellar and mixed
filters) are computed; the dust-only filters are added only where that chi-square is below
600, as MAGPHYS does. The marginal PDFs
are built as MAGPHYS builds them: each pair's likelihood ``exp(-chi2/2)`` is added to the
histogram bin of each of the 16 POGS parameters, the scaled ones (M*, SFR, Ldust, Mdust)
taken at the pair's best scaling ``a`` (no spread around it); the 2.5/16/50/84/97.5
percentiles come from the normalised histograms, and the pair of lowest chi-square is the
best fit. (That leaves out the scaling's own uncertainty, 1/sqrt(sum w m^2) relative, as
MAGPHYS does: with a library of a few hundred stellar models the 16-84 % intervals of
the scaled parameters are narrower than their errors; tests/test_pogs_fit.py measures it.)

The chi-squares are matrix products (BLAS) over cache-sized tiles of pixels x pairs, so
memory stays bounded whatever the library size. :func:`fit_pixel_loop` is the same fit
written plainly, one pixel at a time, to check the vectorised one against.

Pure numpy; nothing here knows about files, databases or the DPU, except the text
formatting of MAGPHYS' ``.fit`` blocks (:func:`format_fit`, :func:`parse_fit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

CHI2_IR_LIMIT = 600.0
#: MAGPHYS' first chi2 (the one gated at 600) is over the filters below 10 microns rest.
OPTICAL_LIMIT_UM = 10.0
SIGMA_FLOOR = 0.05  # MAGPHYS: sigma is at least 5 % of the flux
PERCENTILES = (0.025, 0.16, 0.5, 0.84, 0.975)
FINE = 10  # fine bins per output bin for the percentiles
#: Multiply-adds of one matrix product of the fit (rows of a block of pixels x a tile).
TILE_MULTIPLY_ADDS = 200_000
#: Pairs this far above a pixel's lowest chi2 weigh < 1e-20 of it: left out of the sums.
NEGLIGIBLE_DELTA_CHI2 = 92.0


@dataclass(frozen=True)
class Parameter:
    """One of the 16 POGS parameters: its column, MAGPHYS title, histogram bins, and how it
    comes from a pair (``source``: "sfh" or "ir"; ``scale``: multiplied by a, by a*Ldust,
    or not at all; ``log``: histogrammed as log10)."""

    column: str
    title: str
    low: float
    high: float
    bins: int
    source: str
    key: str
    scale: str = ""
    log: bool = False


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("fmu_sfh", "f_mu (SFH)", 0.0, 1.0, 20, "sfh", "fmu_sfh"),
    Parameter("fmu_ir", "f_mu (IR)", 0.0, 1.0, 20, "ir", "fmu_ir"),
    Parameter("mu", "mu parameter", 0.0, 1.0, 20, "sfh", "mu"),
    Parameter("tauv", "tau_V", 0.0, 6.0, 48, "sfh", "tauv"),
    Parameter("s_sfr", "sSFR_0.1Gyr", -13.0, -6.0, 70, "sfh", "s_sfr", log=True),
    Parameter("m", "M(stars)", 2.0, 13.0, 110, "sfh", "m", "a", True),
    Parameter("ldust", "Ldust", 2.0, 13.0, 110, "sfh", "ldust", "a", True),
    Parameter("t_c_ism", "T_C^ISM", 10.0, 30.0, 20, "ir", "t_c_ism"),
    Parameter("t_w_bc", "T_W^BC", 15.0, 65.0, 50, "ir", "t_w_bc"),
    Parameter("xi_c_tot", "xi_C^tot", 0.0, 1.0, 20, "ir", "xi_c_tot"),
    Parameter("xi_pah_tot", "xi_PAH^tot", 0.0, 1.0, 20, "ir", "xi_pah_tot"),
    Parameter("xi_mir_tot", "xi_MIR^tot", 0.0, 1.0, 20, "ir", "xi_mir_tot"),
    Parameter("xi_w_tot", "xi_W^tot", 0.0, 1.0, 20, "ir", "xi_w_tot"),
    Parameter("tvism", "tau_V^ISM", 0.0, 6.0, 80, "sfh", "tvism"),
    Parameter("mdust", "M(dust)", -2.0, 9.0, 110, "ir", "mdust", "a_ldust", True),
    Parameter("sfr", "SFR_0.1Gyr", -8.0, 3.0, 110, "sfh", "sfr", "a", True),
)
#: MAGPHYS' order of the best-fit line (T_W^BC before T_C^ISM).
BEST_FIT_ORDER = (
    "fmu_sfh",
    "fmu_ir",
    "mu",
    "tauv",
    "s_sfr",
    "m",
    "ldust",
    "t_w_bc",
    "t_c_ism",
    "xi_c_tot",
    "xi_pah_tot",
    "xi_mir_tot",
    "xi_w_tot",
    "tvism",
    "mdust",
    "sfr",
)


@dataclass(frozen=True)
class Models:
    """A library at one redshift: fluxes [model, filter] and parameters by name."""

    sfh_flux: np.ndarray
    sfh: Mapping[str, np.ndarray]
    ir_flux: np.ndarray
    ir: Mapping[str, np.ndarray]


@dataclass
class PixelFit:
    """The fit of one pixel."""

    best_chi2: float
    i_sfh: int
    i_ir: int
    scale: float
    best: dict[str, float]  # linear values, by column
    model_flux: np.ndarray
    histograms: list[np.ndarray]  # per parameter, coarse bins, normalised
    percentiles: np.ndarray  # [parameter, 5]
    fitted: bool = True


def allowed_pairs(fmu_sfh: np.ndarray, fmu_ir: np.ndarray, tolerance: float = 0.15):
    """(i_sfh, i_ir) of every pair that balances energy: |fmu_sfh - fmu_ir| <= tolerance."""
    order = np.argsort(fmu_ir, kind="stable")
    sorted_ir = fmu_ir[order]
    lo = np.searchsorted(sorted_ir, fmu_sfh - tolerance, side="left")
    hi = np.searchsorted(sorted_ir, fmu_sfh + tolerance, side="right")
    counts = hi - lo
    i_sfh = np.repeat(np.arange(fmu_sfh.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    i_ir = order[np.repeat(lo, counts) + offsets]
    keep = np.abs(fmu_sfh[i_sfh] - fmu_ir[i_ir]) <= tolerance  # the float edge, exactly
    return i_sfh[keep], i_ir[keep]


def weights(flux: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """1/sigma^2 with MAGPHYS' 5 % floor; 0 where there is no measurement (flux <= 0)."""
    good = (flux > 0) & (sigma > 0)
    floored = np.maximum(np.where(good, sigma, 1.0), SIGMA_FLOOR * np.abs(flux))
    return np.where(good, 1.0 / floored**2, 0.0)


def optical_mask(eff_lambda_um: Sequence[float], redshift: float) -> np.ndarray:
    """The filters of MAGPHYS' first chi2: rest-frame wavelength below 10 microns (its
    stellar ones below 2.5 and mixed ones up to 10); the others are dust-only."""
    return np.asarray(eff_lambda_um, float) / (1 + redshift) < OPTICAL_LIMIT_UM


def _pair_values(models: Models, i_sfh: np.ndarray, i_ir: np.ndarray) -> dict[str, np.ndarray]:
    return {
        p.column: (models.sfh if p.source == "sfh" else models.ir)[p.key][
            i_sfh if p.source == "sfh" else i_ir
        ]
        for p in PARAMETERS
    }


def _scaled(parameter: Parameter, value: np.ndarray, scale: np.ndarray, ldust: np.ndarray):
    if parameter.scale == "a":
        value = value * scale
    elif parameter.scale == "a_ldust":
        value = value * scale * ldust
    return value


def _scaled_bin(parameter: Parameter, log_value: np.ndarray, log_scale: np.ndarray):
    """Fine bin of a scaled parameter from log10 of its value per unit scaling and log10 of
    the best scaling, as MAGPHYS bins M*, SFR, Ldust and Mdust: the scaling at its best
    value for each model, no spread around it."""
    n = parameter.bins * FINE
    position = log_scale + log_value
    position -= parameter.low
    position *= n / (parameter.high - parameter.low)
    return _bin_index(position, n)


def _fine_bin(parameter: Parameter, value: np.ndarray) -> np.ndarray:
    """Fine-bin index of each value of an unscaled parameter."""
    if parameter.log:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.log10(np.where(value > 0, value, 1e-300))
    n = parameter.bins * FINE
    return _bin_index((value - parameter.low) * (n / (parameter.high - parameter.low)), n)


def _bin_index(position: np.ndarray, n: int) -> np.ndarray:
    """floor(position) within 0..n-1: outside the range (and NaN), the end bins."""
    np.fmax(position, 0.0, out=position)  # NaN becomes 0
    np.fmin(position, n - 1, out=position)
    return position.astype(np.int64)


#: Where each parameter's fine bins start in a pixel's histograms; each bin's edges.
OFFSETS = np.concatenate([[0], np.cumsum([p.bins * FINE for p in PARAMETERS])])
_EDGES = [np.linspace(p.low, p.high, p.bins * FINE + 1) for p in PARAMETERS]
_LOWER = np.concatenate([e[:-1] for e in _EDGES])
_WIDTH = np.concatenate([np.diff(e) for e in _EDGES])


@dataclass(frozen=True)
class _Pairs:
    """The energy-balanced pairs of a library and their model fluxes [pair, filter]. The
    parameters stay per model, looked up through ``i_sfh`` and ``i_ir``: log10 of the
    scaled ones per unit scaling, and the fine bin of the others."""

    models: Models
    i_sfh: np.ndarray
    i_ir: np.ndarray
    flux: np.ndarray
    logs: dict[str, tuple[np.ndarray, np.ndarray | None]]  # SFH part, IR part
    model_bins: dict[str, np.ndarray]

    @classmethod
    def of(cls, models: Models) -> _Pairs:
        i_sfh, i_ir = allowed_pairs(models.sfh["fmu_sfh"], models.ir["fmu_ir"])
        flux = models.sfh_flux.take(i_sfh, 0)
        dust = models.ir_flux.take(i_ir, 0)
        dust *= models.sfh["ldust"].take(i_sfh)[:, None]
        flux += dust
        logs = {}
        with np.errstate(divide="ignore"):
            for p in PARAMETERS:
                if p.source == "sfh" and p.scale:
                    logs[p.column] = (np.log10(models.sfh[p.key]), None)
                elif p.scale:  # a dust parameter per unit Ldust
                    logs[p.column] = (np.log10(models.sfh["ldust"]), np.log10(models.ir[p.key]))
        bins = {
            p.column: _fine_bin(p, (models.sfh if p.source == "sfh" else models.ir)[p.key])
            for p in PARAMETERS
            if not p.scale
        }
        return cls(models, i_sfh, i_ir, flux, logs, bins)

    def log_value(self, column: str, i_sfh: np.ndarray, i_ir: np.ndarray) -> np.ndarray:
        """log10 of a scaled parameter per unit scaling, for the pairs of these models."""
        sfh, ir = self.logs[column]
        return sfh[i_sfh] if ir is None else sfh[i_sfh] + ir[i_ir]


def fit_pixels(
    flux: np.ndarray,
    sigma: np.ndarray,
    optical: np.ndarray,
    models: Models,
    chunk: int = 2048,
    block: int = 64,
) -> list[PixelFit]:
    """Fit every pixel (rows of ``flux``/``sigma`` in Jy, one column per filter) against
    every energy-balanced pair of ``models``.

    Pixels are fitted ``block`` at a time against tiles of ``chunk`` pairs: the chi-square
    of a tile comes from two matrix products into buffers reused from tile to tile, so
    memory does not grow with the library (2 x 64 x 2048 doubles: 2 MB, in cache). The
    products are split by rows into TILE_MULTIPLY_ADDS each, small enough that OpenBLAS
    runs them on the calling thread (it threads products above 2^18 multiply-adds; threads
    for products this small cost more than they bring, four times more on a loaded
    machine, and the DPU already runs one task per core). Only the pairs within
    ``NEGLIGIBLE_DELTA_CHI2`` of a pixel's lowest chi-square go into its histograms: those
    left out weigh less than 1e-20 of the best pair each, so with fewer than 1e6 pairs the
    normalised histograms differ from the full sums by less than 1e-14."""
    flux = np.asarray(flux, float)
    w = weights(flux, np.asarray(sigma, float))
    pairs = _Pairs.of(models)
    tiles = _Tiles(min(block, flux.shape[0]), chunk)
    fits: list[PixelFit] = []
    for first in range(0, flux.shape[0], block):
        rows = slice(first, first + block)
        o, wp = flux[rows], w[rows]
        pixel, pair, chi2, scale, lowest = tiles.near_best(o, wp, pairs, tiles.total_chi2)
        near = lowest >= CHI2_IR_LIMIT - NEGLIGIBLE_DELTA_CHI2
        if near.any():  # MAGPHYS' chi2 needs the optical part on its own: those pixels again
            again = tiles.near_best(o[near], wp[near], pairs, partial(_gated_chi2, optical))
            keep = ~near[pixel]
            pixel = np.concatenate([pixel[keep], np.flatnonzero(near)[again[0]]])
            pair, chi2, scale = (
                np.concatenate([x[keep], y])
                for x, y in zip((pair, chi2, scale), again[1:4], strict=True)
            )
            lowest[near] = again[4]
        fits += _block_fits(pairs, pixel, pair, chi2, scale, lowest, tiles.histograms)
    return fits


class _Tiles:
    """Reused buffers for a block of pixels against a tile of pairs."""

    def __init__(self, rows: int, chunk: int) -> None:
        self.chunk = chunk
        self.first, self.second = np.empty((rows, chunk)), np.empty((rows, chunk))
        self.histograms = np.empty((OFFSETS[-1], rows))  # [fine bin, pixel]

    def total_chi2(self, flux: np.ndarray, w: np.ndarray, model: np.ndarray, model2: np.ndarray):
        """(best scale, chi2) [pixel, pair] over all filters, in the reused buffers.

        With c = sum(w o m), n = sum(w m^2) and a = c/n it is sum(w o^2) - a c. That is
        MAGPHYS' chi2 wherever it is below 600 (the optical part is then below 600 too, so
        the infrared filters count); where it is not, MAGPHYS' is 600 or more as well. So
        only a pixel whose lowest chi2 comes within NEGLIGIBLE_DELTA_CHI2 of 600 needs the
        optical part on its own (:func:`_gated_chi2`)."""
        shape = (flux.shape[0], model.shape[0])
        c = self.first[: shape[0], : shape[1]]
        a = self.second[: shape[0], : shape[1]]
        wo = w * flux
        rows = max(1, TILE_MULTIPLY_ADDS // model.size)  # one BLAS thread per product
        for r in range(0, shape[0], rows):
            np.matmul(wo[r : r + rows], model.T, out=c[r : r + rows])
            np.matmul(w[r : r + rows], model2.T, out=a[r : r + rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(c, a, out=a)
        np.multiply(a, c, out=c)
        np.subtract((wo * flux).sum(1, keepdims=True), c, out=c)
        return a, c

    def near_best(self, flux, w, pairs: _Pairs, chi2_of):
        """(pixel, pair, chi2, scale) of every pair within NEGLIGIBLE_DELTA_CHI2 of its
        pixel's lowest chi2, and that lowest chi2 (inf: none finite), one tile at a time: a
        tile's entries are kept against the lowest chi2 so far, the final one trims them."""
        lowest = np.full(flux.shape[0], np.inf)
        square = np.empty((self.chunk, pairs.flux.shape[1]))
        found = []
        for start in range(0, pairs.i_sfh.size, self.chunk):
            stop = min(pairs.i_sfh.size, start + self.chunk)
            model = pairs.flux[start:stop]
            scale, chi2 = chi2_of(flux, w, model, np.square(model, out=square[: stop - start]))
            np.fmin(lowest, np.fmin.reduce(chi2, axis=1), out=lowest)  # NaN ignored
            entry = np.flatnonzero(chi2 <= (lowest + NEGLIGIBLE_DELTA_CHI2)[:, None])
            pixel, pair = np.divmod(entry, stop - start)
            found.append((pixel, pair + start, chi2.ravel().take(entry), scale.ravel().take(entry)))
        pixel, pair, chi2, scale = (np.concatenate(x) for x in zip(*found, strict=True))
        keep = chi2 <= lowest[pixel] + NEGLIGIBLE_DELTA_CHI2
        return pixel[keep], pair[keep], chi2[keep], scale[keep], lowest


def _gated_chi2(optical: np.ndarray, flux: np.ndarray, w: np.ndarray, model, model2):
    """MAGPHYS' chi2 [pixel, pair] as it computes it: the optical filters, and the infrared
    ones only where the optical chi2 (with the scaling fitted to all) is below 600."""
    wo, opt, ir = w * flux, optical, ~optical
    woo_opt = (wo[:, opt] * flux[:, opt]).sum(1, keepdims=True)
    woo = woo_opt + (wo[:, ir] * flux[:, ir]).sum(1, keepdims=True)
    cross_opt = wo[:, opt] @ model[:, opt].T
    cross = cross_opt + wo[:, ir] @ model[:, ir].T
    norm_opt = w[:, opt] @ model2[:, opt].T
    norm = norm_opt + w[:, ir] @ model2[:, ir].T
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = cross / norm
    total = woo - scale * cross
    chi2_opt = woo_opt - scale * (2 * cross_opt - scale * norm_opt)
    return scale, np.where(chi2_opt < CHI2_IR_LIMIT, total, chi2_opt)


def _block_fits(pairs: _Pairs, pixel, pair, chi2, scale, lowest, buffer) -> list[PixelFit]:
    """The PixelFits of a block of pixels from their entries near the best (their fine
    histograms made in ``buffer``)."""
    npix = lowest.size
    is_best = np.flatnonzero(chi2 == lowest[pixel])
    found, first = np.unique(pixel[is_best], return_index=True)  # the first pair of lowest chi2
    head = is_best[first]
    best_chi2 = np.full(npix, np.inf)
    best_pair = np.zeros(npix, np.int64)
    best_scale = np.zeros(npix)
    best_chi2[found], best_pair[found], best_scale[found] = chi2[head], pair[head], scale[head]
    histograms = buffer[:, :npix]
    _histogram(histograms, pairs, pixel, pair, chi2, scale)
    return _summarise(pairs, histograms, best_chi2, best_pair, best_scale)


def _histogram(histograms, pairs: _Pairs, pixel, pair, chi2, scale) -> None:
    """The fine histograms [bin, pixel] of the likelihoods of the (pixel, pair) entries.

    A parameter of the stellar model alone (or the dust model alone) bins the same for
    every pixel: the likelihoods are first summed per (pixel, model), then binned. The
    scaled ones (a times a model value) bin per entry."""
    npix = histograms.shape[1]
    likelihood = np.exp(-0.5 * chi2)
    i_sfh, i_ir = pairs.i_sfh[pair], pairs.i_ir[pair]
    for source, index, size in (
        ("sfh", i_sfh, pairs.models.sfh_flux.shape[0]),
        ("ir", i_ir, pairs.models.ir_flux.shape[0]),
    ):
        summed = np.bincount(pixel * size + index, likelihood, minlength=npix * size)
        cell = np.flatnonzero(summed)
        rows, model = np.divmod(cell, size)
        for k, parameter in enumerate(PARAMETERS):
            if parameter.source == source and not parameter.scale:
                target = pairs.model_bins[parameter.column][model] * npix + rows
                _put(histograms, k, target, summed[cell])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_scale = np.log10(scale)
    for k, parameter in enumerate(PARAMETERS):
        if parameter.scale:
            log_value = pairs.log_value(parameter.column, i_sfh, i_ir)
            _put(
                histograms,
                k,
                _scaled_bin(parameter, log_value, log_scale) * npix + pixel,
                likelihood,
            )


def _put(histograms: np.ndarray, k: int, target: np.ndarray, amount: np.ndarray) -> None:
    """Parameter k's histograms [bin, pixel]: ``amount`` summed at flat ``target``s."""
    part = histograms[OFFSETS[k] : OFFSETS[k + 1]]
    part[...] = np.bincount(target, amount, minlength=part.size).reshape(part.shape)


def fit_pixel_loop(
    flux: np.ndarray, sigma: np.ndarray, optical: np.ndarray, models: Models
) -> list[PixelFit]:
    """The same fit, plainly: one pixel at a time, every pair at once, every parameter
    binned from every pair (the reference the vectorised fit is checked against)."""
    pairs = _Pairs.of(models)
    flux = np.asarray(flux, float)
    w = weights(flux, np.asarray(sigma, float))
    histograms = np.zeros((OFFSETS[-1], flux.shape[0]))
    best_chi2 = np.full(flux.shape[0], np.inf)
    best_pair = np.zeros(flux.shape[0], dtype=np.int64)
    best_scale = np.zeros(flux.shape[0])
    for row, (o, wp) in enumerate(zip(flux, w, strict=True)):
        with np.errstate(divide="ignore", invalid="ignore"):  # nothing measured: NaN
            scale = (pairs.flux * (wp * o)).sum(1) / (pairs.flux**2 * wp).sum(1)
        residual = wp * (o - scale[:, None] * pairs.flux) ** 2
        chi2_opt = residual[:, optical].sum(1)
        chi2 = chi2_opt + np.where(chi2_opt < CHI2_IR_LIMIT, residual[:, ~optical].sum(1), 0.0)
        if np.isnan(chi2).all():
            continue
        likelihood = np.exp(-0.5 * chi2)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_scale = np.log10(scale)
        for k, parameter in enumerate(PARAMETERS):
            if parameter.scale:
                log_value = pairs.log_value(parameter.column, pairs.i_sfh, pairs.i_ir)
                index = _scaled_bin(parameter, log_value, log_scale)
            else:
                model = pairs.i_sfh if parameter.source == "sfh" else pairs.i_ir
                index = pairs.model_bins[parameter.column][model]
            histograms[OFFSETS[k] : OFFSETS[k + 1], row] = np.bincount(
                index, np.nan_to_num(likelihood), minlength=OFFSETS[k + 1] - OFFSETS[k]
            )
        best_pair[row] = np.nanargmin(chi2)
        best_chi2[row], best_scale[row] = chi2[best_pair[row]], scale[best_pair[row]]
    return _summarise(pairs, histograms, best_chi2, best_pair, best_scale)


def _summarise(pairs: _Pairs, histograms, best_chi2, best_pair, best_scale) -> list[PixelFit]:
    """PixelFits from the fine histograms [bin, pixel] and the best pair of each pixel."""
    i_sfh, i_ir = pairs.i_sfh[best_pair], pairs.i_ir[best_pair]
    ldust = pairs.models.sfh["ldust"][i_sfh]
    values = _pair_values(pairs.models, i_sfh, i_ir)
    columns = [p.column for p in PARAMETERS]
    best = np.column_stack([_scaled(p, values[p.column], best_scale, ldust) for p in PARAMETERS])
    best = best.tolist()
    model_flux = best_scale[:, None] * pairs.flux[best_pair]
    normalised, percentiles = _percentiles(histograms)
    coarse = [
        normalised[OFFSETS[k] // FINE : OFFSETS[k + 1] // FINE] for k in range(len(PARAMETERS))
    ]
    fitted = np.isfinite(best_chi2)
    return [
        PixelFit(
            best_chi2=float(best_chi2[p]),
            i_sfh=int(i_sfh[p]),
            i_ir=int(i_ir[p]),
            scale=float(best_scale[p]),
            best=dict(zip(columns, best[p], strict=True)),
            model_flux=model_flux[p],
            histograms=[h[:, p] for h in coarse],
            percentiles=percentiles[p],
            fitted=bool(fitted[p]),
        )
        for p in range(best_chi2.size)
    ]


def _percentiles(histograms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normalised coarse histograms [coarse bin, pixel] from the fine ones [bin, pixel],
    and their 2.5/16/50/84/97.5 percentiles [pixel, parameter, 5] (linear within a fine
    bin; NaN for an empty histogram).

    The coarse cumulative sums say which coarse bin holds each percentile; only its
    FINE fine bins are then summed up, for every parameter, pixel and percentile at once."""
    npix = histograms.shape[1]
    starts = OFFSETS[:-1] // FINE
    sizes = np.diff(OFFSETS) // FINE
    summed = histograms.reshape(-1, FINE, npix).sum(1)
    cumulative = np.empty_like(summed)
    for k in range(len(PARAMETERS)):
        part = slice(starts[k], starts[k] + sizes[k])
        np.cumsum(summed[part], axis=0, out=cumulative[part])
    total = cumulative[starts + sizes - 1]  # [parameter, pixel]
    inverse = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    coarse = summed * np.repeat(inverse, sizes, axis=0)
    level = np.asarray(PERCENTILES)[:, None, None] * total  # [5, parameter, pixel]
    below = cumulative[None] < np.repeat(level, sizes, axis=1)
    count = np.add.reduceat(below.view(np.uint8), starts, axis=1, dtype=np.int64)
    j = np.minimum(count, sizes[:, None] - 1)  # coarse bin of each percentile, in its parameter
    pixel = np.arange(npix)
    before = np.where(j > 0, cumulative[starts[:, None] + j - 1, pixel], 0.0)
    first = OFFSETS[:-1, None] + j * FINE  # its first fine bin
    where = (first * npix + pixel)[None] + npix * np.arange(FINE)[:, None, None, None]
    fine = histograms.ravel().take(where)  # [FINE, 5, parameter, pixel]
    running = np.cumsum(fine, axis=0)
    running += before
    i = np.minimum((running < level).sum(0), FINE - 1)
    width = np.take_along_axis(fine, i[None], 0)[0]
    upto = np.take_along_axis(running, i[None], 0)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.where(width > 0, (level - (upto - width)) / width, 0.0)
    b = first + i
    values = _LOWER[b] + np.clip(inside, 0.0, 1.0) * _WIDTH[b]  # [5, parameter, pixel]
    values[:, ~(total > 0)] = np.nan
    return coarse, values.transpose(2, 1, 0)


# ---- MAGPHYS' .fit blocks -------------------------------------------------------------
def format_fit(
    pixel_name: str, filters: Sequence[str], flux, sigma, fit: PixelFit, redshift: float
) -> str:
    """One pixel's block, structured as MAGPHYS writes it (observed fluxes, best fit,
    best-fit values and fluxes, then per parameter its histogram, percentiles and the
    theSkyNet2 line, and the theSkyNet parameters of the best model)."""
    header = " #" + "".join(f"{name:>12}" for name in filters)
    lines = [
        f" ####### {pixel_name}",
        "# OBSERVED FLUXES (and errors):",
        header,
        "".join(f"{v:12.3E}" for v in flux),
        "".join(f"{v:12.3E}" for v in sigma),
        "#",
        "# ... Results of fitting the fluxes to the model.....",
        "#",
        "# BEST FIT MODEL: (i_sfh, i_ir, chi2, redshift)",
        f"{fit.i_sfh:10d}{fit.i_ir:10d}{fit.best_chi2:10.3f}{redshift:12.6f}",
        "#.fmu(SFH)...fmu(IR)........mu......tauv........sSFR..........M*.......Ldust......"
        "T_W^BC.....T_C^ISM....xi_C^tot..xi_PAH^tot..xi_MIR^tot....xi_W^tot.....tvism.......Mdust"
        ".....SFR",
        "".join(f"{fit.best[c]:12.4E}" for c in BEST_FIT_ORDER),
        header,
        "".join(f"{v:12.3E}" for v in fit.model_flux),
        "#",
        "# MARGINAL PDF HISTOGRAMS FOR EACH PARAMETER......",
    ]
    for k, parameter in enumerate(PARAMETERS):
        step = (parameter.high - parameter.low) / parameter.bins
        centres = parameter.low + step * (np.arange(parameter.bins) + 0.5)
        lines.append(f"# ... {parameter.title} ...")
        lines += [f"{c:12.4E}{p:12.3E}" for c, p in zip(centres, fit.histograms[k], strict=True)]
        lines.append("#....percentiles of the PDF......")
        lines.append("".join(f"{v:12.4E}" for v in fit.percentiles[k]))
        lines.append("# theSkyNet2")
        peak = centres[int(np.argmax(fit.histograms[k]))]
        lines.append(f"{peak:12.4E}{centres[0]:12.4E}{centres[-1]:12.4E}{step:12.4E}")
    lines.append(" #...theSkyNet parameters of this model")
    lines.append(
        f"{fit.i_sfh:15d}{fit.i_ir:15d}{fit.scale:20.6E}{fit.best['fmu_sfh']:20.4E}{redshift:10.2E}"
    )
    return "\n".join(lines) + "\n"


def parse_fit(text: str) -> dict[str, dict[str, list[float]]]:
    """Percentiles by parameter column, per pixel name, from MAGPHYS-structured text."""
    titles = {p.title: p.column for p in PARAMETERS}
    out: dict[str, dict[str, list[float]]] = {}
    pixel = parameter = None
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.startswith(" ####### "):
            pixel = line.split()[1]
            out[pixel] = {}
        elif line.startswith("# ... ") and line.endswith(" ..."):
            parameter = titles.get(line[6:-4])
        elif line.startswith("#....percentiles") and pixel and parameter:
            out[pixel][parameter] = [float(v) for v in lines[number + 1].split()]
    return out


def compare_fit_texts(first: str, second: str, rtol: float = 1e-4) -> list[str]:
    """POGS' validator: line by line, comment lines equal, numbers within ``rtol`` relative;
    the differences found (empty: valid)."""
    problems = []
    a, b = first.splitlines(), second.splitlines()
    if len(a) != len(b):
        problems.append(f"{len(a)} lines against {len(b)}")
    for number, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x.lstrip().startswith("#"):
            if x != y:
                problems.append(f"line {number}: {x!r} != {y!r}")
            continue
        fx, fy = x.split(), y.split()
        try:
            vx, vy = np.array(fx, float), np.array(fy, float)
        except ValueError:
            if fx != fy:
                problems.append(f"line {number}: {x!r} != {y!r}")
            continue
        if vx.shape != vy.shape or not np.allclose(vx, vy, rtol=rtol, atol=0.0, equal_nan=True):
            problems.append(f"line {number}: {x.strip()} != {y.strip()}")
    return problems
