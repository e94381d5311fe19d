"""The 30 track and 14 secondary-vertex features of the CMS H->bb ntuple, vectorised.

Each feature follows the producer of the CMS dataset (the HiggsToBBNtupleProducerTool
TrackFiller/TrackInfoBuilder/SVFiller; definitions and sources are in `servable.data.schema`):
ratios and angles use the raw jet, eta differences flip sign for jets with eta <= 0, the
covariance is MiniAOD's packed (q/p, lambda, phi, dxy, dsz) matrix, impact parameters are
signed with the jet direction, values are clipped as the producer clips them, tracks are sorted
by the unclipped signed 2D impact-parameter significance and vertices by their transverse flight
significance. Everything works on padded arrays (jets, slots, ...) with a mask: no Python loop
over jets or tracks. Lengths are in cm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servable.data import detector, schema
from servable.data.detector import ResolutionModel

PION_MASS = 0.13957
MM_TO_CM = 0.1
UM_TO_CM = 1e-4
DRMINSV_CAP = 0.8


def eta_phi(px, py, pz):
    """Pseudorapidity and azimuth; works on numpy and awkward arrays (pT = 0 gives eta = 0)."""
    pt = np.hypot(px, py)
    return np.arcsinh(pz / (pt + (pt == 0))), np.arctan2(py, px)


def delta_phi(a, b):
    """Azimuthal difference a - b wrapped into [-pi, pi)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2):
    """Angular distance sqrt(deta^2 + dphi^2) in the (eta, phi) plane, dphi wrapped."""
    return np.hypot(eta1 - eta2, delta_phi(phi1, phi2))


def unit(v):
    """Unit vectors along the last axis; zero vectors stay zero."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def mass(e, p):
    """Invariant mass sqrt(E^2 - |p|^2) from energies `e` and momenta `p` (3-vectors on the
    last axis); clipped at 0 where rounding makes m^2 negative."""
    return np.sqrt(np.clip(e * e - np.sum(p * p, axis=-1), 0, None))


def rapidity_along(p, e, axis):
    """reco::btau::etaRel: rapidity of momenta p (energy e) along unit vectors `axis`."""
    p_par = np.sum(p * axis, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log((e + p_par) / (e - p_par))


def clip(x, lo, hi, default=0.0):
    """The producer's catchInfsAndBound: NaN/inf -> default, then clipped to [lo, hi]."""
    return np.clip(np.where(np.isfinite(x), x, default), lo, hi)


@dataclass
class ParticleBatch:
    """Padded charged tracks of a batch of jets (any order, every track), and the jets."""

    p: np.ndarray  # (n, T, 3) true momenta, GeV
    mass: np.ndarray  # (n, T) PF mass hypothesis (pion, electron or muon mass)
    vertex: np.ndarray  # (n, T, 3) true production point w.r.t. the true PV[0], mm
    own_pv: np.ndarray  # (n, T, 3) the track's own primary interaction (PV[0] or pileup), mm
    mask: np.ndarray  # (n, T)
    jet_p: np.ndarray  # (n, 3) raw jet momentum
    jet_e: np.ndarray  # (n,)
    subjets: np.ndarray  # (n, 2, 3) soft-drop subjet momenta, leading first (zeros: none)
    tau_axes: np.ndarray  # (n, 2, 3) exclusive-kT N-subjettiness axes


@dataclass
class Tracks:
    """Measured tracks (every track of a jet, unsorted): what the vertex and jet code reuses."""

    p: np.ndarray  # measured momenta (n, T, 3)
    e: np.ndarray  # PF energies
    mask: np.ndarray
    point: np.ndarray  # (n, T, 3) point of closest transverse approach, w.r.t. measured PV, cm
    sip2d: np.ndarray  # signed IPs (cm) and significances, unclipped
    sip2d_sig: np.ndarray
    sip3d: np.ndarray
    sip3d_sig: np.ndarray
    dxy: np.ndarray
    dz: np.ndarray
    normchi2: np.ndarray


