"""The explainability benchmark's outputs: results.json (documented by
xai_benchmark.schema.json), report.md with its verdicts and tables, report.html (the same
Markdown rendered), summary.md (the tables the guidelines quote) and the figures (PNG and
PDF) in figures/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from servable.files import json_text, output_dir, write_bytes, write_json
from servable.study import plots
from servable.study.report import fmt as _fmt
from servable.study.report import table as _table
from servable.study.xai import verdicts as V
from servable.study.xai_benchmark import SCHEMA


def fmt(value, digits: int = 4) -> str:
    """A number for the report; one not measured (None, NaN) reads n/a."""
    return "n/a" if value is None else _fmt(value, digits)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; a value not measured (None) reads n/a."""
    return _table(header, [["n/a" if c is None else c for c in r] for r in rows])


def _yes(v) -> str:
    return "n/a" if v is None else ("yes" if v else "**no**")


def _quartiles(d: dict | None) -> str:
    if not d or d.get("n_jets", 0) == 0:
        return "n/a"
    return f"{fmt(d['median'], 3)} [{fmt(d['q25'], 3)}, {fmt(d['q75'], 3)}] " \
        f"({d['n_jets']} jets)"


def _links(stem: str) -> str:
    return f"![{Path(stem).name}]({stem}.png) ([PDF]({stem}.pdf))"


def validate(results: dict) -> None:
    """Check results (as written to results.json) against the documented schema (JSON Schema
    draft 7; needs jsonschema, which servable[all] brings)."""
    import jsonschema

    jsonschema.validate(json.loads(json_text(results)), json.loads(SCHEMA.read_text()))


# figures ----------------------------------------------------------------------------------
def _heatmap(model: dict, label: str, stem: Path, force: bool) -> list[Path]:
    methods = model["agreement"]["methods"]
    n = len(methods)
    m = np.eye(n)
    for p in model["agreement"]["pairs"]:
        i, j = methods.index(p["a"]), methods.index(p["b"])
        m[i, j] = m[j, i] = np.nan if p["spearman"] is None else p["spearman"]

    def draw(fig, ax):
        im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(n), methods, rotation=45, ha="right")
        ax.set_yticks(range(n), methods)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, "n/a" if not np.isfinite(m[i, j]) else f"{m[i, j]:.2f}",
                        ha="center", va="center", fontsize=8)
        fig.colorbar(im, ax=ax, label="Spearman rho of the global rankings")
        ax.set_title(f"{label}: method agreement")

    return plots.both(stem, draw, (1.0 + 0.8 * n, 0.8 + 0.7 * n), force)


def _curves(model: dict, label: str, stem: Path, force: bool) -> list[Path]:
    curves = model["faithfulness"]["features"]["curves"]
    slots = model["faithfulness"]["slots"].get("curves", {})
    ncols = 3 if slots else 2

    def draw(fig, axes):
        for ax, kind in zip(axes, ("deletion", "insertion"), strict=False):
            for name, c in curves.items():
                style = {"oracle": dict(color="k", ls="--"), "random": dict(color="grey",
                                                                           ls=":")}
                ax.plot(c[kind]["fraction"], c[kind]["auc"], label=name, marker=".",
                        **style.get(name, {}))
            ax.set_xlabel(f"fraction of features {'removed' if kind == 'deletion' else 'restored'}")
            ax.set_ylabel("AUC (target vs rest)")
            ax.set_title(f"{label}: feature {kind}")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        if slots:
            ax = axes[2]
            for name, c in slots.items():
                ax.plot(c["fraction"], c["auc"], label=name, marker=".",
                        **({"color": "grey", "ls": ":"} if name == "random" else {}))
            ax.set_xlabel(f"fraction of {model['faithfulness']['slots']['steps']} most "
                          "relevant slots removed per jet")
            ax.set_ylabel("AUC (target vs rest)")
            ax.set_title(f"{label}: slot deletion")
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)

    return plots.both(stem, draw, (4.5 * ncols, 4), force, ncols=ncols)


