import h5py
import numpy as np
import pytest

from servable.data.h5io import JetFileError, iter_jets, read_jets, write_jets


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
