"""Ablation of a tagger: masking each feature (FAIR paper Figure 5), masking every feature below
a dAUC threshold together (Table 9), and retraining without the features below a threshold at
several sizes (Table 10), with the NAP diagram of each model (Figure 9).

Thresholds are in percent of AUC, as in the paper (0.01 means a dAUC below 0.01%). Masking
replaces a feature by zero in the filled slots (the paper's masking) or by its population mean.
Each model of Table 10 is compared with the baseline on the same jets: parameters, accuracy,
AUC, the fidelity F = 1 - mean|y - y_baseline| (paper Eq. 1) and the RNA sparsity (share of
hidden nodes with RNA < 0.2, per class over every hidden layer) and how well the last f_O
layer separates the classes (Figure 9).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from servable.bundle.bundle import open_bundle
from servable.data.jets import Jets
from servable.errors import ServableError
from servable.explain import Servable, explain_bundle
from servable.explain.activations import SPARSE_BELOW
from servable.files import sha256_file
from servable.models.metrics import classification_metrics, fidelity

DEFAULT_THRESHOLDS = (0.001, 0.005, 0.01, 0.05, 1.0)
DEFAULT_SIZES = ((60, 20, 24), (32, 16, 16), (32, 8, 8), (16, 8, 8))
SIZE_KEYS = ("hidden", "De", "Do")
LAST_FO_LAYER = "fo3"  # the output layer of f_O, where Figures 8 and 9 look


def size_label(size: Sequence[int]) -> str:
    """An IN size as text, hidden/De/Do: (60, 20, 24) -> '60/20/24'."""
    return "/".join(str(s) for s in size)


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    """'60/20/24,16/8/8' -> [(60, 20, 24), (16, 8, 8)]: hidden/De/Do of the IN."""
    sizes = []
    for part in text.split(","):
        try:
            size = tuple(int(x) for x in part.strip().split("/"))
        except ValueError:
            size = ()
        if len(size) != 3 or min(size) < 1:
            raise ServableError(f"IN sizes are hidden/De/Do triples of positive integers "
                                f"separated by commas (e.g. 60/20/24,16/8/8), not {text!r}")
        sizes.append(size)
    if len(set(sizes)) != len(sizes):
        raise ServableError(f"a size is listed twice: {text!r}")
    return sizes


def parse_thresholds(text: str) -> list[float]:
    """'0.001,0.01,1' -> [0.001, 0.01, 1.0]: dAUC thresholds in percent, increasing."""
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values) or \
            values != sorted(set(values)):
        raise ServableError(f"thresholds are increasing positive percentages separated by "
                            f"commas (e.g. 0.001,0.01,1), not {text!r}")
    return values


def masking_study(bundle: Servable, jets: Jets, thresholds: Sequence[float],
                  replacement: str = "zero") -> dict:
    """Per-feature dAUC (in absolute AUC) and cumulative masking at each threshold (percent):
    which features, how many per input group, AUC and fidelity against the unmasked model."""
    e = explain_bundle(bundle, jets, "masking", target=1, replacement=replacement,
                       thresholds=[t / 100 for t in thresholds])
    groups = {name: group for group, names in e.feature_names.items() for name in names}
    rows = []
    for t, row in zip(thresholds, e.extras["cumulative"], strict=True):
        masked = features_below(e.feature_relevance, t)
        counts = {g: sum(groups[n] == g for n in masked) for g in e.feature_names}
        rows.append({"threshold": t, "masked": masked, "counts": counts,
                     "n_masked": row["n_masked"], "auc": row["auc"],
                     "fidelity": row["fidelity"]})
    return {"replacement": replacement, "auc": e.extras["auc"],
            "delta_auc": dict(e.feature_relevance), "groups": groups, "cumulative": rows}


def features_below(delta_auc: dict[str, float], threshold: float) -> list[str]:
    """The features whose dAUC (absolute AUC) is below `threshold` percent."""
    return [name for name, d in delta_auc.items() if d < threshold / 100]


def features_to_drop(masking: dict, threshold: float, also: Sequence[str] = ()) -> tuple[
        list[str], list[str]]:
    """The features below `threshold` percent dAUC and `also`, in input order; an input group
    that would lose every feature keeps its one of largest dAUC (returned second), since the
    IN needs at least one feature per group."""
    delta, groups = masking["delta_auc"], masking["groups"]
    drop = set(features_below(delta, threshold)) | set(also)
    kept = []
    for group in dict.fromkeys(groups.values()):
        names = [n for n in delta if groups[n] == group]
        if all(n in drop for n in names):
            best = max(names, key=lambda n: delta[n])
            drop.discard(best)
            kept.append(best)
    return [n for n in delta if n in drop], kept


def class_sparsity(rna: dict) -> dict[str, float]:
    """Per class, the share of all hidden nodes (every layer together) with RNA < 0.2: the
    paper's sparsity (nodes below 0.2 over all nodes)."""
    return {label: float(np.mean(np.concatenate([np.asarray(r) for r in layers.values()])
                                 < SPARSE_BELOW))
            for label, layers in rna.items()}


