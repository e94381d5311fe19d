"""The explainability benchmark against a planted mechanism: train the IN, the MLP and the ParT
on the tasks of `planted_data` (only the b/c-decay tracks carry the label; one group of two
track features carries it), run the benchmark's methods on held-out jets and measure whether
each recovers the mechanism, beside what the verdict machinery calls it.

- task `decay`: per-track relevance picks the decay tracks (pooled truth AUC among the filled
  tracks of target-class jets, bootstrap interval over jets; the within-jet AUC beside it),
  beside the model-free scores of `baselines` measured on the same tracks, and the slot
  deletion curve against a random order. A method *recovers* it when its truth AUC interval
  lies above 0.5 and above the random explanation's, and its median within-jet AUC is
  above 0.5 (so that jet-level scale cannot carry it).
- task `group`: the carrier features rank first (both above every other feature on all jets
  and in >= 95% of bootstrap resamples: *recovers*), and the deletion curve of the method's
  order against the band of random orders.

The verdicts are those of `verdicts.method_verdicts` (faithful: the deletion score; finds the
decay tracks: truth AUC above the best model-free score), and the report says, per task and
model, whether the methods called faithful are exactly those that recover the mechanism. A
uniform explanation (equal relevance everywhere; its order is its tie-break, drawn at random)
and a random one run through every criterion beside the methods.

`run(data, out)` writes planted.json and planted.md (`planted_report`);
`python -m servable.study.xai.planted` and `make planted` call it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError, check_int
from servable.explain import uncertainty as U
from servable.study.xai import baselines as B
from servable.study.xai import planted_data as D
from servable.study.xai import verdicts as V
from servable.study.xai.faithfulness import method_curves, slot_curves
from servable.study.xai.runs import Context, run_method
from servable.study.xai_benchmark import Settings

MODELS = ("in", "mlp", "part")
METHODS = {"in": ("masking", "saliency", "ig", "shap", "lrp", "lime"),
           "mlp": ("masking", "saliency", "ig", "shap", "lrp", "lime"),
           "part": ("masking", "saliency", "ig", "shap", "attention")}
QUICK_METHODS = {"in": ("masking", "saliency", "ig"), "mlp": ("masking", "saliency", "ig"),
                 "part": ("masking", "saliency", "attention")}
EPOCHS = {"in": 6, "mlp": 15, "part": 3}
TASKS = {"decay": "only the b/c-decay tracks carry the label",
         "group": f"the track features {' and '.join(D.CARRIERS)} alone carry the label"}
NULLS = ("uniform", "random relevance")  # not "random": the curves' random-order band
CARRIERS_SHARE = 0.95  # share of bootstrap resamples in which the carriers must rank first


@dataclass(frozen=True)
class PlantedSettings:
    """How much the planted benchmark trains and measures."""

    n_train: int = 1000  # source jets each task's training file is built from
    n_test: int = 1000  # held-out jets the methods explain (the curves on half of them)
    bootstraps: int = 20
    random_orders: int = 10
    curve_points: int = 11
    curve_fine: int = 10
    slot_steps: int = 5
    seed: int = 0
    quick: bool = False  # QUICK_METHODS and 2 epochs
    models: tuple[str, ...] = MODELS

    def __post_init__(self):
        for name, low in (("n_train", 100), ("n_test", 40), ("bootstraps", 2),
                          ("random_orders", 1), ("curve_points", 2), ("curve_fine", 0),
                          ("slot_steps", 1)):
            check_int(getattr(self, name), name, low)
        check_int(self.seed, "seed", 0)
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ServableError(f"unknown models {', '.join(unknown) or '(none given)'}; "
                                f"choose from {', '.join(MODELS)}")

    def bench(self) -> Settings:
        """The benchmark's own settings for the curves."""
        return Settings(n_jets=max(self.n_test, 20), bootstraps=self.bootstraps,
                        faithfulness_jets=self.n_test, curve_points=self.curve_points,
                        curve_fine=self.curve_fine,
                        random_orders=self.random_orders, slot_steps=self.slot_steps,
                        seed=self.seed)


@dataclass
class NullRun:
    """A null explanation in the shape of the benchmark's method runs."""

    name: str
    importance: np.ndarray
    slot: np.ndarray | None
    statistic: object = None
    per_jet: np.ndarray | None = None


def nulls(ctx: Context, seed: int = 0) -> dict[str, tuple[NullRun, NullRun]]:
    """Per null, (the explanation as scored, the same with its order's tie-break): uniform
    (equal relevance on every feature and filled slot; ties broken at random for an order)
    and random."""
    lead = ctx.jets.leading_slotted()
    filled = filled_mask(lead.values)
    rng = np.random.default_rng(seed + 1)
    _, uslot = B.uniform_explanation(None, filled)
    rimp, rslot = B.random_explanation((1, len(ctx.names)), filled, seed)
    ones = np.ones(len(ctx.names))
    tie = 1 + 1e-6 * rng.random(len(ctx.names))
    return {"uniform": (NullRun("uniform", ones, uslot),
                        NullRun("uniform", tie, uslot * (1 + 1e-6 * rng.random(uslot.shape)))),
            "random relevance": (NullRun("random relevance", rimp[0], rslot),) * 2}