def measure_tracks(batch: ParticleBatch, rng: np.random.Generator, res: ResolutionModel,
                   pv: np.ndarray) -> tuple[Tracks, dict, np.ndarray]:
    """Smear the tracks with their covariance; IPs w.r.t. the measured PV `pv` (n, 3) cm.

    Straight tracks (no field curvature) from the true production point; the transverse IP is
    the packed candidate's dxy, the longitudinal one z at that point minus z(PV).
    """
    n, T = batch.mask.shape
    mask = batch.mask
    gauss = rng.standard_normal((n, T, 5))
    normchi2, quality = detector.fit_quality(res, rng, (n, T))
    p_true = np.where(mask[..., None], batch.p, [1.0, 0.0, 0.0])
    pt_t = np.hypot(p_true[..., 0], p_true[..., 1])
    p_t = np.linalg.norm(p_true, axis=-1)
    cov = detector.covariance(res, detector.resolutions(res, pt_t, p_t, pt_t / p_t))
    err = detector.measure(cov, gauss)  # (q/p, lambda, phi, dxy, dsz)
    lam = np.arctan2(p_true[..., 2], pt_t) + err[..., 1]
    phi = np.arctan2(p_true[..., 1], p_true[..., 0]) + err[..., 2]
    pabs = 1.0 / np.abs(1.0 / p_t + err[..., 0])
    pt = pabs * np.cos(lam)
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pabs * np.sin(lam)], axis=-1)
    e = np.sqrt(pabs**2 + batch.mass**2)

    # true straight track through the production point; parameters at the transverse PCA
    v = batch.vertex * MM_TO_CM - pv[:, None, :]
    u_t = np.stack([-p_true[..., 1], p_true[..., 0]], -1) / pt_t[..., None]
    dxy_t = np.sum(v[..., :2] * u_t, -1)
    z_t = v[..., 2] - np.sum(v[..., :2] * p_true[..., :2], -1) / pt_t * p_true[..., 2] / pt_t
    dxy = dxy_t + err[..., 3]
    dz = z_t + err[..., 4] / np.cos(lam)  # dsz = dz cos(lambda)
    u = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)], -1)
    point = dxy[..., None] * u
    point[..., 2] = dz

    packed = detector.packed_covariance(cov, pt)
    jet_hat = unit(batch.jet_p)[:, None, :]
    # transverse IP signed with the jet direction; error = track (+) PV (pseudo-track terms)
    sign2 = np.where(np.sum(point[..., :2] * jet_hat[..., :2], -1) >= 0, 1.0, -1.0)
    pv_xy, pv_z = res.pv_xy_um * UM_TO_CM, res.pv_z_um * UM_TO_CM
    sip2d = sign2 * np.abs(dxy)
    sip2d_sig = sip2d / np.sqrt(packed["dxydxy"] + pv_xy**2)
    p_hat = unit(p)
    pca3 = point - np.sum(point * p_hat, -1, keepdims=True) * p_hat
    ip3 = np.linalg.norm(pca3, axis=-1)
    e3 = unit(pca3)
    zperp = unit(np.array([0.0, 0.0, 1.0]) - p_hat[..., 2:3] * p_hat)
    a, b = np.sum(u * e3, -1), np.sum(zperp * e3, -1)
    var3 = (a * a * packed["dxydxy"] + b * b * packed["dzdz"] + 2 * a * b * packed["dxydz"]
            + (e3[..., 0]**2 + e3[..., 1]**2) * pv_xy**2 + e3[..., 2]**2 * pv_z**2)
    var3 = np.where(ip3 > 0, var3, packed["dxydxy"] + pv_xy**2)
    sign3 = np.where(np.sum(pca3 * jet_hat, -1) >= 0, 1.0, -1.0)
    sip3d = sign3 * ip3
    tracks = Tracks(p=p, e=e, mask=mask, point=point, sip2d=sip2d, sip2d_sig=sip2d_sig,
                    sip3d=sip3d, sip3d_sig=sip3d / np.sqrt(var3), dxy=dxy, dz=dz,
                    normchi2=normchi2)
    return tracks, packed, quality


