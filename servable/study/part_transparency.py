"""Transparency of a trained ParticleTransformer on JetClass-like jets, in one run: linear
probes with controls at every block (`study.part_probes`), attention per head and block
against the generator truth (`study.part_probes`), and ablation of the heads the attention
calls relevant and irrelevant, of every head and block, without and after a short fine-tune
(`study.part_ablation`).

`run(bundle, jets, out)` writes `results.json` and `report.md` (a markdown section whose
interpreting sentences are generated from the numbers) under `out` and returns the results.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from servable.data.jets import Jets
from servable.errors import ServableError
from servable.explain import uncertainty as U
from servable.files import write_bytes, write_json
from servable.study import part_ablation as A
from servable.study import part_probes as P
from servable.study.xai.faithfulness import halves


def _head_label(key: str, names: list[str]) -> str:
    k, h = (int(v) for v in key.split(":"))
    return f"{names[k]} head {h + 1}"


def _subset(jets: Jets, n: int, seed: int) -> Jets:
    """At most `n` jets, as many of each class as there are room for (fine-tuning)."""
    rng = np.random.default_rng(seed)
    y = jets.labels.argmax(1)
    per = max(n // len(np.unique(y)), 1)
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per] for c in np.unique(y)])
    return jets[np.sort(idx)]


def selection_test(abl: dict, selected: dict, att: dict, n_resamples: int, seed: int) -> dict:
    """Per mode: the mean accuracy (and log-likelihood) change of ablating the relevant and
    the irrelevant heads one at a time, the contrast |relevant| - |irrelevant|, each head's
    own change, and over every head the Spearman correlation between its truth AUC and the
    accuracy it costs."""
    from scipy.stats import spearmanr

    base, names = abl["base_outcome"], abl["columns"]
    rows = {r["label"]: r for r in abl["rows"]}
    out = {}
    for mode in ("zero", "mean"):
        keys = list(att["heads"])
        auc = [att["heads"][k]["classes"]["all"]["value"] for k in keys]
        cost = [-rows[f"{k} {mode}"]["effects"]["accuracy"]["value"] for k in keys]
        rho, p = spearmanr(auc, cost)
        out[mode] = {"per head": {k: rows[f"{k} {mode}"]["effects"]["accuracy"]
                                  for k in (*selected["relevant"], *selected["irrelevant"])},
                     "spearman truth AUC vs accuracy cost": {"rho": float(rho),
                                                             "p_value": float(p),
                                                             "heads": len(keys)}}
        sets = {s: [abl["outcomes"][f"{k} {mode}"] for k in selected[s]]
                for s in ("relevant", "irrelevant")}
        out[mode].update({
            **{f"{s} one at a time": A.effects(base, np.mean(o, 0), names, n_resamples,
                                               seed)["accuracy"] for s, o in sets.items()},
            **{f"{s} one at a time, log-likelihood": A.effects(
                base, np.mean(o, 0), names, n_resamples, seed)[A.LOG_LIKELIHOOD]
               for s, o in sets.items()},
            "contrast": A.set_contrast(base, sets["relevant"], sets["irrelevant"], 0,
                                       n_resamples, seed),
            "contrast leaving one head out": {
                k: A.set_contrast(base, [o for kk, o in zip(selected["relevant"],
                                                            sets["relevant"], strict=True)
                                         if kk != k] or sets["relevant"],
                                  [o for kk, o in zip(selected["irrelevant"],
                                                      sets["irrelevant"], strict=True)
                                   if kk != k] or sets["irrelevant"], 0, n_resamples, seed)
                for k in (*selected["relevant"], *selected["irrelevant"])},
            "contrast, log-likelihood": A.set_contrast(base, sets["relevant"],
                                                       sets["irrelevant"], 1, n_resamples,
                                                       seed)})
    return out


def joint_ablation(tagger, y, class_names, abl, selected, n_resamples, seed) -> dict:
    """Each selected set ablated at once (zero and mean): accuracy change with its interval."""
    pairs = [tuple(p) for p in abl["pairs"]]
    out = {}
    for s in ("relevant", "irrelevant"):
        heads = [tuple(int(v) for v in k.split(":")) for k in selected[s]]
        for mode in ("zero", "mean"):
            pred = A.ablated_predictions(abl["predict"], tagger.net.core, heads, mode,
                                         abl["means"])
            o = A.outcome(y, pred, class_names, pairs)
            out[f"{s} together, {mode}"] = A.effects(abl["base_outcome"], o, abl["columns"],
                                                     n_resamples, seed)["accuracy"]
    return out


def fine_tune_test(tagger, inputs, y, train: Jets, heads: list[str], abl: dict,
                   n_resamples: int, seed: int, lr: float, measure: np.ndarray) -> dict:
    """The intact network and the network with each listed head zeroed, each fine-tuned one
    epoch on `train`; each ablated one against the intact fine-tuned one and the original,
    on the jets at `measure` (held out from choosing the heads)."""
    class_names = list(tagger.config["class_names"])
    pairs = [tuple(p) for p in abl["pairs"]]
    t_inputs = tagger.inputs(train)
    t_y = train.labels.argmax(1)
    control = A.fine_tuned(tagger, t_inputs, t_y, (), lr=lr, seed=seed)
    control_o = A.outcome(y, control.predict_from_inputs(inputs), class_names, pairs)[measure]
    base = abl["base_outcome"][measure]
    out = {"jets": len(train), "epochs": 1, "lr": lr, "measured_on": int(len(measure)),
           "control vs original": A.effects(base, control_o, abl["columns"], n_resamples,
                                            seed), "heads": {}}
    for key in heads:
        kh = tuple(int(v) for v in key.split(":"))
        tuned = A.fine_tuned(tagger, t_inputs, t_y, [kh], lr=lr, seed=seed)
        pred = A.ablated_predictions(lambda t=tuned: t.predict_from_inputs(inputs),
                                     tuned.net.core, [kh])
        o = A.outcome(y, pred, class_names, pairs)[measure]
        out["heads"][key] = {
            "vs fine-tuned intact": A.effects(control_o, o, abl["columns"], n_resamples, seed),
            "vs original": A.effects(base, o, abl["columns"], n_resamples, seed)}
    return out


def run(bundle, jets: Jets, out, train_jets: Jets | None = None, *, seed: int = 1,
        n_resamples: int = 100, folds: int = 5, n_select: int = 4, finetune_jets: int = 300,
        lr: float = 3e-4, force: bool = False) -> dict:
    """The whole study of a ParT bundle on labelled JetClass-like jets with generator truth;
    the fine-tune on `train_jets` (a balanced subset of `finetune_jets`) when given. Writes
    `results.json` and `report.md` under `out` (never over existing files without `force`)."""
    tagger = bundle.tagger
    if tagger.kind != "part":
        raise ServableError(f"the transparency study reads ParticleTransformer blocks and "
                            f"heads: give a part bundle, not a {tagger.kind} one")
    if jets.labels is None:
        raise ServableError("the transparency study measures accuracies: it needs labelled "
                            "jets")
    out = Path(out)
    seconds, t0 = {}, time.perf_counter()
    names = P.block_names(tagger.net)
    class_names = list(tagger.config["class_names"])
    targets = P.probe_targets(jets)
    random_net = P.random_tagger(tagger, seed)
    probes = P.probes(P.representations(tagger, jets), P.representations(random_net, jets),
                      targets, folds, n_resamples, seed)
    seconds["probes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    att = P.attention_truth(P.attention_scores(tagger, jets), jets, n_resamples, seed)
    selected = P.select_heads(att, n_select)
    seconds["attention"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    inputs, y = tagger.inputs(jets), jets.labels.argmax(1)
    abl = A.ablation(tagger, inputs, y, class_names, n_resamples, seed)
    selection = selection_test(abl, selected, att, n_resamples, seed)
    joint = joint_ablation(tagger, y, class_names, abl, selected, n_resamples, seed)
    seconds["ablation"] = time.perf_counter() - t0
    choose, measure = halves(len(jets), seed)  # the fine-tuned head is chosen on one half
    base0 = abl["base_outcome"][choose, 0].mean()
    best = max((r for r in abl["rows"] if r["kind"] == "head" and r["mode"] == "zero"),
               key=lambda r: abl["outcomes"][r["label"]][choose, 0].mean() - base0)
    tune = None
    if train_jets is not None:
        t0 = time.perf_counter()
        heads = list(dict.fromkeys([f"{best['block']}:{best['head']}",
                                    *selected["irrelevant"][:1]]))
        tune = fine_tune_test(tagger, inputs, y, _subset(train_jets, finetune_jets, seed),
                              heads, abl, n_resamples, seed, lr, measure)
        seconds["fine-tune"] = time.perf_counter() - t0
    result = {
        "bundle": bundle.name, "n_jets": len(jets), "seed": seed, "n_resamples": n_resamples,
        "folds": folds, "blocks": names, "class_names": class_names,
        "probes": probes, "attention": att, "selected_heads": selected,
        "ablation": {k: abl[k] for k in ("columns", "pairs", "rows", "base")},
        "selection_test": selection, "joint_ablation": joint,
        "best_single_head": best["label"], "improvements": A.improvements(abl["rows"]),
        "fine_tune": tune, "seconds": seconds, "load_average": list(os.getloadavg())}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", result, force=force)
    write_bytes(out / "report.md", markdown(result).encode(), force=force)
    return result


def _iv(d: dict, digits: int = 3) -> str:
    return f"{d['value']:+.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"


def _sign(iv: dict) -> int:
    """+1 / -1 where an interval lies above / below zero, 0 where it includes it."""
    return 1 if iv["low"] > 0 else -1 if iv["high"] < 0 else 0


def check_sentence(selection: dict, selected: dict, names: list[str]) -> list[str]:
    """Issue 32's check, per mode, generated from the contrast's interval."""
    rel = ", ".join(_head_label(k, names) for k in selected["relevant"])
    irr = ", ".join(_head_label(k, names) for k in selected["irrelevant"])
    lines = [f"Heads called relevant ({selected['rule']['relevant']}): {rel}. Heads called "
             f"irrelevant ({selected['rule']['irrelevant']}): {irr}."]
    for mode, s in selection.items():
        for measure, suffix in (("accuracy", ""), ("the log-likelihood of the true class",
                                                   ", log-likelihood")):
            c = s["contrast" + suffix]
            if c["low"] > 0:
                verdict = f"ablating the irrelevant heads changes {measure} less, as the " \
                          "explanations predict"
            elif c["high"] < 0:
                verdict = f"contrary to the explanations, ablating the irrelevant heads " \
                          f"changes {measure} more"
            else:
                verdict = "the interval includes zero: no difference is shown at this " \
                          "sample size"
            if not suffix:
                each = ", ".join(f"{_head_label(k, names)} {_iv(v)}"
                                 for k, v in s.get("per head", {}).items())
                if each:
                    lines.append(f"{mode.capitalize()} ablation, accuracy change per selected "
                                 f"head: {each}.")
            lines.append(
                f"{mode.capitalize()} ablation, one head at a time: {measure} changes by "
                f"{_iv(s['relevant one at a time' + suffix])} for the relevant heads and by "
                f"{_iv(s['irrelevant one at a time' + suffix])} for the irrelevant ones; "
                f"|relevant| - |irrelevant| = {_iv(c)}: {verdict}.")
        loo = s.get("contrast leaving one head out")
        if loo:
            worst = min(loo, key=lambda k: loo[k]["low"])
            held = all(_sign(v) == _sign(s["contrast"]) for v in loo.values())
            lines.append(
                f"Leaving out one selected head at a time, the accuracy contrast is lowest "
                f"without {_head_label(worst, names)}: {_iv(loo[worst])}; " + (
                    "the verdict holds whichever head is left out." if held else
                    "the verdict changes when that head is left out: it rests on one head."))
        sp = s.get("spearman truth AUC vs accuracy cost")
        if sp:
            word = "heads that pick the decay products cost more accuracy when ablated" \
                if sp["p_value"] < 0.05 and sp["rho"] > 0 else \
                "heads that pick the decay products cost less accuracy when ablated" \
                if sp["p_value"] < 0.05 else "no significant relation"
            lines.append(f"Over all {sp['heads']} heads ({mode}), Spearman rho between truth "
                         f"AUC and the accuracy lost is {sp['rho']:+.2f} (p = "
                         f"{sp['p_value']:.2g}): {word}.")
    return lines


def improvement_sentences(result: dict) -> list[str]:
    """Whether any ablation improves any class's error rate, without and after a fine-tune."""
    imp = result["improvements"]
    n, exp = len(imp["found"]), imp["expected_by_chance"]
    labels = {r["label"]: _ablation_label(r, result["blocks"])
              for r in result["ablation"]["rows"]}
    listed = "; ".join(f"{labels[f['label']]}: {f['column']} {_iv(f)}"
                       for f in imp["found"][:8])
    if imp["p_value"] < 0.05:
        head = f"Without retraining, {n} of {imp['tests']} ablation tests improve a class's " \
               f"accuracy, the log-likelihood or a pair's confusion beyond the 95% " \
               f"interval, more than the ~{exp:.0f} expected by chance (binomial p = " \
               f"{imp['p_value']:.2g}, tests taken as independent)"
    else:
        head = f"Without retraining, {n} of {imp['tests']} ablation tests show an " \
               f"improvement beyond the 95% interval, not more than chance gives (~{exp:.0f}" \
               f" expected, binomial p = {imp['p_value']:.2g}): no evidence that removing a " \
               "head or block improves a class"
    lines = [head + (f" ({listed}{'; ...' if n > 8 else ''})." if n else ".")]
    overall = [f for f in imp["found"] if f["column"] in ("accuracy", A.LOG_LIKELIHOOD)]
    traded = {f["label"] for f in imp["found"]} - {f["label"] for f in overall}
    gains = "; ".join(f"{labels[f['label']]}: {f['column']} {_iv(f)}" for f in overall)
    lines.append(
        f"Of these, {len(overall)} improve the overall accuracy or log-likelihood "
        f"({gains or 'none'}; ~{0.025 * 2 * len(result['ablation']['rows']):.1f} expected by "
        f"chance); in the other {len(traded)} configurations a class or a pair "
        "gains while the overall measures do not: there the ablation moves the decision "
        "boundary between classes rather than removing errors.")
    tune = result["fine_tune"]
    if tune is None:
        return lines + ["No fine-tune was run (no training jets given)."]
    for key, t in tune["heads"].items():
        v = t["vs fine-tuned intact"]
        better = [c for c, iv in v.items() if A.better(c, iv)]
        lines.append(
            f"After one epoch on {tune['jets']} jets with {_hl(key, result)} zeroed, accuracy "
            f"on {tune['measured_on']} held-out jets differs from the same fine-tune of the "
            f"intact network by "
            f"{_iv(v['accuracy'])}; improved beyond the interval: "
            f"{', '.join(better) if better else 'nothing'}.")
    return lines


