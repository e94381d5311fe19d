"""From clustered events to jets in the CMS layout: jet selection, soft drop, N-subjettiness,
the track batch for the feature code, spectators and the generator truth per track and SV.

`settings` arguments are `servable.data.generator.GeneratorSettings` (not imported here: the
generator imports this module)."""

from __future__ import annotations

import time
import warnings

import numpy as np

from servable.data import events, schema
from servable.data.features import (
    ParticleBatch,
    delta_phi,
    delta_r,
    eta_phi,
    track_and_vertex_features,
)
from servable.data.jetfeatures import jet_features
from servable.data.jets import Jets

_NEUTRINOS = (12, 14, 16)
_LEPTON_MASS = {11: 0.000511, 13: 0.10566}
PION_MASS = 0.13957


def _jagged(values, counts):
    import awkward as ak

    return ak.unflatten(values, counts)


def _np(array, fill=0.0) -> np.ndarray:
    """An awkward array (possibly with missing values) as a plain numpy array."""
    import awkward as ak

    return np.ma.filled(ak.to_numpy(ak.fill_none(array, fill)), fill)


def cluster(p4: dict[str, np.ndarray], counts: np.ndarray, radius: float, min_pt: float):
    """Anti-kT jets above `min_pt` of flat particles (`px`, `py`, `pz`, `E`, grouped by event,
    `counts` per event), by decreasing pT in each event: the jets, their constituents' local
    indices, pT, eta and phi (awkward arrays, one list per event)."""
    import awkward as ak
    import fastjet

    particles = ak.zip({k: _jagged(v, counts) for k, v in p4.items()})
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    cs = fastjet.ClusterSequence(particles, jetdef)
    jets = cs.inclusive_jets(min_pt=min_pt)
    index = cs.constituent_index(min_pt=min_pt)
    jpt = np.hypot(jets.px, jets.py)
    jeta, jphi = eta_phi(jets.px, jets.py, jets.pz)
    order = ak.argsort(jpt, ascending=False)
    return tuple(x[order] for x in (jets, index, jpt, jeta, jphi))


def selected_jets(jets, index, ok, rows: np.ndarray, counts: np.ndarray) -> dict:
    """The jets where `ok` (awkward, per event and jet) as flat arrays: event, momentum,
    energy, constituents (`rows[local index]`, jet after jet) and their number per jet."""
    import awkward as ak

    n_events = len(counts)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    jet_event = np.repeat(np.arange(n_events), _np(ak.sum(ok, axis=1), 0).astype(int))
    per_jet = ak.flatten(index[ok], axis=1)
    n_cons = _np(ak.num(per_jet), 0).astype(int)
    local = _np(ak.flatten(per_jet), 0).astype(int)
    return {
        "event": jet_event,
        "p": np.stack([_np(ak.flatten(jets[k][ok])) for k in ("px", "py", "pz")], -1),
        "e": _np(ak.flatten(jets.E[ok])),
        "cons": rows[local + np.repeat(offsets[jet_event], n_cons)],
        "n_cons": n_cons,
    }


def select_jets(t, n_events, signal: bool, settings, timer):
    """Cluster the visible particles of each event; pick signal/background jets.

    Returns per selected jet: its event, four-momentum and constituents (global indices)."""
    import awkward as ak

    t0 = time.perf_counter()
    absid = np.abs(t["id"])
    visible = (t["status"] > 0) & ~np.isin(absid, _NEUTRINOS) & ~t["chs_removed"]
    vis = np.flatnonzero(visible)
    counts = np.bincount(t["event"][vis], minlength=n_events)
    jets, index, jpt, jeta, jphi = cluster(
        {k: t[c][vis] for k, c in (("px", "px"), ("py", "py"), ("pz", "pz"), ("E", "e"))},
        counts, settings.jet_radius, settings.jet_pt_min)
    t0 = timer.add("fastjet", t0)

    ok = (abs(jeta) < settings.jet_abs_eta_max) & (jpt < settings.jet_pt_max)
    if signal:
        bq = np.flatnonzero((absid == 5) & (t["mother"] >= 0)
                            & (t["id"][np.maximum(t["mother"], 0)] == 25)
                            & (t["pu_vertex"] == 0))
        bcounts = np.bincount(t["event"][bq], minlength=n_events)
        beta_, bphi = eta_phi(t["px"][bq], t["py"][bq], t["pz"][bq])
        beta_, bphi = _jagged(beta_, bcounts), _jagged(bphi, bcounts)
        dr = delta_r(jeta[:, :, None], jphi[:, :, None], beta_[:, None, :], bphi[:, None, :])
        contains = ak.sum(dr < settings.jet_radius, axis=2) >= 2
        ok = ok & contains & (bcounts == 2)[:, None]
        ok = ok & (ak.local_index(jpt, axis=1) == ak.argmax(ak.where(ok, jpt, -1), axis=1,
                                                                 keepdims=True))
    else:
        ok = ok & (ak.local_index(jpt, axis=1) < settings.background_jets_per_event)
    flat = selected_jets(jets, index, ok, vis, counts)
    timer.add("features", t0)
    return flat


