"""The reproduction report (report.md) and the ablation outputs: for every table and figure of
the paper's IN study, our values (trained here, and the imported published checkpoints) beside
the paper's with their source, the paper's finding, and the verdict with the numbers behind it.
Figures are drawn here (PNG and PDF, servable.study.plots; Figure 4 by the bench's own plot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from servable.files import output_dir, write_bytes, write_json
from servable.study import paper, plots
from servable.study.report_common import PARTS, figure_links, finding_block, fmt, table

# -- the ablation's tables and figures (servable ablate writes these too) -------------------

def table9_rows(explain: dict, with_paper: bool) -> list[list]:
    """Table 9 rows from an ablation's cumulative masking: dAUC threshold (%), features masked
    (tracks + SVs), AUC and fidelity; `with_paper` adds the paper's counts,
    AUC and fidelity."""
    paper_rows = {r["threshold"]: r for r in paper.TABLE9.value}
    rows = []
    for r in explain["masking"]["cumulative"]:
        c = r["counts"]
        row = [f"{r['threshold']:g}%", f"{c.get('tracks', 0)} + {c.get('vertices', 0)}",
               r["auc"], r["fidelity"]]
        if with_paper:
            p = paper_rows.get(r["threshold"])
            row += [f"{p['tracks']} + {p['vertices']}" if p else "not in the paper",
                    p["auc"] if p else "-", p["fidelity"] if p else "-"]
        rows.append(row)
    return rows


def table10_rows(explain: dict) -> list[list]:
    """Table 10 rows from an ablation's retrained models: model, size, features kept (tracks +
    SVs), parameters, accuracy, AUC, fidelity, RNA sparsity of QCD and H->bb and their mean."""
    return [[r["model"], r["size"], f"{r['tracks']} + {r['vertices']}", str(r["parameters"]),
             r["accuracy"], r["roc_auc"], r["fidelity"], r["sparsity"].get("QCD"),
             r["sparsity"].get("Hbb"), float(np.mean(list(r["sparsity"].values())))]
            for r in explain["models"]]


TABLE9_HEADER = ["threshold (dAUC <)", "features masked (tracks + SVs)", "AUC", "fidelity"]
TABLE10_HEADER = ["model", "hidden/De/Do", "features (tracks + SVs)", "parameters", "accuracy",
                  "AUC", "fidelity", "sparsity QCD", "sparsity H->bb", "sparsity"]


def ablation_figures(explain: dict, figures: Path, prefix: str, title: str,
                     force: bool) -> dict[str, list[str]]:
    """Figure 5, the Table 9 plot, and the NAP diagram of every model (Figures 8 and 9);
    returns the stems (relative to the report) per figure."""
    output_dir(figures)
    stems = {"figure5": [f"{prefix}figure5_dauc"], "table9": [f"{prefix}table9_cumulative"],
             "figure9": []}
    plots.plot_dauc(explain["masking"], figures / stems["figure5"][0], title, force)
    plots.plot_cumulative(explain["masking"], figures / stems["table9"][0], title, force)
    for i, row in enumerate(explain["models"]):
        stem = f"{prefix}nap_{i}_{row['size'].replace('/', '-')}"
        plots.plot_nap(row["rna"], figures / stem, f"{row['model']} ({row['size']})", force)
        stems["figure9"].append(stem)
    stems["figure8"] = stems["figure9"][:1]
    return {k: [f"{figures.name}/{s}" for s in v] for k, v in stems.items()}


def write_ablation(result: dict, out: Path, force: bool = False) -> list[Path]:
    """What `servable ablate` writes: ablation.json, ablation.md (Tables 9 and 10) and the
    figures (figure5_dauc, table9_cumulative, nap_* as PNG and PDF)."""
    out = output_dir(out)
    stems = ablation_figures(result, out / "figures", "", result["bundle"], force)
    text = [f"# Ablation of {result['bundle']} on {result['n_jets']} jets", "",
            f"Masking: {result['masking']['replacement']}; baseline AUC "
            f"{result['masking']['auc']:.4f}. Retrained without the "
            f"{len(result['dropped'])} features below {result['retrain_threshold']:g}% "
            f"dAUC{' and ' + ', '.join(result['also_dropped']) if result['also_dropped'] else ''}"
            f": {', '.join(result['dropped'])}."
            + (f" Kept {', '.join(result['kept_to_fill_a_group'])} so that no input group is "
               "empty." if result["kept_to_fill_a_group"] else ""), "",
            "## Figure 5: AUC lost per masked feature", "", figure_links(stems["figure5"]), "",
            "## Table 9: cumulative masking", "",
            table(TABLE9_HEADER, table9_rows(result, False)), "",
            figure_links(stems["table9"]), "", "## Table 10: retrained models", "",
            table(TABLE10_HEADER, table10_rows(result)), "",
            "## Figure 9: NAP diagrams", "", figure_links(stems["figure9"]), ""]
    return [write_json(out / "ablation.json", result, force=force),
            write_bytes(out / "ablation.md", "\n".join(text).encode(), force=force)]


# -- the reproduction report --------------------------------------------------------------

def _settings_block(results: dict) -> str:
    s = results["settings"]
    seconds = results["seconds"]
    origin = f"from {s['train_data']}" if s["train_data"] else \
        "generated with Pythia 8 + FastJet by servable.data.generator"
    lines = [
        f"Command: `{results.get('command', 'servable reproduce')}`", "",
        f"Wall time {seconds['total'] / 60:.1f} min; load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.1f}' for x in results['load_average_start'])} at the start and "
        f"{', '.join(f'{x:.1f}' for x in results['load_average_end'])} at the end (2 "
        f"cores); {results['torch_threads']} torch thread(s).", "",
        table(["stage", "seconds"], [[k, f"{v:.0f}"] for k, v in seconds.items()]), "",
        f"Data: {s['jets']} training jets (half H->bb) in {s['files']} files, {s['test_jets']} "
        f"independent test jets ({origin}); {s['seeds']} seeds, early stopping after "
        f"{s.get('patience', 8)} epochs without a better validation loss, capped at "
        f"{s['epochs']} epochs; {s.get('folds', '-')} k-fold folds; {s['explain_jets']} "
        "test jets for the explanations; sizes "
        f"{', '.join('/'.join(map(str, z)) for z in s['sizes'])}.", ""]
    return "\n".join(lines)


def _figure5(results: dict, stems: dict) -> str:
    ref = paper.FIGURE5_DAUC_PERCENT.value
    names = list(ref)
    cols, links = [], []
    for part, label in PARTS.items():
        if results.get(part) is None:
            continue
        delta = results[part]["explain"]["masking"]["delta_auc"]
        top = sorted(delta, key=lambda n: -delta[n])[:8]
        names += [n for n in top if n not in names]
        cols.append((label, delta))
        links += stems[part]["figure5"]
    rows = [[n, *(f"{100 * d[n]:.2f}" if n in d else "-" for _, d in cols),
             f"{ref[n]:.1f}" if n in ref else "-"] for n in names]
    return "\n".join([
        "## Figure 5: AUC lost when one feature is masked (zero)", "", figure_links(links), "",
        table(["feature", *(f"{label} dAUC %" for label, _ in cols), "paper dAUC %"], rows), "",
        f"Paper values: {paper.FIGURE5_DAUC_PERCENT.source}; its baseline AUC "
        f"{paper.BASELINE_AUC.value} on CMS data.", "", finding_block("figure5", results)])


def _table9(results: dict, stems: dict) -> str:
    out = ["## Table 9: every feature below a dAUC threshold masked together", ""]
    for part, label in PARTS.items():
        if results.get(part) is None:
            continue
        header = TABLE9_HEADER + ["paper masked", "paper AUC", "paper fidelity"]
        out += [f"{label}:", "", table(header, table9_rows(results[part]["explain"], True)), "",
                figure_links(stems[part]["table9"]), ""]
    out += [f"Paper: {paper.TABLE9.source}.", "", finding_block("table9", results)]
    return "\n".join(out)


def _figure6(results: dict, figures: Path, force: bool) -> str:
    links, rows = [], []
    for part, label in PARTS.items():
        if results.get(part) is None:
            continue
        lrp = results[part]["explain"]["lrp"]
        stem = f"{part}_figure6_lrp"
        plots.plot_lrp(lrp, figures / stem, PARTS[part], force)
        links.append(f"{figures.name}/{stem}")
        rows.append([label, lrp["sv_share"]["QCD"], lrp["sv_share"]["Hbb"],
                     *(f"{lrp['leading_track_share'][c]:.3f} / {lrp['next_track_share'][c]:.3f}"
                       for c in ("QCD", "Hbb"))])
    sv = paper.FIGURE6_SV_SHARE.value
    rows.append(["paper (upstream notebook)", sv["QCD"], sv["Hbb"], "not reported",
                 "not reported"])
    return "\n".join([
        "## Figure 6: LRP relevance per feature and per slot, per class", "",
        "LRP-gamma (gamma = 2, as the paper's notebook), each class's jets explained as their "
        "class; shares of |relevance| per jet, averaged.", "", figure_links(links), "",
        table(["", "SV share QCD", "SV share H->bb", "tracks 1-5 / 6-10 QCD",
               "tracks 1-5 / 6-10 H->bb"], rows), "",
        f"Paper SV shares: {paper.FIGURE6_SV_SHARE.source}.", "",
        finding_block("figure6_sv", results), finding_block("figure6_slots", results)])


def _figure7(results: dict, figures: Path, force: bool) -> str:
    data = results["figure7"]
    plots.plot_correlations(data, figures / "figure7_correlations", force)
    pearson = data.get("pearson", {})
    paper_r = {k: paper.FIGURE7_CORRELATION.value for k in ("sv_ptrel-sv_pt", "sv_erel-sv_pt")}
    rows = [[k, v, pearson.get(k, "-"), paper_r.get(k, "strong (no number)")]
            for k, v in data["spearman"].items()]
    rows.append(["track_quality TV distance", data["track_quality"]["tv_distance"], "-",
                 "alike (no number)"])
    return "\n".join([
        "## Figure 7: sv_ptrel against sv_pt and sv_erel; track_quality per class", "",
        "The test jets (data only: the same for both parts).", "",
        figure_links([f"{figures.name}/figure7_correlations"]), "",
        table(["quantity", "Spearman", "Pearson", "paper"], rows), "",
        f"Paper: {paper.FIGURE7_CORRELATION.source} (correlation coefficient 0.85 of sv_ptrel "
        "and of sv_erel with sv_pt).", "",
        finding_block("figure7_sv", results), finding_block("figure7_quality", results)])


def _figure8(results: dict, stems: dict) -> str:
    rows, links = [], []
    for part, label in PARTS.items():
        if results.get(part) is None:
            continue
        s = results[part]["explain"]["models"][0]["sparsity"]
        rows.append([label, s.get("QCD"), s.get("Hbb")])
        links += stems[part]["figure8"]
    base = paper.FIGURE8_SPARSITY.value
    rows.append(["paper (upstream notebook; Table 10 prints 0.56)", base["QCD"], base["Hbb"]])
    return "\n".join(["## Figure 8: NAP diagram of the baseline", "", figure_links(links), "",
                      table(["", "sparsity QCD", "sparsity H->bb"], rows), "",
                      finding_block("figure8_sparsity", results),
                      finding_block("figure8_layer", results)])


def _table10(results: dict, stems: dict) -> str:
    out = ["## Table 10: retrained without features, per size", ""]
    by_label = {r["model"]: r for r in paper.TABLE10.value}
    for part, label in PARTS.items():
        if results.get(part) is None:
            continue
        e = results[part]["explain"]
        kept = e["kept_to_fill_a_group"]
        what = (f"retrained here without the {len(e['dropped'])} features below "
                f"{e['retrain_threshold']:g}% dAUC and {', '.join(e['also_dropped'])}: "
                f"{', '.join(e['dropped'])}"
                + (f"; kept {', '.join(kept)} so that no input group is empty" if kept else "")
                if part == "trained" else "the paper's Table 10 checkpoints "
                f"({paper.TABLE10_CHECKPOINTS}*, 18 track + 9 SV features) imported, no "
                "training")
        out += [f"{label} ({what}):", "", table(TABLE10_HEADER, table10_rows(e)), ""]
        if part == "published":
            checks = []
            for r in e["models"][1:]:
                expected = next((p["parameters"] for name, p in by_label.items()
                                 if r["model"].endswith(name)), None)
                checks.append(f"{r['model']}: {r['parameters']} (paper {fmt(expected)}, "
                              f"{'same' if expected == r['parameters'] else 'DIFFERENT'})")
            out += ["Parameter counts against the paper's: " + "; ".join(checks) + ".", ""]
    rows = [[r["model"], r["size"], f"{r['tracks']} + {r['vertices']}", str(r["parameters"]),
             fmt(paper.TABLE10_ACCURACY.value), r["roc_auc"], r["fidelity"], "-", "-",
             r["sparsity"]] for r in paper.TABLE10.value]
    out += ["paper (on CMS open data):", "", table(TABLE10_HEADER, rows), "",
            f"Paper: {paper.TABLE10.source}; the 60/20/24 ablated row: "
            f"{paper.TABLE10.value[1]['source']}. Accuracy: "
            f"{paper.TABLE10_ACCURACY.source}.", "",
            finding_block("table10_auc", results),
            finding_block("table10_sparsity", results),
            "## Figure 9: NAP diagrams of the ablated models", ""]
    rows = []
    for part, label in PARTS.items():
        if results.get(part) is not None:
            out += [f"{label}:", "", figure_links(stems[part]["figure9"][1:]), ""]
            rows += [[label, r["model"], r["size"], str(r["parameters"]),
                      r.get("fo_separation"), r["roc_auc"]]
                     for r in results[part]["explain"]["models"]]
    out += ["How well the last f_O layer separates the classes: the AUC of a logistic "
            "regression on its activations (summed over the track nodes), 5-fold "
            "cross-validated on the explained jets; the model's own AUC beside it.", "",
            table(["", "model", "hidden/De/Do", "parameters", "last f_O layer probe AUC",
                   "model AUC"], rows), "", finding_block("figure9", results)]
    return "\n".join(out)


def write_report(results: dict, out: Path, force: bool = False) -> Path:
    """report.md and its figures in `out`/figures."""
    from servable.study.report_training import (
        figure4_section,
        table4_section,
        table5_section,
        table8_section,
    )

    figures = output_dir(Path(out) / "figures")
    stems = {part: ablation_figures(results[part]["explain"], figures, f"{part}_",
                                    label, force)
             for part, label in PARTS.items() if results.get(part) is not None}
    sections = [
        "# Reproduction of the FAIR AI paper's Interaction Network study", "",
        f"{paper.PAPER}. Every table and figure below is made twice: with the IN trained here "
        "on generated jets, and with the imported published checkpoints (trained by the "
        "authors on CMS open data) evaluated on the same generated jets where no training is "
        "needed. The paper's values are its printed tables and text (cited by table); where "
        f"it prints none, the outputs saved in its code repository ({paper.REPOSITORY}), "
        "each with its source. \"Not reported\": neither gives it (Table 10 has no "
        "accuracy column). No GPU was lent to this run: TensorRT and GPU timings are not "
        "ours.", "",
        _settings_block(results),
        table4_section(results), table5_section(results), table8_section(results),
        figure4_section(results, figures, force), _figure5(results, stems),
        _table9(results, stems), _figure6(results, figures, force),
        _figure7(results, figures, force), _figure8(results, stems),
        _table10(results, stems)]
    path = Path(out) / "report.md"
    return write_bytes(path, "\n".join(sections).encode(), force=force)


def load_results(path: Path) -> dict:
    """The results of a reproduction run, read back from its JSON file."""
    return json.loads(Path(path).read_text())
