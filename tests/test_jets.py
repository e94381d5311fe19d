import numpy as np
import pytest

from servable import InvalidJetsError, Jets, validate_jets
from servable.data.jetclass import CLASS_NAMES


def _arrays(n=4, filled=3):
    t = np.zeros((n, 30, 60), np.float32)
    v = np.zeros((n, 14, 5), np.float32)
    t[:, :, :filled] = 1.0
    v[:, :, :1] = 2.0
    return t, v


def test_valid_jets_come_back_as_float32_contiguous():
    t, v = _arrays()
    out = validate_jets(t.astype(np.float64), v)
    assert out["tracks"].dtype == np.float32 and out["tracks"].flags.c_contiguous


def test_wrong_feature_count_names_array_expected_and_received():
    t, v = _arrays()
    with pytest.raises(InvalidJetsError, match=r"tracks: expected 30 features.*received 29"):
        validate_jets(t[:, :29], v)


def test_wrong_slot_count_is_refused():
    t, v = _arrays()
    with pytest.raises(InvalidJetsError, match=r"vertices: expected 5 slots.*received 4"):
        validate_jets(t, v[:, :, :4])


def test_nan_and_inf_are_refused_with_the_first_bad_jet():
    t, v = _arrays()
    t[2, 5, 0] = np.inf
    with pytest.raises(InvalidJetsError, match=r"tracks: 1 NaN/Inf values \(first in jet 2\)"):
        validate_jets(t, v)


def test_integer_arrays_are_refused():
    t, v = _arrays()
    with pytest.raises(InvalidJetsError, match="floating-point"):
        validate_jets(t.astype(np.int32), v)


def test_a_filled_slot_after_padding_breaks_the_padding_convention():
    t, v = _arrays()
    t[1, :, 10] = 1.0
    with pytest.raises(InvalidJetsError, match="jet 1 has an empty slot before a filled one"):
        validate_jets(t, v)


def test_mismatched_jet_counts_are_refused():
    t, v = _arrays()
    with pytest.raises(InvalidJetsError, match="expected 4 jets"):
        validate_jets(t, v[:3])


def test_jets_slice_len_and_counts():
    t, v = _arrays(n=5, filled=7)
    labels = np.eye(2, dtype=np.float32)[[0, 1, 1, 0, 1]]
    jets = Jets.cms(t, v, labels=labels)
    assert len(jets) == 5 and len(jets[:2]) == 2
    assert jets[1:3].is_signal.tolist() == [True, True]
    assert jets.n_tracks.tolist() == [7] * 5 and jets.n_vertices.tolist() == [1] * 5
    assert jets.track_names[0] == "track_ptrel"


@pytest.mark.parametrize("row", [[2, 0], [1, -1], [0.5, 0.5], [0, 0], [1, 1]])
def test_labels_that_are_not_one_hot_are_refused_naming_the_row(row):
    t, v = _arrays(n=3)
    labels = np.array([[1, 0], row, [0, 1]], np.float32)
    with pytest.raises(InvalidJetsError, match=r"labels: expected one-hot rows .* for jet 1"):
        Jets.cms(t, v, labels=labels)


def test_labels_need_one_column_per_class_and_may_have_more_than_two():
    t, v = _arrays(n=3)
    with pytest.raises(InvalidJetsError, match=r"at least 2\), received shape \(3, 1\)"):
        Jets.cms(t, v, labels=np.ones((3, 1), np.float32))
    ten = np.eye(10, dtype=np.float32)[[0, 4, 9]]  # JetClass: 10 classes
    with pytest.raises(InvalidJetsError, match="10 columns but 2 class names"):
        Jets.cms(t, v, labels=ten)
    jets = Jets.cms(t, v, labels=ten, class_names=CLASS_NAMES)
    assert jets.class_index.tolist() == [0, 4, 9]
    assert jets.is_class("Tbl").tolist() == [False, False, True]
    assert jets[1:].class_names == CLASS_NAMES
