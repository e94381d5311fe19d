"""What a masked feature takes: zero, the population mean, or marginal draws (a permutation of
the feature's own filled values), and why the faithfulness curves use the last."""

import numpy as np
import pytest

from servable.errors import ServableError
from servable.explain.masking import masked, replacement_values, subset_values
from servable.explain.uncertainty import auc
from servable.models.spec import InputGroup, InputSpec


def _inputs(n=400, slots=6, seed=0):
    """Slotted inputs (jets, 2 features, slots) with a random number of filled slots per jet
    and padding zero, plus a jet-level input (jets, 2)."""
    rng = np.random.default_rng(seed)
    tracks = rng.normal(1.0, 1.0, (n, 2, slots)).astype(np.float32)
    filled = np.arange(slots) < rng.integers(1, slots + 1, n)[:, None]
    tracks *= filled[:, None, :]
    jet = rng.normal(0.0, 1.0, (n, 2)).astype(np.float32)
    return {"tracks": tracks, "jet": jet}, filled


def _spec():
    return InputSpec((InputGroup("tracks", ("a", "b"), slots=6),
                      InputGroup("jet", ("c", "d"))))


def test_marginal_replacement_permutes_each_feature_over_filled_slots_only():
    inputs, filled = _inputs()
    values = replacement_values(inputs, _spec(), "marginal", seed=3)
    out = masked(inputs, [("tracks", 1), ("jet", 0)], values)
    x, y = inputs["tracks"], out["tracks"]
    # the masked feature: the same multiset of filled values, moved between slots
    assert np.sort(y[:, 1][filled]) == pytest.approx(np.sort(x[:, 1][filled]))
    assert np.mean(y[:, 1][filled] != x[:, 1][filled]) > 0.9
    assert not y[:, 1][~filled].any()  # padding stays padding
    assert np.array_equal(y[:, 0], x[:, 0])  # the other feature is untouched
    assert np.sort(out["jet"][:, 0]) == pytest.approx(np.sort(inputs["jet"][:, 0]))
    assert np.array_equal(out["jet"][:, 1], inputs["jet"][:, 1])
    # the same seed draws the same values; another seed other values
    again = masked(inputs, [("tracks", 1)], replacement_values(inputs, _spec(), "marginal", 3))
    other = masked(inputs, [("tracks", 1)], replacement_values(inputs, _spec(), "marginal", 4))
    assert np.array_equal(again["tracks"], y)
    assert not np.array_equal(other["tracks"], y)


def test_marginal_values_of_a_subset_are_the_rows_of_those_jets():
    inputs, _ = _inputs()
    values = replacement_values(inputs, _spec(), "marginal")
    rows = np.array([5, 1, 7])
    sub = {k: v[rows] for k, v in inputs.items()}
    got = masked(sub, [("tracks", 0), ("jet", 1)], subset_values(values, rows))
    full = masked(inputs, [("tracks", 0), ("jet", 1)], values)
    for key in inputs:
        assert np.array_equal(got[key], full[key][rows])
    means = replacement_values(inputs, _spec(), "mean")
    assert subset_values(means, rows)["jet"] is means["jet"]  # one value for every jet


def test_removing_a_feature_that_carries_nothing_costs_nothing_only_with_marginal_draws():
    # a score in which the label-free feature b gates the informative a (as a trained network
    # may use an input): the mean puts every jet at b = E[b] = 0, where only the noise c is
    # left; drawing b from its own values leaves the joint distribution, hence the AUC, as it was
    rng = np.random.default_rng(1)
    n = 4000
    label = rng.random(n) < 0.5
    a = rng.normal(label * 1.5, 1.0)
    b = rng.normal(0.0, 1.0, n)  # independent of the label and of a
    c = rng.normal(0.0, 0.3, n)
    inputs = {"jet": np.stack([a, b, c], 1).astype(np.float32)}
    spec = InputSpec((InputGroup("jet", ("a", "b", "c")),))

    def score(x):
        return x[:, 0] * np.abs(x[:, 1]) + x[:, 2]

    base = auc(label, score(inputs["jet"]))
    lost = {mode: base - auc(label, score(masked(inputs, [("jet", 1)],
                                                 replacement_values(inputs, spec, mode))["jet"]))
            for mode in ("mean", "marginal")}
    assert base > 0.7  # the score separates the classes through a
    assert abs(lost["marginal"]) < 0.02, lost
    assert lost["mean"] > 0.1, lost  # the mean leaves only the noise


def test_an_unknown_replacement_is_refused_with_the_choices():
    inputs, _ = _inputs()
    with pytest.raises(ServableError, match="zero, mean, marginal"):
        replacement_values(inputs, _spec(), "median")