def _hl(key: str, result: dict) -> str:
    return _head_label(key, result["blocks"])


def markdown(result: dict) -> str:
    """The report section: tables and the sentences generated from them."""
    names = result["blocks"]
    lines = [f"## ParticleTransformer transparency ({result['bundle']}, {result['n_jets']} "
             f"jets)", "", "### Where physics is encoded (linear probes with controls)", "",
             "| target | block | trained | random init | shuffled targets | encoded |",
             "| --- | --- | --- | --- | --- | --- |"]
    for target, r in result["probes"].items():
        for block, row in r["blocks"].items():
            lines.append(f"| {target} ({r['metric']}) | {block} | {_iv(row['trained'])} | "
                         f"{_iv(row['random'])} | {_iv(row['shuffled'])} | "
                         f"{'yes' if row['encoded'] else 'no'} |")
    lines += ["", *P.probe_sentences(result["probes"]), "",
              "### Attention against the generator truth", "",
              "| head | truth AUC, all resonance jets | beats the best baseline in | "
              "below 0.5 in |", "| --- | --- | --- | --- |"]
    att = result["attention"]
    for key, v in att["heads"].items():
        lines.append(f"| {_hl(key, result)} | {_iv(v['classes']['all'])} | "
                     f"{', '.join(v['attends_to_decay']) or '-'} | "
                     f"{', '.join(v['prefers_non_decay']) or '-'} |")
    lines += ["", *P.attention_sentences(att, names), "", "### Targeted ablation", "",
              "| ablation | accuracy change | per-class changes beyond the interval |",
              "| --- | --- | --- |"]
    for row in result["ablation"]["rows"]:
        e = row["effects"]
        sig = [f"{c.removeprefix('accuracy ')} {iv['value']:+.3f}" for c, iv in e.items()
               if c != "accuracy" and (iv["low"] > 0 or iv["high"] < 0)]
        lines.append(f"| {_ablation_label(row, names)} | {_iv(e['accuracy'])} | "
                     f"{'; '.join(sig) or '-'} |")
    lines += ["", *check_sentence(result["selection_test"], result["selected_heads"], names)]
    lines += ["Both sets ablated together: " + "; ".join(
        f"{k} {_iv(v)}" for k, v in result["joint_ablation"].items()) + "."]
    lines += ["", *improvement_sentences(result), "",
              f"Intervals: {U.INTERVALS} ({result['n_resamples']} "
              f"resamples, seed {result['seed']}); probes cross-validated in "
              f"{result['folds']} folds. Stage times (s): " + ", ".join(
                  f"{k} {v:.0f}" for k, v in result["seconds"].items()) + "."]
    return "\n".join(lines) + "\n"


def _ablation_label(row: dict, names: list[str]) -> str:
    if row["kind"] == "block":
        return f"{names[row['block']]}: {'skipped' if row['mode'] == 'skip' else 'all heads zero'}"
    return f"{names[row['block']]} head {row['head'] + 1}: {row['mode']}"