# the measurements -------------------------------------------------------------------------
def carriers_first(run, names: list[str], n_jets: int, s: PlantedSettings) -> dict:
    """Whether both carriers rank strictly above every other feature: on all jets, and the
    share of bootstrap resamples where they do (None without a per-jet statistic)."""
    idx = [names.index(c) for c in D.CARRIERS]

    def first(imp) -> bool:
        imp = np.asarray(imp, np.float64)
        return bool(imp[idx].min() > np.delete(imp, idx).max())

    order = np.argsort(-np.asarray(run.importance), kind="stable")
    ranks = {c: int(np.flatnonzero(order == i)[0]) + 1 for c, i in zip(D.CARRIERS, idx,
                                                                         strict=True)}
    share = None
    if run.statistic is not None:
        share = float(np.mean([first(run.statistic(i)) for i in
                               U.resample_indices(n_jets, s.bootstraps, s.seed)]))
    value = first(run.importance)
    return {"value": value, "share_of_resamples": share, "ranks": ranks,
            "recovers": value and (share is None or share >= CARRIERS_SHARE)}


def truth_aucs(ctx: Context, slots: dict[str, np.ndarray], s: PlantedSettings) -> dict:
    """Per name, the pooled truth AUC (bootstrap interval over target-class jets) and the
    within-jet AUC distribution of per-slot relevance (jets, width) on the decay tracks."""
    truth = np.isin(np.asarray(ctx.jets.extras["track_origin"]), D.DECAY_ORIGINS)
    filled = filled_mask(ctx.jets.tracks) & ctx.y[:, None]
    jets = np.flatnonzero(ctx.y)
    out = {}
    for name, rel in slots.items():
        w = min(rel.shape[1], truth.shape[1])
        r, t, f = np.asarray(rel, np.float64)[:, :w], truth[:, :w], filled[:, :w]
        pooled = U.pooled_truth_auc_interval(r, t, f, jets, s.bootstraps, seed=s.seed)
        per_jet = U.truth_auc_per_jet(r, t, f)
        per_jet.pop("values")
        out[name] = {**pooled, "per_jet": per_jet, "slots": w}
    return out


def _deletion(fc: dict, name: str) -> dict:
    area = fc["curves"][name]["deletion"]["auc_area"]
    band = fc["random_band"]["deletion"]
    return {"area": area, "random_band": band, "below_random_band": bool(area < band["low"])}


def _test_auc(bundle, jets: Jets, target: int, s: PlantedSettings) -> dict:
    p = bundle.predict(jets)[:, target]
    y = jets.labels.argmax(1) == target
    return U.bootstrap_scalar(lambda i: roc_auc_score(y[i], p[i]) if y[i].any() and not
                              y[i].all() else np.nan, len(y), max(s.bootstraps, 100), seed=s.seed)


