"""The 27 `fj_*` jet features: CMS's BoostedDoubleSV tagging variables, vectorised.

The CMS ntuple copies them from the jet's BoostedDoubleSVTagInfo (CMSSW BoostedDoubleSVProducer):
tracks of the impact-parameter tag info, the two exclusive-kT N-subjettiness axes ("tau axes"),
the secondary vertices of the SV tag info (ordered by the error of their 3D flight distance),
and CMS's dummy values where a quantity does not exist (-1, -19, -50 or -3, see the schema).
"""

from __future__ import annotations

import numpy as np

from servable.data import schema
from servable.data.features import (
    PION_MASS,
    Features,
    ParticleBatch,
    delta_r,
    eta_phi,
    mass,
    rapidity_along,
    unit,
)

IP_TRACK_MIN_PT = 1.0  # impact-parameter tag-info track selection
IP_TRACK_MAX_NORMCHI2 = 5.0
IP_TRACK_MAX_DXY_CM = 0.2
IP_TRACK_MAX_DZ_CM = 17.0
MAX_DIST_TO_AXIS_CM = 0.07
MAX_DECAY_LEN_CM = 5.0
PV_COMPATIBLE_SIP3D_SIG = 3.0  # stands in for a PV-fit weight > 0.5
SV_MAX_DXY_CM = 2.5  # SV tag-info vertex selection
SV_MAX_MASS = 6.5
MAX_SV_DR_TO_JET = 0.7
CHARM_MASS, BOTTOM_MASS = 1.5, 5.2


def _ranked(values, sel, k, default, descending):
    """Per jet, the k largest (or smallest) selected values, padded with `default`."""
    fill = -np.inf if descending else np.inf
    v = np.where(sel, values, fill)
    v = -np.sort(-v, axis=1) if descending else np.sort(v, axis=1)
    v = v[:, :k]
    if v.shape[1] < k:
        v = np.pad(v, ((0, 0), (0, k - v.shape[1])), constant_values=fill)
    return np.where(np.isfinite(v), v, default)


def _first(values, sel, order_key):
    """Per jet, the value at the selected slot with the smallest key, and whether one exists."""
    idx = np.argmin(np.where(sel, order_key, np.inf), axis=1)
    return np.take_along_axis(values, idx[:, None], 1)[:, 0], sel.any(1), idx


def _closest_approach(point, p_hat, axis_hat):
    """Decay length (|PCA to the axis| from the PV) and distance of each track to an axis."""
    c = np.sum(p_hat * axis_hat, -1)
    denom = np.where(1 - c * c > 1e-12, 1 - c * c, np.inf)
    t = (c * np.sum(axis_hat * point, -1) - np.sum(point * p_hat, -1)) / denom
    closest = point + t[..., None] * p_hat
    normal = unit(np.cross(p_hat, axis_hat))
    return np.linalg.norm(closest, axis=-1), np.abs(np.sum(point * normal, -1))


