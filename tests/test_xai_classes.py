"""The benchmark over several target classes: the summary counts the verdicts per class, its
text follows the counts, and `xai-benchmark --target A,B` writes one report per class."""

from __future__ import annotations

import json

from servable.study.xai.classes import summarise, summary_markdown
from tests.cli_helpers import run_cli


def _verdict(status, value):
    return {"status": status, "value": value, "low": value, "high": value, "threshold": 0.5,
            "baseline": None}


def _results(faithful_ig, faithful_saliency):
    per_method = {"ig": {"faithful": _verdict(*faithful_ig), "agrees": _verdict("passes", 0.7)},
                  "saliency": {"faithful": _verdict(*faithful_saliency), "stable": None}}
    use = {"which features matter (global)": {
        "method": "ig" if faithful_ig[0] == "passes" else None, "status": faithful_ig[0],
        "value": faithful_ig[1], "best_seen": "ig"}}
    return {"models": {"part": {"verdicts": {"per_method": per_method, "use": use}}}}


def test_the_summary_counts_each_class_and_its_text_follows_the_counts():
    per_class = {"Hbb": _results(("passes", 0.8), ("fails", 0.2)),
                 "QCD": _results(("passes", 0.6), ("inconclusive", 0.5))}
    s = summarise(per_class)
    ig = s["models"]["part"]["methods"]["ig"]["faithful"]
    assert (ig["passes"], ig["fails"], ig["inconclusive"]) == (2, 0, 0)
    assert abs(ig["mean"] - 0.7) < 1e-12 and ig["values"] == {"Hbb": 0.8, "QCD": 0.6}
    sal = s["models"]["part"]["methods"]["saliency"]
    assert (sal["faithful"]["fails"], sal["faithful"]["inconclusive"]) == (1, 1)
    assert "stable" not in sal  # not measured: not counted as a failure
    assert s["models"]["part"]["use"]["which features matter (global)"]["QCD"]["method"] == "ig"
    text = "\n".join(summary_markdown(s))
    assert "ig faithful (top-K deletion)" in text and "2/2 pass (mean 0.7)" in text
    assert "| which features matter (global) | ig | ig |" in text
    # one class fails: the method is no longer "in every class", the table says none qualifies
    per_class["QCD"] = _results(("fails", 0.1), ("fails", 0.1))
    text = "\n".join(summary_markdown(summarise(per_class)))
    assert "ig faithful (top-K deletion)" not in text.split("In every class measured:")[1].split(
        "\n")[0]
    assert "| ig | none qualifies (best ig) |" in text


