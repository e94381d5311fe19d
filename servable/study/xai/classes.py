"""The benchmark over several target classes (multi-class tasks such as JetClass): one full
benchmark per class explained, and a summary of its verdicts over the classes.

`summarise(per_class)` reads the results of `servable.study.xai_benchmark.benchmark` per
class (class name -> results) and counts, per model, method and criterion, the classes in which
the verdict passes, fails or is inconclusive, with the value per class; per model and question
of the decision table it lists the method chosen in each class (None: none qualifies).
`summary_markdown(summary)` is its text, generated from those numbers only, ending with the
methods that ran on several models side by side (`across_models`).
"""

from __future__ import annotations

import math

from servable.study.xai import verdicts as V


def summarise(per_class: dict[str, dict]) -> dict:
    """The verdicts of one benchmark per target class, counted over the classes.

    Parameters
    ----------
    per_class : dict
        Target class name -> the results of `benchmark` with that class as target (the same
        models in each).

    Returns
    -------
    dict
        `classes` (in order), `models`: label -> `methods`: method -> criterion -> counts per
        status, `values` (class -> value, None when degenerate) and `mean` (over the
        classes with a value); `use`: question -> class -> the method it names (None) and the
        best value seen.
    """
    classes = list(per_class)
    labels = list(dict.fromkeys(label for r in per_class.values() for label in r["models"]))
    models = {}
    for label in labels:
        methods: dict[str, dict] = {}
        use: dict[str, dict] = {}
        top: dict[str, dict | None] = {}
        for cls in classes:
            model = per_class[cls]["models"].get(label)
            if model is None:
                continue
            for method, criteria in model["verdicts"]["per_method"].items():
                for criterion, v in criteria.items():
                    if v is None:
                        continue
                    entry = methods.setdefault(method, {}).setdefault(
                        criterion, {V.PASSES: 0, V.FAILS: 0, V.INCONCLUSIVE: 0, "values": {},
                                    "thresholds": {}})
                    entry[v["status"]] += 1
                    entry["values"][cls] = v["value"]
                    entry["thresholds"][cls] = v.get("threshold")
            for question, cell in model["verdicts"]["use"].items():
                use.setdefault(question, {})[cls] = {
                    "method": cell.get("method"), "status": cell.get("status"),
                    "value": cell.get("value"), "best_seen": cell.get("best_seen")}
            top[cls] = top_k(model)
        for criteria in methods.values():
            for entry in criteria.values():
                finite = [x for x in entry["values"].values()
                          if x is not None and math.isfinite(x)]
                entry["mean"] = sum(finite) / len(finite) if finite else None
        models[label] = {"methods": methods, "use": use, "top_k": top}
    return {"classes": classes, "models": models}


def top_k(model: dict) -> dict | None:
    """Where the faithful verdict reads the curves (`faithfulness.TOP_SHARE`): K, the number
    of features, and the AUC of the oracle's order and the random orders' mean at K on the
    measuring jets; None without feature curves. Where K is every feature all orders remove
    the same set; where the oracle's AUC at K is near the random orders' the score's
    denominator is small and its interval wide."""
    f = (model.get("faithfulness") or {}).get("features") or {}
    k, steps = f.get("top_k"), f.get("steps")
    if k is None or not steps:
        return None
    i = steps.index(k)
    return {"k": k, "n": steps[-1], "oracle_auc": f["curves"]["oracle"]["deletion"]["auc"][i],
            "random_auc": f["curves"]["random"]["deletion"]["auc"][i]}


def _count(entry: dict, n: int) -> str:
    mean = "" if entry["mean"] is None else f" (mean {entry['mean']:.3g})"
    parts = [f"{entry[V.PASSES]}/{n} pass"]
    if entry[V.INCONCLUSIVE]:
        parts.append(f"{entry[V.INCONCLUSIVE]} inconclusive")
    return ", ".join(parts) + mean


def summary_markdown(summary: dict) -> list[str]:
    """The summary over classes as markdown lines: per model, a table of methods x criteria
    (classes passing out of those measured, the mean value) and the decision table per class,
    with a sentence per model generated from the counts."""
    classes = summary["classes"]
    lines = [f"# Explainability benchmark over {len(classes)} target classes", "",
             f"Classes explained: {', '.join(classes)}; each has its own report "
             "(`<class>/report.md`). A cell counts the classes in which the method passes "
             "that criterion out of those where it was measured.", ""]
    for label, model in summary["models"].items():
        criteria = list(dict.fromkeys(c for m in model["methods"].values() for c in m))
        lines += [f"## {label}", "", "| method | " + " | ".join(
            V.CRITERIA.get(c, c) for c in criteria) + " |",
                  "| --- |" + " --- |" * len(criteria)]
        for method, entries in model["methods"].items():
            cells = []
            for c in criteria:
                e = entries.get(c)
                cells.append("-" if e is None else _count(e, _n(e)))
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += [_everywhere(model), ""]
        tops = {c: t for c, t in model.get("top_k", {}).items() if t}
        if tops:
            lines += ["The top-K deletion score (faithful) per class: " + "; ".join(
                f"{c} K = {t['k']} of {t['n']} (AUC at K: oracle {t['oracle_auc']:.3f}, random "
                f"orders {t['random_auc']:.3f})" for c, t in tops.items()) + "."]
            every = [c for c, t in tops.items() if t["k"] == t["n"]]
            if every:
                lines += [f"In {', '.join(every)} K is every feature: all orders remove the same "
                          "set there, so no order scores and the faithful verdict is not "
                          "measured."]
            lines.append("")
        lines += ["| question | " + " | ".join(classes) + " |",
                  "| --- |" + " --- |" * len(classes)]
        for question, cells in model["use"].items():
            row = []
            for cls in classes:
                cell = cells.get(cls)
                if cell is None:
                    row.append("-")
                elif cell["method"]:
                    row.append(cell["method"])
                else:
                    best = cell["best_seen"] or "-"
                    row.append(f"none qualifies (best {best})")
            lines.append(f"| {question} | " + " | ".join(row) + " |")
        lines.append("")
    return lines + across_models(summary)


