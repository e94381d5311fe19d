"""The explainability benchmark: do the methods agree, are they stable, are they faithful, do
they mean physics? (`servable xai-benchmark`.)

`benchmark(models, jets, settings)` runs every method of each model (a model: one bundle per
training seed, the first is the reference) through `Method.attribute` and hands the
Explanations (`study.xai.runs`) to one module per question in `servable.study.xai`:

1. `agreement`: every pair of methods (global rankings, top-k, signs, per jet), across models
   on their shared features, and TreeSHAP against XGBoost's native importances;
2. `stability`: over bootstrap resamples of the jets (intervals, Kendall tau, top-5 sets) and
   over training seeds (also with correlated groups collapsed);
3. `faithfulness`: deletion and insertion curves of features (order on one half of the jets,
   curve on the other, a removed feature drawn from its own values over the jets (marginal),
   against random orders and the greedy "oracle" order) and of each
   jet's most relevant slots, captum's infidelity and max-sensitivity;
   `randomisation`: the cascading layer randomisation of Adebayo et al. (2018) against the
   seed-to-seed similarity;
4. `physics`: per-jet relevance shares against observables (`servable.data.jetobservables`),
   the AUC with which per-track relevance picks the tracks from b/c-hadron (or resonance)
   decays beside model-free scores, linear probes;
5. `correlation`: correlated feature groups (|rho| > 0.8) with group-level importance,
   categorical features;
6. `verdicts`: three-valued verdicts per method and the table "question -> method to use".

Every interval is a bootstrap interval over the jets (`servable.explain.uncertainty`). The
result is plain data (JSON-ready, see `servable/study/xai_benchmark.schema.json`), with the
wall time of each stage in `seconds`; `study.xai_report.write_benchmark` writes report.md,
report.html, results.json and the figures.
"""

from __future__ import annotations

import json
import numbers
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from servable.data.jets import Jets
from servable.errors import ServableError, check_int
from servable.explain import METHODS as METHOD_CLASSES
from servable.explain import Servable, method_class
from servable.explain.masking import REPLACEMENTS
from servable.study.xai import agreement as A
from servable.study.xai import correlation as C
from servable.study.xai import faithfulness as F
from servable.study.xai import physics as P
from servable.study.xai import randomisation as R
from servable.study.xai import stability as S
from servable.study.xai import verdicts as V
from servable.study.xai.runs import Context, native_importances, run_method
from servable.timing import StageTimer

SCHEMA = Path(__file__).with_name("xai_benchmark.schema.json")

# the methods each model kind runs by default, and the cheaper set of --quick
METHODS = {
    "bdt": ("shap", "masking", "lime"),
    "mlp": ("masking", "saliency", "ig", "shap", "lrp", "lime"),
    "in": ("masking", "saliency", "ig", "shap", "lrp", "lime"),
    "part": ("masking", "saliency", "ig", "shap", "lime", "attention"),
    "particlenet": ("masking", "saliency", "ig", "shap", "edges"),
}
QUICK_METHODS = {
    "bdt": ("shap", "masking"), "mlp": ("masking", "saliency", "ig", "lrp"),
    "in": ("masking", "saliency", "ig", "lrp"), "part": ("masking", "saliency", "attention"),
    "particlenet": ("masking", "saliency"),
}
# the parameters each method runs with: study.xai.runs.PARAMS


@dataclass(frozen=True)
class Settings:
    """What the benchmark measures, and on how much."""

    n_jets: int = 2000
    bootstraps: int = 20
    methods: tuple[str, ...] | None = None  # default: METHODS (QUICK_METHODS with quick)
    target: int = 1
    quick: bool = False
    faithfulness_jets: int = 500
    curve_points: int = 11
    curve_fine: int = 10  # every count of removed features up to this one is a curve step
    random_orders: int = 10
    slot_steps: int = 10
    captum_jets: int = 64
    randomisation_jets: int = 200
    correlation_threshold: float = 0.8
    # what a removed feature takes in the deletion/insertion curves (masking.REPLACEMENTS)
    curve_replacement: str = "marginal"
    seed: int = 0

    def __post_init__(self):
        """Refuse what `servable xai-benchmark` refuses, with the same one-line message (the
        CLI builds this object and prints its error)."""
        for name, minimum in COUNTS.items():
            check_int(getattr(self, name), name, minimum)
        check_int(self.target, "target", 0)
        check_int(self.seed, "seed", 0)
        if not isinstance(self.quick, bool):
            raise ServableError(f"quick must be True or False, not {self.quick!r}")
        if self.curve_replacement not in REPLACEMENTS:
            raise ServableError(f"curve_replacement must be one of {', '.join(REPLACEMENTS)}, "
                                f"not {self.curve_replacement!r}")
        c = self.correlation_threshold
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 0 < c <= 1:
            raise ServableError(f"correlation_threshold must be a number in (0, 1], not {c!r}")
        if self.methods is not None:
            chosen = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
            unknown = [str(m) for m in chosen if m not in METHOD_CLASSES]
            if unknown or not chosen:
                raise ServableError(f"unknown methods {', '.join(unknown) or '(none given)'}; "
                                    f"choose from {', '.join(METHOD_CLASSES)}")
            object.__setattr__(self, "methods", chosen)


