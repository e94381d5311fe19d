"""The reproduction report's sections on training and runtimes: Tables 4, 5 and 8 and Figure 4,
ours beside the paper's with the verdicts (servable.study.report assembles them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servable.study import paper
from servable.study.report_common import PARTS, figure_links, finding_block, fmt, table
from servable.study.verdicts import saturation_batch


def table4_section(results: dict) -> str:
    """Table 4: our seeds, the published checkpoint's p-values, the paper's (Markdown)."""
    t = results["trained"]["table4"]
    p4 = {k: paper.TABLE4[k].value for k in ("accuracy", "roc_auc")}
    ref = t.get("reference", {})

    def tail(key):
        r = ref.get(key)
        return "-" if r is None else f"{100 * r['p_value_one_sided']:.2f}% (z = {r['z']:.2f})"

    rows = [[f"{len(t['accuracy']['values'])} seeds (test jets)",
             f"{t['accuracy']['mean']:.4f} +- {t['accuracy']['std']:.4f}",
             f"{t['roc_auc']['mean']:.4f} +- {t['roc_auc']['std']:.4f}", "-", "-"]]
    if ref:
        rows.append([f"reference: {ref['source']}",
                     fmt(ref["accuracy"]["value"]) if "accuracy" in ref else "-",
                     fmt(ref["roc_auc"]["value"]), tail("accuracy"), tail("roc_auc")])
    rows += [["paper: IN, 10 trainings", f"{p4['accuracy']['mean']:.4f} +- "
              f"{p4['accuracy']['std']:.4f}", f"{p4['roc_auc']['mean']:.4f} +- "
              f"{p4['roc_auc']['std']:.4f}", "-", "-"],
             ["paper: original model", p4["accuracy"]["original"], p4["roc_auc"]["original"],
              f"{100 * p4['accuracy']['p_value']:.2f}%",
              f"{100 * p4['roc_auc']['p_value']:.2f}%"]]
    per_seed = ", ".join(f"{r['seed']}: {r['roc_auc']:.4f} ({r['epochs']} epochs, best "
                         f"{r['best_epoch']}, "
                         f"{'early stopping' if r['stopped_early'] else 'the cap'})"
                         for r in t["runs"])
    lo, hi = paper.PAPER_EPOCHS.value
    return "\n".join([
        "## Table 4: accuracy and AUC over random seeds", "",
        table(["", "accuracy", "AUC", "p-value accuracy", "p-value AUC"], rows), "",
        f"Paper: {paper.TABLE4['roc_auc'].source}. Per seed: test AUC (epochs run, best "
        f"epoch, what ended training): {per_seed}. The paper's trainings ran {lo}-{hi} epochs "
        f"with early stopping after {paper.PATIENCE.value} ({paper.PAPER_EPOCHS.source}).", "",
        finding_block("table4", results)])


def table5_section(results: dict) -> str:
    """Table 5: the three split methods, ours beside the paper's (Markdown)."""
    t = results["trained"]["table5"]
    names = {"random": "random jets (seed run 1)", "files": "random files",
             "kfold": "k-fold by file (mean of the folds)"}
    rows = []
    for k, v in t.items():
        p = paper.TABLE5[k].value
        rows.append([names[k], f"{v['epochs']:g}", v["accuracy"], v["roc_auc"],
                     str(p["epochs"]), p["accuracy"], p["roc_auc"]])
    folds = t["kfold"]["folds"]
    held_out = ", ".join(t["files"].get("validation_files", []))
    fold_aucs = ", ".join(f"{f['roc_auc']:.4f}" for f in folds)
    return "\n".join([
        "## Table 5: three ways to split the training data", "",
        table(["split", "epochs", "accuracy", "AUC", "paper epochs", "paper accuracy",
               "paper AUC"], rows), "",
        f"Three different trainings: random files validates on {held_out} (split seed "
        f"{t['files'].get('split_seed', '-')}, the first from 42 whose files are no k-fold "
        f"fold); the k-fold row averages {len(folds)} trainings, one per fold (AUC "
        f"{fold_aucs}). Paper: {paper.TABLE5['kfold'].source}.", "",
        finding_block("table5", results)])


