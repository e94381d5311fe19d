"""`servable ablate`: masking per feature and by threshold, retraining without the features
below a threshold at each size, each model against the baseline."""

import json

import numpy as np
import pytest

import servable
from servable.errors import ServableError
from servable.study.ablation import parse_sizes, parse_thresholds
from tests.cli_helpers import assert_user_error, run_cli
from tests.in_architecture import in_parameters

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ablated(quick_reproduction, test_file, tmp_path_factory):
    """The quick reproduction's seed-1 IN ablated on 300 test jets: retrained once (16/8/8,
    1 epoch) on the training files its bundle records, without track_quality as well."""
    baseline = quick_reproduction[0] / "models" / "seed-1"
    out = tmp_path_factory.mktemp("ablate") / "out"
    r = run_cli("ablate", baseline, "--data", test_file, "--n-jets", 300, "--sizes", "16/8/8",
                "--drop-features", "track_quality", "--epochs", 1, "--quiet", "-o", out,
                timeout=900)
    assert r.returncode == 0, r.stderr
    return out, json.loads((out / "ablation.json").read_text()), r.stdout


def test_ablate_retrains_without_the_features_below_the_threshold(ablated):
    out, result, _ = ablated
    below = [n for n, d in result["masking"]["delta_auc"].items() if d < 0.01 / 100]
    assert set(result["dropped"]) == (set(below) | {"track_quality"}) - set(
        result["kept_to_fill_a_group"])
    retrained = servable.load(result["models"][1]["bundle"])
    config = retrained.tagger.config
    kept = set(config["track_features"]) | set(config["vertex_features"])
    assert not kept & set(result["dropped"]) and len(kept) == 44 - len(result["dropped"])
    assert retrained.tagger.n_parameters() == in_parameters(
        len(config["track_features"]), len(config["vertex_features"]), 16, 8, 8)
    assert retrained.manifest["provenance"]["training"]["config"]["epochs"] == 1


def test_ablate_reports_the_baseline_with_full_fidelity_against_itself(ablated):
    _, result, stdout = ablated
    base = result["models"][0]
    assert base["model"] == "baseline" and base["fidelity"] == 1.0
    assert base["parameters"] == in_parameters(30, 14, 60, 20, 24)
    assert "fidelity 1.0000" in stdout.splitlines()[0]


def test_ablate_writes_its_tables_and_figures(ablated):
    out, result, _ = ablated
    text = (out / "ablation.md").read_text()
    assert "## Table 9" in text and "## Table 10" in text
    for stem in ("figure5_dauc", "table9_cumulative", "nap_0_60-20-24", "nap_1_16-8-8"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 0
        assert (out / "figures" / f"{stem}.pdf").stat().st_size > 0
    cumulative = result["masking"]["cumulative"]
    assert [r["threshold"] for r in cumulative] == [0.001, 0.005, 0.01, 0.05, 1.0]
    assert all(np.isfinite([r["auc"], r["fidelity"]]).all() for r in cumulative)


def test_ablate_compares_published_checkpoints_without_training(published_bundle, published_dir,
                                                                test_file, tmp_path):
    from servable.bundle.checkpoint import import_checkpoint

    name = "gnn_pfeaturesdropped14_hidden16_De8_Do8"
    other = import_checkpoint(published_dir / f"{name}_best.pth",
                              published_dir / f"{name}_model_metadata.json", tmp_path / "small")
    r = run_cli("ablate", published_bundle, "--data", test_file, "--n-jets", 100, "--no-retrain",
                "--compare", other, "--quiet", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "out" / "ablation.json").read_text())["models"]
    assert [r["parameters"] for r in rows] == [25_554, in_parameters(16, 14, 16, 8, 8)]
    jets = servable.read_jets(test_file)[:100]
    base = servable.load(published_bundle).predict(jets)[:, 1]
    small = servable.load(other).predict(jets)[:, 1]
    assert rows[1]["fidelity"] == pytest.approx(1 - np.mean(np.abs(small - base)), abs=1e-6)


def test_sizes_and_thresholds_parse_as_the_paper_writes_them():
    assert parse_sizes("60/20/24,16/8/8") == [(60, 20, 24), (16, 8, 8)]
    assert parse_thresholds("0.001,0.005,0.01,0.05,1") == [0.001, 0.005, 0.01, 0.05, 1.0]
    for bad in ("60/20", "60/20/0", "a/b/c", "60/20/24,60/20/24"):
        with pytest.raises(ServableError):
            parse_sizes(bad)


@pytest.mark.parametrize("args, message", [
    (["--drop-features", "track_qualty"], "unknown feature names track_qualty"),
    (["--sizes", "16/8"], "--sizes: IN sizes are hidden/De/Do triples"),
    (["--thresholds", "1,0.5"], "--thresholds: thresholds are increasing positive percentages"),
    (["--retrain-threshold", "-1"], "--retrain-threshold must be a positive percentage"),
    (["--replacement", "median"], "--replacement must be zero or mean"),
])
def test_bad_ablate_options_exit_2(published_bundle, test_file, tmp_path, args, message):
    r = run_cli("ablate", published_bundle, "--data", test_file, *args, "-o", tmp_path / "out")
    assert_user_error(r, message)
    assert not (tmp_path / "out").exists()


def test_ablate_refuses_an_existing_output(published_bundle, test_file, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("mine")
    assert_user_error(run_cli("ablate", published_bundle, "--data", test_file, "-o",
                              tmp_path / "out"), "exists; choose another directory")


def test_ablate_of_a_bundle_without_training_files_asks_for_them(published_bundle, test_file,
                                                                 tmp_path):
    r = run_cli("ablate", published_bundle, "--data", test_file, "--n-jets", 100, "--sizes",
                "16/8/8", "--quiet", "-o", tmp_path / "out")
    assert_user_error(r, "give the training data with --train-data")
    assert not (tmp_path / "out").exists()


def test_retraining_an_ablated_bundle_keeps_its_dropped_features_out(ablated_bundle, test_file,
                                                                     tmp_path):
    from tests.conftest import ABLATED_DROP

    r = run_cli("ablate", ablated_bundle, "--data", test_file, "--n-jets", 100, "--sizes",
                "16/8/8", "--epochs", 1, "--quiet", "-o", tmp_path / "out", timeout=900)
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "out" / "ablation.json").read_text())
    config = servable.load(result["models"][1]["bundle"]).tagger.config
    features = set(config["track_features"]) | set(config["vertex_features"])
    assert not features & set(ABLATED_DROP)
    assert len(features) == 44 - len(ABLATED_DROP) - len(result["dropped"])
