"""`servable reproduce --quick`: every table and figure of the FAIR paper's IN study written,
with the paper's values and a verdict per finding, for the IN trained here and for the
imported published checkpoints."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import servable
from servable.study.paper import FINDINGS, TABLE10_ALSO_DROPPED
from tests.cli_helpers import assert_user_error, run_cli
from tests.in_architecture import in_parameters

pytestmark = pytest.mark.slow
SECTIONS = ["Table 4", "Table 5", "Table 8", "Figure 4", "Figure 5", "Table 9", "Figure 6",
            "Figure 7", "Figure 8", "Table 10", "Figure 9"]


@pytest.fixture(scope="module")
def run(quick_reproduction):
    out, _ = quick_reproduction
    return out, (out / "report.md").read_text(), json.loads((out / "results.json").read_text())


def _finite(values):
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _section(report: str, name: str) -> str:
    start = report.index(f"## {name}:")
    end = report.find("\n## ", start + 1)
    return report[start:] if end < 0 else report[start:end]


def test_the_report_has_a_section_for_every_table_and_figure(run):
    _, report, _ = run
    headers = re.findall(r"^## (Table \d+|Figure \d+):", report, flags=re.M)
    assert headers == SECTIONS


def test_every_figure_the_report_shows_is_written_as_png_and_pdf(run):
    out, report, _ = run
    stems = re.findall(r"\]\((figures/[\w.-]+)\.png\)", report)
    # Figures 4, 5, 6, 8 and Table 9 for both parts, Figure 7 once, Figure 9: the two
    # retrained sizes and the paper's four Table 10 checkpoints
    assert len(stems) == len(set(stems)) == 5 * 2 + 1 + 2 + 4
    for stem in stems:
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-", stem
    for name in ("Figure 4", "Figure 5", "Figure 6", "Figure 8"):  # ours and the published
        section = _section(report, name)
        assert "trained_" in section and "published_" in section, name


def test_every_finding_has_a_verdict_for_both_parts(run):
    _, report, _ = run
    for key, finding in FINDINGS.items():
        block = report[report.index(finding.claim):]
        for part in ("IN trained here", "published checkpoints"):
            line = re.search(rf"^- {part}: \*\*(holds|does not hold|not applicable)\*\* \(.+\)",
                             block, flags=re.M)
            assert line, (key, part)
    # the published checkpoints need no training: the training tables do not apply to them
    table4 = _section(report, "Table 4")
    assert "- published checkpoints: **not applicable** (needs training)" in table4


def test_table4_reports_each_seed_and_the_reference_p_value(run):
    _, _, results = run
    t = results["trained"]["table4"]
    assert len(t["runs"]) == 2 and [r["seed"] for r in t["runs"]] == [1, 2]
    aucs = [r["roc_auc"] for r in t["runs"]]
    assert t["roc_auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert t["roc_auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    for key in ("accuracy", "roc_auc"):  # the published checkpoint judged on both
        ref = t["reference"][key]
        assert _finite([ref["value"], ref["p_value_one_sided"]])
    assert t["epochs"] == [r["epochs"] for r in t["runs"]] and all(
        1 <= e <= results["settings"]["epochs"] for e in t["epochs"])


def test_table5_trains_three_different_configurations(run):
    _, _, results = run
    t = results["trained"]["table5"]
    assert sorted(t) == ["files", "kfold", "random"]
    assert _finite([v[k] for v in t.values() for k in ("accuracy", "roc_auc")])
    splits = {k: servable.load(t[k]["bundle"]).manifest["provenance"]["training"]
              for k in ("random", "files")}
    folds = t["kfold"]["folds"]
    fold_training = [servable.load(f["bundle"]).manifest["provenance"]["training"]
                     for f in folds]
    assert [f["config"]["fold"] for f in fold_training] == [0, 1]  # every fold trained
    assert t["kfold"]["roc_auc"] == pytest.approx(np.mean([f["roc_auc"] for f in folds]))
    # random files validates on other files than any k-fold fold: a training of its own
    names = sorted(Path(d["path"]).name for d in fold_training[0]["data"])
    val_of_folds = [{n for i, n in enumerate(names) if i % 2 == k} for k in (0, 1)]
    assert splits["files"]["config"]["split"] == "files"
    assert len(names) == 4 and len(t["files"]["validation_files"]) == 1
    assert set(t["files"]["validation_files"]) not in val_of_folds
    assert splits["random"]["config"]["split"] == "random"
    assert len({t["random"]["bundle"], t["files"]["bundle"], *(f["bundle"] for f in folds)}) \
        == 4


def test_table8_lists_tensorrt_as_not_available_here(run):
    _, report, results = run
    for part in ("trained", "published"):
        t8 = results[part]["table8"]
        assert sorted(t8["runtimes"]) == ["onnx", "torch"]
        assert "tensorrt" in t8["skipped"]
        assert _finite([r[k] for r in t8["runtimes"].values() for k in (
            "accuracy", "roc_auc", "fidelity", "ms_per_batch_1", "ms_per_batch_128")])
    assert "| tensorrt | not available: TensorRT is not installed" in _section(report, "Table 8")


def test_table9_has_one_row_per_threshold_with_finite_numbers(run):
    _, report, results = run
    for part in ("trained", "published"):
        rows = results[part]["explain"]["masking"]["cumulative"]
        assert [r["threshold"] for r in rows] == [0.001, 0.005, 0.01, 0.05, 1.0]
        assert _finite([r[k] for r in rows for k in ("auc", "fidelity")])
        n = [r["n_masked"] for r in rows]
        assert n == sorted(n)  # a higher threshold masks at least as many features
    section = _section(report, "Table 9")
    assert len(re.findall(r"^\| 0\.05% \|", section, flags=re.M)) == 2


def test_table10_retrains_without_the_dropped_features_at_each_size(run):
    _, _, results = run
    explain = results["trained"]["explain"]
    rows = explain["models"]
    assert [r["size"] for r in rows] == ["60/20/24", "60/20/24", "16/8/8"]
    dropped = set(explain["dropped"])
    assert set(TABLE10_ALSO_DROPPED) - set(explain["kept_to_fill_a_group"]) <= dropped
    for row in rows[1:]:
        config = servable.load(row["bundle"]).tagger.config
        features = set(config["track_features"]) | set(config["vertex_features"])
        assert not features & dropped and len(features) == 44 - len(dropped)
        hidden, De, Do = map(int, row["size"].split("/"))
        assert row["parameters"] == in_parameters(row["tracks"], row["vertices"], hidden, De, Do)


def test_table10_fidelity_is_the_agreement_with_the_baseline(run, test_file):
    out, _, results = run
    rows = results["trained"]["explain"]["models"]
    assert rows[0]["fidelity"] == 1.0  # the baseline against itself
    jets = servable.read_jets(out / "data" / "test.h5")[: results["settings"]["explain_jets"]]
    base = servable.load(rows[0]["bundle"]).predict(jets)[:, 1]
    for row in rows[1:]:
        p = servable.load(row["bundle"]).predict(jets)[:, 1]
        assert row["fidelity"] == pytest.approx(1 - np.mean(np.abs(p - base)), abs=1e-6)
        assert 0 < row["fidelity"] < 1


def test_the_published_part_compares_the_ablated_checkpoint_without_training(run):
    _, _, results = run
    rows = results["published"]["explain"]["models"]
    # the baseline, then the paper's Table 10 checkpoints with the paper's parameter counts
    assert [r["parameters"] for r in rows] == [in_parameters(30, 14, 60, 20, 24), 22374, 8498,
                                               7178, 2842]
    assert all("psvfeaturesdropped_001_noTrackQ" in r["model"] for r in rows[1:])
    assert rows[0]["fidelity"] == 1.0 and _finite([r["roc_auc"] for r in rows])
    assert _finite([r["fo_separation"] for r in rows])


def test_the_report_gives_every_value_the_paper_prints(run):
    _, report, _ = run
    assert "not found" not in report
    assert "0.9545 +- 0.0005" in _section(report, "Table 4")  # the paper's Table 4
    assert "12.69%" in _section(report, "Table 4") and "9.27%" in _section(report, "Table 4")
    assert "0.9897" in _section(report, "Table 5")
    assert "| 9.90 |" in _section(report, "Table 8")  # TensorRT at batch 1: 0.0099 s
    assert "0.8049" in _section(report, "Table 9")
    assert "0.85" in _section(report, "Figure 7")
    table10 = _section(report, "Table 10")
    assert "not reported" in table10  # its accuracy column
    for count in (22374, 8498, 7178, 2842):
        assert f"{count} (paper {count}, same)" in table10


def test_the_report_gives_the_command_and_the_time_of_each_stage(run):
    _, report, results = run
    assert "Command: `servable reproduce --quick" in report
    assert results["seconds"]["total"] > 0 and \
        "| training: 2 seeds, random files and 2 k-fold folds |" in report


@pytest.mark.parametrize("args, message", [
    (["--sizes", "60/20"], "IN sizes are hidden/De/Do triples"),
    (["--thresholds", "0.05,0.01"], "thresholds are increasing positive percentages"),
    (["--thresholds", "nan"], "thresholds are increasing positive percentages"),
    (["--train-data", "missing.h5"], "missing.h5: no such file"),
])
def test_bad_reproduce_options_exit_2(tmp_path, args, message):
    r = run_cli("reproduce", "--quick", "--out", tmp_path / "out", *args, cwd=tmp_path)
    assert_user_error(r, message)
    assert not (tmp_path / "out").exists()


def test_reproduce_refuses_an_existing_output(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.md").write_text("mine")
    assert_user_error(run_cli("reproduce", "--quick", "--out", tmp_path / "out"),
                      "exists; choose another directory or pass --force")
    assert (tmp_path / "out" / "report.md").read_text() == "mine"