def n_subjettiness(pt, eta, phi, mask, axes_eta, axes_phi, radius: float) -> np.ndarray:
    """tau_N (beta = 1) for padded constituents (n, C) and N axes (n, N)."""
    dr = delta_r(eta[..., None], phi[..., None], axes_eta[:, None, :], axes_phi[:, None, :])
    num = np.where(mask, pt * dr.min(-1), 0).sum(1)
    return num / (np.where(mask, pt, 0).sum(1) * radius)


def onepass_axes(pt, eta, phi, mask, axes_eta, axes_phi, max_iterations: int = 100,
                 precision: float = 1e-4):
    """N-subjettiness axes minimised from starting axes (n, N) for beta = 1, as fastjet-contrib's
    OnePass_KT_Axes started from exclusive-kT axes: each particle (n, C) goes to its nearest
    axis, each axis moves to the pT/dR-weighted mean (eta, phi) of its particles (a Weiszfeld
    step of the tau_N minimisation), until no axis of the jet moves by more than `precision`
    (jets that have converged stop moving)."""
    a_eta, a_phi = np.array(axes_eta, float), np.array(axes_phi, float)
    active = np.arange(len(a_eta))
    for _ in range(max_iterations):
        if not len(active):
            break
        e, f = a_eta[active], a_phi[active]
        deta = eta[active, :, None] - e[:, None, :]
        dphi = delta_phi(phi[active, :, None], f[:, None, :])
        dr = np.hypot(deta, dphi)
        nearest = dr.argmin(-1)[..., None] == np.arange(e.shape[1])
        w = np.where(nearest & mask[active, :, None],
                     pt[active, :, None] / np.maximum(dr, 1e-6), 0.0)
        total = w.sum(1)
        safe = np.where(total > 0, total, 1.0)
        step_eta = np.where(total > 0, (w * deta).sum(1) / safe, 0.0)
        step_phi = np.where(total > 0, (w * dphi).sum(1) / safe, 0.0)
        a_eta[active] = e + step_eta
        a_phi[active] = delta_phi(f + step_phi, 0.0)
        active = active[np.hypot(step_eta, step_phi).max(1) >= precision]
    return a_eta, a_phi


def _pad_rows(values, counts, width, fill=0.0):
    """Flat per-row values (rows of `counts`) as a (rows, width) array."""
    out = np.full((len(counts), width) + values.shape[1:], fill, dtype=values.dtype)
    col = np.arange(len(values)) - np.repeat(np.cumsum(counts) - counts, counts)
    out[np.repeat(np.arange(len(counts)), counts), col] = values
    return out


def _softdrop_subjets(sd, radius):
    """The two soft-drop prongs (CA reclustering of the groomed jet), leading first; (n, 2, 3)."""
    import awkward as ak
    import fastjet

    cons = sd.constituents
    counts = _np(ak.num(cons, axis=1), 0).astype(int)
    flat = np.stack([_np(ak.flatten(cons[k])) for k in ("px", "py", "pz", "E")], -1)
    lonely = counts == 1  # one constituent: add a massless ghost so that CA gives two jets
    ghost_at = np.cumsum(counts)[lonely]
    ghost = flat[ghost_at - 1] * 1e-9
    flat = np.insert(flat, ghost_at, ghost, axis=0)
    counts = counts + lonely
    arr = ak.zip({k: ak.unflatten(flat[:, i], counts) for i, k in enumerate(("px", "py", "pz",
                                                                           "E"))})
    subjets = fastjet.ClusterSequence(arr, fastjet.JetDefinition(
        fastjet.cambridge_algorithm, radius)).exclusive_jets(n_jets=2)
    out = np.stack([_np(subjets[k]) for k in ("px", "py", "pz")], -1)
    pt = np.hypot(out[..., 0], out[..., 1])
    out = np.take_along_axis(out, np.argsort(-pt, axis=1)[..., None], axis=1)
    out[np.hypot(out[..., 0], out[..., 1]) < 1e-6] = 0.0
    return out