# the smallest value of each count of the Settings (n_jets, bootstraps: as the CLI declares)
COUNTS = {"n_jets": 20, "bootstraps": 2, "faithfulness_jets": 2, "curve_points": 2,
          "curve_fine": 0,
          "random_orders": 1, "slot_steps": 1, "captum_jets": 1, "randomisation_jets": 2}

QUICK = {"n_jets": 300, "bootstraps": 5, "quick": True, "faithfulness_jets": 300,
         "curve_points": 6, "curve_fine": 5, "random_orders": 10, "slot_steps": 5,
         "captum_jets": 16, "randomisation_jets": 60}


# the whole benchmark ----------------------------------------------------------------------
def methods_for(kind: str, s: Settings) -> list[str]:
    """The methods the benchmark runs on a model kind: `s.methods` where given (those that apply
    to the kind, in their order), else the kind's defaults (the cheaper set with `s.quick`)."""
    default = (QUICK_METHODS if s.quick else METHODS)[kind]
    if s.methods is None:
        return list(default)
    return [m for m in s.methods if kind in method_class(m).applies_to]


def benchmark(models: dict[str, list[Servable]], jets: Jets, s: Settings,
              progress: bool = True, memo: dict | None = None) -> dict:
    """Measure every model (label -> its bundles, one per training seed) on labelled jets.
    `memo` (label -> `Context.memo`), given to the runs of several target classes on the same
    jets, predicts each masked set of the curves once for all classes."""
    from tqdm import tqdm

    if jets.labels is None:
        raise ServableError("the benchmark measures AUCs: it needs labelled jets")
    jets = jets[: s.n_jets]
    classes = list(jets.class_names)
    if not 0 <= s.target < len(classes):
        raise ServableError(f"target {s.target} out of range: the data has classes "
                            f"{', '.join(f'{i} = {c}' for i, c in enumerate(classes))}")
    present = np.bincount(jets.labels.argmax(1), minlength=len(classes))
    if present[s.target] == 0 or present[s.target] == len(jets):
        raise ServableError(f"the benchmark needs jets of class {classes[s.target]} and of "
                            "others in the first jets of the data")
    stages = StageTimer()
    t_start = time.perf_counter()
    results = {}
    total = sum(len(methods_for(b[0].kind, s)) * len(b) for b in models.values())
    bar = tqdm(total=total + 5 * len(models), desc="xai-benchmark", disable=not progress,
               unit="step")
    for label, bundles in models.items():
        ref = bundles[0]
        methods = methods_for(ref.kind, s)
        ctx = Context(ref, jets, s.target, s.curve_replacement, s.seed,
                      memo={} if memo is None else memo.setdefault(label, {}))
        before = dict(stages.seconds)
        per_seed = []
        for b in bundles:
            runs = {}
            for m in methods:
                bar.set_postfix_str(f"{label}: {m}" + (f" (seed {len(per_seed)})"
                                                        if per_seed else ""))
                runs[m] = stages.run("methods", run_method, ctx, m, b)
                bar.update()
            per_seed.append(runs)
        runs = per_seed[0]
        native = native_importances(ref, ctx.names) if ref.kind == "bdt" else None
        model = {"kind": ref.kind, "bundles": [b.name for b in bundles],
                 "features": ctx.names,
                 "importance": {m: r.importance.tolist() for m, r in runs.items()
                                if np.any(r.importance)},
                 "native_importance": {k: v.tolist() for k, v in (native or {}).items()},
                 "per_jet": {m: r.per_jet is not None for m, r in runs.items()},
                 "seconds_per_method": {m: r.seconds for m, r in runs.items()}}
        bar.set_postfix_str(f"{label}: agreement, stability")
        model["agreement"] = stages.run("agreement", A.agreement, runs, native)
        groups = stages.run("correlated", C.feature_groups, ctx, s)
        model["stability"] = {
            "bootstrap": stages.run("stability", S.bootstrap_stability, runs, len(jets), s),
            "seeds": stages.run("stability", S.seed_stability, per_seed, groups)
            if len(per_seed) > 1 else {}, "n_seeds": len(per_seed)}
        model["agreement"]["mean_spearman"] = A.mean_spearman(runs)
        model["group_totals"] = {m: r.group_totals for m, r in runs.items() if r.group_totals}
        bar.update()
        bar.set_postfix_str(f"{label}: faithfulness")
        faith = {"features": stages.run("feature curves", F.method_curves, ctx, runs, s),
                 "slots": stages.run("slot curves", F.slot_curves, ctx, runs, s)}
        bar.update()
        if ref.kind != "bdt":
            faith["captum"] = stages.run("captum", F.captum_scores, ctx, methods, s)
            faith["randomisation"] = stages.run("randomisation", R.randomise_all, ctx, methods,
                                                s, bundles[1:])
        else:
            faith["captum"], faith["randomisation"] = {}, {}
        model["faithfulness"] = faith
        bar.update()
        bar.set_postfix_str(f"{label}: physics")
        model["physics"] = stages.run("physics", P.physics, ctx, runs, s)
        model["correlated"] = stages.run("correlated", C.correlated, ctx, runs, s)
        bar.update()
        model["verdicts"] = V.verdicts(model)
        model["seconds"] = {k: v - before.get(k, 0.0) for k, v in stages.seconds.items()}
        bar.update()
        results[label] = model
    bar.close()
    return {"settings": asdict(s), "n_jets": len(jets), "classes": classes,
            "target": classes[s.target], "models": results,
            "cross_model": stages.run("agreement", A.cross_model, results),
            "seconds": {**stages.seconds, "total": time.perf_counter() - t_start}}