def test_xai_benchmark_over_two_classes_writes_a_report_per_class_and_a_summary(
        ring_trained, ring_files, tmp_path):
    # the JetClass study's quick variant: the transparent BDT, the ParT and the graph network,
    # with every method of each (LIME on the ParT and, named here, ParticleNet; edge
    # relevance on ParticleNet)
    out = tmp_path / "classes"
    r = run_cli("xai-benchmark", "--bundles", *(ring_trained[k][0] for k in
                                                ("bdt", "part", "particlenet")),
                "--data", ring_files["test"], "--quick", "--methods",
                "masking,saliency,ig,shap,lime,attention,edges", "--n-jets", 150,
                "--target", "Hbb,QCD", "-o", out, "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr
    for cls in ("Hbb", "QCD"):
        results = json.loads((out / cls / "results.json").read_text())
        assert results["target"] == cls
        methods = {label: set(m["seconds_per_method"]) for label, m in
                   results["models"].items()}
        assert methods == {"bdt": {"masking", "shap", "lime"},
                           "part": {"masking", "saliency", "ig", "shap", "lime", "attention"},
                           "particlenet": {"masking", "saliency", "ig", "shap", "lime",
                                           "edges"}}
        # the slot-only methods are measured against the truth and by slot deletion
        pnet = results["models"]["particlenet"]
        assert "edges" in pnet["faithfulness"]["slots"]["curves"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"] == ["Hbb", "QCD"] and set(summary["models"]) == {
        "bdt", "part", "particlenet"}
    text = (out / "report.md").read_text()
    assert "over 2 target classes" in text and "## The same methods across models" in text
    assert "| ig | " in text.split("## The same methods across models")[1]
    bad = run_cli("xai-benchmark", "--bundles", ring_trained["bdt"][0], "--data",
                  ring_files["test"], "--quick", "--target", "Hbb,1", "-o", tmp_path / "bad")
    assert bad.returncode == 2 and "named twice" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_slot_curves_remove_the_particles_of_a_jetclass_model(ring_trained, ring_files):
    # JetClass jets hold `particles`, not `tracks`: the slot curves follow the jets' leading
    # slotted group, and the first point of each curve is the unmasked model
    import numpy as np

    from servable import load
    from servable.data.io import read_jets
    from servable.explain.uncertainty import auc
    from servable.study.xai.faithfulness import slot_curves
    from servable.study.xai.runs import Context, MethodRun
    from servable.study.xai_benchmark import QUICK, Settings

    bundle = load(str(ring_trained["part"][0]))
    jets = read_jets(ring_files["test"])
    ctx = Context(bundle, jets, target=0)
    slots = ctx.inputs["particles"].shape[2]
    lead = MethodRun("leading", np.zeros(1), slot=np.tile(-np.arange(slots, dtype=float),
                                                           (len(jets), 1)))
    s = Settings(**QUICK)
    out = slot_curves(ctx, {"leading": lead}, s)
    assert out["input"] == "particles"
    curve = out["curves"]["leading"]
    assert len(curve["auc"]) == s.slot_steps + 1
    n = min(s.faithfulness_jets, len(jets))
    assert abs(curve["auc"][0] - auc(ctx.y[:n], ctx.prob()[:n])) < 1e-9
    assert "random" in out["curves"] and "auc_drop_vs_random" in curve


def test_a_memo_shared_between_target_classes_predicts_each_masked_set_once(ring_trained,
                                                                            ring_files):
    import numpy as np

    from servable import load
    from servable.data.io import read_jets
    from servable.explain.masking import masked, subset_values
    from servable.study.xai.runs import Context

    bundle = load(str(ring_trained["mlp"][0]))
    jets = read_jets(ring_files["test"], 0, 120)
    memo, sets, subset = {}, [[0], [2, 1], [], [1, 2]], np.arange(10, 90)
    first = Context(bundle, jets, 1, memo=memo).masked_probs(sets, subset)
    calls = []
    predict = bundle.tagger.predict_from_inputs
    bundle.tagger.predict_from_inputs = lambda inputs: calls.append(1) or predict(inputs)
    ctx = Context(bundle, jets, 4, memo=memo)
    second = ctx.masked_probs(sets, subset)
    assert not calls  # the other class read every set from the memo
    assert ctx.masked_probs([[3]], subset) and len(calls) == 1  # a new set is predicted
    bundle.tagger.predict_from_inputs = predict
    # each equals the model on the masked copy, in its own class
    inputs = {k: v[subset] for k, v in ctx.inputs.items()}
    values = subset_values(ctx.values, subset)
    for target, probs in ((1, first), (4, second)):
        for removed, p in zip(sets, probs, strict=True):
            copy = masked(inputs, [ctx.features[i] for i in removed], values) if removed \
                else inputs
            np.testing.assert_allclose(p, predict(copy)[:, target], rtol=0, atol=1e-6)
    assert not np.allclose(first[0], second[0])  # two classes, two answers


def test_bundles_are_seeds_of_one_model_only_with_the_same_kind_name_and_inputs():
    from types import SimpleNamespace

    from servable.study.xai_benchmark import check_models

    def bundle(kind, name, features):
        return SimpleNamespace(kind=kind, manifest={"name": name, "inputs": [
            {"name": "particles", "features": features}]})

    seeds = [bundle("particlenet", "jetclass-particlenet", ["a", "b"]) for _ in range(2)]
    official = bundle("particlenet", "jetclass-particlenet-full", ["a", "b"])
    kin = bundle("particlenet", "jetclass-particlenet-kin", ["a"])
    bdt = bundle("bdt", "jetclass-bdt", ["c"])
    models = check_models([*seeds, official, kin, bdt])
    assert models == {"jetclass-particlenet": seeds, "jetclass-particlenet-full": [official],
                      "jetclass-particlenet-kin": [kin], "bdt": [bdt]}
    # one model of its kind keeps the kind as its label; a repeated name gets a number
    other = bundle("particlenet", "jetclass-particlenet", ["z"])
    assert list(check_models([seeds[0], other])) == ["particlenet", "particlenet-2"]
    assert list(check_models(seeds)) == ["particlenet"]


def test_methods_shared_by_models_are_set_side_by_side_with_where_their_verdict_differs():
    per_class = {c: {"models": {**_results(("passes", 0.8), ("fails", 0.2))["models"],
                                "particlenet": _results(("fails", 0.3), ("fails", 0.1))
                                ["models"]["part"]}} for c in ("Hbb", "QCD")}
    text = "\n".join(summary_markdown(summarise(per_class)))
    section = text.split("## The same methods across models")[1]
    assert "| ig | faithful (top-K deletion) | 2/2 pass (mean 0.8) | 0/2 pass (mean 0.3) |" \
        in section
    assert ("- ig faithful (top-K deletion): in every class on part (mean 0.8); in none on "
            "particlenet (mean 0.3).") in section
    # saliency fails on both: its verdict does not depend on the model, no sentence
    assert "- saliency" not in section


def test_the_summary_states_each_classes_top_k_and_where_it_is_every_feature():
    per_class = {c: _results(("passes", 0.8), ("fails", 0.2)) for c in ("Hbb", "QCD")}
    for cls, k in (("Hbb", 2), ("QCD", 4)):
        per_class[cls]["models"]["part"]["faithfulness"] = {"features": {
            "top_k": k, "steps": [0, 1, 2, 3, 4],
            "curves": {"oracle": {"deletion": {"auc": [0.9, 0.7, 0.6, 0.55, 0.5]}},
                       "random": {"deletion": {"auc": [0.9, 0.85, 0.8, 0.7, 0.5]}}}}}
    text = "\n".join(summary_markdown(summarise(per_class)))
    assert ("Hbb K = 2 of 4 (AUC at K: oracle 0.600, random orders 0.800); QCD K = 4 of 4 "
            "(AUC at K: oracle 0.500, random orders 0.500)") in text
    assert "In QCD K is every feature" in text


def test_the_class_findings_block_is_generated_and_replaces_only_its_markers():
    from servable.study.xai import classes
    from servable.study.xai.findings import replace_block

    per_class = {c: {"models": {**_results(("passes", 0.8), ("fails", 0.2))["models"],
                                "particlenet": _results(("fails", 0.3), ("fails", 0.1))
                                ["models"]["part"]}} for c in ("Hbb", "QCD")}
    block = classes.findings(summarise(per_class))
    # each finding with its mean over the classes and the threshold its intervals cleared
    assert ("- **part**: In every class measured: ig faithful (top-K deletion) (2 classes, "
            "mean 0.8; threshold 0.5)") in block
    assert ("- **particlenet**: In every class measured: ig agrees with the other methods (2 "
            "classes, mean 0.7; threshold 0.5).") in block
    assert ("- ig faithful (top-K deletion): in every class on part (mean 0.8); in none on "
            "particlenet (mean 0.3).") in block
    page = f"a\n{classes.BEGIN}\nold\n{classes.END}\nb\n"
    assert replace_block(page, classes.BEGIN, classes.END, block, "x") == \
        f"a\n{classes.BEGIN}\n{block}{classes.END}\nb\n"
