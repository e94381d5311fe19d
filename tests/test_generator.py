"""Physics and reproducibility of the Pythia 8 + FastJet generator (DESIGN 3.2)."""

import numpy as np
import pytest

from servable.data import schema
from servable.data.generator import generate
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


def test_impact_parameters_of_b_tracks_are_mostly_positive(jets):
    col = schema.TRACK_NAMES.index("trackBTag_Sip3dSig")
    values = jets.tracks[jets.is_signal, col, :][jets.tracks[jets.is_signal, 0, :] > 0]
    significant = values[np.abs(values) > 3]
    assert np.mean(significant > 0) > 0.75


def test_generator_truth_counts_b_hadrons(jets):
    nb = jets.extras["n_b_hadrons"]
    assert np.mean(nb[jets.is_signal]) > 1.5 and np.mean(nb[~jets.is_signal]) < 0.5


def test_track_quality_is_categorical(jets):
    col = schema.TRACK_NAMES.index("track_quality")
    values = np.unique(jets.tracks[:, col, :][jets.tracks[:, 0, :] > 0])
    assert set(values.tolist()) <= {0.0, 1.0, 2.0}


def test_jets_respect_the_kinematic_selection(jets):
    assert jets.spectator("fj_pt").min() > 350
    assert np.abs(jets.spectator("fj_eta")).max() < 2.4


def test_provenance_records_seeds_settings_and_resolution_model(train_file):
    with JetFile(train_file) as f:
        prov = f.attrs["provenance"]
    assert prov["seed"] == 1 and prov["workers"] == 2
    assert prov["settings"]["resolution"]["d0_msc_um_gev"] == 90.0
    assert "25:onIfAny = 5" in prov["pythia_settings"]["signal"]
    assert len(prov["pythia_seeds"]) == 4


def test_same_seed_gives_identical_arrays_and_other_seeds_differ():
    a, _ = generate(40, 40, seed=11, workers=2, progress=False)
    b, _ = generate(40, 40, seed=11, workers=2, progress=False)
    c, _ = generate(40, 40, seed=12, workers=2, progress=False)
    for attr in ("tracks", "vertices", "jet_features", "labels", "spectators"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert not np.array_equal(a.tracks, c.tracks)
