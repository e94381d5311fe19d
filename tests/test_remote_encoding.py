"""The compact form jets travel in to a remote worker: only filled slots."""

import numpy as np
import pytest

from servable import read_jets
from servable.data.jets import InvalidJetsError, filled_slots
from servable.remote import encoding
from servable.remote.client import serializer
from servable.remote.jsondata import to_json_safe


@pytest.fixture(scope="module")
def jets(test_file):
    return read_jets(test_file)


@pytest.fixture(scope="module")
def padded(jets):
    """The dict `Client.predict` sends: model inputs and feature names."""
    arrays = encoding.jets_to_arrays(jets)
    return {k: v for k, v in arrays.items() if k not in ("labels", "spectators")}


@pytest.fixture(scope="module")
def compact(padded):
    return encoding.compact_arrays(padded)


def test_compact_jets_expand_to_the_same_arrays(jets, padded, compact):
    assert np.array_equal(compact["tracks"]["counts"], filled_slots(jets.tracks))
    back = encoding.jets_from_arrays(compact)
    for key in ("tracks", "vertices", "jet_features"):
        original, expanded = padded[key], getattr(back, key)
        assert expanded.dtype == original.dtype and expanded.shape == original.shape
        assert expanded.tobytes() == original.tobytes(), key  # bit for bit
    assert back.track_names == jets.track_names


def test_a_slice_of_compact_jets_is_the_same_slice_of_the_padded_jets(padded, compact):
    for start, stop in ((0, 1), (17, 1234), (1990, 2100), (2000, 2000)):
        part = encoding.jets_from_arrays(encoding.take(compact, start, stop))
        assert np.array_equal(part.tracks, padded["tracks"][start:stop])
        assert np.array_equal(part.vertices, padded["vertices"][start:stop])


def test_compact_payload_is_at_least_2_5x_smaller_per_jet(padded, compact):
    serde = serializer()
    n = len(padded["tracks"])
    per_jet = {"padded": len(serde.serialize(to_json_safe(padded))) / n,
               "compact": len(serde.serialize(to_json_safe(compact))) / n}
    ratio = per_jet["padded"] / per_jet["compact"]
    assert ratio >= 2.5, per_jet


def test_padding_before_a_filled_slot_is_refused_before_sending(padded):
    tracks = padded["tracks"][:3].copy()
    tracks[1, :, 0] = 0  # jet 1's first slot empty, its second filled
    with pytest.raises(InvalidJetsError, match="tracks: zero-padded slots .* jet 1"):
        encoding.compact_arrays({**padded, "tracks": tracks})


def _hostile(compact, **changes):
    return {**compact, "tracks": {**compact["tracks"], **changes}}


HOSTILE = {
    "counts that do not sum to the rows": (
        lambda c: _hostile(c, rows=c["tracks"]["rows"][:-1]),
        r"tracks.rows: expected \d+ rows \(the sum of the counts\), received \d+"),
    "a negative count": (
        lambda c: _hostile(c, counts=np.r_[-1, c["tracks"]["counts"][1:]].astype(np.int32)),
        "tracks.counts: expected counts from 0 to 60"),
    "a count above the slots": (
        lambda c: _hostile(c, counts=np.r_[61, c["tracks"]["counts"][1:]].astype(np.int32)),
        "tracks.counts: expected counts from 0 to 60 .* received .* to 61"),
    "float counts": (
        lambda c: _hostile(c, counts=c["tracks"]["counts"].astype(np.float64)),
        "tracks.counts: expected a 1-d integer array, received float64"),
    "integer rows": (
        lambda c: _hostile(c, rows=c["tracks"]["rows"].astype(np.int64)),
        "tracks.rows: expected a 2-d floating-point array .* received int64"),
    "object rows": (
        lambda c: _hostile(c, rows=c["tracks"]["rows"].astype(object)),
        "tracks.rows: expected a 2-d floating-point array .* received object"),
    "a list for counts": (
        lambda c: _hostile(c, counts=c["tracks"]["counts"].tolist()),
        "tracks.counts: expected a 1-d integer array, received list"),
    "a missing key": (
        lambda c: {**c, "tracks": {"rows": c["tracks"]["rows"], "slots": 60}},
        r"tracks: expected a padded array or a dict with keys \['counts', 'rows', 'slots'\]"),
    "negative slots": (
        lambda c: _hostile(c, slots=-5),
        "tracks.slots: expected an integer >= 0, received -5"),
    "string slots": (
        lambda c: _hostile(c, slots="60"),
        "tracks.slots: expected an integer >= 0, received '60'"),
    "a trillion slots": (
        lambda c: _hostile(c, slots=10 ** 12),
        "tracks: 2000 jets of 30 features x 1000000000000 slots expand to .* GB, over"),
    "a billion features of no rows": (
        lambda c: _hostile(c, counts=np.zeros(2000, np.int32),
                           rows=np.zeros((0, 10 ** 9), np.float32)),
        "tracks: 2000 jets of 1000000000 features x 60 slots expand to .* GB, over"),
    "fewer jets of vertices than of tracks": (
        lambda c: {**c, "vertices": encoding.take(c, 0, 5)["vertices"]},
        "vertices: expected 2000 jets like tracks, received 5"),
    "a filled row of zeros": (
        lambda c: _hostile(c, rows=np.where(np.arange(len(c["tracks"]["rows"]))[:, None] == 0,
                                            0, c["tracks"]["rows"]).astype(np.float32)),
        "tracks: zero-padded slots must come after the filled ones; jet 0"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_compact_jets_are_one_clear_error(compact, case):
    make, message = HOSTILE[case]
    with pytest.raises(InvalidJetsError, match=message) as info:
        encoding.jets_from_arrays(make(compact))
    assert len(str(info.value).splitlines()) == 1
