"""The CMS producer's conventions hold on generated jets (1500 H->bb + 1500 QCD, seed 1),
the MiniAOD packing is exact, and the generator truth is consistent with the features."""

import numpy as np
import pytest

from servable.data import detector, schema
from servable.data.detector import ResolutionModel
from servable.data.features import ParticleBatch, track_and_vertex_features
from servable.data.h5io import read_jets


@pytest.fixture(scope="module")
def jets(train_file):
    return read_jets(train_file)


def col(name):
    return schema.TRACK_NAMES.index(name)


def filled(jets):
    return np.any(jets.tracks != 0, axis=1)


def values(jets, name):
    return jets.tracks[:, col(name), :][filled(jets)]


def test_quality_is_the_bit_mask_1_or_5_and_padding_is_zero(jets):
    q = values(jets, "track_quality")
    assert set(np.unique(q).tolist()) == {1.0, 5.0}
    assert np.mean(q == 5) > 0.8  # mostly highPurity, as in the CMS sample
    assert np.all(jets.tracks[~np.broadcast_to(filled(jets)[:, None, :], jets.tracks.shape)] == 0)


def test_normchi2_and_sv_ntracks_are_integers(jets):
    chi2 = values(jets, "track_normchi2")
    assert np.all(chi2 == np.round(chi2)) and chi2.min() >= -1 and chi2.max() <= 300
    assert set(np.unique(chi2)[:2].tolist()) == {0.0, 1.0}
    ntrk = jets.vertices[:, 7, :][jets.vertices[:, 0, :] != 0]
    assert np.all(ntrk == np.round(ntrk)) and ntrk.min() >= 2


def test_clip_bounds_and_offsets(jets):
    drminsv = values(jets, "track_drminsv")
    assert drminsv.min() >= -0.8 and drminsv.max() <= 0 and np.any(drminsv == 0)
    for name in ("trackBTag_Sip2dSig", "trackBTag_Sip3dSig"):
        v = values(jets, name)
        assert v.min() == pytest.approx(-1.0) and np.mean(v == -1.0) > 0.05  # the spike
    assert values(jets, "trackBTag_JetDistVal").max() <= 0
    assert np.abs(values(jets, "track_dxysig")).max() <= 2000
    eta_rel = values(jets, "trackBTag_EtaRel")
    assert eta_rel.min() >= -5 and eta_rel.max() <= 15 and 1.5 < np.median(eta_rel) < 4
    sv_dr = jets.vertices[:, 4, :][jets.vertices[:, 0, :] != 0]
    assert sv_dr.min() >= -0.5 and sv_dr.max() <= 0 and np.any(sv_dr == 0)
    assert len(sv_dr) > 1000


def test_tracks_are_ordered_by_sip2dsig_and_vertices_by_flight_significance(jets):
    sig = jets.tracks[:, col("trackBTag_Sip2dSig"), :]
    f = filled(jets)
    step = np.diff(sig, axis=1)[f[:, 1:]]
    assert np.all(step <= 1e-6)
    dxysig = jets.vertices[:, 10, :]
    fv = jets.vertices[:, 0, :] != 0
    assert np.all(np.diff(dxysig, axis=1)[fv[:, 1:]] <= 1e-6)


def _on_grid(x, lmin, lmax):
    k = (np.log(np.abs(x)) - lmin) / (lmax - lmin) * 128
    return np.abs(k - np.round(k)) < 0.02


def test_covariances_lie_on_the_miniaod_packing_grids(jets):
    f = filled(jets)
    pt = (jets.tracks[:, col("track_ptrel"), :] * jets.spectator("fj_pt")[:, None])[f]
    dpt = values(jets, "track_dptdpt")
    assert dpt.min() > 0 and np.mean(_on_grid(dpt * pt * pt, -15, 0)) > 0.99
    assert np.all(_on_grid(values(jets, "track_detadeta"), -20, -5))
    for name in ("track_dphidxy", "track_dlambdadz"):
        v = values(jets, name)
        assert np.all(v != 0) and np.all(_on_grid(v, -17, -4))
    dxy = values(jets, "track_dxydxy")
    assert np.all(np.float16(dxy * 1e4).astype(np.float32) == pytest.approx(dxy * 1e4, rel=1e-3))
    assert 1e-7 < np.median(dpt) < 1e-4  # sigma^2(q/p) in GeV^-2, not sigma^2(pT)


def test_packing_matches_hand_computed_codes():
    lo = np.exp(-15 + 15 * 10 / 128)
    hi = np.exp(-15 + 15 * 11 / 128)
    mid = np.sqrt(lo * hi)
    assert detector.quantise_log(np.array([mid]), -15, 0, ceil=True)[0] == pytest.approx(hi)
    assert detector.quantise_log(np.array([mid]), -15, 0)[0] == pytest.approx(lo, rel=1e-5)
    low = np.exp(-17 + 13 * 20 / 128)
    high = np.exp(-17 + 13 * 21 / 128)
    assert detector.quantise_log(np.array([-np.sqrt(low * high)]), -17, -4)[0] == \
        pytest.approx(-low, rel=1e-5)
    # tiny values of either sign become +exp(lmin) (old liblogintpack), never zero
    assert detector.quantise_log(np.array([-1e-12, 0.0]), -17, -4) == \
        pytest.approx([np.exp(-17), np.exp(-17)], rel=1e-5)
    # 0.123456 lies in [2^-4, 2^-3): half-float steps of 2^-14, nearest is 2023 steps
    assert detector.quantise_half(np.array([1.23456e-5]))[0] == pytest.approx(
        2023 * 2.0**-14 / 1e4, rel=1e-6)