def _intervals(model: dict, label: str, stem: Path, force: bool, k: int = 10) -> list[Path]:
    boot = model["stability"]["bootstrap"]
    names = model["features"]
    methods = list(boot)

    def draw(fig, axes):
        axes = np.atleast_1d(axes)
        for ax, m in zip(axes, methods, strict=True):
            b = boot[m]
            value = np.array([np.nan if v is None else v for v in b["value"]])
            order = np.argsort(-np.nan_to_num(value, nan=-np.inf))[:k][::-1]
            low = np.array([np.nan if v is None else v for v in b["low"]])[order]
            high = np.array([np.nan if v is None else v for v in b["high"]])[order]
            v = value[order]
            ax.barh(range(len(order)), v, xerr=[np.clip(v - low, 0, None),
                                                np.clip(high - v, 0, None)], color="C0")
            ax.set_yticks(range(len(order)), [names[i] for i in order], fontsize=7)
            ax.set_title(f"{m}: top-5 unchanged {fmt(b['top5_unchanged'], 2)}", fontsize=9)
        fig.suptitle(f"{label}: importance with 95% bootstrap intervals")

    return plots.both(stem, draw, (3.2 * max(len(methods), 1), 4), force,
                      ncols=max(len(methods), 1))


def _randomisation(model: dict, label: str, stem: Path, force: bool) -> list[Path]:
    rand = model["faithfulness"]["randomisation"]

    def draw(fig, ax):
        for m, r in rand.items():
            ax.plot(r["layers_randomised"], r["similarity"], marker="o", label=m)
        ax.axhline(0.5, color="grey", ls=":", label="pass below")
        ax.set_xlabel("layers randomised (from the output down)")
        ax.set_ylabel("Spearman with the trained model's explanation")
        ax.set_title(f"{label}: cascading randomisation")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

    return plots.both(stem, draw, (5.5, 4), force)


# the report -------------------------------------------------------------------------------
def _iv(d: dict | None, digits: int = 3) -> str:
    """A value with its interval: `v [low, high]`."""
    if not d:
        return "n/a"
    return f"{fmt(d.get('value'), digits)} [{fmt(d.get('low'), digits)}, " \
        f"{fmt(d.get('high'), digits)}]"


def _verdict_table(label: str, model: dict) -> str:
    rows = [[m, *[V.verdict_text(v.get(c)) for c in V.CRITERIA]]
            for m, v in model["verdicts"]["per_method"].items()]
    return table(["method", *V.CRITERIA.values()], rows)


def decision_rows(model: dict) -> list[list[str]]:
    """The decision table of one model: question, and the method that passes with its value
    and interval, or none qualifies with the best value seen."""
    return [[q, V.cell_text(c)] for q, c in model["verdicts"]["use"].items()]