def _b_hadrons(t, flat, radius):
    """Per jet, weakly decaying b hadrons within dR < R of the axis, by decreasing pT (n, 4)."""
    weak = events.weak_b_hadrons(t)
    weak = weak[t["pu_vertex"][weak] == 0]
    jeta, jphi = eta_phi(*flat["p"].T)
    beta_, bphi = eta_phi(t["px"][weak], t["py"][weak], t["pz"][weak])
    inside = ((flat["event"][:, None] == t["event"][weak][None, :])
              & (delta_r(jeta[:, None], jphi[:, None], beta_[None, :], bphi[None, :]) < radius))
    k = schema.B_HADRON_SLOTS
    inside_p = np.pad(inside, ((0, 0), (0, k)))  # k empty columns: fewer than k b hadrons
    bpt = np.concatenate([np.hypot(t["px"][weak], t["py"][weak]), np.zeros(k)])
    order = np.argsort(np.where(inside_p, -bpt[None, :], np.inf), axis=1, kind="stable")[:, :k]
    has = np.take_along_axis(inside_p, order, 1)
    idx = np.where(has, np.concatenate([weak, np.full(k, -1)])[order], -1)
    return idx, inside.sum(1)


def substructure(t, flat: dict, radius: float, beta: float, zcut: float, n_axes: int):
    """Soft drop (C/A reclustering, `beta`, `zcut`, R0 = `radius`) and the exclusive-kT axes
    for N = 1..`n_axes` of the jets `flat` (`selected_jets`) whose constituents are rows of the
    flat table `t`. Every jet needs at least `n_axes` constituents."""
    import awkward as ak
    import fastjet

    cons = flat["cons"]
    c4 = ak.zip({k: ak.unflatten(t[c][cons], flat["n_cons"]) for k, c in
                 (("px", "px"), ("py", "py"), ("pz", "pz"), ("E", "e"))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ca = fastjet.ClusterSequence(c4, fastjet.JetDefinition(fastjet.cambridge_algorithm,
                                                               radius))
        sd = ca.exclusive_jets_softdrop_grooming(njets=1, beta=beta, symmetry_cut=zcut,
                                                 R0=radius)
        kt = fastjet.ClusterSequence(c4, fastjet.JetDefinition(fastjet.kt_algorithm, radius))
        kt_axes = [kt.exclusive_jets(n_jets=k) for k in range(1, n_axes + 1)]
    return sd, kt_axes


def jet_batch(t, flat, npv, settings, rng, timer) -> Jets:
    """Features, spectators and truth of the selected jets (soft-drop window applied)."""

    res = settings.resolution
    t0 = time.perf_counter()
    cons = flat["cons"]
    sd, kt_axes = substructure(t, flat, settings.jet_radius, settings.softdrop_beta,
                               settings.softdrop_zcut, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        subjets = _softdrop_subjets(sd, settings.jet_radius)
    t0 = timer.add("fastjet", t0)

    width = int(flat["n_cons"].max(initial=1))
    cmask = _pad_rows(np.ones(len(cons), bool), flat["n_cons"], width, False)
    cp = _pad_rows(np.stack([t["px"][cons], t["py"][cons], t["pz"][cons]], -1),
                   flat["n_cons"], width)
    cpt = np.hypot(cp[..., 0], cp[..., 1])
    ceta, cphi = eta_phi(cp[..., 0], cp[..., 1], cp[..., 2])
    taus = []
    for axes in kt_axes:
        aeta, aphi = eta_phi(*(_np(axes[k]) for k in ("px", "py", "pz")))
        taus.append(n_subjettiness(cpt, ceta, cphi, cmask, aeta, aphi, settings.jet_radius))
    tau1, tau2, tau3 = taus
    tau_axes = np.stack([_np(kt_axes[1][k]) for k in ("px", "py", "pz")], axis=-1)

    # tracks: charged constituents with pT >= 0.95 GeV inside the tracker (all of them)
    ceta_flat = ceta[cmask]
    is_trk = ((t["charge"][cons] != 0) & (cpt[cmask] >= res.track_min_pt)
              & (np.abs(ceta_flat) < res.track_max_abs_eta))
    n_trk = np.add.reduceat(is_trk, np.cumsum(flat["n_cons"]) - flat["n_cons"]) \
        if len(cons) else np.zeros(0, int)
    n_trk = np.where(flat["n_cons"] > 0, n_trk, 0)
    gidx = cons[is_trk]
    T = max(int(n_trk.max(initial=1)), 1)
    slots = _pad_rows(gidx, n_trk, T, -1)
    mask = slots >= 0
    g = np.maximum(slots, 0)
    absid = np.abs(t["id"][g])
    batch = ParticleBatch(
        p=np.stack([t["px"][g], t["py"][g], t["pz"][g]], -1),
        mass=np.select([absid == 11, absid == 13], [_LEPTON_MASS[11], _LEPTON_MASS[13]],
                       PION_MASS),
        vertex=np.stack([t["vx"][g], t["vy"][g], t["vz"][g]], -1),
        own_pv=np.stack([np.zeros_like(g, float), np.zeros_like(g, float), t["dz_vertex"][g]],
                        -1),
        mask=mask, jet_p=flat["p"], jet_e=flat["e"], subjets=subjets, tau_axes=tau_axes,
    )
    feats = track_and_vertex_features(batch, rng, res)
    jet = jet_features(batch, feats)
    extras = _truth(t, flat, slots, feats, settings)

    jet_pt = np.hypot(flat["p"][:, 0], flat["p"][:, 1])
    jet_eta, _ = eta_phi(*flat["p"].T)
    msd = _np(sd.msoftdrop)
    n_sd = (np.hypot(subjets[..., 0], subjets[..., 1]) > 0).sum(1)
    spectators = np.stack([
        jet_pt, jet_eta, msd, n_sd, np.full(len(jet_pt), schema.SPECTATORS[4].default),
        np.where(tau1 > 0, tau2 / np.where(tau1 > 0, tau1, 1), 1.01),
        np.where(tau2 > 0, tau3 / np.where(tau2 > 0, tau2, 1), 1.01),
        npv[flat["event"]], flat["n_cons"], feats.n_tracks, feats.n_sv,
    ], axis=1).astype(np.float32)
    timer.add("features", t0)
    jets = Jets.cms(feats.tracks, feats.vertices, jet, None, spectators, extras=extras,
                validate=False)
    keep = (msd > settings.sdmass_min) & (msd < settings.sdmass_max)
    return jets if keep.all() else jets[np.flatnonzero(keep)]


def _truth(t, flat, slots, feats, settings) -> dict[str, np.ndarray]:
    """Generator truth per stored track and SV, and the jet's b hadrons."""
    res = settings.resolution
    b_idx, n_b = _b_hadrons(t, flat, settings.jet_radius)
    pad = schema.TRUTH_PADDING

    def per_slot(slot_index):
        ok = slot_index >= 0
        g = np.where(ok, np.take_along_axis(slots, np.maximum(slot_index, 0), 1), -1)
        gi = g[ok]
        first_b, first_heavy = events.ancestry(t, gi)
        origin = np.full(g.shape, pad)
        origin[ok] = events.track_origin(t, gi, first_b, first_heavy, res)
        which_b = np.full(g.shape, pad)
        match = (first_b[:, None] == b_idx[np.nonzero(ok)[0]]) & (first_b[:, None] >= 0)
        which_b[ok] = np.where(match.any(1), np.argmax(match, 1), pad)
        heavy = np.full(g.shape, -1)
        heavy[ok] = np.where(first_heavy >= 0, first_heavy, t["mother"][gi])
        return origin, which_b, heavy

    t_origin, t_b, _ = per_slot(feats.track_slot)
    s_origin, s_b, s_hadron = per_slot(feats.sv_slot)
    pdg = np.where(s_hadron >= 0, t["id"][np.maximum(s_hadron, 0)], 0)
    kin = np.zeros(b_idx.shape + (3,), np.float32)
    ok = b_idx >= 0
    bi = b_idx[ok]
    beta_, bphi = eta_phi(t["px"][bi], t["py"][bi], t["pz"][bi])
    kin[ok] = np.stack([np.hypot(t["px"][bi], t["py"][bi]), beta_, bphi], -1)
    return {
        "n_b_hadrons": n_b.astype(np.int32),
        "track_origin": t_origin.astype(np.int8),
        "track_b_hadron": t_b.astype(np.int8),
        "sv_origin": s_origin.astype(np.int8),
        "sv_b_hadron": s_b.astype(np.int8),
        "sv_hadron_pdgid": np.where(feats.sv_slot >= 0, pdg, 0).astype(np.int32),
        "b_hadron_pdgid": np.where(ok, t["id"][np.maximum(b_idx, 0)], 0).astype(np.int32),
        "b_hadron_pt_eta_phi": kin,
    }
