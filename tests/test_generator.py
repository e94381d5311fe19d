"""Physics and reproducibility of the Pythia 8 + FastJet generator."""

import numpy as np
import pytest

from servable.data import schema
from servable.data.generator import GeneratorSettings, generate
from servable.data.h5io import JetFile, read_jets


@pytest.fixture(scope="module")
def jets(train_file):
    return read_jets(train_file)


def test_sample_has_the_requested_jets_per_class(jets):
    assert len(jets) == 3000 and int(jets.is_signal.sum()) == 1500


def test_soft_drop_mass_peaks_at_the_higgs_for_signal_and_low_for_qcd(jets):
    sd = jets.spectator("fj_sdmass")
    assert 100 < np.median(sd[jets.is_signal]) < 140
    assert np.median(sd[~jets.is_signal]) < 60


def test_signal_jets_have_many_more_secondary_vertices(jets):
    sig = jets.n_vertices[jets.is_signal].mean()
    bkg = jets.n_vertices[~jets.is_signal].mean()
    assert sig > 1 and sig >= 5 * bkg


def test_displaced_tracks_are_much_more_common_in_signal(jets):
    col = schema.TRACK_NAMES.index("trackBTag_Sip3dSig")
    filled = jets.tracks[:, 0, :] > 0

    def share(sel):
        sig = jets.tracks[sel, col, :][filled[sel]]
        return np.mean(np.abs(sig) > 3)

    assert share(jets.is_signal) >= 4 * share(~jets.is_signal)


def test_generator_truth_counts_b_hadrons(jets):
    nb = jets.extras["n_b_hadrons"]
    assert np.mean(nb[jets.is_signal]) > 1.5 and np.mean(nb[~jets.is_signal]) < 0.5


def test_jets_respect_the_kinematic_selection(jets):
    assert jets.spectator("fj_pt").min() > 350
    assert np.abs(jets.spectator("fj_eta")).max() < 2.4


def test_provenance_records_seeds_settings_and_resolution_model(train_file):
    with JetFile(train_file) as f:
        prov = f.attrs["provenance"]
    assert prov["seed"] == 1 and prov["workers"] == 2
    assert prov["settings"]["resolution"]["dxy_msc_um_gev"] == 90.0
    assert prov["settings"]["resolution"]["high_purity_max_normchi2"] == 2.0
    assert "25:onIfAny = 5" in prov["pythia_settings"]["signal"]
    assert len(prov["pythia_seeds"]) == 4


def test_same_seed_gives_identical_arrays_and_other_seeds_differ():
    a, _ = generate(40, 40, seed=11, workers=2, progress=False)
    b, _ = generate(40, 40, seed=11, workers=2, progress=False)
    c, _ = generate(40, 40, seed=12, workers=2, progress=False)
    for attr in ("tracks", "vertices", "jet_features", "labels", "spectators"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert not np.array_equal(a.tracks, c.tracks)


@pytest.fixture(scope="module")
def pileup_jets():
    """150 + 150 jets with MU = 20 pileup interactions (soft QCD), seed 4."""
    jets, prov = generate(150, 150, seed=4, workers=2, progress=False,
                          settings=GeneratorSettings(pileup_mu=20))
    return jets, prov


def test_physics_checks_hold_at_pileup_20(pileup_jets):
    jets, _ = pileup_jets
    sd = jets.spectator("fj_sdmass")
    assert 100 < np.median(sd[jets.is_signal]) < 145
    assert np.median(sd[~jets.is_signal]) < 60
    sig, bkg = (jets.n_vertices[s].mean() for s in (jets.is_signal, ~jets.is_signal))
    assert sig > 1 and sig >= 5 * bkg
    col = schema.TRACK_NAMES.index("trackBTag_Sip3dSig")
    filled = jets.tracks[:, 0, :] > 0

    def share(sel):
        return np.mean(np.abs(jets.tracks[sel, col, :][filled[sel]]) > 3)

    assert share(jets.is_signal) >= 4 * share(~jets.is_signal)


def test_pileup_fills_npv_and_enters_the_jets(pileup_jets, jets):
    pu, prov = pileup_jets
    npv = pu.spectator("npv")
    assert np.all(npv == np.round(npv)) and 8 < npv.mean() < 20
    assert np.all(jets.spectator("npv") == 1)
    assert pu.spectator("npfcands").mean() > 1.1 * jets.spectator("npfcands").mean()
    origin = pu.extras["track_origin"]
    assert (origin == schema.TRUTH_ORIGINS.index("pileup")).sum() > 0
    assert "SoftQCD:inelastic = on" in prov["pythia_settings"]["pileup"]
    assert len(prov["pileup_seeds"]) == 4


def test_cms_selection_windows_and_pt_weights():
    jets, prov = generate(80, 80, seed=5, workers=2, progress=False,
                          settings=GeneratorSettings.cms(reweight_pt=True))
    pt, msd = jets.spectator("fj_pt"), jets.spectator("fj_sdmass")
    assert pt.min() > 250 and pt.max() < 2500 and msd.min() > 40 and msd.max() < 200
    w = jets.extras["weight"]
    sig = jets.is_signal
    assert np.all(w[~sig] == 1) and w[sig].mean() == pytest.approx(1, rel=1e-4)
    mean_bkg = pt[~sig].mean()
    assert abs(np.average(pt[sig], weights=w[sig]) - mean_bkg) < abs(pt[sig].mean() - mean_bkg)
    assert prov["settings"]["sdmass_min"] == 40