def jet_features(batch: ParticleBatch, feats: Features) -> np.ndarray:
    """(n, 27) fj_* features in the schema order."""
    trk, sv = feats.measured, feats.found
    n, T = trk.mask.shape
    axes = batch.tau_axes
    ax_hat = unit(axes)
    ax_eta, ax_phi = eta_phi(*np.moveaxis(axes, -1, 0))
    jet_eta, jet_phi = eta_phi(*batch.jet_p.T)
    p, pabs = trk.p, np.linalg.norm(trk.p, axis=-1)
    e_pi = np.sqrt(pabs**2 + PION_MASS**2)
    eta, phi = eta_phi(p[..., 0], p[..., 1], p[..., 2])
    pt = np.hypot(p[..., 0], p[..., 1])
    out = {}

    selected = (trk.mask & (pt > IP_TRACK_MIN_PT) & (trk.normchi2 < IP_TRACK_MAX_NORMCHI2)
                & (np.abs(trk.dxy) < IP_TRACK_MAX_DXY_CM) & (np.abs(trk.dz) < IP_TRACK_MAX_DZ_CM)
                & (delta_r(eta, phi, jet_eta[:, None], jet_phi[:, None]) < 0.8))
    dr_axes = delta_r(eta[..., None], phi[..., None], ax_eta[:, None, :], ax_phi[:, None, :])
    near = (dr_axes[..., 1] < dr_axes[..., 0]).astype(int)  # (n, T) axis of each track
    axis_of_track = np.take_along_axis(ax_hat, near[..., None], axis=1)
    decay_len, dist = _closest_approach(trk.point, unit(p), axis_of_track)
    ip_ok = selected & (decay_len < MAX_DECAY_LEN_CM) & (dist < MAX_DIST_TO_AXIS_CM)
    out["fj_jetNTracks"] = ip_ok.sum(1).astype(float)

    ip3 = np.maximum(trk.sip3d_sig, -50.0)
    top = _ranked(ip3, ip_ok, 4, -50.0, True)
    for i in range(4):
        out[f"fj_trackSipdSig_{i}"] = top[:, i]
    for a in (0, 1):
        per_axis = _ranked(ip3, ip_ok & (near == a), 2, -50.0, True)
        for i in range(2):
            out[f"fj_trackSipdSig_{a}_{i}"] = per_axis[:, i]

    # running mass of the selected tracks by decreasing Sip2dSig (pion hypothesis)
    order = np.argsort(np.where(selected, -trk.sip2d_sig, np.inf), axis=1, kind="stable")
    s_sel = np.take_along_axis(selected, order, 1)
    s_sig = np.take_along_axis(trk.sip2d_sig, order, 1)
    s_p = np.take_along_axis(np.where(selected[..., None], p, 0), order[..., None], 1)
    s_e = np.take_along_axis(np.where(selected, e_pi, 0), order, 1)
    run_mass = mass(np.cumsum(s_e, 1), np.cumsum(s_p, 1))
    for name, threshold in (("Charm", CHARM_MASS), ("Bottom", BOTTOM_MASS)):
        above = (run_mass > threshold) & s_sel
        first = np.argmax(above, axis=1)
        found = above.any(1)
        out[f"fj_trackSip2dSigAbove{name}_0"] = np.where(
            found, np.take_along_axis(s_sig, first[:, None], 1)[:, 0], -19.0)
    nxt = np.minimum(first + 1, T - 1)
    has_next = found & (first + 1 < T) & np.take_along_axis(s_sel, nxt[:, None], 1)[:, 0]
    out["fj_trackSip2dSigAboveBottom_1"] = np.where(
        has_next, np.take_along_axis(s_sig, nxt[:, None], 1)[:, 0], -19.0)

    # secondary vertices of the SV tag info, ordered by the error of the 3D flight distance
    sv_mass = mass(sv.e, sv.p)
    tag_sv = sv.keep & (sv.dxy < SV_MAX_DXY_CM) & (sv_mass < SV_MAX_MASS)
    fl_eta, fl_phi = eta_phi(*np.moveaxis(sv.flight, -1, 0))
    dr_sv_axes = delta_r(fl_eta[..., None], fl_phi[..., None], ax_eta[:, None, :],
                         ax_phi[:, None, :])
    sv_axis = (dr_sv_axes[..., 1] < dr_sv_axes[..., 0]).astype(int)
    all_e = np.where(selected & (np.abs(trk.sip3d_sig) < PV_COMPATIBLE_SIP3D_SIG), e_pi, 0).sum(1)
    sv_e_pi = np.einsum("nki,ni->nk", sv.member.astype(float), np.where(trk.mask, e_pi, 0))
    per_axis = {}
    for a in (0, 1):
        on = tag_sv & (sv_axis == a)
        fd, has, _ = _first(sv.dxysig, on, sv.d3d_err)
        dr, _, _ = _first(dr_sv_axes[..., a], on, sv.d3d_err)
        psum = np.where(on[..., None], sv.p, 0).sum(1)
        esum = np.where(on, sv_e_pi, 0).sum(1)
        ratio = np.where(all_e > 0, np.minimum(esum / np.where(all_e > 0, all_e, 1), 50.0), -1.0)
        # etaRel of the vertex tracks to this axis, three smallest
        in_axis_sv = np.einsum("nki,nk->ni", sv.member.astype(float), on.astype(float)) > 0
        eta_rel = rapidity_along(p, e_pi, ax_hat[:, a:a + 1, :])
        per_axis[a] = {
            "fd": np.where(has, fd, -1.0), "dr": np.where(has, dr, -1.0),
            "ratio": np.where(has, ratio, -1.0), "mass": np.where(has, mass(esum, psum), -1.0),
            "etarel": _ranked(eta_rel, in_axis_sv & trk.mask, 3, -1.0, False), "has": has,
        }
    swap = ~per_axis[0]["has"] & per_axis[1]["has"]
    for key in ("fd", "ratio", "mass", "etarel"):
        a0, a1 = per_axis[0][key], per_axis[1][key]
        s = swap if a0.ndim == 1 else swap[:, None]
        per_axis[0][key], per_axis[1][key] = np.where(s, a1, a0), np.where(s, a0, a1)
    per_axis[0]["dr"] = np.where(swap, per_axis[1]["dr"], per_axis[0]["dr"])
    for a in (0, 1):
        for i in range(3):
            out[f"fj_tau{a}_trackEtaRel_{i}"] = per_axis[a]["etarel"][:, i]
        out[f"fj_tau_flightDistance2dSig_{a}"] = per_axis[a]["fd"]
        out[f"fj_tau_vertexEnergyRatio_{a}"] = per_axis[a]["ratio"]
        out[f"fj_tau_vertexMass_{a}"] = per_axis[a]["mass"]
    out["fj_tau_vertexDeltaR_0"] = per_axis[0]["dr"]

    near_jet = tag_sv & (delta_r(fl_eta, fl_phi, jet_eta[:, None], jet_phi[:, None])
                         < MAX_SV_DR_TO_JET)
    out["fj_nSV"] = near_jet.sum(1).astype(float)
    out["fj_z_ratio"] = _z_ratio(sv, near_jet, sv_e_pi, fl_eta, fl_phi, ax_eta, ax_phi)
    return np.stack([out[name] for name in schema.JET_NAMES], axis=1).astype(np.float32)


