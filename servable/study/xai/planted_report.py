"""planted.json and planted.md of the planted-mechanism benchmark (`planted.run`): every
sentence that reads a number is generated from the result, with its interval and its
baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

from servable.explain import uncertainty as U
from servable.study.report_common import table

LEAK_BOUND = 0.05  # |AUC - 0.5| the others' classifier may show and still read "no leak"


def _num(x, digits: int = 3) -> str:
    return "n/a" if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) \
        else f"{x:.{digits}f}"


def _iv(d: dict | None) -> str:
    if not d:
        return "n/a"
    return f"{_num(d.get('value'))} [{_num(d.get('low'))}, {_num(d.get('high'))}]"


def leak_text(task: str, leak: dict) -> str:
    """One sentence: the classifier on everything but the carrier, against 0.5 +- bound."""
    o, c = leak["others"], leak["carrier"]
    if no_leak(leak):
        verdict = (f"it does not exceed the band nor 0.5 + {LEAK_BOUND}: no leak measured"
                   + (" (below 0.5: no information a model could use; cross-validation on "
                      "classes balanced by construction gives such values)"
                      if o["high"] < 0.5 else ""))
    else:
        verdict = f"it exceeds the band or 0.5 + {LEAK_BOUND}: the construction LEAKS"
    return (f"A logistic regression (5-fold cross-validated, {leak['n_jets']} jets) on every "
            f"input but the carrier reaches AUC {_iv(o)}; with the labels permuted the same "
            f"gives {_num(o['null']['value'])} [{_num(o['null']['low'])}, "
            f"{_num(o['null']['high'])}] ({o['null']['n']} permutations): {verdict}. On the "
            f"carrier alone it reaches {_iv(c)}.")


def no_leak(leak: dict) -> bool:
    """The others' classifier does no better than the permuted-label band and than 0.5 +
    LEAK_BOUND (an AUC below 0.5 is no information a model could use)."""
    o = leak["others"]
    return o["value"] <= o["null"]["high"] and o["value"] <= 0.5 + LEAK_BOUND

def _status(v: dict | None) -> str:
    return "n/a" if v is None else v["status"]


def model_table(task: str, ev: dict) -> str:
    """One row per method and null: its measurements, verdicts and whether it recovers."""
    rows = []
    for m, r in ev["methods"].items():
        d, top = r.get("deletion"), r.get("top")
        cells = [m, _iv(top) if top and "value" in top else "n/a",
                 _iv(d) if d else "n/a",
                 f"{_num(d['area'])} vs {_iv(d['random_band'])}" if d else "n/a"]
        if task == "decay":
            t = r.get("truth_auc")
            cells += [_iv(t), _num(t["per_jet"]["median"]) if t else "n/a",
                      _num(r.get("slot_deletion_drop_vs_random"))]
        else:
            cf = r.get("carriers_first")
            if cf is None:
                cells.append("n/a")
            else:
                ranks = ", ".join(str(v) for v in cf["ranks"].values())
                cells.append(f"{'yes' if cf['value'] else 'no'} (ranks {ranks}; "
                             f"{_num(cf['share_of_resamples'], 2)} of resamples)")
        cells += [_status(r["verdicts"].get("faithful"))]
        if task == "decay":
            cells += [_status(r["verdicts"].get("finds_decay_tracks"))]
        cells += ["yes" if r.get("recovers") else ("no" if "recovers" in r else "n/a")]
        rows.append(cells)
    k = next((r["top"]["k"] for r in ev["methods"].values() if r.get("top")), None)
    head = ["method", f"top-K score (K = {k})", "deletion score (area)",
            "deletion area vs random band"]
    head += (["truth AUC (pooled)", "within-jet median", "slot deletion drop vs random"]
             if task == "decay" else ["carriers ranked first"])
    head += ["faithful (verdict)"] + (["finds decay tracks (verdict)"] if task == "decay"
                                      else []) + ["recovers the mechanism"]
    return table(head, rows)


def agreement_text(label: str, ev: dict) -> str:
    """Whether the verdict machinery's faithful methods are those that recover the mechanism."""
    a = ev["agreement"]
    called = ", ".join(a["faithful"]) or "none"
    rec = ", ".join(a["recovers"]) or "none"
    judged = ", ".join(a["judged"]) or "none"
    head = f"{label}: faithful (top-K verdict passes): {called}; recover the mechanism: {rec}."
    if not a["judged"]:
        head += " No method has both a faithfulness verdict and a recovery measurement."
    elif a["exact"]:
        head += f" Of the methods with both ({judged}), the verdicts call faithful exactly those " \
                "that recover the mechanism."
    else:
        if a["wrong"]:
            head += f" Called faithful but NOT recovering the mechanism: {', '.join(a['wrong'])}."
        if a["missed"]:
            head += (f" Recovering the mechanism but not called faithful (conservative): "
                     f"{', '.join(a['missed'])}.")
    if a["nulls_fail_every_criterion"]:
        tail = " The uniform and the random explanation fail every criterion."
    else:
        bad = "; ".join(f"{m}: {', '.join(c)}" for m, c in a["null_not_failing"].items() if c)
        tail = f" A null explanation does not fail every criterion ({bad})."
    return head + tail