def layer_separation(bundle: Servable, jets: Jets, layer: str = LAST_FO_LAYER,
                     folds: int = 5) -> float:
    """How well one hidden layer's activations (summed over the layer's nodes per jet) separate
    the classes: the ROC AUC of a logistic regression on them, each jet scored by the model
    fitted on the other folds (FAIR paper Figure 9: disentanglement at the output of f_O)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from servable.explain.activations import hidden_activations

    x = hidden_activations(bundle.tagger, jets)[layer]
    y = jets.labels.argmax(1)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    scores = cross_val_predict(probe, x, y, cv=cv, method="predict_proba")[:, 1]
    return classification_metrics(y, np.stack([1 - scores, scores], 1))["roc_auc"]


def model_row(label: str, bundle: Servable, jets: Jets, baseline_scores: np.ndarray) -> dict:
    """One row of Table 10: the model's features, size, parameters, accuracy, AUC, fidelity
    against the baseline, and its RNA (for the NAP diagram) and sparsity."""
    p = bundle.predict(jets)
    metrics = classification_metrics(jets.labels.argmax(1), p)
    rna = explain_bundle(bundle, jets, "rna").extras["rna"]
    c = bundle.tagger.config
    return {"model": label, "bundle": str(bundle.path), "size": size_label(
                [c["hyperparameters"][k] for k in SIZE_KEYS]),
            "tracks": len(c["track_features"]), "vertices": len(c["vertex_features"]),
            "parameters": bundle.tagger.n_parameters(), "accuracy": metrics["accuracy"],
            "roc_auc": metrics["roc_auc"], "fidelity": fidelity(p[:, 1], baseline_scores),
            "sparsity": class_sparsity(rna), "fo_separation": layer_separation(bundle, jets),
            "rna": {cls: {k: np.asarray(v).tolist() for k, v in layers.items()}
                    for cls, layers in rna.items()}}


def recorded_training(bundle: Servable) -> tuple[dict, list[Path]]:
    """The training configuration a bundle records, and its training files when they are
    still there unchanged (same SHA-256); ([], {}) for a bundle without a training record."""
    training = bundle.manifest.get("provenance", {}).get("training") or {}
    files = []
    for entry in training.get("data", []):
        path = Path(entry["path"])
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            return training.get("config", {}), []
        files.append(path)
    return training.get("config", {}), files


def training_files(bundle: Servable, train_data: Sequence[Path] | None) -> tuple[dict,
                                                                                 list[Path]]:
    """The recorded training configuration and the files to retrain on: `train_data`, or the
    recorded ones; a bundle with neither is refused (one line)."""
    if bundle.kind != "in":
        raise ServableError(f"retraining at sizes hidden/De/Do applies to the IN, not to a "
                            f"{bundle.kind} model")
    config, files = recorded_training(bundle)
    files = list(train_data or files)
    if not files:
        raise ServableError(f"{bundle.name} records no training files that are still there "
                            "unchanged; give the training data with --train-data")
    return config, files


def retrain(bundle: Servable, drop: Sequence[str], sizes: Sequence[Sequence[int]], out: Path,
            train_data: Sequence[Path] | None = None, epochs: int | None = None,
            force: bool = False, progress: bool = True) -> list[Path]:
    """Train the bundle's model again on its features less `drop`, once per size, with the
    bundle's recorded training configuration (split, seed, learning rate, ...; `epochs` overrides)
    on its recorded training files, or on `train_data`."""
    from servable.bundle.train import train_bundle
    from servable.models.training import TrainConfig

    config, files = training_files(bundle, train_data)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    base = {k: v for k, v in config.items() if k in known}
    out_paths = []
    for size in sizes:
        hyper = {**base.get("hyperparameters", {}), **dict(zip(SIZE_KEYS, size, strict=True))}
        cfg = TrainConfig(**{**base, "model": "in", "hyperparameters": hyper,
                             "track_features": list(bundle.tagger.config["track_features"]),
                             "vertex_features": list(bundle.tagger.config["vertex_features"]),
                             "drop_features": list(drop),
                             **({"epochs": epochs} if epochs else {})})
        target = out / "models" / size_label(size).replace("/", "-")
        t0 = time.perf_counter()
        path, _ = train_bundle(files, cfg, target, force=force, progress=progress)
        if progress:
            print(f"retrained {size_label(size)} without {len(drop)} features: "
                  f"{time.perf_counter() - t0:.1f} s")
        out_paths.append(path)
    return out_paths


def ablation(bundle: Servable, jets: Jets, out: Path, *, thresholds=DEFAULT_THRESHOLDS,
             sizes=DEFAULT_SIZES, retrain_threshold: float = 0.01, also_drop=(),
             train_data=None, epochs: int | None = None, compare: Sequence = (),
             retrain_models: bool = True, replacement: str = "zero", force: bool = False,
             progress: bool = True) -> dict:
    """The whole ablation of a bundle on labelled jets: masking (Figure 5, Table 9), then the
    models without the features below `retrain_threshold` percent and `also_drop` at each
    size, and the bundles in `compare` (already trained, e.g. published ablated checkpoints),
    each against the bundle (Table 10, Figure 9). Returns plain data (see the module)."""
    if jets.labels is None:
        raise ServableError("ablation measures AUCs: it needs labelled jets")
    unknown = [n for n in also_drop if n not in {f for g in bundle.tagger.input_spec()
                                                 for f in g.features}]
    if unknown:
        raise ServableError(f"unknown feature names {', '.join(unknown)}: the model reads "
                            f"{', '.join(bundle.tagger.input_spec().names)} features of the "
                            "CMS layout (see `servable bundle describe`)")
    if retrain_models and sizes:
        training_files(bundle, train_data)  # before any work
    times = {}
    t0 = time.perf_counter()
    masking = masking_study(bundle, jets, thresholds, replacement)
    times["masking"] = time.perf_counter() - t0
    drop, kept = features_to_drop(masking, retrain_threshold, also_drop)
    t0 = time.perf_counter()
    trained = retrain(bundle, drop, sizes, out, train_data, epochs, force, progress) \
        if retrain_models and sizes else []
    times["retraining"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = bundle.predict(jets)[:, 1]
    rows = [model_row("baseline", bundle, jets, base)]
    for path in [*trained, *compare]:
        other = open_bundle(path, cls=Servable)
        label = "retrained" if path in trained else other.name
        rows.append(model_row(label, other, jets, base))
    times["models"] = time.perf_counter() - t0
    return {"bundle": bundle.name, "n_jets": len(jets), "thresholds": list(thresholds),
            "retrain_threshold": retrain_threshold, "also_dropped": list(also_drop),
            "dropped": drop, "kept_to_fill_a_group": kept, "masking": masking,
            "models": rows, "seconds": times}