def _one_track_batch(jet_eta, track_eta):
    def vec(pt, eta):
        return np.array([pt, 0.0, pt * np.sinh(eta)])

    p = vec(20.0, track_eta)
    jet = vec(400.0, jet_eta)
    return ParticleBatch(
        p=p[None, None], mass=np.full((1, 1), 0.13957), vertex=np.zeros((1, 1, 3)),
        own_pv=np.zeros((1, 1, 3)), mask=np.ones((1, 1), bool), jet_p=jet[None],
        jet_e=np.array([np.linalg.norm(jet)]), subjets=np.stack([jet, np.zeros(3)])[None],
        tau_axes=np.stack([jet, jet])[None])


@pytest.mark.parametrize("jet_eta, track_eta, expected", [(1.0, 1.1, 0.1), (-1.0, -0.9, -0.1),
                                                          (-1.0, -1.1, 0.1)])
def test_etarel_flips_sign_for_jets_at_negative_eta(jet_eta, track_eta, expected):
    feats = track_and_vertex_features(_one_track_batch(jet_eta, track_eta),
                                      np.random.default_rng(0), ResolutionModel())
    assert feats.tracks[0, col("track_etarel"), 0] == pytest.approx(expected, abs=0.01)
    assert feats.tracks[0, col("track_drsubjet2"), 0] == -1.0  # no second subjet
    assert feats.tracks[0, col("track_drminsv"), 0] == 0.0  # no SV


def test_truth_origins_fill_exactly_the_stored_slots(jets):
    origin = jets.extras["track_origin"]
    assert np.all((origin >= 0) == filled(jets))
    assert set(np.unique(origin).tolist()) <= {-1, *range(len(schema.TRUTH_ORIGINS))}
    sv_origin = jets.extras["sv_origin"]
    assert np.all((sv_origin >= 0) == (jets.vertices[:, 0, :] != 0))


def test_b_decay_tracks_are_far_more_displaced_than_primary_tracks(jets):
    origin = jets.extras["track_origin"][jets.is_signal]
    b, prim = (origin == schema.TRUTH_ORIGINS.index(k) for k in ("b_hadron_decay", "primary"))
    for name in ("track_dxysig", "trackBTag_Sip3dVal"):
        v = np.abs(jets.tracks[jets.is_signal, col(name), :])
        assert np.median(v[b]) >= 5 * np.median(v[prim]), name
    # the b hadron index points into the jet's b-hadron list
    which = jets.extras["track_b_hadron"][jets.is_signal][b]
    n_b = jets.extras["n_b_hadrons"][jets.is_signal]
    assert np.mean(which >= 0) > 0.9
    assert np.all(which < np.repeat(np.maximum(n_b, 1), b.sum(1)))


def test_signal_vertices_come_from_heavy_flavour_hadrons(jets):
    pdg = np.abs(jets.extras["sv_hadron_pdgid"][jets.is_signal])
    pdg = pdg[pdg > 0]
    heavy = ((pdg // 100) % 10 >= 4) | ((pdg // 1000) % 10 >= 4)
    assert len(pdg) > 500 and np.mean(heavy) > 0.95


def test_origins_follow_the_ancestry_of_a_hand_made_event():
    from servable.data import events

    #        0 system, 1 B0, 2 D- (from B0), 3 pi (from D), 4 pi (from B0), 5 pi prompt,
    #        6 D0 prompt, 7 K (from D0), 8 pi (pileup)
    ids = np.array([90, 511, -411, 211, -211, 211, 421, -321, 211])
    mother = np.array([-1, 0, 1, 2, 1, 0, 0, 6, -1])
    vz = np.array([0, 0, 0.4, 0.9, 0.4, 0, 0, 0.1, 35.0])
    t = {"id": ids, "mother": mother, "vx": np.zeros(9), "vy": np.zeros(9), "vz": vz,
         "dz_vertex": np.array([0.0] * 8 + [35.0]), "pu_vertex": np.array([0] * 8 + [1])}
    idx = np.array([3, 4, 5, 7, 8])
    first_b, first_heavy = events.ancestry(t, idx)
    assert first_b.tolist() == [1, 1, -1, -1, -1]
    assert first_heavy.tolist() == [2, 1, -1, 6, -1]
    origin = events.track_origin(t, idx, first_b, first_heavy, ResolutionModel())
    names = [schema.TRUTH_ORIGINS[o] for o in origin]
    assert names == ["b_hadron_decay", "b_hadron_decay", "primary", "c_hadron_decay", "pileup"]


def test_b_hadron_lists_hold_distinct_hadrons_by_decreasing_pt(jets):
    pdg = jets.extras["b_hadron_pdgid"]
    pt = jets.extras["b_hadron_pt_eta_phi"][..., 0]
    n = np.minimum(jets.extras["n_b_hadrons"], schema.B_HADRON_SLOTS)
    assert np.all((pdg != 0).sum(1) == n) and np.all((pt > 0).sum(1) == n)
    assert np.all(np.diff(pt, axis=1) <= 0)
    assert all(len(set(row[:k].tolist())) == k for row, k in zip(pt, n, strict=True))
