"""Train a tagger and write its bundle with the training plots (one run of `servable train`),
or one bundle per seed with their statistics."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from servable.errors import ServableError


def train_bundle(data, cfg, target: Path, force: bool = False,
                 progress: bool = True) -> tuple[Path, dict]:
    """Train with `cfg` (a TrainConfig) on the `data` files; returns (bundle, training summary).
    The bundle is named after the task its data define and the model (`hbb-in`,
    `jetclass-part`, ...), with the feature set where it is not the full one
    (`jetclass-part-kin`)."""
    from servable.bundle.bundle import save_bundle, task_of
    from servable.models.metrics import plot_roc, roc_curves
    from servable.models.training import plot_history
    from servable.models.training import train as run

    tagger, summary, (val_labels, val_probs) = run(data, cfg, progress=progress)
    slug, task = task_of(tagger.config)
    classes = tagger.config["class_names"]
    with tempfile.TemporaryDirectory() as tmp:  # plots join the bundle's checksummed files
        plot_history(summary["history"], Path(tmp) / "loss.png", f"{cfg.model} seed {cfg.seed}")
        plot_roc(roc_curves(val_labels, val_probs, classes, cfg.model), Path(tmp) / "roc.png")
        plots = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
    bundle = save_bundle(
        tagger, target, name=f"{slug}-{cfg.model}"
        + ("" if cfg.feature_set == "full" else f"-{cfg.feature_set}"), provenance={
            "source": "servable train", "seed": cfg.seed, "split": cfg.split,
            "training": summary}, metrics=summary["validation_metrics"], overwrite=force,
        extra_files=plots,
        description=f"{cfg.model.upper()} jet tagger for {task.split(': ', 1)[1]}, trained "
                    "with servable")
    return bundle, summary


def train_seeds(data, cfg, seeds: Sequence[int], targets: Sequence[Path], force: bool = False,
                progress: bool = True,
                report: Callable[[str], None] | None = None) -> list[tuple[Path, dict]]:
    """One bundle per seed, trained one after the other with `cfg` (a TrainConfig) but for
    its seed: the one home of repeated trainings (`servable train --seeds`, the paper's Table
    4, the benchmark's extra seeds). `report` gets one line per trained bundle.

    Returns
    -------
    list of (bundle path, training summary), in seed order.
    """
    if len(seeds) != len(targets) or len(set(seeds)) != len(seeds):
        raise ServableError("give one output folder per seed, and each seed once")
    out = []
    for seed, target in zip(seeds, targets, strict=True):
        run = dataclasses.replace(cfg, seed=seed)
        path, summary = train_bundle(data, run, target, force=force, progress=progress)
        if report:
            report(trained_line(path, run.model, seed, summary))
        out.append((path, summary))
    return out


def trained_line(bundle, model: str, seed: int, summary: dict) -> str:
    """One line on a trained bundle: its validation AUC (or macro AUC), accuracy, best epoch
    and time per epoch."""
    from servable.models.metrics import auc_key

    m = summary["validation_metrics"]
    seconds = summary["history"].get("epoch_seconds") or []
    per_epoch = f", {sum(seconds) / len(seconds):.1f} s/epoch" if seconds else ""
    auc = auc_key(m)
    label = "AUC" if auc == "roc_auc" else f"macro AUC ({len(m['class_names'])} classes)"
    return (f"{bundle}: {model} seed {seed}: validation {label} {m[auc]:.4f}, "
            f"accuracy {m['accuracy']:.4f}, best epoch {summary['history']['best_epoch']}"
            f"{per_epoch}")


def seed_summary(summaries: list[dict], seeds: list[int],
                 reference_auc: float | None = None) -> dict:
    """Mean and sample standard deviation over the seeds of every headline metric (two
    classes: accuracy, AUC, rejections at 50% and 30%; more: accuracy, macro AUC, rejection
    per class); `reference_auc` is compared with the AUC (the macro AUC for more classes):
    its one-sided p-value under the seeds' distribution."""
    from servable.models.metrics import auc_key, headline, reference_tail, seed_statistics

    metrics = seed_statistics([headline(r["validation_metrics"]) for r in summaries])
    summary = {"seeds": list(seeds), "metrics": metrics}
    if reference_auc is not None:
        key = auc_key(summaries[0]["validation_metrics"])
        summary["reference_auc"] = reference_tail(reference_auc, metrics[key]["values"])
    return summary
