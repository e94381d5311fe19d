"""JetClass ROOT files with uproot: reading a small file uproot writes, and the writer's round
trip on a generated sample (every branch, truth and provenance included)."""

import awkward as ak
import numpy as np
import pytest
import uproot

from servable.data.jetclass import (
    JET_BRANCHES,
    LABEL_BRANCHES,
    PARTICLE_BRANCHES,
    read_jetclass,
    read_provenance,
    write_jetclass,
)
from servable.data.jetobservables import OBSERVABLES
from servable.data.jets import InvalidJetsError, Jets
from servable.data.particles import DERIVED
from servable.errors import ServableError


@pytest.fixture()
def handmade_file(tmp_path):
    rng = np.random.default_rng(0)
    counts = np.array([3, 1, 5])
    branches = {b: ak.unflatten(rng.normal(size=counts.sum()).astype(np.float32) + 1.0, counts)
                for b in PARTICLE_BRANCHES}
    for b in JET_BRANCHES:  # positive: a jet energy <= 0 gives no log(E/E_jet) (refused)
        branches[b] = (np.abs(rng.normal(size=3)) + 1.0).astype(np.float32)
    for i, b in enumerate(LABEL_BRANCHES):
        branches[b] = np.array([i == 1, i == 0, i == 8], dtype=np.float32)
    path = tmp_path / "jetclass.root"
    with uproot.recreate(path) as f:
        f["tree"] = branches
    return path, branches, counts


def test_particles_are_padded_channels_first_in_file_order(handmade_file):
    path, branches, counts = handmade_file
    jets = read_jetclass(path, max_particles=4)
    part = jets.group("particles")
    assert part.values.shape == (3, len(PARTICLE_BRANCHES) + len(DERIVED), 4)
    np.testing.assert_allclose(part.values[0, 0, :3], ak.to_numpy(branches["part_px"][0]))
    assert part.filled().tolist() == [3, 1, 4]  # the 5-particle jet is clipped to 4 slots
    assert part.features == (*PARTICLE_BRANCHES, *DERIVED)
    assert list(jets.groups) == ["particles", "jet_features"] and jets.layout == "jetclass"


def test_labels_are_the_ten_jetclass_classes(handmade_file):
    path, _, _ = handmade_file
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


def test_a_file_without_provenance_has_none(handmade_file):
    assert read_provenance(handmade_file[0]) is None


@pytest.fixture(scope="module")
def generated(jetclass_file):
    return read_jetclass(jetclass_file)


def _branches(path):
    with uproot.open(path) as f:
        t = f["tree"]
        return {k: t[k].array(library="ak") for k in t.keys()}, t.typenames()


def test_writing_a_generated_file_again_keeps_every_branch(jetclass_file, generated, tmp_path):
    out = write_jetclass(tmp_path / "again.root", generated, read_provenance(jetclass_file))
    before, types_before = _branches(jetclass_file)
    after, types_after = _branches(out)
    assert types_after == types_before
    assert {b for b in before if b.startswith("part_truth_")} == {
        "part_truth_pdgid", "part_truth_origin", "part_truth_decay_product"}
    for name in before:
        assert ak.to_list(after[name]) == ak.to_list(before[name]), name
    assert read_provenance(out) == read_provenance(jetclass_file)


def test_read_back_jets_equal_the_written_ones(generated, tmp_path):
    back = read_jetclass(write_jetclass(tmp_path / "j.root", generated))
    for name in ("particles", "jet_features"):
        np.testing.assert_array_equal(back.group(name).values, generated.group(name).values)
    np.testing.assert_array_equal(back.labels, generated.labels)
    assert back.extras.keys() == generated.extras.keys()
    for key, value in generated.extras.items():
        assert back.extras[key].dtype == value.dtype, key
        np.testing.assert_array_equal(back.extras[key], value)


def test_truth_per_particle_is_padded_like_the_particles(jetclass_file):
    clipped = read_jetclass(jetclass_file, max_particles=4)
    assert clipped.extras["part_truth_origin"].shape == (len(clipped), 4)
    jets = read_jetclass(jetclass_file)
    padded = jets.group("particles").column("part_energy") == 0
    assert padded.any() and (~padded).any()
    assert np.all(jets.extras["part_truth_origin"][padded] == -1)
    assert np.all(jets.extras["part_truth_pdgid"][padded] == 0)
    assert np.all(jets.extras["part_truth_pdgid"][~padded] != 0)


def test_labels_of_fewer_classes_become_the_ten_jetclass_columns(generated, tmp_path):
    sel = generated[np.flatnonzero(generated.is_class("QCD") | generated.is_class("Tbl"))[:6]]
    two = type(sel)(sel.groups, sel.labels[:, [0, 9]], validate=False,
                    class_names=("QCD", "Tbl"))
    back = read_jetclass(write_jetclass(tmp_path / "two.root", two))
    np.testing.assert_array_equal(back.labels, sel.labels)


def test_the_writer_refuses_an_existing_file_without_force(generated, tmp_path):
    out = tmp_path / "j.root"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="--force"):
        write_jetclass(out, generated[:2])
    assert out.read_bytes() == b"keep"
    write_jetclass(out, generated[:2], force=True)
    assert len(read_jetclass(out)) == 2


def test_the_writer_refuses_cms_layout_jets(tmp_path):
    cms = Jets.cms(np.zeros((2, 30, 60), np.float32), np.zeros((2, 14, 5), np.float32))
    with pytest.raises(InvalidJetsError, match="not JetClass-layout jets: no .particles. group"):
        write_jetclass(tmp_path / "cms.root", cms)
    assert not (tmp_path / "cms.root").exists()