def table8_section(results: dict) -> str:
    """Table 8: runtimes, ours on this CPU beside the paper's on ThetaGPU (Markdown)."""
    rows = []
    for part, label in PARTS.items():
        if results.get(part) is None:
            continue
        report = results[part]["table8"]
        for name, r in report["runtimes"].items():
            p = paper.TABLE8.get(name, {})
            rows.append([label, name, r["accuracy"], r["roc_auc"], f"{r['max_abs_dp']:.1e}",
                         f"{r['fidelity']:.7f}", f"{r['ms_per_batch_1']:.2f}",
                         f"{r['ms_per_batch_128']:.2f}", fmt(p["accuracy"].value),
                         fmt(p["roc_auc"].value), fmt(p["ms_per_batch_1"].value, 2),
                         fmt(p["ms_per_batch_128"].value, 2)])
        for name, why in report["skipped"].items():
            p = paper.TABLE8.get(name)
            rows.append([label, name, f"not available: {why.splitlines()[0]}", *["-"] * 5,
                         *([fmt(p[k].value, 2 if k.startswith("ms") else 4) for k in (
                             "accuracy", "roc_auc", "ms_per_batch_1", "ms_per_batch_128")]
                           if p else ["-"] * 4)])
    apptainer = [[name, *v] for name, v in paper.TABLE8_APPTAINER.value.items()]
    return "\n".join([
        "## Table 8: runtimes (PyTorch, ONNX Runtime, TensorRT)", "",
        "Ours on this machine's CPU (time per batch: median of the throughput repeats); no "
        "GPU was lent to this run, so TensorRT could not run. The paper's on ThetaGPU "
        f"({paper.TABLE8['torch']['accuracy'].source}: 10k jets at batch 1, 1.8 M at batch "
        "128; its accuracy and AUC are the batch-128 rows).", "",
        table(["model", "runtime", "accuracy", "AUC", "max abs dp", "fidelity",
               "ms/batch 1", "ms/batch 128", "paper accuracy", "paper AUC",
               "paper ms/batch 1", "paper ms/batch 128"], rows), "",
        f"Paper, inside Apptainer at batch 128 ({paper.TABLE8_APPTAINER.source}):", "",
        table(["runtime", "accuracy", "ms/batch 128", "AUC"], apptainer), "",
        finding_block("table8", results)])


def figure4_section(results: dict, figures: Path, force: bool) -> str:
    """Figure 4: throughput per batch size and the saturation batch (Markdown and plots)."""
    from servable.bundle.bench import plot_throughput

    stems, rows = [], []
    for part, label in PARTS.items():
        if results.get(part) is None:
            continue
        scan = results[part]["figure4"]
        stem = f"{part}_figure4_throughput"
        for suffix in (".png", ".pdf"):
            plot_throughput({**scan, "runtimes": {k: {int(b): v for b, v in per.items()}
                                                  for k, per in scan["runtimes"].items()}},
                            figures / f"{stem}{suffix}", force=force)
        stems.append(f"{figures.name}/{stem}")
        for name, per in scan["runtimes"].items():
            medians = {int(b): float(np.median(v)) for b, v in per.items()}
            sat = saturation_batch(medians)
            rows.append([label, name, *(f"{medians[b]:.0f}" for b in sorted(medians)),
                         str(sat) if sat is not None else "not reached"])
        sizes = sorted(scan["runtimes"][next(iter(scan["runtimes"]))], key=int)
    medians = paper.FIGURE4_MEDIANS.value
    sat = paper.FIGURE4_SATURATION.value
    return "\n".join([
        "## Figure 4: throughput against batch size", "", figure_links(stems), "",
        "Median jets/s on this machine's CPU (no GPU was lent to this run: TensorRT and the "
        "paper's GPU scan were not measured), and the saturation batch of the criterion "
        "below.", "",
        table(["model", "runtime", *(f"batch {b}" for b in sizes), "saturation batch"],
              rows), "",
        f"Paper ({paper.FIGURE4_SATURATION.source}): GPU use saturates from batch "
        f"{sat['saturates_from_batch']}, throughput peaks at about {sat['peak_jets_per_s']} "
        f"jets/s at batch {sat['peak_batch']} (TensorRT, A100). Its medians "
        f"({paper.FIGURE4_MEDIANS.source}), jets/s: " + ", ".join(
            f"{b}: {v}" for b, v in medians.items()) + f"; saturation batch by our criterion "
        f"{saturation_batch(medians)}.", "",
        finding_block("figure4", results)])