def evaluate(bundle, jets: Jets, task: str, s: PlantedSettings, target: int = 1) -> dict:
    """Every method of the bundle's kind and the two nulls on the held-out `jets` of `task`:
    the measurements, the verdicts and whether each recovers the mechanism."""
    kind = bundle.kind
    bench = s.bench()
    ctx = Context(bundle, jets, target, bench.curve_replacement, bench.seed)
    runs, seconds = {}, {}
    for m in (QUICK_METHODS if s.quick else METHODS)[kind]:
        t0 = time.perf_counter()
        runs[m] = run_method(ctx, m)
        seconds[m] = time.perf_counter() - t0
    null = nulls(ctx, s.seed)
    ranked = {k: r for k, r in runs.items() if np.any(r.importance)}
    fc = method_curves(ctx, {**ranked, **{k: v[1] for k, v in null.items()}}, bench)
    rows = {}
    for m in [*runs, *NULLS]:
        run = runs[m] if m in runs else null[m][0]
        row = {"seconds": seconds.get(m)}
        if m in fc["scores"]:
            row["deletion"] = {**fc["scores"][m]["deletion"], **_deletion(fc, m)}
            row["insertion"] = fc["scores"][m]["insertion"]
            row["top"] = {**(fc["scores"][m].get("top") or {}), "k": fc["top_k"]}
        if task == "group" and np.any(run.importance):
            row["carriers_first"] = carriers_first(run, ctx.names, len(jets), s)
        rows[m] = row
    model = {"faithfulness": {"features": fc}}
    if task == "decay":
        slotted = {m: r.slot for m, r in runs.items() if r.slot is not None}
        slotted.update({k: v[0].slot for k, v in null.items()})
        truth = truth_aucs(ctx, slotted, s)
        width = min(r.shape[1] for r in slotted.values())
        base = truth_aucs(ctx, {k: v[:, :width] for k, v in
                                B.model_free_scores(jets).items()}, s)
        best = max(base, key=lambda k: base[k]["value"])
        model["physics"] = {"truth_auc": truth,
                            "best_baseline": {"name": best, "value": base[best]["value"]}}
        sc = slot_curves(ctx, {m: v for m, v in {**runs, **{k: v[1] for k, v in
                                                             null.items()}}.items()
                               if v.slot is not None and v.slot.shape[1] ==
                               ctx.jets.tracks.shape[2]}, bench)
        threshold = max(0.5, truth["random relevance"]["high"])
        for m, t in truth.items():
            rows[m]["truth_auc"] = t
            rows[m]["recovers"] = bool(np.isfinite(t["low"]) and t["low"] > threshold
                                       and t["per_jet"]["median"] > 0.5)
            if sc and m in sc["curves"]:
                rows[m]["slot_deletion_drop_vs_random"] = sc["curves"][m]["auc_drop_vs_random"]
        baselines = base
    else:
        baselines = None
        for row in rows.values():
            if "carriers_first" in row:
                row["recovers"] = row["carriers_first"]["recovers"]
    for m, row in rows.items():
        v = V.method_verdicts(model, m)
        row["verdicts"] = {c: v[c] for c in ("faithful", "finds_decay_tracks") if v[c]}
    return {"kind": kind, "methods": rows, "baselines": baselines,
            "random_band": fc["random_band"], "agreement": agreement(rows)}


def agreement(rows: dict) -> dict:
    """Whether the methods called faithful are those that recover the mechanism: `wrong`
    lists methods called faithful that do not recover it (what the check forbids), `missed`
    methods that recover it but are not called faithful (a conservative verdict); `exact`
    when both are empty. `nulls_fail_every_criterion`: no verdict of the uniform or random
    explanation passes or is inconclusive, and neither recovers."""
    called = [m for m, r in rows.items()
              if (r["verdicts"].get("faithful") or {}).get("status") == V.PASSES]
    recovers = [m for m, r in rows.items() if r.get("recovers")]
    judged = [m for m, r in rows.items() if "recovers" in r and "faithful" in r["verdicts"]]
    wrong = [m for m in judged if m in called and m not in recovers]
    missed = [m for m in judged if m in recovers and m not in called]
    null_passes = {m: [c for c, v in rows[m]["verdicts"].items() if v["status"] != V.FAILS]
                   + (["recovers"] if rows[m].get("recovers") else []) for m in NULLS}
    return {"faithful": called, "recovers": recovers, "judged": judged, "wrong": wrong,
            "missed": missed, "exact": not wrong and not missed,
            "nulls_fail_every_criterion": not any(null_passes.values()),
            "null_not_failing": null_passes}


# the run ----------------------------------------------------------------------------------
def build(jets: Jets, task: str, seed: int) -> Jets:
    """The planted jets of `task` (`decay` or `group`) built from generated jets."""
    if task == "decay":
        return D.decay_tracks_only(jets, seed)
    if task == "group":
        return D.one_feature_group(jets, seed=seed)
    raise ServableError(f"task must be one of {', '.join(TASKS)}, not {task!r}")


def train(kind: str, data: Path, target: Path, s: PlantedSettings,
          epochs: int | None = None):
    """servable's own training of one model kind on a planted file (`epochs`, default
    EPOCHS, 2 with `s.quick`); (bundle, summary, seconds)."""
    from servable.bundle.bundle import open_bundle
    from servable.bundle.train import train_bundle
    from servable.explain import Servable
    from servable.models.training import TrainConfig

    epochs = epochs or (2 if s.quick else EPOCHS[kind])
    t0 = time.perf_counter()
    path, summary = train_bundle([data], TrainConfig(model=kind, epochs=epochs, seed=1), target,
                                 force=True, progress=False)
    return open_bundle(path, cls=Servable), summary, time.perf_counter() - t0


