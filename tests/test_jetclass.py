"""JetClass reading with uproot, on a small ROOT file that uproot itself writes."""

import awkward as ak
import numpy as np
import pytest
import uproot

from servable.data.jetclass import (
    JET_BRANCHES,
    LABEL_BRANCHES,
    PARTICLE_BRANCHES,
    read_jetclass,
)
from servable.data.jetobservables import OBSERVABLES
from servable.data.particles import DERIVED
from servable.errors import ServableError


@pytest.fixture()
def jetclass_file(tmp_path):
    rng = np.random.default_rng(0)
    counts = np.array([3, 1, 5])
    branches = {b: ak.unflatten(rng.normal(size=counts.sum()).astype(np.float32) + 1.0, counts)
                for b in PARTICLE_BRANCHES}
    for b in JET_BRANCHES:
        branches[b] = rng.normal(size=3).astype(np.float32)
    for i, b in enumerate(LABEL_BRANCHES):
        branches[b] = np.array([i == 1, i == 0, i == 8], dtype=np.float32)
    path = tmp_path / "jetclass.root"
    with uproot.recreate(path) as f:
        f["tree"] = branches
    return path, branches, counts


def test_particles_are_padded_channels_first_in_file_order(jetclass_file):
    path, branches, counts = jetclass_file
    jets = read_jetclass(path, max_particles=4)
    assert jets.tracks.shape == (3, len(PARTICLE_BRANCHES) + len(DERIVED), 4)
    np.testing.assert_allclose(jets.tracks[0, 0, :3], ak.to_numpy(branches["part_px"][0]))
    assert jets.n_tracks.tolist() == [3, 1, 4]  # the 5-particle jet is clipped to 4 slots
    assert jets.track_names == (*PARTICLE_BRANCHES, *DERIVED)


def test_labels_are_the_ten_jetclass_classes(jetclass_file):
    path, _, _ = jetclass_file
    jets = read_jetclass(path)
    assert jets.labels.shape == (3, 10)
    assert jets.labels.argmax(1).tolist() == [1, 0, 8]
    assert jets.jet_feature_names == (*JET_BRANCHES, *OBSERVABLES)  # the file's, then derived


def test_a_file_missing_branches_is_refused(tmp_path):
    path = tmp_path / "bad.root"
    with uproot.recreate(path) as f:
        f["tree"] = {"jet_pt": np.ones(2)}
    with pytest.raises(ServableError, match="missing JetClass branches part_px"):
        read_jetclass(path)
