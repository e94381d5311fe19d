import re

import h5py
import numpy as np
import pytest

from servable.data.h5io import JetFileError, iter_jets, read_jets, write_jets
from servable.data.jets import InvalidJetsError, Jets
from tests.cli_helpers import run_cli


def test_round_trip_gives_identical_arrays_names_and_attributes(train_file, tmp_path):
    jets = read_jets(train_file)[:300]
    out = write_jets(tmp_path / "copy.h5", jets, split="testing",
                     attrs={"provenance": {"seed": 7}, "note": "round trip"})
    back = read_jets(out)
    for attr in ("tracks", "vertices", "jet_features", "labels", "spectators"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(jets, attr))
    assert back.track_names == jets.track_names
    assert back.jet_feature_names == jets.jet_feature_names
    for key in ("n_b_hadrons", "track_origin", "sv_hadron_pdgid", "b_hadron_pt_eta_phi"):
        np.testing.assert_array_equal(back.extras[key], jets.extras[key])
        assert back.extras[key].dtype == jets.extras[key].dtype
    with h5py.File(out) as f:
        assert f["testing_subgroup/testing_2"].shape == (300, 30, 60)
        assert f["testing_subgroup/testing_3"].shape == (300, 14, 5)
        assert f["testing_subgroup/testing_0"].shape == (300, 27, 1)
        assert f["target_subgroup/target"].shape == (300, 2)
        assert f["spectator_subgroup/spectators"].shape == (300, 1, 11)
        assert f.attrs["note"] == "round trip"


def test_chunked_iteration_equals_a_full_read(train_file):
    full = read_jets(train_file)
    chunks = list(iter_jets([train_file], chunk_size=700))
    assert [len(c) for c in chunks][:2] == [700, 700]
    np.testing.assert_array_equal(np.concatenate([c.tracks for c in chunks]), full.tracks)


def test_reading_several_files_concatenates_them(train_file, test_file):
    both = read_jets([train_file, test_file])
    assert len(both) == len(read_jets(train_file)) + len(read_jets(test_file))


def test_write_never_overwrites_an_existing_file(train_file, tmp_path):
    target = tmp_path / "keep.h5"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_jets(target, read_jets(train_file)[:5])
    assert target.read_bytes() == b"precious"


def test_missing_dataset_is_named(train_file, tmp_path):
    bad = tmp_path / "missing.h5"
    with h5py.File(train_file) as src, h5py.File(bad, "w") as dst:
        src.copy("training_subgroup", dst)
        del dst["training_subgroup/training_3"]
    with pytest.raises(JetFileError, match="missing dataset 'training_subgroup/training_3'"):
        read_jets(bad)


def test_wrong_shapes_are_reported_with_expected_shape(tmp_path):
    bad = tmp_path / "shape.h5"
    with h5py.File(bad, "w") as f:
        f["training_subgroup/training_2"] = np.zeros((4, 30, 50), np.float32)
        f["training_subgroup/training_3"] = np.zeros((4, 14, 5), np.float32)
    with pytest.raises(JetFileError, match=r"shape \(4, 30, 50\), expected \(n, 30, 60\)"):
        read_jets(bad)