def _model_section(label: str, model: dict, figures: Path, force: bool) -> str:
    stems = {}
    for key, fn in (("agreement", _heatmap), ("curves", _curves),
                    ("intervals", _intervals), ("randomisation", _randomisation)):
        if key == "randomisation" and not model["faithfulness"]["randomisation"]:
            continue
        if key == "intervals" and not model["stability"]["bootstrap"]:
            continue
        fn(model, label, figures / f"{label}_{key}", force)
        stems[key] = f"figures/{label}_{key}"
    a = model["agreement"]
    pair_rows = [[p["a"], p["b"], p["spearman"], p["kendall"], p["top5"], p["top10"],
                  p.get("sign_agreement"), (p.get("per_jet") or {}).get("median")]
                 for p in a["pairs"]]
    lines = [f"## {label} ({model['kind']}; bundles {', '.join(model['bundles'])})", "",
             "### Verdicts", "", _verdict_table(label, model), "",
             "Which method to use on this model:", "",
             table(["question", "method: value [95% interval]"], decision_rows(model)),
             "", "### Agreement", "", _links(stems["agreement"]), "",
             table(["a", "b", "Spearman", "Kendall", "top-5", "top-10", "sign agr.",
                    "per-jet rho (median)"], pair_rows), ""]
    if a.get("tree_shap_vs_native"):
        lines += ["TreeSHAP against XGBoost's native importances:", "",
                  table(["native", "Spearman", "Kendall", "top-5", "top-10"],
                        [[k, v["spearman"], v["kendall"], v["top5"], v["top10"]]
                         for k, v in a["tree_shap_vs_native"].items()]), ""]
    boot = model["stability"]["bootstrap"]
    seeds = model["stability"]["seeds"]
    lines += ["### Stability", ""]
    if "intervals" in stems:
        lines += [_links(stems["intervals"]), ""]
    lines += [table(["method", "bootstrap Kendall tau [band]", "seeds Kendall tau [band]",
                     "seeds top-5 overlap [band]", "seeds Kendall tau, correlated groups "
                     "collapsed [band]"],
                    [[m, _iv(boot.get(m, {}).get("kendall"), 2),
                      _iv(seeds.get(m, {}).get("kendall"), 2),
                      _iv(seeds.get(m, {}).get("top5_overlap"), 2),
                      _iv(seeds.get(m, {}).get("group_kendall"), 2)]
                     for m in sorted(set(boot) | set(seeds))]),
              f"\n{model['stability']['n_seeds']} training seeds.", ""]
    f = model["faithfulness"]
    curves = f["features"]["curves"]
    fs = f["features"]["scores"]
    band = f["features"].get("random_band", {})
    lines += ["### Faithfulness", "", _links(stems["curves"]), "",
              table(["order", "deletion AUC area", "insertion AUC area", "deletion score",
                     "insertion score", f"top-K score (K = {f['features'].get('top_k')})"],
                    [[k + (" (order and curve share the replacement)"
                           if fs.get(k, {}).get("shared_replacement") else ""),
                      c["deletion"]["auc_area"], c["insertion"]["auc_area"],
                      _iv(fs.get(k, {}).get("deletion"), 2),
                      _iv(fs.get(k, {}).get("insertion"), 2),
                      _iv(fs.get(k, {}).get("top"), 2)]
                     for k, c in curves.items()]), "",
              "Scores: 0 is the random orders' mean, 1 the greedy oracle's (searched on the "
              "jets the orders come from; above 1: better than the oracle), for the curve's "
              "area (deletion, insertion) and for the AUC lost at K, the count of features "
              "with which the oracle loses "
              f"{f['features'].get('top_share', 0.9):.0%} of its largest loss (top-K, the "
              "faithfulness verdict's score); each method's order is computed "
              "on one half of the jets and its curve measured on the other "
              f"({f['features']['n_jets']} jets), interval over bootstrap resamples of them. "
              "Random orders' areas: "
              + "; ".join(f"{k} {_iv(v)} over {v.get('n')} orders" for k, v in band.items())
              + ".", ""]
    if f["slots"]:
        lines += [table(["method", "slot-deletion AUC area", "below random by"],
                        [[k, c["auc_area"], c.get("auc_drop_vs_random")]
                         for k, c in f["slots"]["curves"].items()]), ""]
    if f["captum"]:
        lines += ["captum.metrics (standardised inputs, target logit):", "",
                  table(["method", "infidelity", "max-sensitivity", "jets"],
                        [[k, v["infidelity"], v["max_sensitivity"], v["n_jets"]]
                         for k, v in f["captum"].items()]), ""]
    if f["randomisation"]:
        lines += ["Cascading layer randomisation:", "", _links(stems["randomisation"]), "",
                  table(["method", "layers randomised", "similarity", "after all layers",
                         "seed-to-seed similarity", "degenerate", "passed"],
                        [[k, ", ".join(map(str, r["layers_randomised"])),
                          ", ".join(fmt(s, 2) for s in r["similarity"]), _iv(r.get("final")),
                          _iv(r.get("seed_similarity")), _yes(r.get("degenerate")),
                          _yes(r["passed"])]
                         for k, r in f["randomisation"].items()]), ""]
    p = model["physics"]
    strongest = sorted((r for r in p["associations"] if r["spearman"] is not None
                        and np.isfinite(r["spearman"]) and r.get("exceeds_null", True)),
                       key=lambda r: -abs(r["spearman"]))[:12]
    lines += ["### Physics", ""]
    if p["truth_auc"]:
        per_jet = p.get("truth_auc_per_jet", {})
        base = p.get("baselines", {})
        lines += [f"Truth AUC ({p['truth']}; target-class jets), pooled over slots with its "
                  "bootstrap interval, and the median [quartiles] over jets of the within-jet "
                  "AUC; the model-free scores below use no model at all:", "",
                  table(["method or model-free score", "pooled truth AUC", "per-jet AUC"],
                        [[k, _iv(v), _quartiles(per_jet.get(k))]
                         for k, v in p["truth_auc"].items()] +
                        [[f"(no model) {k}", _iv(v["pooled"]), _quartiles(v["per_jet"])]
                         for k, v in base.items()]), ""]
    lines += ["Strongest associations of per-jet relevance shares with observables, among "
              "those whose abs(rho) exceeds the uniform explanation's (equal relevance on every "
              "filled slot) by more than 0.1:", "",
              table(["method", "relevance share", "observable", "Spearman",
                     "uniform explanation's Spearman", "MI (nats)"],
                    [[r["method"], r["aggregate"], r["observable"], r["spearman"],
                      r.get("null_spearman"), r["mutual_information"]] for r in strongest])
              if strongest else "None exceeds the uniform explanation.", ""]
    if p.get("probes_r2"):
        stages = sorted({s for v in p["probes_r2"].values() for s in v})
        lines += ["Linear probes (cross-validated R^2 per stage):", "",
                  table(["observable", *stages], [[o, *[v.get(s) for s in stages]]
                                                  for o, v in p["probes_r2"].items()]), ""]
    c = model["correlated"]
    lines += ["### Correlated and categorical features", ""]
    if c["groups"]:
        lines += [table(["group", "weakest link (abs. rho)", "joint masking loss",
                         "sum of single losses", "top member share per method"],
                        [[", ".join(g["features"]), g["min_link_rho"],
                          g["joint_masking_auc_loss"], g["sum_of_single_masking_losses"],
                          ", ".join(f"{m} {fmt(v['top_member_share'], 2)}"
                                    for m, v in g["methods"].items())]
                         for g in c["groups"]]), ""]
    else:
        lines += [f"No group with abs(rho) > {c['threshold']}.", ""]
    lines += [f"Categorical: {', '.join(c['categorical']) or 'none'}.", ""]
    return "\n".join(lines)