def _jet_axis_distance(point, p_hat, axis_hat):
    """Distance (cm) between each track line and an axis line through the PV (n, T)."""
    normal = np.cross(p_hat, axis_hat)
    norm = np.linalg.norm(normal, axis=-1)
    dist = np.abs(np.sum(point * unit(normal), -1))
    return np.where(norm > 0, dist, 0.0)


@dataclass
class Vertices:
    """Secondary vertices, one candidate per track slot (its representative track)."""

    keep: np.ndarray  # (n, T) slot holds a found SV
    member: np.ndarray  # (n, T, T) member[n, k, i]: track i belongs to SV k
    p: np.ndarray
    e: np.ndarray
    flight: np.ndarray  # (n, T, 3) measured SV - measured PV, cm
    dxy: np.ndarray
    dxysig: np.ndarray
    d3d: np.ndarray
    d3dsig: np.ndarray
    d3d_err: np.ndarray
    ntrk: np.ndarray
    normchi2: np.ndarray


def find_vertices(batch: ParticleBatch, tracks: Tracks, rng, res: ResolutionModel,
                  pv_meas: np.ndarray) -> Vertices:
    """IVF-like vertices: tracks sharing a true displaced production point, position smeared,
    kept with the IVF cuts (2D significance, 3D significance, pointing) and dR < 0.8 to the jet."""
    n, T = batch.mask.shape
    mask = batch.mask
    g_sv = rng.standard_normal((n, T, 3))
    chi2_draw = rng.standard_normal((n, T))
    v = batch.vertex
    merge = res.vertex_merge_um * 1e-3
    displaced = mask & (np.linalg.norm(v - batch.own_pv, axis=-1) > merge)
    dist = np.linalg.norm(v[:, :, None, :] - v[:, None, :, :], axis=-1)
    same = (dist < merge) & displaced[:, :, None] & displaced[:, None, :]
    rep = np.argmax(same, axis=2)  # first track of each track's vertex
    member = (rep[:, None, :] == np.arange(T)[None, :, None]) & displaced[:, None, :]
    ntrk = member.sum(-1)
    candidate = (rep == np.arange(T)[None, :]) & displaced & (ntrk >= res.sv_min_tracks)
    fm = member.astype(float)
    sv_p = np.einsum("nki,nic->nkc", fm, np.where(mask[..., None], tracks.p, 0))
    sv_e = np.einsum("nki,ni->nk", fm, np.where(mask, tracks.e, 0))
    true_cm = (v - batch.own_pv) * MM_TO_CM
    sig_sv = np.hypot(res.sv_const_um * UM_TO_CM, res.sv_rel * np.linalg.norm(true_cm, axis=-1))
    flight = v * MM_TO_CM + sig_sv[..., None] * g_sv - pv_meas[:, None, :]
    pv_xy, pv_z = res.pv_xy_um * UM_TO_CM, res.pv_z_um * UM_TO_CM
    dxy = np.hypot(flight[..., 0], flight[..., 1])
    d3d = np.linalg.norm(flight, axis=-1)
    fhat = unit(flight)
    d3d_err = np.sqrt(sig_sv**2 + (fhat[..., 0]**2 + fhat[..., 1]**2) * pv_xy**2
                      + fhat[..., 2]**2 * pv_z**2)
    dxysig = dxy / np.hypot(sig_sv, pv_xy)
    d3dsig = d3d / d3d_err
    cos = np.sum(fhat * unit(sv_p), -1)
    sv_eta, sv_phi = eta_phi(sv_p[..., 0], sv_p[..., 1], sv_p[..., 2])
    jet_eta, jet_phi = eta_phi(*batch.jet_p.T)
    dr_jet = delta_r(sv_eta, sv_phi, jet_eta[:, None], jet_phi[:, None])
    keep = (candidate & (dxysig > res.sv_min_dxysig) & (d3dsig > res.sv_min_d3dsig)
            & (cos > res.sv_min_cos) & (dr_jet < 0.8))
    ndf = np.maximum(2 * ntrk - 3, 1)
    chi2 = np.abs(1 + chi2_draw * np.sqrt(2.0 / ndf))  # chi2/ndf around 1, width sqrt(2/ndf)
    return Vertices(keep=keep, member=member & keep[..., None], p=sv_p, e=sv_e, flight=flight,
                    dxy=dxy, dxysig=dxysig, d3d=d3d, d3dsig=d3dsig, d3d_err=d3d_err, ntrk=ntrk,
                    normchi2=chi2)