def test_truncated_file_is_reported_not_crashed(train_file, tmp_path):
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(train_file.read_bytes()[: train_file.stat().st_size // 2])
    with pytest.raises(JetFileError, match="truncated"):
        read_jets(bad)


def test_a_file_without_the_layout_groups_is_refused(tmp_path):
    bad = tmp_path / "other.h5"
    with h5py.File(bad, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(JetFileError, match="not a CMS H->bb layout file"):
        read_jets(bad)


def _small_jets(n=3, truth=True) -> Jets:
    """Valid jets in the full CMS layout (and generator truth), without generating events."""
    t = np.zeros((n, 30, 60), np.float32)
    v = np.zeros((n, 14, 5), np.float32)
    t[:, :, :4], v[:, :, :1] = 1.0, 2.0
    extras = {"n_b_hadrons": np.full(n, 2, np.int32),
              "track_origin": np.zeros((n, 60), np.int8)} if truth else {}
    return Jets.cms(t, v, np.ones((n, 27), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0][:n]],
                np.ones((n, 11), np.float32), extras=extras)


def _with(tmp_path, key, value, name="bad.h5"):
    """A valid small file in which `key` is replaced by `value` (a group when value is None)."""
    path = write_jets(tmp_path / name, _small_jets())
    with h5py.File(path, "a") as f:
        if key in f:
            del f[key]
        if value is None:
            f.create_group(key)
        else:
            f[key] = value
    return path


def test_small_valid_files_round_trip_with_their_truth(tmp_path):
    back = read_jets(write_jets(tmp_path / "ok.h5", _small_jets()))
    assert len(back) == 3 and back.extras["n_b_hadrons"].tolist() == [2, 2, 2]


@pytest.mark.parametrize("key, value, expected", [
    ("training_subgroup/training_0", np.ones((3, 27, 2), np.float32), "(n, 27, 1)"),
    ("spectator_subgroup/spectators", np.ones((3, 2, 11), np.float32), "(n, 1, 11)"),
    ("spectator_subgroup/spectators", np.ones((3, 11), np.float32), "(n, 1, 11)"),
    ("target_subgroup/target", np.eye(3, dtype=np.float32), "(n, 2)"),
    ("generator_truth/track_origin", np.zeros((3, 59), np.int8), "(n, 60)"),
])
def test_optional_datasets_of_the_wrong_shape_are_refused_naming_dataset_and_shapes(
        tmp_path, key, value, expected):
    bad = _with(tmp_path, key, value)
    message = f"dataset '{key}' has shape {value.shape}, expected {expected}"
    with pytest.raises(JetFileError, match=re.escape(message)) as exc:
        read_jets(bad)
    assert len(str(exc.value).splitlines()) == 1


def test_extra_datasets_of_the_users_own_under_generator_truth_are_ignored(tmp_path):
    """Issue 38: a truth label the user added (any shape, any dtype, even text, a group or a
    link to another file) is not read, and the file is not refused for it."""
    from servable.data.h5io import JetFile
    from servable.data.summary import format_summary, summarize

    path = _with(tmp_path, "generator_truth/extra_a", np.array([b"x", b"y"]))
    with h5py.File(path, "a") as f:
        f.create_group("generator_truth/extra_group")
        f["generator_truth/extra_link"] = h5py.ExternalLink("/nonexistent.h5", "x")
    jets = read_jets(path)
    assert sorted(jets.extras) == ["n_b_hadrons", "track_origin"]
    with JetFile(path) as jf:
        assert sorted(jf.ignored) == ["generator_truth/extra_a", "generator_truth/extra_group",
                                      "generator_truth/extra_link"]
    summary = summarize(path)
    assert summary["ignored"] == sorted(summary["ignored"]) and len(summary["ignored"]) == 3
    note = format_summary(summary).splitlines()[-1]
    assert note.startswith("  note: not part of the layout, ignored") and "'generator_truth/" \
        "extra_a'" in note
    shown = run_cli("data", "inspect", path)
    assert shown.returncode == 0 and "ignored (nothing reads them)" in shown.stdout, shown


def test_known_generator_truth_datasets_keep_their_strict_checks_beside_extras(tmp_path):
    path = _with(tmp_path, "generator_truth/extra_a", np.zeros(3))
    with h5py.File(path, "a") as f:
        del f["generator_truth/track_origin"]
        f["generator_truth/track_origin"] = np.zeros((3, 59), np.int8)
    with pytest.raises(JetFileError, match=re.escape("'generator_truth/track_origin' has shape "
                                                     "(3, 59), expected (n, 60)")):
        read_jets(path)


def test_a_group_where_a_dataset_belongs_is_refused(tmp_path):
    for key in ("generator_truth/weight", "target_subgroup/target"):
        with pytest.raises(JetFileError, match=f"'{key}' is a group, expected a dataset"):
            read_jets(_with(tmp_path, key, None, name=f"{key.replace('/', '_')}.h5"))


def test_text_where_numbers_belong_is_refused_naming_the_dtype(tmp_path):
    bad = _with(tmp_path, "generator_truth/n_b_hadrons", np.array([b"a", b"b", b"c"]))
    with pytest.raises(JetFileError, match=re.escape("'generator_truth/n_b_hadrons' has dtype "
                                                     "|S1, expected numeric values")):
        read_jets(bad)


def test_links_to_other_files_are_not_followed(tmp_path):
    other = write_jets(tmp_path / "other.h5", _small_jets())
    bad = write_jets(tmp_path / "linked.h5", _small_jets())
    with h5py.File(bad, "a") as f:
        del f["target_subgroup/target"]
        f["target_subgroup/target"] = h5py.ExternalLink(str(other), "target_subgroup/target")
    with pytest.raises(JetFileError, match="is a link \\(ExternalLink\\).*not followed"):
        read_jets(bad)


def test_labels_that_are_not_one_hot_are_refused_by_the_reader(tmp_path):
    bad = _with(tmp_path, "target_subgroup/target",
                np.array([[1, 0], [2, 0], [0, 1]], np.float32))
    with pytest.raises(JetFileError, match=r"labels: expected one-hot rows.*\[2.0, 0.0\] for "
                                           "jet 1"):
        read_jets(bad)


def test_a_damaged_object_header_is_refused_not_raised_as_a_keyerror():
    """Found by fuzz/h5_reader.py: h5py raises KeyError (or TypeError, RuntimeError) for
    some corrupt structures; the reader reports them as a damaged file."""
    from pathlib import Path

    damaged = (Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "h5_reader"
               / "regression-keyerror-object-header.h5")
    with pytest.raises(JetFileError, match=r"cannot be read \(KeyError: .*message not "
                                           r"aligned.*probably truncated or corrupted"):
        read_jets(damaged)


@pytest.fixture(scope="module")
def jetclass_jets():
    """The oracle pseudo-jets in the JetClass layout (particles, derived channels, jet
    observables), ten classes, and an int8 per-particle generator truth array."""
    from servable.data import particles
    from tests.test_particlenet import FIXTURES

    raw = dict(np.load(FIXTURES / "pseudo_jets_raw.npz"))
    n = len(raw["jet_pt"])
    rng = np.random.default_rng(3)
    raw["jet_nparticles"] = raw["n_particles"]
    for name in ("jet_phi", "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4"):
        raw[name] = rng.random(n)
    jets = particles.jets_from_arrays(raw, np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)])
    jets.extras["particle_origin"] = rng.integers(-1, 5, (n, 128)).astype(np.int8)
    return jets


