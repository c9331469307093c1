"""MAGPHYS' per-pixel SED fit, vectorised over pixels and model pairs.

For every pixel and every allowed (stellar, dust) model pair the best scaling
``a = sum(w o m) / sum(w m^2)`` (the stellar mass, w = 1/sigma^2) and the chi-square over
the optical filters (rest wavelength < 2.5 microns) are computed; the infrared filters are
added only where the optical chi-square is below 600, as MAGPHYS does. Likelihoods
``exp(-chi2/2)`` are summed into histograms of the 16 POGS parameters, from which come the
2.5/16/50/84/97.5 percentiles; the pair of lowest chi-square is the best fit.

All sums are matrix products (BLAS) over a chunk of pairs at a time, so memory stays
bounded whatever the library size. :func:`fit_pixel_loop` is the same fit written
plainly, one pixel at a time, to check the vectorised one against.

Pure numpy; nothing here knows about files, databases or the DPU, except the text
formatting of MAGPHYS' ``.fit`` blocks (:func:`format_fit`, :func:`parse_fit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CHI2_IR_LIMIT = 600.0
OPTICAL_LIMIT_UM = 2.5
SIGMA_FLOOR = 0.05  # MAGPHYS: sigma is at least 5 % of the flux
PERCENTILES = (0.025, 0.16, 0.5, 0.84, 0.975)
FINE = 10  # fine bins per output bin for the percentiles
#: Pairs this far above a pixel's lowest chi2 weigh < 1e-20 of it: left out of the sums.
NEGLIGIBLE_DELTA_CHI2 = 92.0
#: The scaling's Gaussian is spread over +-SPREAD_SIGMAS, at most MAX_SPREAD fine bins wide.
SPREAD_SIGMAS = 5.0
MAX_SPREAD = 20.0
#: Memory for the chi2 and scaling of a block of pixels against every pair.
CACHE_BYTES = 256 * 2**20


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


def _fine_bin(parameter: Parameter, value: np.ndarray) -> np.ndarray:
    """Fine-bin index of each value (outside the range: the end bins)."""
    if parameter.log:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.log10(np.where(value > 0, value, 1e-300))
    n = parameter.bins * FINE
    index = np.floor((value - parameter.low) / (parameter.high - parameter.low) * n)
    return np.clip(np.nan_to_num(index, nan=0), 0, n - 1).astype(np.int64)


def _log_spread(scale: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Standard deviation of log10(a) for each pair: the scaling's own uncertainty,
    sigma_a = 1 / sqrt(sum(w m^2)), which MAGPHYS leaves out (its PDFs of the scaled
    parameters are then spikes at a-hat, too narrow for a library of a few thousand pairs)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(1.0 / np.sqrt(norm) / scale) / np.log(10)


def _bins(parameter: Parameter, value: np.ndarray, spread: np.ndarray):
    """(entry, fine-bin index, share) triples, flat: one bin with share 1 per value for a
    parameter the scaling leaves alone; for a scaled one, a Gaussian in log10 of width
    ``spread`` over the bins within +-SPREAD_SIGMAS (its tails in the outermost two).
    Outside the range: the end bins. Entries are grouped by how many bins they cover, so
    a few wide ones do not widen them all."""
    entries = np.arange(value.size)
    if not parameter.scale:
        return entries, _fine_bin(parameter, value), np.ones(value.size)
    from scipy.special import ndtr

    n = parameter.bins * FINE
    step = (parameter.high - parameter.low) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.log10(np.where(value > 0, value, 1e-300))
    sigma = np.clip(np.nan_to_num(spread, nan=step, posinf=step), step * 1e-3, MAX_SPREAD * step)
    first = np.floor((centre - SPREAD_SIGMAS * sigma - parameter.low) / step)
    last = np.floor((centre + SPREAD_SIGMAS * sigma - parameter.low) / step)
    count = (last - first + 1).astype(np.int64)
    out_entry, out_index, out_share = [], [], []
    limits = np.array([2, 8, 32, 128, np.iinfo(np.int64).max])
    group = np.searchsorted(limits, count)
    for g in np.unique(group):
        rows = entries[group == g]
        width = int(count[rows].max())
        columns = np.arange(width + 1)[None, :]
        edges = (parameter.low + (first[rows, None] + columns) * step - centre[rows, None]) / sigma[
            rows, None
        ]
        cdf = ndtr(edges)
        cdf[:, 0] = 0.0  # the lower tail goes to the first bin
        inside = columns[:, 1:] < count[rows, None]
        cdf[np.arange(rows.size), count[rows]] = 1.0  # the upper tail to the last one
        share = np.where(inside, np.diff(cdf, axis=1), 0.0)
        keep = inside.ravel()
        out_entry.append(np.repeat(rows, width)[keep])
        out_index.append((first[rows, None] + columns[:, :-1]).ravel()[keep])
        out_share.append(share.ravel()[keep])
    index = np.clip(np.concatenate(out_index), 0, n - 1).astype(np.int64)
    return np.concatenate(out_entry), index, np.concatenate(out_share)


#: Fine-bin offsets of each parameter in a pixel's row of histograms.
OFFSETS = np.concatenate([[0], np.cumsum([p.bins * FINE for p in PARAMETERS])])


@dataclass(frozen=True)
class _Pairs:
    """The energy-balanced pairs of a library: their model fluxes (and squares), their
    parameter values, and the fine bin of every parameter the scaling leaves alone."""

    i_sfh: np.ndarray
    i_ir: np.ndarray
    flux: np.ndarray  # [pair, filter]
    flux2: np.ndarray
    values: dict[str, np.ndarray]
    ldust: np.ndarray

    @classmethod
    def of(cls, models: Models) -> _Pairs:
        i_sfh, i_ir = allowed_pairs(models.sfh["fmu_sfh"], models.ir["fmu_ir"])
        ldust = models.sfh["ldust"][i_sfh]
        flux = models.sfh_flux[i_sfh] + ldust[:, None] * models.ir_flux[i_ir]
        return cls(i_sfh, i_ir, flux, flux**2, _pair_values(models, i_sfh, i_ir), ldust)


def fit_pixels(
    flux: np.ndarray,
    sigma: np.ndarray,
    optical: np.ndarray,
    models: Models,
    chunk: int = 1024,
) -> list[PixelFit]:
    """Fit every pixel (rows of ``flux``/``sigma`` in Jy, one column per filter) against
    every energy-balanced pair of ``models``.

    The chi-square of every pixel and pair comes from two matrix products per tile of
    ``chunk`` pairs (small enough to stay in cache); pixels are taken in blocks whose
    chi-square and scaling arrays fit in ``CACHE_BYTES``. Only the pairs within
    ``NEGLIGIBLE_DELTA_CHI2`` of a pixel's lowest chi-square go into its histograms: those
    left out weigh less than 1e-20 of the best pair each, so with fewer than 1e6 pairs the
    normalised histograms differ from the full sums by less than 1e-14."""
    flux = np.asarray(flux, float)
    w = weights(flux, np.asarray(sigma, float))
    pairs = _Pairs.of(models)
    npix = flux.shape[0]
    histograms = np.zeros((npix, OFFSETS[-1]))
    best_chi2 = np.full(npix, np.inf)
    best_pair = np.zeros(npix, dtype=np.int64)
    best_scale = np.zeros(npix)
    rows = max(1, CACHE_BYTES // (16 * max(1, pairs.i_sfh.size)))
    for first in range(0, npix, rows):
        block = slice(first, min(npix, first + rows))
        scale, chi2 = _chi2(flux[block], w[block], optical, pairs, chunk)
        lowest = np.fmin.reduce(chi2, axis=1)  # NaN (a model dark in every band) ignored
        pixel, pair = np.nonzero(chi2 <= (lowest + NEGLIGIBLE_DELTA_CHI2)[:, None])
        chi2, scale = chi2[pixel, pair], scale[pixel, pair]
        order = np.lexsort((chi2, pixel))  # stable: the first pair among equal chi2
        head = order[np.searchsorted(pixel[order], np.unique(pixel))]
        best_chi2[first + pixel[head]] = chi2[head]
        best_pair[first + pixel[head]] = pair[head]
        best_scale[first + pixel[head]] = scale[head]
        norm = np.einsum("ef,ef->e", w[block][pixel], pairs.flux2[pair])
        _histogram(histograms[block], pairs, models, pixel, pair, chi2, scale, norm)
    return _summarise(models, pairs, w, histograms, best_chi2, best_pair, best_scale)


def _chi2(flux: np.ndarray, w: np.ndarray, optical: np.ndarray, pairs: _Pairs, chunk: int):
    """(best scale, chi2) [pixel, pair] for every pair.

    With c = sum(w o m), n = sum(w m^2) and a = c/n, the chi2 over all filters is
    sum(w o^2) - a c. It is MAGPHYS' chi2 wherever it is below 600 (the optical part is
    then below 600 too, so the infrared filters count); where it is not, MAGPHYS' is 600 or
    more as well. So only a pixel whose lowest chi2 comes within NEGLIGIBLE_DELTA_CHI2 of
    600 needs the optical part on its own (:func:`_gated_chi2`)."""
    wo = w * flux
    woo = (wo * flux).sum(1, keepdims=True)
    npix, npairs = flux.shape[0], pairs.i_sfh.size
    scale, chi2 = np.empty((npix, npairs)), np.empty((npix, npairs))
    cross, norm = np.empty((npix, chunk)), np.empty((npix, chunk))
    for start in range(0, npairs, chunk):
        stop = min(npairs, start + chunk)
        c, n = cross[:, : stop - start], norm[:, : stop - start]
        np.matmul(wo, pairs.flux[start:stop].T, out=c)
        np.matmul(w, pairs.flux2[start:stop].T, out=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.divide(c, n, out=scale[:, start:stop])
        np.multiply(a, c, out=c)
        np.subtract(woo, c, out=chi2[:, start:stop])
    near = np.fmin.reduce(chi2, axis=1) >= CHI2_IR_LIMIT - NEGLIGIBLE_DELTA_CHI2
    if near.any():
        chi2[near] = _gated_chi2(flux[near], w[near], optical, pairs.flux)
    return scale, chi2


def _gated_chi2(flux: np.ndarray, w: np.ndarray, optical: np.ndarray, model: np.ndarray):
    """MAGPHYS' chi2 [pixel, pair] as it computes it: the optical filters, and the infrared
    ones only where the optical chi2 (with the scaling fitted to all) is below 600."""
    wo, opt, ir = w * flux, optical, ~optical
    woo_opt = (wo[:, opt] * flux[:, opt]).sum(1, keepdims=True)
    woo = woo_opt + (wo[:, ir] * flux[:, ir]).sum(1, keepdims=True)
    cross_opt = wo[:, opt] @ model[:, opt].T
    cross = cross_opt + wo[:, ir] @ model[:, ir].T
    norm_opt = w[:, opt] @ (model[:, opt] ** 2).T
    norm = norm_opt + w[:, ir] @ (model[:, ir] ** 2).T
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = cross / norm
    total = woo - scale * cross
    chi2_opt = woo_opt - scale * (2 * cross_opt - scale * norm_opt)
    return np.where(chi2_opt < CHI2_IR_LIMIT, total, chi2_opt)


def _histogram(histograms, pairs: _Pairs, models: Models, pixel, pair, chi2, scale, norm) -> None:
    """Add the likelihood of each (pixel, pair) entry to the pixels' fine histograms.

    A parameter of the stellar model alone (or the dust model alone) bins the same for
    every pixel: the likelihoods are first summed per (pixel, model), then binned. The
    scaled ones (a times a model value) bin per entry."""
    npix = histograms.shape[0]
    likelihood = np.exp(-0.5 * chi2)
    targets, amounts = [], []
    for source, index, size in (
        ("sfh", pairs.i_sfh, models.sfh_flux.shape[0]),
        ("ir", pairs.i_ir, models.ir_flux.shape[0]),
    ):
        summed = np.bincount(pixel * size + index[pair], likelihood, minlength=npix * size)
        cell = np.flatnonzero(summed)
        rows, model = np.divmod(cell, size)
        values = models.sfh if source == "sfh" else models.ir
        for k, parameter in enumerate(PARAMETERS):
            if parameter.source == source and not parameter.scale:
                targets.append(
                    rows * OFFSETS[-1]
                    + OFFSETS[k]
                    + _fine_bin(parameter, values[parameter.key][model])
                )
                amounts.append(summed[cell])
    spread = _log_spread(scale, norm)
    for part in range(0, pixel.size, 8192):  # bounded temporaries, in cache
        e = slice(part, part + 8192)
        for k, parameter in enumerate(PARAMETERS):
            if parameter.scale:
                value = _scaled(
                    parameter,
                    pairs.values[parameter.column][pair[e]],
                    scale[e],
                    pairs.ldust[pair[e]],
                )
                entry, index, share = _bins(parameter, value, spread[e])
                targets.append(pixel[e][entry] * OFFSETS[-1] + OFFSETS[k] + index)
                amounts.append(likelihood[e][entry] * share)
    histograms += np.bincount(
        np.concatenate(targets), np.concatenate(amounts), minlength=histograms.size
    ).reshape(histograms.shape)


def fit_pixel_loop(
    flux: np.ndarray, sigma: np.ndarray, optical: np.ndarray, models: Models
) -> list[PixelFit]:
    """The same fit, plainly: one pixel at a time, every pair at once, every parameter
    binned from every pair (the reference the vectorised fit is checked against)."""
    pairs = _Pairs.of(models)
    flux = np.asarray(flux, float)
    w = weights(flux, np.asarray(sigma, float))
    histograms = np.zeros((flux.shape[0], OFFSETS[-1]))
    best_chi2 = np.full(flux.shape[0], np.inf)
    best_pair = np.zeros(flux.shape[0], dtype=np.int64)
    best_scale = np.zeros(flux.shape[0])
    for row, (o, wp) in enumerate(zip(flux, w, strict=True)):
        scale = (pairs.flux * (wp * o)).sum(1) / (pairs.flux2 * wp).sum(1)
        residual = wp * (o - scale[:, None] * pairs.flux) ** 2
        chi2_opt = residual[:, optical].sum(1)
        chi2 = chi2_opt + np.where(chi2_opt < CHI2_IR_LIMIT, residual[:, ~optical].sum(1), 0.0)
        if np.isnan(chi2).all():
            continue
        likelihood = np.exp(-0.5 * chi2)
        spread = _log_spread(scale, (pairs.flux2 * wp).sum(1))
        for k, parameter in enumerate(PARAMETERS):
            value = _scaled(parameter, pairs.values[parameter.column], scale, pairs.ldust)
            entry, index, share = _bins(parameter, value, spread)
            histograms[row, OFFSETS[k] : OFFSETS[k + 1]] = np.bincount(
                index,
                np.nan_to_num(likelihood[entry] * share),
                minlength=OFFSETS[k + 1] - OFFSETS[k],
            )
        best_pair[row] = np.nanargmin(chi2)
        best_chi2[row], best_scale[row] = chi2[best_pair[row]], scale[best_pair[row]]
    return _summarise(models, pairs, w, histograms, best_chi2, best_pair, best_scale)


def _summarise(models, pairs: _Pairs, w, histograms, best_chi2, best_pair, best_scale):
    """PixelFits from the fine histograms [pixel, bin] and the best pair of each pixel."""
    i_sfh, i_ir = pairs.i_sfh[best_pair], pairs.i_ir[best_pair]
    ldust = pairs.ldust[best_pair]
    best = {
        p.column: _scaled(p, pairs.values[p.column][best_pair], best_scale, ldust)
        for p in PARAMETERS
    }
    model_flux = best_scale[:, None] * pairs.flux[best_pair]
    coarse, percentiles = [], []
    for k, parameter in enumerate(PARAMETERS):
        fine = histograms[:, OFFSETS[k] : OFFSETS[k + 1]]
        total = fine.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            fine = np.where(total > 0, fine / total, fine)
        coarse.append(fine.reshape(-1, parameter.bins, FINE).sum(2))
        percentiles.append(_percentiles(parameter, fine))
    percentiles = np.stack(percentiles, axis=1)  # [pixel, parameter, 5]
    fitted = np.isfinite(best_chi2)
    return [
        PixelFit(
            best_chi2=float(best_chi2[p]),
            i_sfh=int(i_sfh[p]),
            i_ir=int(i_ir[p]),
            scale=float(best_scale[p]),
            best={column: float(v[p]) for column, v in best.items()},
            model_flux=model_flux[p],
            histograms=[h[p] for h in coarse],
            percentiles=percentiles[p],
            fitted=bool(fitted[p]),
        )
        for p in range(best_chi2.size)
    ]


def _percentiles(parameter: Parameter, fine: np.ndarray) -> np.ndarray:
    """[pixel, 5]: values below which 2.5/16/50/84/97.5 % of each normalised fine
    histogram [pixel, bin] lies (linear within a bin); NaN for an empty one."""
    edges = np.linspace(parameter.low, parameter.high, fine.shape[1] + 1)
    cumulative = np.cumsum(fine, axis=1)
    rows = np.arange(fine.shape[0])
    out = np.empty((fine.shape[0], len(PERCENTILES)))
    for j, q in enumerate(PERCENTILES):
        i = np.minimum((cumulative < q).sum(1), fine.shape[1] - 1)
        width = fine[rows, i]
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = np.where(width > 0, (q - (cumulative[rows, i] - width)) / width, 0.0)
        out[:, j] = edges[i] + np.clip(inside, 0.0, 1.0) * (edges[i + 1] - edges[i])
    out[~(cumulative[:, -1] > 0)] = np.nan
    return out


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