def _z_ratio(sv, sel, sv_e, fl_eta, fl_phi, ax_eta, ax_phi):
    """dR * pT / mass of the first (or first two) SVs by flight-distance error; -3 without SV."""
    order = np.argsort(np.where(sel, sv.d3d_err, np.inf), axis=1, kind="stable")[:, :2]
    count = sel.sum(1)
    if order.shape[1] < 2:
        order = np.concatenate([order, order], axis=1)

    def pick(x, i):
        idx = order[:, i][:, None]
        return np.take_along_axis(x, idx[..., None] if x.ndim == 3 else idx, 1)[:, 0]

    p0, p1 = pick(sv.p, 0), pick(sv.p, 1)
    e0, e1 = pick(sv_e, 0), pick(sv_e, 1)
    m0, m01 = mass(e0, p0), mass(e0 + e1, p0 + p1)
    z1 = delta_r(ax_eta[:, 0], ax_phi[:, 0], ax_eta[:, 1], ax_phi[:, 1]) * np.hypot(
        p0[:, 0], p0[:, 1]) / np.where(m0 > 0, m0, 1.0)
    z2 = delta_r(pick(fl_eta, 0), pick(fl_phi, 0), pick(fl_eta, 1), pick(fl_phi, 1)) * np.hypot(
        p1[:, 0], p1[:, 1]) / np.where(m01 > 0, m01, 1.0)
    z = np.where(count >= 2, np.where(m01 > 0, z2, -3.0), np.where(m0 > 0, z1, -3.0))
    return np.where(count >= 1, z, -3.0)
