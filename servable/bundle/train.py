"""Train a tagger and write its bundle with the training plots (one run of `servable train`)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def train_bundle(data, cfg, target: Path, force: bool = False,
                 progress: bool = True) -> tuple[Path, dict]:
    """Train with `cfg` (a TrainConfig) on the `data` files; returns (bundle, training summary)."""
    from servable.bundle.bundle import save_bundle
    from servable.models.metrics import plot_roc
    from servable.models.training import plot_history
    from servable.models.training import train as run

    tagger, summary, (val_labels, val_scores) = run(data, cfg, progress=progress)
    with tempfile.TemporaryDirectory() as tmp:  # plots join the bundle's checksummed files
        plot_history(summary["history"], Path(tmp) / "loss.png", f"{cfg.model} seed {cfg.seed}")
        plot_roc({cfg.model: (val_labels, val_scores)}, Path(tmp) / "roc.png")
        plots = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
    bundle = save_bundle(
        tagger, target, name=f"hbb-{cfg.model}", provenance={
            "source": "servable train", "seed": cfg.seed, "split": cfg.split,
            "training": summary}, metrics=summary["validation_metrics"], overwrite=force,
        extra_files=plots,
        description=f"{cfg.model.upper()} jet tagger for H->bb vs QCD trained with servable")
    return bundle, summary