def summary(results: dict) -> str:
    """The tables the guidelines quote: question x model -> the method that passes (with value
    and interval) or none qualifies, and per model and method its verdicts (summary.md, made
    from results.json only)."""
    from servable.study.xai import findings

    rows = [[label, method, *[V.verdict_text(v.get(c)) for c in V.CRITERIA],
             fmt(m["seconds_per_method"].get(method), 1)]
            for label, m in results["models"].items()
            for method, v in m["verdicts"]["per_method"].items()]
    return "\n".join([findings.findings(results), "Per model and method:", "",
                      table(["model", "method", *V.CRITERIA.values(), "s"], rows), ""])


def stage_table(results: dict) -> str:
    """The wall time of each stage of the run (a markdown table): per model where the run
    recorded it, and the total over models with its share of the whole run."""
    seconds = results["seconds"]
    total = seconds["total"]
    stages = [k for k in seconds if k != "total"]
    models = [(label, m["seconds"]) for label, m in results["models"].items()
              if m.get("seconds")]
    rows = [[k, *(fmt(per.get(k), 1) for _, per in models), fmt(seconds[k], 1),
             f"{100 * seconds[k] / total:.0f}%" if total > 0 else "-"] for k in stages]
    rows.append(["total", *("" for _ in models), fmt(total, 1), "100%"])
    return table(["stage", *(f"{label} (s)" for label, _ in models), "all models (s)",
                  "share"], rows)


