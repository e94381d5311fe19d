"""Whether each of the paper's findings (servable.study.paper.FINDINGS) holds on our numbers:
one check per finding, applying the criterion the finding states to the results of one part of
the study (our trained IN, or the imported published checkpoints), with the numbers behind it.
A check that does not apply to a part (no training for the published checkpoints) says so."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servable.study.paper import FINDINGS, RANGE3_Q95, SATURATION_GROWTH, TABLE4_P_CONSISTENT


@dataclass(frozen=True)
class Verdict:
    """The verdict on one finding for one part of the study, with the numbers behind it."""

    key: str
    holds: bool | None  # None: not applicable to this part
    numbers: str

    @property
    def word(self) -> str:
        """The verdict as a word: holds, does not hold or not applicable."""
        return {True: "holds", False: "does not hold", None: "not applicable"}[self.holds]


def _table4(part, results):
    t = part.get("table4")
    if not t:
        return None, "needs training"
    ref = t.get("reference")
    if not ref:
        return None, "no published checkpoint (or --reference-auc) to judge"
    shown, ok = [], True
    for key, label in (("accuracy", "accuracy"), ("roc_auc", "AUC")):
        if key not in ref:
            continue
        p = ref[key]["p_value_one_sided"]
        ok = ok and p > TABLE4_P_CONSISTENT
        shown.append(f"{label} {t[key]['mean']:.4f} +- {t[key]['std']:.4f} over "
                     f"{len(t[key]['values'])} seeds, reference {ref[key]['value']:.4f}: "
                     f"p = {100 * p:.2f}%")
    epochs = t.get("epochs")
    if epochs:
        shown.append(f"epochs run {min(epochs)}-{max(epochs)}")
    return ok, "; ".join(shown)


def _table5(part, results):
    t = part.get("table5")
    if not t:
        return None, "needs training"
    aucs = {k: v["roc_auc"] for k, v in t.items()}
    spread = max(aucs.values()) - min(aucs.values())
    allowed = RANGE3_Q95 * part["table4"]["roc_auc"]["std"]
    shown = ", ".join(f"{k} {v:.4f}" for k, v in aucs.items())
    return spread <= allowed, f"{shown}: spread {spread:.4f}, allowed {allowed:.4f}"


def _table8(part, results):
    rows = part["table8"]["runtimes"]
    if "onnx" not in rows:
        return None, "ONNX Runtime not available"
    t, o = rows["torch"], rows["onnx"]
    d_auc, d_acc = abs(o["roc_auc"] - t["roc_auc"]), abs(o["accuracy"] - t["accuracy"])
    return (d_auc < 1e-4 and d_acc < 1e-3 and o["fidelity"] > 0.9999,
            f"|dAUC| {d_auc:.1e}, |d accuracy| {d_acc:.1e}, fidelity {o['fidelity']:.7f}")


def saturation_batch(medians: dict[int, float],
                     growth: float = SATURATION_GROWTH) -> int | None:
    """The smallest batch size, below the largest one scanned, after which no larger batch
    raises the median throughput by more than `growth` (a fraction); None when throughput is
    still growing by more than that at the end of the scan."""
    sizes = sorted(medians)
    for i, b in enumerate(sizes[:-1]):
        if max(medians[x] for x in sizes[i + 1:]) <= (1 + growth) * medians[b]:
            return b
    return None


def _figure4(part, results):
    scan = part["figure4"]["runtimes"]
    parts, ok = [], True
    for name, per in scan.items():
        medians = {int(b): float(np.median(v)) for b, v in per.items()}
        smallest = medians[min(medians)]
        peak = max(medians, key=medians.get)
        sat = saturation_batch(medians)
        ok = ok and medians[peak] >= 2 * smallest and sat is not None
        parts.append(f"{name}: {smallest:.0f} jets/s at batch {min(medians)}, peak "
                     f"{medians[peak]:.0f} at batch {peak}, "
                     + (f"saturated from batch {sat}" if sat is not None else
                        f"still growing by more than {SATURATION_GROWTH:.0%} at batch "
                        f"{max(medians)}"))
    return ok, "; ".join(parts)


def _figure5(part, results):
    delta = part["explain"]["masking"]["delta_auc"]
    groups = part["explain"]["masking"]["groups"]
    top = sorted(delta, key=lambda n: -delta[n])[:4]
    small = sum(d < 1e-4 for d in delta.values())
    holds = any(groups[n] == "vertices" for n in top) and small >= len(delta) / 4
    return holds, f"top 4: {', '.join(f'{n} {100 * delta[n]:.1f}%' for n in top)}; " \
                  f"{small} of {len(delta)} features below 0.01%"


def _row(rows, threshold):
    return next((r for r in rows if abs(r["threshold"] - threshold) < 1e-12), None)


def _table9(part, results):
    rows = part["explain"]["masking"]["cumulative"]
    at05, at1 = _row(rows, 0.05), _row(rows, 1.0)
    if at05 is None or at1 is None:
        return None, "needs the 0.05% and 1% thresholds"
    c = at05["counts"]
    return (at05["fidelity"] >= 0.95 and at1["fidelity"] < at05["fidelity"],
            f"0.05%: {c.get('tracks', 0)} + {c.get('vertices', 0)} features masked, fidelity "
            f"{at05['fidelity']:.4f}, AUC {at05['auc']:.4f}; 1%: {at1['n_masked']} masked, "
            f"fidelity {at1['fidelity']:.4f}")


def _figure6_sv(part, results):
    share = part["explain"]["lrp"]["sv_share"]
    return share["Hbb"] > share["QCD"], f"SV share H->bb {share['Hbb']:.3f}, QCD " \
                                        f"{share['QCD']:.3f}"


def _figure6_slots(part, results):
    lrp = part["explain"]["lrp"]
    lead, after = lrp["leading_track_share"], lrp["next_track_share"]
    return all(lead[c] > after[c] for c in lead), "; ".join(
        f"{c}: 5 leading tracks {lead[c]:.2f}, next 5 {after[c]:.2f} of the tracks' relevance"
        for c in lead)


def _figure7_sv(part, results):
    rho = results["figure7"]["spearman"]
    return all(abs(v) > 0.7 for v in rho.values()), ", ".join(f"{k} {v:.2f}"
                                                              for k, v in rho.items())


def _figure7_quality(part, results):
    tv = results["figure7"]["track_quality"]["tv_distance"]
    return tv < 0.1, f"total variation distance {tv:.3f}"


def _baseline(part):
    return part["explain"]["models"][0]


def _figure8_sparsity(part, results):
    s = _baseline(part)["sparsity"]
    return min(s.values()) > 0.5, ", ".join(f"{c} {v:.3f}" for c, v in s.items())


def _figure8_layer(part, results):
    rna = _baseline(part)["rna"]
    diff = {layer: float(np.mean(np.abs(np.subtract(rna["Hbb"][layer], rna["QCD"][layer]))))
            for layer in rna["Hbb"]}
    top = max(diff, key=diff.get)
    return top == "fo3", f"largest in {top} ({diff[top]:.3f}); " + ", ".join(
        f"{k} {v:.3f}" for k, v in diff.items())


def _retrained(part):
    return part["explain"]["models"][1:]


def _table10_auc(part, results):
    rows = _retrained(part)
    if not rows:
        return None, "no retrained or compared model"
    base = _baseline(part)["roc_auc"]
    worst = min(r["roc_auc"] for r in rows)
    return base - worst <= 0.005, f"baseline {base:.4f}; " + ", ".join(
        f"{r['size']} ({r['parameters']} parameters) {r['roc_auc']:.4f}" for r in rows)


def _table10_sparsity(part, results):
    rows = _retrained(part)
    if not rows:
        return None, "no retrained or compared model"
    smallest = min(rows, key=lambda r: r["parameters"])
    mine, base = (float(np.mean(list(r["sparsity"].values())))
                  for r in (smallest, _baseline(part)))
    return mine < base, f"{smallest['size']} ({smallest['parameters']} parameters): " \
                        f"{mine:.3f}; baseline {base:.3f}"


def _figure9(part, results):
    rows = _retrained(part)
    if not rows:
        return None, "no retrained or compared model"
    base = _baseline(part)["fo_separation"]
    worst = max(r["fo_separation"] for r in rows)
    return worst < base, f"last f_O layer probe AUC: baseline {base:.4f}; " + ", ".join(
        f"{r['size']} ({r['parameters']} parameters) {r['fo_separation']:.4f}" for r in rows)


CHECKS = {"table4": _table4, "table5": _table5, "table8": _table8, "figure4": _figure4,
          "figure5": _figure5, "table9": _table9, "figure6_sv": _figure6_sv,
          "figure6_slots": _figure6_slots, "figure7_sv": _figure7_sv,
          "figure7_quality": _figure7_quality, "figure8_sparsity": _figure8_sparsity,
          "figure8_layer": _figure8_layer, "table10_auc": _table10_auc,
          "table10_sparsity": _table10_sparsity, "figure9": _figure9}


def verdict(key: str, part: dict | None, results: dict) -> Verdict:
    """The verdict on FINDINGS[key] for one part of the study (None: the part was not run)."""
    if key not in FINDINGS:
        raise KeyError(key)
    if part is None:
        return Verdict(key, None, "no published checkpoints given")
    holds, numbers = CHECKS[key](part, results)
    return Verdict(key, holds, numbers)