def test_jetclass_layout_round_trips_every_array_name_and_class(jetclass_jets, tmp_path):
    jets = jetclass_jets
    out = write_jets(tmp_path / "jetclass.h5", jets, attrs={"provenance": {"seed": 3}})
    back = read_jets(out)
    assert back.layout == "jetclass"
    assert list(back.groups) == ["particles", "jet_features"]
    for name in ("particles", "jet_features"):
        np.testing.assert_array_equal(back.group(name).values, jets.group(name).values)
        assert back.group(name).features == jets.group(name).features, name
    np.testing.assert_array_equal(back.labels, jets.labels)
    assert back.class_names == jets.class_names
    assert back.class_names == ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq",
                                "Tbqq", "Tbl")
    np.testing.assert_array_equal(back.extras["particle_origin"],
                                  jets.extras["particle_origin"])
    assert back.extras["particle_origin"].dtype == np.int8
    assert not back.has("vertices") and back.spectators is None
    with h5py.File(out) as f:
        assert f["training_subgroup/training_2"].shape == (256, 23, 128)
        assert "training_subgroup/training_3" not in f  # JetClass has no vertices
        assert f["training_subgroup/training_0"].shape == (256, len(jets.jet_feature_names), 1)
        assert [n.decode() if isinstance(n, bytes) else n
                for n in f["target_subgroup/target"].attrs["feature_names"]][-1] == "Tbl"


def test_cms_files_name_their_two_classes_as_the_open_data_target(train_file, tmp_path):
    out = write_jets(tmp_path / "cms.h5", read_jets(train_file)[:10])
    with h5py.File(out) as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f["target_subgroup/target"].attrs["feature_names"]]
        assert names == ["QCD", "Hbb"] and f["target_subgroup/target"].shape == (10, 2)
        assert set(f["training_subgroup"]) == {"training_0", "training_2", "training_3"}
    assert read_jets(out).layout == "cms"


def test_jetclass_jets_with_vertices_are_refused_not_dropped(jetclass_jets, tmp_path):
    from servable.data.jets import Group

    jets = jetclass_jets[:4].replace(Group("vertices", np.ones((4, 2, 3), np.float32),
                                           ("a", "b")))
    with pytest.raises(InvalidJetsError, match="vertices: jetclass-layout files have no place"):
        write_jets(tmp_path / "bad.h5", jets)
    assert not (tmp_path / "bad.h5").exists()


def test_a_root_file_and_its_hdf5_copy_read_the_same_jets_in_any_range(tmp_path):
    from servable.data.io import open_jets
    from tests.ring_jets import write_ring_root

    root = write_ring_root(tmp_path / "rings.root", 3, seed=5)
    with open_jets(root) as f:
        assert len(f) == 30 and f.class_names[0] == "QCD"
        copy = write_jets(tmp_path / "rings.h5", f.read())
    with open_jets(root) as a, open_jets(copy) as b:
        for start, stop in ((0, None), (5, 9), (28, 40)):
            x, y = a.read(start, stop), b.read(start, stop)
            assert len(x) == len(y) == len(range(30)[start:stop])
            assert list(x.groups) == list(y.groups) == ["particles", "jet_features"]
            for name in x.groups:
                np.testing.assert_array_equal(x.group(name).values, y.group(name).values)
                assert x.group(name).features == y.group(name).features
            np.testing.assert_array_equal(x.labels, y.labels)
            assert x.class_names == y.class_names
