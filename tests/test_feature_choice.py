"""Training on chosen features and sizes: `servable train --drop-features / --track-features /
--vertex-features / --hidden --De --Do`; the bundle records what it reads and takes
full-layout input."""

import numpy as np
import pytest

import servable
from servable.data import schema
from servable.errors import ServableError
from servable.models.spec import chosen_features
from tests.cli_helpers import assert_user_error, run_cli
from tests.conftest import ABLATED_DROP, ABLATED_SIZES
from tests.in_architecture import in_parameters

AVAILABLE = {"tracks": schema.TRACK_NAMES, "vertices": schema.VERTEX_NAMES,
             "jet_features": schema.JET_NAMES}


def test_the_formula_counts_the_published_baseline_and_ablated_checkpoints():
    # the fixtures' README: 25,554 parameters for the baseline; the ablated one has P = 16
    import torch

    from tests.conftest import PUBLISHED

    for name, args in (("gnn_baseline", (30, 14, 60, 20, 24)),
                       ("gnn_pfeaturesdropped14_hidden16_De8_Do8", (16, 14, 16, 8, 8))):
        state = torch.load(PUBLISHED / f"{name}_best.pth", weights_only=True, map_location="cpu")
        assert sum(v.numel() for v in state.values()) == in_parameters(*args)
    assert in_parameters(30, 14, 60, 20, 24) == 25_554


def test_dropped_features_are_left_out_of_their_groups():
    chosen = chosen_features(AVAILABLE, {"tracks": None, "vertices": None},
                             ["track_quality", "sv_erel"])
    assert chosen["tracks"] == [n for n in schema.TRACK_NAMES if n != "track_quality"]
    assert chosen["vertices"] == [n for n in schema.VERTEX_NAMES if n != "sv_erel"]
    assert chosen["jet_features"] == list(schema.JET_NAMES)


def test_kept_features_follow_the_data_order_whatever_order_they_are_given_in():
    chosen = chosen_features(AVAILABLE, {"tracks": ["track_erel", "track_ptrel"],
                                         "vertices": None}, ["track_erel"])
    assert chosen["tracks"] == ["track_ptrel"]


@pytest.mark.parametrize("keep, drop, message", [
    ({}, ["track_qualty"], "unknown feature names track_qualty"),
    ({"vertices": ["track_ptrel"]}, [], "track_ptrel: not vertices features"),
    ({"vertices": ["sv_pt"]}, ["sv_pt"], "no vertices features left"),
])
def test_feature_choices_that_cannot_train_are_refused(keep, drop, message):
    with pytest.raises(ServableError, match=message):
        chosen_features(AVAILABLE, {"tracks": None, "vertices": None, **keep}, drop)


def test_training_without_features_shrinks_the_bundles_feature_lists(ablated_bundle):
    config = servable.load(ablated_bundle).tagger.config
    assert config["track_features"] == [n for n in schema.TRACK_NAMES if n not in ABLATED_DROP]
    assert config["vertex_features"] == [n for n in schema.VERTEX_NAMES
                                         if n not in ABLATED_DROP]
    manifest = servable.load(ablated_bundle).manifest
    assert [len(g["features"]) for g in manifest["inputs"]] == [29, 11]
    names = {f["name"] for g in manifest["inputs"] for f in g["features"]}
    assert not names & set(ABLATED_DROP)


def test_the_trained_sizes_give_the_architectures_parameter_count(ablated_bundle):
    tagger = servable.load(ablated_bundle).tagger
    assert tagger.hyper["hidden"] == 16 and tagger.hyper["De"] == 8 and tagger.hyper["Do"] == 8
    assert tagger.n_parameters() == in_parameters(29, 11, **ABLATED_SIZES)


def test_an_ablated_bundle_reads_full_layout_jets_and_ignores_the_dropped_columns(
        ablated_bundle, test_file):
    bundle = servable.load(ablated_bundle)
    jets = servable.read_jets(test_file)[:200]
    before = bundle.predict(jets)
    for name in ABLATED_DROP:
        group = jets.tracks if name.startswith("track") else jets.vertices
        names = jets.track_names if name.startswith("track") else jets.vertex_names
        filled = group[:, names.index(name)] != 0
        group[:, names.index(name)][filled] *= 3.0  # changed, padding kept
    np.testing.assert_array_equal(bundle.predict(jets), before)


@pytest.mark.parametrize("args, message", [
    (["--drop-features", "track_qualty"], "unknown feature names track_qualty"),
    (["--drop-features", ","], "--drop-features must list feature names"),
    (["--vertex-features", "track_ptrel"], "not vertices features"),
    (["--De", "0"], "--De must be a positive integer"),
    (["--hidden", "60,20"], "--hidden must be a positive integer"),
    (["--model", "mlp", "--Do", "8"], "--Do is a size of the in model, not of mlp"),
])
def test_bad_feature_and_size_options_exit_2_before_training(train_file, tmp_path, args,
                                                              message):
    r = run_cli("train", "--data", train_file, *args, "-o", tmp_path / "out")
    assert_user_error(r, message)
    assert not (tmp_path / "out").exists()