def markdown(result: dict) -> str:
    """planted.md: the construction, the leakage, each model's test AUC and method table, and
    the generated agreement statements."""
    s = result["settings"]
    lines = ["# Explainability against a planted mechanism", "",
             f"Generated by `servable.study.xai.planted` from planted.json "
             f"({s['bootstraps']} bootstrap resamples over jets, {s['random_orders']} random "
             f"orders; {U.INTERVALS}; run time "
             f"{result['seconds']:.0f} s). How the tasks are built: "
             "`servable/study/xai/planted_data.py` and docs/xai-benchmark.md.", ""]
    for task, entry in result["tasks"].items():
        lines += [f"## Task `{task}`: {entry['what']}", "",
                  f"{entry['n_train']} training jets, {entry['n_test']} held-out jets "
                  "explained.", "", leak_text(task, entry["leakage"]), ""]
        lines += [table(["model", "test AUC", "epochs", "training (s)", "explaining (s)"],
                        [[k, _iv(ev["test_auc"]), ev["epochs"], _num(ev["train_seconds"], 0),
                          _num(ev["explain_seconds"], 0)] for k, ev in entry["models"].items()]),
                  ""]
        for kind, ev in entry["models"].items():
            learned = ev["test_auc"]["low"] > 0.5
            lines += [f"### {kind}", "",
                      f"Test AUC {_iv(ev['test_auc'])}: "
                      + ("the model learned the task." if learned else
                         "the model did NOT learn the task (interval reaches 0.5); its "
                         "explanations have no mechanism to recover."), ""]
            if task == "decay" and ev["baselines"]:
                best = max(ev["baselines"], key=lambda k: ev["baselines"][k]["value"])
                lines += ["Model-free scores of the decay tracks on the same tracks: " +
                          "; ".join(f"{k} {_iv(v)}" for k, v in ev["baselines"].items()) +
                          f". Best: {best}.", ""]
            lines += [model_table(task, ev), "", agreement_text(kind, ev), ""]
    return "\n".join(lines).rstrip() + "\n"


def summary_lines(result: dict) -> list[str]:
    """One line per task and model: test AUC, the faithful methods, those that recover, and
    whether they match (for docs/xai-benchmark.md)."""
    out = []
    for task, entry in result["tasks"].items():
        o = entry["leakage"]["others"]
        out.append(f"- task `{task}` ({entry['what']}; {entry['n_train']} training jets, "
                   f"{entry['n_test']} held-out jets explained, the deletion curves on half of "
                   f"them): classifier on every other input AUC {_iv(o)}, permuted-label band "
                   f"[{_num(o['null']['low'])}, {_num(o['null']['high'])}]")
        for kind, ev in entry["models"].items():
            a = ev["agreement"]
            out.append(f"  - {kind}: test AUC {_iv(ev['test_auc'])}; faithful: "
                       f"{', '.join(a['faithful']) or 'none'}; recover: "
                       f"{', '.join(a['recovers']) or 'none'}; "
                       + ("match" if a["exact"] else
                          f"called faithful without recovering: {', '.join(a['wrong']) or 'none'}"
                          f"; recovering without being called faithful: "
                          f"{', '.join(a['missed']) or 'none'}")
                       + ("; nulls fail every criterion" if a["nulls_fail_every_criterion"]
                          else "; a null explanation does not fail every criterion"))
    return out


def write_report(result: dict, out: Path) -> None:
    """planted.json and planted.md in `out`."""
    from servable.files import write_bytes

    out = Path(out)
    write_bytes(out / "planted.json", json.dumps(result, indent=1, default=_plain).encode(),
                force=True)
    write_bytes(out / "planted.md", markdown(result).encode(), force=True)


def _plain(x):
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON: {type(x).__name__}")



BEGIN = ("<!-- planted: generated from docs/results/xai-planted/planted.json by "
         "servable.study.xai.planted_report; do not edit -->")
END = "<!-- end of planted -->"


def update_doc(text: str, result: dict) -> str:
    """`text` (docs/xai-benchmark.md) with its planted block replaced by `summary_lines`.

    Raises
    ------
    ServableError
        when the text has no planted block (the two marker comments).
    """
    from servable.study.xai.findings import replace_block

    return replace_block(text, BEGIN, END, "\n".join(summary_lines(result)), "the summary")
