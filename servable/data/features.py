"""CMS track, secondary-vertex and jet features from generator-level particles, vectorised.

Everything works on padded numpy arrays of shape (jets, slots, ...) with a boolean mask, so
one call handles a whole batch of jets; there is no Python loop over jets or tracks.
The detector is a documented model (`ResolutionModel`): straight tracks from the true
production vertex, gaussian impact-parameter resolution, secondary vertices made of tracks
that share a true displaced vertex, smeared, and kept above a flight significance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servable.data import schema

PION_MASS = 0.13957
MM_TO_CM = 0.1
UM_TO_MM = 1e-3


@dataclass(frozen=True)
class ResolutionModel:
    """Detector model of the generator; written into every file as provenance."""

    d0_const_um: float = 10.0  # sigma(d0) = 10 um (+) 90 um / pT[GeV]
    d0_msc_um_gev: float = 90.0
    dz_const_um: float = 25.0  # sigma(dz) = 25 um (+) 150 um / pT[GeV]
    dz_msc_um_gev: float = 150.0
    pt_rel_const: float = 0.005  # sigma(pT)/pT = 0.5% (+) 0.015% * pT[GeV]
    pt_rel_slope_per_gev: float = 1.5e-4
    angle_const_rad: float = 5e-4  # sigma(eta), sigma(phi) = 0.5 mrad (+) 2 mrad / pT[GeV]
    angle_msc_rad_gev: float = 2e-3
    rho_dxy_dz: float = 0.05  # correlation coefficients of the track covariance
    rho_phi_dxy: float = -0.4
    rho_lambda_dz: float = -0.4
    hits_min: int = 8  # track-fit degrees of freedom drawn uniformly in [hits_min, hits_max]
    hits_max: int = 30
    badfit_fraction: float = 0.05  # share of tracks whose chi2 is inflated by badfit_scale
    badfit_scale: float = 3.0
    sv_const_um: float = 20.0  # SV position: 20 um (+) 3% of the flight distance, per axis
    sv_rel: float = 0.03
    sv_min_d3dsig: float = 3.0
    sv_min_tracks: int = 2
    vertex_merge_um: float = 1.0  # tracks produced closer than this share a vertex
    track_min_pt: float = 0.95
    track_max_abs_eta: float = 2.5


def _quadrature(a, b):
    return np.sqrt(a * a + b * b)


def eta_phi(px, py, pz):
    """Pseudorapidity and azimuth; works on numpy and awkward arrays (pT = 0 gives eta = 0)."""
    pt = np.hypot(px, py)
    return np.arcsinh(pz / (pt + (pt == 0))), np.arctan2(py, px)


def delta_phi(a, b):
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2):
    return np.hypot(eta1 - eta2, delta_phi(phi1, phi2))


def _unit(v):
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def _mass(e, p):
    return np.sqrt(np.clip(e * e - np.sum(p * p, axis=-1), 0, None))


def _sorted_desc(values, mask, k, default):
    """Per jet, the k largest masked values, padded with `default`."""
    v = np.where(mask, values, -np.inf)
    top = -np.sort(-v, axis=1)[:, :k]
    if top.shape[1] < k:
        top = np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-np.inf)
    return np.where(np.isfinite(top), top, default)


@dataclass
class ParticleBatch:
    """Padded tracks of a batch of jets (already pT-sorted, at most 60), and the jets."""

    p: np.ndarray  # (n, T, 3) track momenta, GeV
    e: np.ndarray  # (n, T) energies
    vertex: np.ndarray  # (n, T, 3) true production vertex, mm
    mask: np.ndarray  # (n, T)
    jet_p: np.ndarray  # (n, 3)
    jet_e: np.ndarray  # (n,)
    subjet_axes: np.ndarray  # (n, 2, 3) exclusive-kT subjet momenta, leading first


def track_and_vertex_features(batch: ParticleBatch, rng: np.random.Generator,
                              res: ResolutionModel):
    """Tracks (n, 30, 60), vertices (n, 14, 5) and jet features (n, 27) for a batch of jets."""
    n, T = batch.mask.shape
    mask = batch.mask
    p, e, v = batch.p, batch.e, batch.vertex
    px, py, pz = p[..., 0], p[..., 1], p[..., 2]
    pt = np.where(mask, np.hypot(px, py), 1.0)
    pabs = np.where(mask, np.linalg.norm(p, axis=-1), 1.0)
    eta, phi = eta_phi(px, py, pz)
    jet_pt = np.hypot(batch.jet_p[:, 0], batch.jet_p[:, 1])
    jet_eta, jet_phi = eta_phi(batch.jet_p[:, 0], batch.jet_p[:, 1], batch.jet_p[:, 2])
    axes = batch.subjet_axes
    ax_eta, ax_phi = eta_phi(axes[..., 0], axes[..., 1], axes[..., 2])  # (n, 2)

    # every random draw has a fixed shape, so a seed gives the same file whatever is kept
    g_d0, g_dz = rng.standard_normal((2, n, T))
    ndf = rng.integers(res.hits_min, res.hits_max + 1, size=(n, T))
    chi2 = rng.chisquare(ndf) * np.where(rng.random((n, T)) < res.badfit_fraction,
                                         res.badfit_scale, 1.0)
    g_sv = rng.standard_normal((n, T, 3))

    # --- impact parameters of the measured (smeared) straight track --------------------
    sig_d0 = _quadrature(res.d0_const_um, res.d0_msc_um_gev / pt) * UM_TO_MM
    sig_dz = _quadrature(res.dz_const_um, res.dz_msc_um_gev / pt) * UM_TO_MM
    u = np.stack([-py / pt, px / pt, np.zeros_like(pt)], axis=-1)  # transverse, normal to pT
    z_hat = np.array([0.0, 0.0, 1.0])
    v_meas = v + (sig_d0 * g_d0)[..., None] * u + (sig_dz * g_dz)[..., None] * z_hat
    dxy = np.sum(v_meas * u, axis=-1)  # CMS: (-x py + y px) / pT
    dz = v_meas[..., 2] - (v_meas[..., 0] * px + v_meas[..., 1] * py) / pt * pz / pt
    p_hat = p / pabs[..., None]
    pca3 = v_meas - np.sum(v_meas * p_hat, axis=-1, keepdims=True) * p_hat
    ip3 = np.linalg.norm(pca3, axis=-1)
    e3 = _unit(pca3)
    z_perp = z_hat - p_hat[..., 2:3] * p_hat
    sig_3d = _quadrature(sig_d0 * np.sum(u * e3, -1), sig_dz * np.sum(z_perp * e3, -1))
    sig_3d = np.where(ip3 > 0, sig_3d, _quadrature(sig_d0, sig_dz))
    pca2 = dxy[..., None] * u

    # sign against the nearer subjet axis (86% vs 55% right-signed b tracks with the fat jet)
    dr_axes = delta_r(eta[..., None], phi[..., None], ax_eta[:, None, :], ax_phi[:, None, :])
    nearer = np.argmin(dr_axes, axis=-1)  # (n, T)
    axis_dir = _unit(np.take_along_axis(axes, nearer[..., None], axis=1))
    sign2 = np.where(np.sum(pca2[..., :2] * axis_dir[..., :2], -1) >= 0, 1.0, -1.0)
    sign3 = np.where(np.sum(pca3 * axis_dir, -1) >= 0, 1.0, -1.0)
    sip2d = sign2 * np.abs(dxy)
    sip3d = sign3 * ip3
    sip2d_sig = sip2d / sig_d0
    sip3d_sig = sip3d / sig_3d
    cross = np.cross(p_hat, axis_dir)
    cross_norm = np.linalg.norm(cross, axis=-1)
    jet_dist = -np.abs(np.sum(v_meas * _unit(cross), -1))
    jet_dist = np.where(cross_norm > 0, jet_dist, 0.0)

    # --- momenta relative to the fat-jet axis -------------------------------------------
    jet_hat = _unit(batch.jet_p)[:, None, :]
    p_par = np.sum(p * jet_hat, -1)
    p_perp = np.linalg.norm(np.cross(p, jet_hat), axis=-1)
    eta_rel_btag = 0.5 * np.log(np.clip(pabs + p_par, 1e-12, None)
                                / np.clip(pabs - p_par, 1e-12, None))

    # --- resolution-model covariance --------------------------------------------------
    sig_pt = pt * _quadrature(res.pt_rel_const, res.pt_rel_slope_per_gev * pt)
    sig_ang = _quadrature(res.angle_const_rad, res.angle_msc_rad_gev / pt)
    sin_theta = pt / pabs
    sig_lambda = sig_ang * sin_theta  # d(lambda) = sin(theta) d(eta)
    sig_d0_cm, sig_dz_cm = sig_d0 * MM_TO_CM, sig_dz * MM_TO_CM
    normchi2 = chi2 / ndf
    quality = np.select([normchi2 < 2.0, normchi2 < 5.0], [2.0, 1.0], 0.0)

    # --- secondary vertices: tracks sharing a true displaced production vertex ----------
    displaced = mask & (np.linalg.norm(v, axis=-1) > res.vertex_merge_um * UM_TO_MM)
    dist = np.linalg.norm(v[:, :, None, :] - v[:, None, :, :], axis=-1)
    same = (dist < res.vertex_merge_um * UM_TO_MM) & displaced[:, :, None] & displaced[:, None, :]
    rep = np.argmax(same, axis=2)  # first track of each track's vertex
    member = (rep[:, None, :] == np.arange(T)[None, :, None]) & displaced[:, None, :]  # (n,k,i)
    ntrk = member.sum(-1)
    candidate = (rep == np.arange(T)[None, :]) & displaced & (ntrk >= res.sv_min_tracks)
    sv_p = np.einsum("nki,nic->nkc", member.astype(float), np.where(mask[..., None], p, 0))
    sv_e = np.einsum("nki,ni->nk", member.astype(float), np.where(mask, e, 0))
    flight_true = v  # position of the representative track's production vertex
    sig_sv = _quadrature(res.sv_const_um * UM_TO_MM, res.sv_rel * np.linalg.norm(v, axis=-1))
    flight = flight_true + sig_sv[..., None] * g_sv
    d3d = np.linalg.norm(flight, axis=-1)
    dxy_sv = np.hypot(flight[..., 0], flight[..., 1])
    d3dsig = d3d / sig_sv
    keep = candidate & (d3dsig > res.sv_min_d3dsig)
    sv_pt = np.hypot(sv_p[..., 0], sv_p[..., 1])
    sv_mass = _mass(sv_e, sv_p)
    sv_eta, sv_phi = eta_phi(sv_p[..., 0], sv_p[..., 1], sv_p[..., 2])
    fl_eta, fl_phi = eta_phi(flight[..., 0], flight[..., 1], flight[..., 2])
    sv_cos = np.sum(_unit(flight) * _unit(sv_p), -1)
    sv_chi2 = rng.chisquare(np.maximum(2 * ntrk - 3, 1)) / np.maximum(2 * ntrk - 3, 1)

    # drminsv: nearest kept vertex flight direction
    dr_sv = delta_r(eta[..., None], phi[..., None], fl_eta[:, None, :], fl_phi[:, None, :])
    dr_sv = np.where(keep[:, None, :], dr_sv, np.inf).min(-1)
    drminsv = np.where(np.isfinite(dr_sv), dr_sv, schema.TRACK_FEATURES[5].default)

    dphi = delta_phi(phi, jet_phi[:, None])
    deta = eta - jet_eta[:, None]
    track_values = [
        pt / jet_pt[:, None], e / batch.jet_e[:, None], dphi, deta, np.hypot(dphi, deta),
        drminsv, dr_axes[..., 0], dr_axes[..., 1],
        dz * MM_TO_CM, dz / sig_dz, dxy * MM_TO_CM, dxy / sig_d0, normchi2, quality,
        sig_pt**2, sig_ang**2, sig_ang**2, sig_d0_cm**2, sig_dz_cm**2,
        res.rho_dxy_dz * sig_d0_cm * sig_dz_cm, res.rho_phi_dxy * sig_ang * sig_d0_cm,
        res.rho_lambda_dz * sig_lambda * sig_dz_cm,
        eta_rel_btag, p_perp / pabs, p_par / pabs,
        sip2d * MM_TO_CM, sip2d_sig, sip3d * MM_TO_CM, sip3d_sig, jet_dist * MM_TO_CM,
    ]
    tracks = np.stack(track_values, axis=1)  # (n, 30, T)
    tracks = np.where(mask[:, None, :], tracks, 0.0)
    tracks = np.pad(tracks, ((0, 0), (0, 0), (0, schema.TRACK_SLOTS - T)))

    # vertices: kept SVs sorted by pT, at most 5
    order = np.argsort(np.where(keep, -sv_pt, np.inf), axis=1, kind="stable")
    sv_dphi = delta_phi(sv_phi, jet_phi[:, None])
    sv_deta = sv_eta - jet_eta[:, None]
    sv_values = [
        sv_pt / jet_pt[:, None], sv_e / batch.jet_e[:, None], sv_dphi, sv_deta,
        np.hypot(sv_dphi, sv_deta), sv_pt, sv_mass, ntrk.astype(float), sv_chi2,
        dxy_sv * MM_TO_CM, dxy_sv / sig_sv, d3d * MM_TO_CM, d3dsig, sv_cos,
    ]
    sv_all = np.stack(sv_values, axis=1)  # (n, 14, T)
    sv_all = np.where(keep[:, None, :], sv_all, 0.0)
    sv_sorted = np.take_along_axis(sv_all, order[:, None, :], axis=2)
    n_sv_slots = min(T, schema.VERTEX_SLOTS)
    vertices = np.zeros((n, len(schema.VERTEX_FEATURES), schema.VERTEX_SLOTS))
    vertices[:, :, :n_sv_slots] = sv_sorted[:, :, :n_sv_slots]

    jet = _jet_features(
        mask=mask, keep=keep, member=member, p=p, e=e, pabs=pabs,
        sip2d_sig=sip2d_sig, sip3d_sig=sip3d_sig, nearer=nearer, axes=axes,
        ax_eta=ax_eta, ax_phi=ax_phi, fl_eta=fl_eta, fl_phi=fl_phi, dxy_sv_sig=dxy_sv / sig_sv,
        sv_p=sv_p, sv_e=sv_e, sv_pt=sv_pt,
    )
    n_sv = np.minimum(keep.sum(1), schema.VERTEX_SLOTS)
    return tracks.astype(np.float32), vertices.astype(np.float32), jet.astype(np.float32), n_sv


def _jet_features(*, mask, keep, member, p, e, pabs, sip2d_sig, sip3d_sig, nearer, axes,
                  ax_eta, ax_phi, fl_eta, fl_phi, dxy_sv_sig, sv_p, sv_e, sv_pt):
    """The 27 `fj_*` features (BoostedDoubleSV-style) from tracks, SVs and the two tau axes."""
    n, T = mask.shape
    none = -1.0
    out = {}
    out["fj_jetNTracks"] = mask.sum(1).astype(float)
    out["fj_nSV"] = keep.sum(1).astype(float)

    # SVs to the nearer tau axis, by flight direction
    dr_sv_axes = delta_r(fl_eta[..., None], fl_phi[..., None], ax_eta[:, None, :],
                         ax_phi[:, None, :])  # (n, k, 2)
    sv_axis = np.argmin(dr_sv_axes, axis=-1)
    in_sv = np.einsum("nki,nk->ni", member.astype(float), keep.astype(float)) > 0
    sv_of_track = np.argmax(member & keep[:, :, None], axis=1)  # (n, i)
    track_sv_axis = np.take_along_axis(sv_axis, sv_of_track, axis=1)
    for a in (0, 1):
        axis_hat = _unit(axes[:, a, :])[:, None, :]
        p_par = np.sum(p * axis_hat, -1)
        eta_rel = 0.5 * np.log(np.clip(pabs + p_par, 1e-12, None)
                               / np.clip(pabs - p_par, 1e-12, None))
        sel = mask & in_sv & (track_sv_axis == a)
        smallest = -_sorted_desc(-eta_rel, sel, 3, -none)
        for i in range(3):
            out[f"fj_tau{a}_trackEtaRel_{i}"] = smallest[:, i]

    on_axis = [keep & (sv_axis == a) for a in (0, 1)]
    best = [np.argmax(np.where(on_axis[a], dxy_sv_sig, -np.inf), axis=1) for a in (0, 1)]
    has = [on_axis[a].any(1) for a in (0, 1)]

    def pick(values, a):
        return np.where(has[a], np.take_along_axis(values, best[a][:, None], 1)[:, 0], none)

    out["fj_tau_flightDistance2dSig_0"] = pick(dxy_sv_sig, 0)
    out["fj_tau_flightDistance2dSig_1"] = pick(dxy_sv_sig, 1)
    out["fj_tau_vertexDeltaR_0"] = pick(dr_sv_axes[..., 0], 0)
    for a in (0, 1):
        sv_energy = np.where(on_axis[a], sv_e, 0).sum(1)
        track_energy = np.where(mask & (nearer == a), e, 0).sum(1)
        out[f"fj_tau_vertexEnergyRatio_{a}"] = np.where(
            has[a], sv_energy / np.maximum(track_energy, 1e-9), none)
    for a in (0, 1):
        psum = np.where(on_axis[a][..., None], sv_p, 0).sum(1)
        esum = np.where(on_axis[a], sv_e, 0).sum(1)
        out[f"fj_tau_vertexMass_{a}"] = np.where(has[a], _mass(esum, psum), none)

    # tracks by decreasing Sip2dSig, running mass with the pion hypothesis
    order = np.argsort(np.where(mask, -sip2d_sig, np.inf), axis=1, kind="stable")
    sp = np.take_along_axis(np.where(mask[..., None], p, 0), order[..., None], 1)
    s_mask = np.take_along_axis(mask, order, 1)
    s_sig = np.take_along_axis(sip2d_sig, order, 1)
    s_e = np.where(s_mask, np.sqrt(np.sum(sp * sp, -1) + PION_MASS**2), 0)
    run_mass = _mass(np.cumsum(s_e, 1), np.cumsum(sp, 1))
    for name, threshold in (("Bottom", 5.2), ("Charm", 1.5)):
        above = (run_mass > threshold) & s_mask
        first = np.argmax(above, axis=1)
        found = above.any(1)
        out[f"fj_trackSip2dSigAbove{name}_0"] = np.where(
            found, np.take_along_axis(s_sig, first[:, None], 1)[:, 0], none)
        if name == "Bottom":
            nxt = np.minimum(first + 1, T - 1)
            ok = found & (first + 1 < T) & np.take_along_axis(s_mask, nxt[:, None], 1)[:, 0]
            out["fj_trackSip2dSigAboveBottom_1"] = np.where(
                ok, np.take_along_axis(s_sig, nxt[:, None], 1)[:, 0], none)

    top = _sorted_desc(sip3d_sig, mask, 4, none)
    per_axis = [_sorted_desc(sip3d_sig, mask & (nearer == a), 2, none) for a in (0, 1)]
    for i in range(4):
        out[f"fj_trackSipdSig_{i}"] = top[:, i]
    for a in (0, 1):
        for i in range(2):
            out[f"fj_trackSipdSig_{a}_{i}"] = per_axis[a][:, i]

    both = has[0] & has[1]
    eta0, phi0 = pick(fl_eta, 0), pick(fl_phi, 0)
    eta1, phi1 = pick(fl_eta, 1), pick(fl_phi, 1)
    pt0, pt1 = pick(sv_pt, 0), pick(sv_pt, 1)
    p0 = np.take_along_axis(sv_p, best[0][:, None, None], 1)[:, 0]
    p1 = np.take_along_axis(sv_p, best[1][:, None, None], 1)[:, 0]
    e01 = pick(sv_e, 0) + pick(sv_e, 1)
    m01 = _mass(e01, p0 + p1)
    z = delta_r(eta0, phi0, eta1, phi1) * np.minimum(pt0, pt1) / np.maximum(m01, 1e-9)
    out["fj_z_ratio"] = np.where(both, z, none)
    return np.stack([out[name] for name in schema.JET_NAMES], axis=1)


def n_subjettiness(pt, eta, phi, mask, axes_eta, axes_phi, radius: float) -> np.ndarray:
    """tau_N (beta = 1) for padded constituents (n, C) and N axes (n, N)."""
    dr = delta_r(eta[..., None], phi[..., None], axes_eta[:, None, :], axes_phi[:, None, :])
    num = np.where(mask, pt * dr.min(-1), 0).sum(1)
    return num / (np.where(mask, pt, 0).sum(1) * radius)
