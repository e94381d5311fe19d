"""Detector model of the generator: track resolution, covariance, fit quality and MiniAOD packing.

The CMS dataset was made from MiniAOD packed candidates, whose track covariance is stored in the
(q/p, lambda, phi, dxy, dsz) parametrisation of `reco::Track` and quantised when packed (8-bit
log steps for the angular and momentum terms, IEEE half floats of value x 1e4 for the impact
parameter terms). `ResolutionModel` holds every parameter (written into each file); `covariance`
gives the true per-track matrix, `measure` draws the measured parameters from it, and
`packed_covariance` returns the eight stored entries as the producer read them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UM_TO_CM = 1e-4
MRAD = 1e-3


@dataclass(frozen=True)
class ResolutionModel:
    """Every parameter of the detector model; written into every file as provenance.

    Resolutions follow the CMS Phase-0 tracker (barrel values, multiple scattering scaled with
    sin(theta)); PV = the hard-scatter primary vertex (PV[0]).
    """

    pt_rel_const: float = 0.007  # sigma(pT)/pT = 0.7% (+) 0.015% * pT[GeV]
    pt_rel_slope_per_gev: float = 1.5e-4
    dxy_const_um: float = 10.0  # sigma(dxy) = 10 um (+) 90 um / (pT sqrt(sin theta))
    dxy_msc_um_gev: float = 90.0
    dsz_const_um: float = 25.0  # sigma(dsz) = 25 um (+) 150 um / (pT sqrt(sin theta))
    dsz_msc_um_gev: float = 150.0
    phi_const_mrad: float = 0.15  # sigma(phi) = 0.15 mrad (+) 1.0 mrad / pT
    phi_msc_mrad_gev: float = 1.0
    lambda_const_mrad: float = 0.2  # sigma(lambda) = 0.2 mrad (+) 1.0 mrad / p
    lambda_msc_mrad_gev: float = 1.0
    rho_dxy_dsz: float = 0.05  # correlation coefficients of the non-zero off-diagonal terms
    rho_phi_dxy: float = -0.5
    rho_lambda_dsz: float = -0.5
    hits_min: int = 8  # track-fit degrees of freedom drawn uniformly in [hits_min, hits_max]
    hits_max: int = 30
    badfit_fraction: float = 0.05  # share of tracks whose chi2 is inflated by badfit_scale
    badfit_scale: float = 3.0
    high_purity_max_normchi2: float = 2.0  # highPurity (quality 5) below, loose (1) above
    pv_xy_um: float = 10.0  # PV[0] position resolution per axis
    pv_z_um: float = 15.0
    sv_const_um: float = 20.0  # SV position: 20 um (+) 3% of the flight distance, per axis
    sv_rel: float = 0.03
    sv_min_dxysig: float = 2.5  # IVF vertex finder cuts
    sv_min_d3dsig: float = 0.5
    sv_min_cos: float = 0.95
    sv_min_tracks: int = 2
    vertex_merge_um: float = 1.0  # tracks produced closer than this share a vertex
    track_min_pt: float = 0.95
    track_max_abs_eta: float = 2.5
    pu_vertex_min_tracks: int = 4  # a pileup vertex is reconstructed with >= this many tracks
    pu_vertex_track_min_pt: float = 0.5
    vertex_separation_cm: float = 0.1  # closer pileup vertices merge into PV[0]
    beam_sigma_z_cm: float = 3.5  # luminous region along z


def _quadrature(a, b):
    return np.sqrt(a * a + b * b)


def resolutions(res: ResolutionModel, pt, p, sin_theta):
    """sigma of (q/p [1/GeV], lambda [rad], phi [rad], dxy [cm], dsz [cm]) per track."""
    msc = pt * np.sqrt(sin_theta)
    return (
        _quadrature(res.pt_rel_const, res.pt_rel_slope_per_gev * pt) / p,
        _quadrature(res.lambda_const_mrad, res.lambda_msc_mrad_gev / p) * MRAD,
        _quadrature(res.phi_const_mrad, res.phi_msc_mrad_gev / pt) * MRAD,
        _quadrature(res.dxy_const_um, res.dxy_msc_um_gev / msc) * UM_TO_CM,
        _quadrature(res.dsz_const_um, res.dsz_msc_um_gev / msc) * UM_TO_CM,
    )


def covariance(res: ResolutionModel, sigmas) -> np.ndarray:
    """(..., 5, 5) covariance in (q/p, lambda, phi, dxy, dsz) with the three MiniAOD
    off-diagonal terms (lambda-dsz, phi-dxy, dxy-dsz); all others are zero as in the
    pseudo-track the producer read."""
    s = np.stack(sigmas, axis=-1)
    cov = np.zeros(s.shape + (5,))
    idx = np.arange(5)
    cov[..., idx, idx] = s * s
    for (i, j), rho in (((1, 4), res.rho_lambda_dsz), ((2, 3), res.rho_phi_dxy),
                        ((3, 4), res.rho_dxy_dsz)):
        cov[..., i, j] = cov[..., j, i] = rho * s[..., i] * s[..., j]
    return cov


def measure(cov: np.ndarray, gauss: np.ndarray) -> np.ndarray:
    """Correlated measurement errors (..., 5) drawn from `cov` with standard normals `gauss`."""
    chol = np.linalg.cholesky(cov)
    return np.einsum("...ij,...j->...i", chol, gauss)


def fit_quality(res: ResolutionModel, rng: np.random.Generator, shape):
    """Integer normalised chi2 (uint8 in MiniAOD, truncated) and the quality bit mask
    (1 = loose, 5 = loose + highPurity), drawn for `shape` tracks."""
    ndf = rng.integers(res.hits_min, res.hits_max + 1, size=shape)
    chi2 = rng.chisquare(ndf) * np.where(rng.random(shape) < res.badfit_fraction,
                                         res.badfit_scale, 1.0)
    normchi2 = chi2 / ndf
    quality = np.where(normchi2 < res.high_purity_max_normchi2, 5.0, 1.0)
    return np.minimum(np.floor(normchi2), 255.0), quality


# --- MiniAOD packing (DataFormats/PatCandidates liblogintpack and PackedCandidate) -------

def _pack8log(x, lmin: float, lmax: float, ceil: bool) -> np.ndarray:
    """int8 codes of the old liblogintpack pack8log / pack8logCeil (base 128)."""
    with np.errstate(divide="ignore"):
        centered = ((np.log(np.abs(x)).astype(np.float32) - np.float32(lmin))
                    / np.float32(lmax - lmin) * np.float32(128))
    r = np.ceil(centered) if ceil else np.trunc(centered)
    r = np.where(x < 0, -r, r)
    r = np.where(centered < 0, 0, r)  # tiny values: code 0, whatever the sign
    return np.where(centered >= 127, 127, r)  # saturation keeps code +127


def _unpack8log(code, lmin: float, lmax: float) -> np.ndarray:
    val = np.exp(np.float32(lmin) + np.abs(code).astype(np.float32) / np.float32(128)
                 * np.float32(lmax - lmin)).astype(np.float32)
    return np.where(code < 0, -val, val)


def quantise_log(x, lmin: float, lmax: float, ceil: bool = False) -> np.ndarray:
    """The value MiniAOD reads back after 8-bit log packing in [exp(lmin), exp(lmax)]."""
    return _unpack8log(_pack8log(x, lmin, lmax, ceil), lmin, lmax)


def quantise_half(x) -> np.ndarray:
    """float16(x * 1e4) / 1e4, the packing of the dxy/dsz covariance terms."""
    return (np.asarray(x * 1e4, np.float32).astype(np.float16).astype(np.float32) / 1e4)


def packed_covariance(cov: np.ndarray, pt) -> dict[str, np.ndarray]:
    """The eight covariance features as the producer read them from the pseudo-track."""
    return {
        "dptdpt": quantise_log(cov[..., 0, 0] * pt * pt, -15, 0, ceil=True) / (pt * pt),
        "detadeta": quantise_log(cov[..., 1, 1], -20, -5, ceil=True),
        "dphidphi": quantise_log(cov[..., 2, 2] * pt * pt, -15, 0, ceil=True) / (pt * pt),
        "dxydxy": quantise_half(cov[..., 3, 3]),
        "dzdz": quantise_half(cov[..., 4, 4]),
        "dxydz": quantise_half(cov[..., 3, 4]),
        "dphidxy": quantise_log(cov[..., 2, 3], -17, -4),
        "dlambdadz": quantise_log(cov[..., 1, 4], -17, -4),
    }
