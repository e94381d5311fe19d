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
from servable.study.xai_benchmark import SCHEMA


def fmt(value, digits: int = 4) -> str:
    """A number for the report; one not measured (None, NaN) reads n/a."""
    return "n/a" if value is None else _fmt(value, digits)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; a value not measured (None) reads n/a."""
    return _table(header, [["n/a" if c is None else c for c in r] for r in rows])


def _yes(v) -> str:
    return "n/a" if v is None else ("yes" if v else "**no**")


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
def _verdict_table(label: str, model: dict) -> str:
    rows = []
    boot = model["stability"]["bootstrap"]
    seeds = model["stability"]["seeds"]
    scores = model["faithfulness"]["features"]["scores"]
    rand = model["faithfulness"]["randomisation"]
    truth = model["physics"]["truth_auc"]
    for m, v in model["verdicts"]["per_method"].items():
        rows.append([
            m, f"{_yes(v['agrees'])} ({fmt(v['mean_spearman_with_others'], 2)})",
            f"{_yes(v['stable'])} (boot. top-5 {fmt(boot.get(m, {}).get('top5_unchanged'), 2)}"
            f", seeds tau {fmt(seeds.get(m, {}).get('mean_kendall'), 2)}"
            + (", **top-5 changes between seeds**" if seeds.get(m, {}).get("flagged") else "")
            + ")",
            f"{_yes(v['faithful'])} (del. {fmt(scores.get(m, {}).get('deletion'), 2)}, "
            f"ins. {fmt(scores.get(m, {}).get('insertion'), 2)})",
            f"{_yes(v['passes_randomisation'])} "
            f"({fmt(rand[m]['similarity'][-1], 2) if m in rand else 'n/a'})",
            f"{_yes(v['maps_to_physics'])} ({fmt(truth.get(m), 3)})"])
    return table(["method", "agrees (mean rho)", "stable", "faithful (0 random, 1 oracle)",
                  "randomisation (final rho)", "physics (truth AUC)"], rows)


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
             table(["question", "method"], [[q, m or "none qualifies"]
                                            for q, m in model["verdicts"]["use"].items()]),
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
    lines += [table(["method", "bootstrap Kendall tau", "bootstrap top-5 unchanged",
                     "seeds Kendall tau", "seeds top-5 unchanged", "top-5 changes with seed"],
                    [[m, boot.get(m, {}).get("mean_kendall"),
                      boot.get(m, {}).get("top5_unchanged"),
                      seeds.get(m, {}).get("mean_kendall"), seeds.get(m, {}).get(
                          "top5_unchanged"), _yes(seeds[m]["flagged"]) if m in seeds
                      else "n/a"] for m in sorted(set(boot) | set(seeds))]),
              f"\n{model['stability']['n_seeds']} training seeds.", ""]
    f = model["faithfulness"]
    curves = f["features"]["curves"]
    lines += ["### Faithfulness", "", _links(stems["curves"]), "",
              table(["order", "deletion AUC area", "insertion AUC area", "deletion score",
                     "insertion score"],
                    [[k, c["deletion"]["auc_area"], c["insertion"]["auc_area"],
                      f["features"]["scores"].get(k, {}).get("deletion"),
                      f["features"]["scores"].get(k, {}).get("insertion")]
                     for k, c in curves.items()]), "",
              "Score: 0 is the mean area of random orders, 1 the best area any order reached "
              f"(the greedy oracle's or a method's; {f['features']['n_jets']} jets).", ""]
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
                  table(["method", "layers randomised", "similarity", "passed"],
                        [[k, ", ".join(map(str, r["layers_randomised"])),
                          ", ".join(fmt(s, 2) for s in r["similarity"]), _yes(r["passed"])]
                         for k, r in f["randomisation"].items()]), ""]
    p = model["physics"]
    strongest = sorted((r for r in p["associations"] if r["spearman"] is not None
                        and np.isfinite(r["spearman"])),
                       key=lambda r: -abs(r["spearman"]))[:12]
    lines += ["### Physics", ""]
    if p["truth_auc"]:
        lines += [f"Truth AUC ({p['truth']}; target-class jets):", "",
                  table(["method", "truth AUC"], [[k, v] for k, v in p["truth_auc"].items()]),
                  ""]
    lines += ["Strongest associations of per-jet relevance shares with observables:", "",
              table(["method", "relevance share", "observable", "Spearman", "MI (nats)"],
                    [[r["method"], r["aggregate"], r["observable"], r["spearman"],
                      r["mutual_information"]] for r in strongest]), ""]
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
    """The tables the guidelines quote: question x model -> method, and per model and method
    the numbers behind the verdicts (summary.md, made from results.json only)."""
    models = results["models"]
    questions = list(next(iter(models.values()))["verdicts"]["use"])
    lines = [f"Decision table (target {results['target']}, {results['n_jets']} jets; each "
             "answer the best method by the number behind the question):", "",
             table(["question", *models], [[q, *[m["verdicts"]["use"].get(q) or
                                                 "none qualifies" for m in models.values()]]
                                           for q in questions]), ""]
    rows = []
    for label, m in models.items():
        boot, seeds = m["stability"]["bootstrap"], m["stability"]["seeds"]
        scores = m["faithfulness"]["features"]["scores"]
        rand, truth = m["faithfulness"]["randomisation"], m["physics"]["truth_auc"]
        for method, v in m["verdicts"]["per_method"].items():
            rows.append([label, method, fmt(v["mean_spearman_with_others"], 2),
                         fmt(boot.get(method, {}).get("top5_unchanged"), 2),
                         fmt(seeds.get(method, {}).get("mean_kendall"), 2),
                         fmt(scores.get(method, {}).get("deletion"), 2),
                         fmt(rand[method]["similarity"][-1], 2) if method in rand else "n/a",
                         fmt(truth.get(method), 3),
                         fmt(m["seconds_per_method"].get(method), 1)])
    lines += ["Per model and method (mean Spearman with the other methods; bootstrap top-5 "
              "unchanged; Kendall tau across seeds; deletion score, 0 random, 1 best; "
              "similarity after every layer is randomised, pass < 0.5; truth AUC; seconds "
              f"for {results['n_jets']} jets on the reference seed):", "",
              table(["model", "method", "agreement", "boot. top-5", "seeds tau", "deletion",
                     "randomised", "truth AUC", "s"], rows), ""]
    return "\n".join(lines)


def write_benchmark(results: dict, out: Path, force: bool = False) -> list[Path]:
    """results.json, report.md, report.html, summary.md and figures/ in `out`."""
    import markdown

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
        f"{seconds['total']:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()
                                                  if k != "total") + ".", "",
        "Thresholds of the verdicts: agrees = mean Spearman with the other methods >= 0.5; "
        "stable = the bootstrap top-5 set unchanged in >= 60% of pairs of resamples and not "
        "changed between training seeds; faithful = deletion score >= 0.5 (halfway from a "
        "random order to the greedy oracle); passes randomisation = Spearman with the "
        "trained model's explanation < 0.5 once every layer is re-drawn; maps to physics = "
        "per-track relevance picks the decay's tracks with AUC >= 0.6.", ""]
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
    html = markdown.markdown(text, extensions=["tables"])
    paths.append(write_bytes(out / "report.html", (
        "<!doctype html><html><head><meta charset='utf-8'><title>Explainability benchmark"
        "</title><style>body{font-family:sans-serif;max-width:75em;margin:auto}table{"
        "border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:"
        f"100%}}</style></head><body>{html}</body></html>\n").encode(), force=force))
    return paths