def run(data: Path, out: Path, s: PlantedSettings | None = None,
        test_data: Path | None = None, progress: bool = True) -> dict:
    """Build both tasks from generated jets: the first `s.n_train` jets of `data` for
    training, the next `s.n_test` (or the first of `test_data`) as the held-out jets that are
    explained; measure their leakage, train every model on each task, run the methods and
    write `out`/planted.json and `out`/planted.md."""
    from servable.data.h5io import write_jets
    from servable.data.io import read_jets
    from servable.study.xai.planted_report import write_report

    s = s or PlantedSettings()
    out = Path(out)
    t_start = time.perf_counter()
    source_train = read_jets(data, 0, s.n_train)
    source_test = read_jets(test_data, 0, s.n_test) if test_data is not None else \
        read_jets(data, s.n_train, s.n_train + s.n_test)
    if len(source_train) < s.n_train or len(source_test) < s.n_test:
        raise ServableError(f"{data} holds too few jets for {s.n_train} training and "
                            f"{s.n_test} held-out jets: generate more or lower n_train/n_test")
    result = {"settings": dataclasses.asdict(s), "carriers": list(D.CARRIERS),
              "source": {"data": str(data), "test_data": None if test_data is None
                                else str(test_data)}, "tasks": {}}
    for task, what in TASKS.items():
        t0 = time.perf_counter()
        train_jets = build(source_train, task, s.seed + 1)
        test_jets = build(source_test, task, s.seed + 2)
        stored = train_jets.replace(extras={k: v for k, v in train_jets.extras.items()
                                            if k == "track_origin"})  # donor: not a truth
        path = write_jets(out / "data" / f"{task}-train.h5", stored, overwrite=True)
        entry = {"what": what, "n_train": len(train_jets), "n_test": len(test_jets),
                 "leakage": D.leakage(train_jets, task, seed=s.seed), "models": {}}
        entry["build_seconds"] = time.perf_counter() - t0
        for kind in s.models:
            if progress:
                print(f"planted {task}: training {kind}", flush=True)
            bundle, summary, secs = train(kind, path, out / "bundles" / f"{task}-{kind}", s)
            t1 = time.perf_counter()
            ev = evaluate(bundle, test_jets, task, s)
            ev.update({"train_seconds": secs, "explain_seconds": time.perf_counter() - t1,
                       "epochs": len(summary["history"]["train_loss"]),
                       "best_epoch": summary["history"]["best_epoch"],
                       "test_auc": _test_auc(bundle, test_jets, 1, s)})
            entry["models"][kind] = ev
        result["tasks"][task] = entry
    result["seconds"] = time.perf_counter() - t_start
    write_report(result, out)
    return result


def merge(results: list[dict]) -> dict:
    """One result from runs of the same tasks and settings on different models (run side by
    side, one process per model): each task's models together, the leakage of the first run
    (the same data and seeds give the same), `seconds` the longest run and
    `seconds_per_run` each."""
    first = results[0]
    keys = [{k: v for k, v in r["settings"].items() if k != "models"} for r in results]
    if any(k != keys[0] for k in keys) or any(r["tasks"].keys() != first["tasks"].keys()
                                              for r in results):
        raise ServableError("the runs to merge must have the same tasks and settings (but "
                            "their models)")
    out = {**first, "tasks": {}, "seconds": max(r["seconds"] for r in results),
           "seconds_per_run": [r["seconds"] for r in results]}
    out["settings"] = {**first["settings"],
                       "models": [m for r in results for m in r["settings"]["models"]]}
    for task, entry in first["tasks"].items():
        out["tasks"][task] = {**entry, "models": {k: v for r in results
                                                  for k, v in r["tasks"][task]["models"].items()}}
    return out


def main(argv=None) -> int:
    """`python -m servable.study.xai.planted --data F -o DIR [--test-data F] [--quick]`."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m servable.study.xai.planted",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None,
                   help="generated CMS jets (servable data generate)")
    p.add_argument("--test-data", type=Path, default=None,
                   help="held-out generated jets (default: the jets of --data after n_train)")
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--n-train", type=int, default=PlantedSettings.n_train)
    p.add_argument("--n-test", type=int, default=PlantedSettings.n_test)
    p.add_argument("--bootstraps", type=int, default=PlantedSettings.bootstraps)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="instead of running: merge the planted.json of these folders (runs of "
                        "the same settings on different models) into --out")
    a = p.parse_args(argv)
    if a.merge:
        from servable.study.xai.planted_report import write_report

        try:
            write_report(merge([json.loads((d / "planted.json").read_text())
                                for d in a.merge]), a.out)
        except (ServableError, OSError, ValueError) as e:
            print(f"error: cannot merge: {e}", file=sys.stderr)
            return 2
        print(f"wrote {a.out / 'planted.md'} and planted.json")
        return 0
    try:
        if a.data is None:
            raise ServableError("give --data (generated jets) or --merge")
        for f in (a.data, a.test_data):
            if f is not None and not f.is_file():
                raise ServableError(f"{f}: no such file; make it with `servable data generate`")
        s = PlantedSettings(n_train=a.n_train, n_test=a.n_test, bootstraps=a.bootstraps,
                            quick=a.quick, models=tuple(a.models.split(",")))
        t0 = time.perf_counter()
        result = run(a.data, a.out, s, a.test_data)
    except ServableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {a.out / 'planted.md'} and planted.json in {time.perf_counter() - t0:.0f} s "
          f"({result['seconds']:.0f} s measured)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
