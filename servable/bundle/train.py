"""Train a tagger and write its bundle with the training plots (one run of `servable train`)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def train_bundle(data, cfg, target: Path, force: bool = False,
                 progress: bool = True) -> tuple[Path, dict]:
    """Train with `cfg` (a TrainConfig) on the `data` files; returns (bundle, training summary).
    The bundle is named after the task its data define (`hbb-in`, `jetclass-part`, ...)."""
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
        tagger, target, name=f"{slug}-{cfg.model}", provenance={
            "source": "servable train", "seed": cfg.seed, "split": cfg.split,
            "training": summary}, metrics=summary["validation_metrics"], overwrite=force,
        extra_files=plots,
        description=f"{cfg.model.upper()} jet tagger for {task.split(': ', 1)[1]}, trained "
                    "with servable")
    return bundle, summary