@dataclass
class Features:
    tracks: np.ndarray  # (n, 30, 60) sorted, truncated, zero-padded
    vertices: np.ndarray  # (n, 14, 5)
    track_slot: np.ndarray  # (n, 60) index of each stored track in the batch slots, -1 padding
    sv_slot: np.ndarray  # (n, 5) index of each stored SV's representative track slot, -1
    n_tracks: np.ndarray  # every track of the jet (not capped at 60)
    n_sv: np.ndarray  # every SV of the jet (not capped at 5)
    measured: Tracks
    found: Vertices


def _take(values, order):
    return np.take_along_axis(values, order, axis=-1)


def track_and_vertex_features(batch: ParticleBatch, rng: np.random.Generator,
                              res: ResolutionModel) -> Features:
    """Tracks (n, 30, 60) and vertices (n, 14, 5) by the producer's definitions."""
    n, T = batch.mask.shape
    mask = batch.mask
    pv = rng.standard_normal((n, 3)) * np.array([res.pv_xy_um, res.pv_xy_um, res.pv_z_um])
    pv *= UM_TO_CM  # measured PV[0] w.r.t. the true one
    trk, cov, quality = measure_tracks(batch, rng, res, pv)
    sv = find_vertices(batch, trk, rng, res, pv)

    p, e = trk.p, trk.e
    pt = np.hypot(p[..., 0], p[..., 1])
    eta, phi = eta_phi(p[..., 0], p[..., 1], p[..., 2])
    jet_pt = np.hypot(batch.jet_p[:, 0], batch.jet_p[:, 1])
    jet_eta, jet_phi = eta_phi(*batch.jet_p.T)
    etasign = np.where(jet_eta > 0, 1.0, -1.0)[:, None]
    sub_eta, sub_phi = eta_phi(*np.moveaxis(batch.subjets, -1, 0))
    has_sub = np.hypot(batch.subjets[..., 0], batch.subjets[..., 1]) > 0  # (n, 2)
    dr_sub = delta_r(eta[..., None], phi[..., None], sub_eta[:, None, :], sub_phi[:, None, :])
    dr_sub = np.where(has_sub[:, None, :], dr_sub, -1.0)

    sv_eta, sv_phi = eta_phi(sv.p[..., 0], sv.p[..., 1], sv.p[..., 2])
    dr_sv = delta_r(eta[..., None], phi[..., None], sv_eta[:, None, :], sv_phi[:, None, :])
    min_dr = np.minimum(DRMINSV_CAP, np.where(sv.keep[:, None, :], dr_sv, np.inf).min(-1))

    jet_hat = unit(batch.jet_p)[:, None, :]
    pabs = np.linalg.norm(p, axis=-1)
    p_par = np.sum(p * jet_hat, -1)
    p_perp = np.linalg.norm(np.cross(p, jet_hat), axis=-1)
    p_hat = unit(p)
    dphi = delta_phi(phi, jet_phi[:, None])
    deta = eta - jet_eta[:, None]
    values = [
        pt / jet_pt[:, None], e / batch.jet_e[:, None], dphi, etasign * deta,
        np.hypot(dphi, deta), clip(min_dr - DRMINSV_CAP, -0.8, 0),
        dr_sub[..., 0], dr_sub[..., 1],
        trk.dz, clip(trk.dz / np.sqrt(cov["dzdz"]), -2000, 2000),
        trk.dxy, clip(trk.dxy / np.sqrt(cov["dxydxy"]), -2000, 2000),
        clip(trk.normchi2, -1, 300, 300), quality,
        cov["dptdpt"], cov["detadeta"], cov["dphidphi"], cov["dxydxy"], cov["dzdz"],
        cov["dxydz"], cov["dphidxy"], cov["dlambdadz"],
        clip(rapidity_along(p, np.sqrt(pabs**2 + PION_MASS**2), jet_hat), -5, 15),
        clip(p_perp / pabs, -1, 10), clip(p_par / pabs, -10, 100),
        clip(trk.sip2d, -1, 70), clip(trk.sip2d_sig, -1, 4e4),
        clip(trk.sip3d, -1, 1e5), clip(trk.sip3d_sig, -1, 4e4),
        clip(-_jet_axis_distance(trk.point, p_hat, jet_hat), -20, 1),
    ]
    all_tracks = np.where(mask[:, None, :], np.stack(values, axis=1), 0.0)

    # sort: unclipped Sip2dSig (desc), then smaller min dR to an SV, then larger pT ratio
    key_sig = np.where(mask & np.isfinite(trk.sip2d_sig), -trk.sip2d_sig, np.inf)
    order = np.lexsort((-values[0], min_dr, key_sig), axis=-1)[:, :schema.TRACK_SLOTS]
    k = order.shape[1]
    tracks = np.zeros((n, len(schema.TRACK_FEATURES), schema.TRACK_SLOTS))
    tracks[:, :, :k] = np.take_along_axis(all_tracks, order[:, None, :], axis=2)
    n_tracks = mask.sum(1)
    track_slot = np.full((n, schema.TRACK_SLOTS), -1)
    track_slot[:, :k] = np.where(np.arange(k)[None, :] < n_tracks[:, None], order, -1)

    # vertices: sorted by transverse flight significance (desc), at most 5
    sv_dphi = delta_phi(sv_phi, jet_phi[:, None])
    sv_deta = sv_eta - jet_eta[:, None]
    sv_pt = np.hypot(sv.p[..., 0], sv.p[..., 1])
    sv_values = [
        sv_pt / jet_pt[:, None], sv.e / batch.jet_e[:, None], sv_dphi, etasign * sv_deta,
        clip(np.hypot(sv_dphi, sv_deta) - 0.5, -2, 0), sv_pt, mass(sv.e, sv.p),
        sv.ntrk.astype(float), clip(sv.normchi2, -1000, 1000, 1000), sv.dxy,
        clip(sv.dxysig, -1, 800), sv.d3d, clip(sv.d3dsig, -1, 800),
        np.sum(unit(sv.p) * unit(sv.flight), -1),
    ]
    sv_all = np.where(sv.keep[:, None, :], np.stack(sv_values, axis=1), 0.0)
    sv_order = np.argsort(np.where(sv.keep, -sv.dxysig, np.inf), axis=1, kind="stable")
    kv = min(T, schema.VERTEX_SLOTS)
    sv_order = sv_order[:, :kv]
    vertices = np.zeros((n, len(schema.VERTEX_FEATURES), schema.VERTEX_SLOTS))
    vertices[:, :, :kv] = np.take_along_axis(sv_all, sv_order[:, None, :], axis=2)
    n_sv = sv.keep.sum(1)
    sv_slot = np.full((n, schema.VERTEX_SLOTS), -1)
    sv_slot[:, :kv] = np.where(np.arange(kv)[None, :] < n_sv[:, None], sv_order, -1)
    return Features(tracks=tracks.astype(np.float32), vertices=vertices.astype(np.float32),
                    track_slot=track_slot, sv_slot=sv_slot, n_tracks=n_tracks, n_sv=n_sv,
                    measured=trk, found=sv)