def check_models(bundles: Sequence[Servable]) -> dict[str, list[Servable]]:
    """Bundles grouped into models: bundles of one kind, name and inputs are training seeds of
    one model. A model is labelled by its kind where it is the only one of that kind, else
    by its name (its kind and a number where names repeat): the official ParticleNet and
    one trained here share kind and inputs, yet are two models."""
    groups: dict[tuple, list[Servable]] = {}
    for b in bundles:
        key = (b.kind, b.manifest.get("name"), json.dumps(b.manifest["inputs"], sort_keys=True))
        groups.setdefault(key, []).append(b)
    per_kind = Counter(kind for kind, _, _ in groups)
    names = Counter((kind, name) for kind, name, _ in groups)
    models: dict[str, list[Servable]] = {}
    for (kind, name, _), members in groups.items():
        by_name = per_kind[kind] > 1 and name and names[kind, name] == 1
        label = name if by_name else kind
        n = 2
        while label in models:
            label = f"{kind}-{n}"
            n += 1
        models[label] = members
    return models


def train_more_seeds(bundles: list[Servable], k: int, out: Path, epochs: int | None = None,
                     force: bool = False, progress: bool = True) -> list[Servable]:
    """The model's bundles completed to `k` training seeds: the first bundle's recorded
    training configuration on its recorded files, with seeds after the recorded one."""
    import dataclasses as dc

    from servable.bundle.bundle import open_bundle
    from servable.bundle.train import train_seeds
    from servable.models.training import TrainConfig
    from servable.study.ablation import recorded_training

    ref = bundles[0]
    config, files = recorded_training(ref)
    if not files:
        raise ServableError(f"{ref.name} records no training files that are still there "
                            "unchanged: train the seeds yourself and give them with --seeds")
    known = {f.name for f in dc.fields(TrainConfig)}
    base = {key: v for key, v in config.items() if key in known}
    first = int(base.get("seed", 0))
    seeds = list(range(first + 1, first + 1 + max(k - len(bundles), 0)))
    cfg = TrainConfig(**{**base, **({"epochs": epochs} if epochs else {})})
    trained = train_seeds(files, cfg, seeds, [out / f"seed{s}" for s in seeds], force=force,
                          progress=progress)
    return [*bundles, *(open_bundle(path, cls=Servable) for path, _ in trained)]