def write_benchmark(results: dict, out: Path, force: bool = False) -> list[Path]:
    """results.json, report.md, report.html, summary.md and figures/ in `out`."""
    out = output_dir(out)
    figures = output_dir(out / "figures")
    seconds = results["seconds"]
    s = results["settings"]
    head = [
        "# Explainability benchmark", "",
        f"Command: `{results.get('command', 'servable xai-benchmark')}`", "",
        f"{results['n_jets']} jets, target class {results['target']} (classes "
        f"{', '.join(results['classes'])}), {s['bootstraps']} bootstrap resamples, "
        f"faithfulness on {s['faithfulness_jets']} jets. Wall time "
        f"{seconds['total']:.0f} s, per stage:", "", stage_table(results), "",
        "Verdicts are three-valued: passes when the whole 95% interval clears the threshold, "
        "fails when it lies wholly on the other side (or the explanation is degenerate), "
        "inconclusive otherwise. Criteria: agrees = mean Spearman with the other methods "
        f"> {V.AGREE} (interval over bootstrap resamples); stable = Kendall tau between "
        f"training seeds, correlated groups collapsed, > {V.STABLE} (band over seed pairs); "
        f"faithful = top-K deletion score > {V.FAITHFUL} (the AUC lost when the order's "
        "first K features are removed; 0: the random orders', 1: the greedy oracle's first K; "
        "K: the oracle's count for 90% of its largest loss; order and oracle on one half of "
        "the jets, curve on the other); passes randomisation = "
        "the similarity to the trained model's explanation once every layer is re-drawn "
        "stays below the similarity between independently trained seeds (below "
        f"{V.RANDOMISATION} without seeds); finds the decay tracks = pooled truth AUC above "
        "the best model-free score on the same tracks.", ""]
    sections = [_model_section(label, m, figures, force) for label, m in
                results["models"].items()]
    cross = results["cross_model"]
    tail = ["## Across models (shared features)", "",
            table(["a", "b", "method", "shared features", "Spearman", "Kendall", "top-5"],
                  [[r["a"], r["b"], r["method"], r["n_shared"], r["spearman"], r["kendall"],
                    r["top5"]] for r in cross]) if cross else "No two models share 3 features.",
            ""]
    text = "\n".join(head + sections + tail)
    paths = [write_json(out / "results.json", results, force=force),
             write_bytes(out / "report.md", text.encode(), force=force)]
    paths.append(write_bytes(out / "summary.md", summary(results).encode(), force=force))
    paths.append(write_bytes(out / "report.html", _html(text), force=force))
    return paths


def _html(text: str) -> bytes:
    """A report's markdown as a standalone HTML page."""
    import markdown

    html = markdown.markdown(text, extensions=["tables"])
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Explainability benchmark"
            "</title><style>body{font-family:sans-serif;max-width:75em;margin:auto}table{"
            "border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:"
            f"100%}}</style></head><body>{html}</body></html>\n").encode()


def write_class_summary(per_class: dict[str, dict], out: Path, command: str, seconds: float,
                        force: bool = False) -> list[Path]:
    """summary.json, report.md and report.html over the per-class benchmarks in `out` (each
    class's own report in `out/<class>/`)."""
    from servable.study.xai import classes

    summary_ = {**classes.summarise(per_class), "command": command, "seconds": seconds}
    lines = classes.summary_markdown(summary_)
    lines[1:1] = ["", f"Command: `{command}`", "", f"Wall time {seconds:.0f} s."]
    text = "\n".join(lines)
    out = output_dir(out)
    return [write_json(out / "summary.json", summary_, force=force),
            write_bytes(out / "report.md", text.encode(), force=force),
            write_bytes(out / "report.html", _html(text), force=force)]