def _everywhere(model: dict) -> str:
    """The sentence naming what passes in every class measured on one model, each with its
    mean value over the classes and the threshold its intervals cleared (a range where the
    threshold is a per-class baseline)."""
    everywhere = [f"{m} {V.CRITERIA.get(c, c)} ({_n(e)} classes, {_mean(e)}; "
                  f"{_thresholds(e)})" for m, entries in model["methods"].items()
                  for c, e in entries.items() if e[V.PASSES] == _n(e) > 0]
    return ("In every class measured: " + "; ".join(everywhere) + ".") if everywhere \
        else "No method passes any criterion in every class measured."


BEGIN = "<!-- class findings: generated from summary.json by servable.study.xai.classes; " \
    "do not edit -->"
END = "<!-- end of generated class findings -->"


def findings(summary: dict) -> str:
    """The block docs/guidelines.md quotes from a run over several classes: per model what
    passes in every class measured, and the methods whose verdict depends on the model."""
    lines = [f"Over {len(summary['classes'])} target classes ({', '.join(summary['classes'])})"
             ", per model:", ""]
    lines += [f"- **{label}**: {_everywhere(model)}" for label, model in
              summary["models"].items()]
    depends = _depends(summary)
    if depends:
        lines += ["", "Where one method's verdict depends on the model:", "",
                  *[f"- {x}" for x in depends]]
    return "\n".join(lines) + "\n"


def _depends(summary: dict) -> list[str]:
    """Per shared method and criterion, a sentence where it passes in every class on some
    models and in none on others, each model with its mean value over the classes."""
    out = []
    for method, c, entries in _shared(summary["models"]):
        always = [f"{label} ({_mean(e)})" for label, e in entries.items()
                  if e and e[V.PASSES] == _n(e)]
        never = [f"{label} ({_mean(e)})" for label, e in entries.items()
                 if e and e[V.PASSES] == 0]
        if always and never:
            out.append(f"{method} {V.CRITERIA.get(c, c)}: in every class on "
                       f"{', '.join(always)}; in none on {', '.join(never)}.")
    return out


def _shared(models: dict) -> list[tuple[str, str, dict]]:
    """(method, criterion, label -> its summary entry or None) for each criterion of the
    methods that ran on more than one model."""
    methods = [m for m in dict.fromkeys(m for model in models.values()
                                        for m in model["methods"])
               if sum(m in model["methods"] for model in models.values()) > 1]
    return [(m, c, {label: model["methods"].get(m, {}).get(c)
                    for label, model in models.items()})
            for m in methods
            for c in dict.fromkeys(c for model in models.values()
                                   for c in model["methods"].get(m, {}))]


def _thresholds(entry: dict) -> str:
    ts = sorted({round(t, 3) for t in (entry.get("thresholds") or {}).values()
                 if t is not None})
    if not ts:
        return "threshold n/a"
    return f"threshold {ts[0]:.3g}" if len(ts) == 1 else \
        f"thresholds {ts[0]:.3g}-{ts[-1]:.3g}"


def _n(entry: dict) -> int:
    return entry[V.PASSES] + entry[V.FAILS] + entry[V.INCONCLUSIVE]


def _mean(entry: dict) -> str:
    return "mean n/a" if entry["mean"] is None else f"mean {entry['mean']:.3g}"


def across_models(summary: dict) -> list[str]:
    """The methods that run on more than one model, side by side: per method and criterion,
    one column per model with its count of passing classes (the same jets and classes for
    every model of one run), and a sentence per method naming the models where it passes in
    every class measured and those where it passes in none."""
    models = summary["models"]
    shared = _shared(models)
    if not shared:
        return []
    labels = list(models)
    lines = ["## The same methods across models", "",
             "Each cell: the classes in which the method passes the criterion on that model, "
             "out of those where it was measured (the mean value over the classes).", "",
             "| method | criterion | " + " | ".join(labels) + " |",
             "| --- | --- |" + " --- |" * len(labels)]
    for method, c, entries in shared:
        cells = ["-" if e is None else _count(e, _n(e)) for e in entries.values()]
        lines.append(f"| {method} | {V.CRITERIA.get(c, c)} | " + " | ".join(cells) + " |")
    lines.append("")
    depends = _depends(summary)
    if depends:
        lines += ["Where one method's verdict depends on the model:", "",
                  *[f"- {x}" for x in depends], ""]
    return lines
