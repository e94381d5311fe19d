"""`servable train` and `servable evaluate`."""

from __future__ import annotations

from pathlib import Path

import typer


def _seed_list(seeds: str | None, seed: int) -> list[int]:
    from servable.cli.common import fail

    if not seeds:
        return [seed]
    try:
        values = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        fail(f"--seeds must be a comma-separated list of integers, not {seeds!r}")
    if not values or len(set(values)) != len(values):
        fail("--seeds must list distinct integers")
    return values


def train(
    model: str = typer.Option("in", help="in, mlp, bdt, part or particlenet"),
    data: list[Path] = typer.Option(..., "--data", help="training file(s): HDF5 (CMS or "
                                    "JetClass layout) or JetClass ROOT; repeat --data"),
    output: Path = typer.Option(..., "-o", "--output", help="servable directory to write"),
    epochs: int = typer.Option(30, help="maximum epochs (boosting rounds for the BDT)"),
    batch_size: int = typer.Option(128, help="minibatch size"),
    lr: float = typer.Option(1e-3, help="Adam learning rate"),
    patience: int = typer.Option(8, help="early stopping patience on validation loss"),
    seed: int = typer.Option(1, help="random seed"),
    seeds: str = typer.Option(None, help="train one model per seed, e.g. 1,2,3"),
    split: str = typer.Option("random", help="random (jets), files, or kfold (by file)"),
    fold: int = typer.Option(0, help="validation fold for --split kfold"),
    folds: int = typer.Option(5, help="number of folds for --split kfold"),
    reference_auc: float = typer.Option(None, help="compare the seeds' AUCs with this value"),
    force: bool = typer.Option(False, help="overwrite a non-empty output directory"),
    quiet: bool = typer.Option(False, help="no progress bars"),
    executor: str = typer.Option(None, help="run the seeds in parallel: local, "
                                            "parsl:CONFIG.py or a Globus Compute endpoint "
                                            "UUID"),
    workers: int = typer.Option(None, min=1, help="parallel trainings with --executor local"),
    drop_features: str = typer.Option(None, help="leave out these features, e.g. "
                                                 "track_quality,sv_ptrel (ablation)"),
    track_features: str = typer.Option(None, help="train on these track features only"),
    vertex_features: str = typer.Option(None, help="train on these SV features only"),
    hidden: str = typer.Option(None, help="hidden layer width (in: 60; mlp: widths 128,64)"),
    De: str = typer.Option(None, "--De", help="IN: edge representation size (20)"),
    Do: str = typer.Option(None, "--Do", help="IN: node representation size (24)"),
    feature_set: str = typer.Option("full", help="JetClass particle features: kin, kinpid or "
                                                 "full (ignored on CMS-layout data)"),
    param: list[str] = typer.Option(None, help="hyperparameter key=value (repeatable, JSON "
                                               "values), e.g. num_layers=2, "
                                               "embed_dims=[32,32]"),
) -> None:
    """Train a tagger on labelled files of one task and write a servable directory; the
    classes come from the data (two for CMS H->bb, ten for JetClass)."""
    from servable.cli import features
    from servable.cli.common import fail
    from servable.cli.explain import _params
    from servable.data.particles import FEATURE_SETS
    from servable.models.taggers import TAGGERS
    from servable.models.training import TrainConfig

    if model not in TAGGERS:
        fail(f"--model must be one of {', '.join(sorted(TAGGERS))}, not {model!r}")
    if feature_set not in FEATURE_SETS:
        fail(f"--feature-set must be one of {', '.join(FEATURE_SETS)}, not {feature_set!r}")
    hyper = _params(param)
    unknown = sorted(set(hyper) - set(TAGGERS[model].defaults))
    if unknown:
        fail(f"--param: the {model} takes {', '.join(TAGGERS[model].defaults)}; not "
             f"{', '.join(unknown)}")
    if output.exists() and any(output.iterdir()) and not force:
        fail(f"{output} exists and is not empty; choose another directory or pass --force")
    seed_values = _seed_list(seeds, seed)
    sizes = features.sizes(model, {"hidden": hidden, "De": De, "Do": Do})
    keep = {"tracks": features.names(track_features, "track-features"),
            "vertices": features.names(vertex_features, "vertex-features")}
    drop = features.names(drop_features, "drop-features") or []
    features.check_features(data[0], model, feature_set, keep, drop)
    configs = [TrainConfig(model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                           patience=patience, seed=s, split=split, fold=fold, folds=folds,
                           hyperparameters={**hyper, **sizes}, feature_set=feature_set,
                           track_features=keep["tracks"], vertex_features=keep["vertices"],
                           drop_features=drop)
               for s in seed_values]
    targets = [output if len(seed_values) == 1 else output / f"seed-{s}" for s in seed_values]
    if executor:
        results = train_fanned_out(executor, workers, data, configs, targets, force)
    else:
        results = [train_one(data, cfg, target, force, quiet)
                   for cfg, target in zip(configs, targets, strict=True)]
    if len(seed_values) > 1:
        summary = seed_summary(results, seed_values, reference_auc)
        from servable.files import write_json

        write_json(output / "summary.json", summary, force=force)
        typer.echo(format_seed_summary(summary))


def train_one(data, cfg, target: Path, force: bool, quiet: bool) -> dict:
    from servable.bundle.train import train_bundle

    bundle, summary = train_bundle(data, cfg, target, force=force, progress=not quiet)
    typer.echo(_trained_line(bundle, cfg.model, cfg.seed, summary))
    return summary


def train_fanned_out(spec: str, workers, data, configs, targets, force: bool) -> list[dict]:
    """One task per seed on the chosen executor; bundles land where they would locally."""
    import dataclasses
    import os

    from servable.files import resolved
    from servable.remote import executor, train

    parallel = min(len(configs), workers or os.cpu_count() or 1)
    threads = max(1, (os.cpu_count() or 1) // parallel)
    runner = executor(spec, workers=parallel)
    try:
        futures = [runner.submit(train, {
            "data": [str(resolved(p)) for p in data], "config": dataclasses.asdict(cfg),
            "out": str(resolved(target)), "force": force, "threads": threads})
            for cfg, target in zip(configs, targets, strict=True)]
        summaries = []
        for cfg, future in zip(configs, futures, strict=True):
            result = future.result()
            typer.echo(_trained_line(result["bundle"], cfg.model, cfg.seed, result["summary"]))
            summaries.append(result["summary"])
    finally:
        runner.close()
    return summaries


def _trained_line(bundle, model: str, seed: int, summary: dict) -> str:
    from servable.models.metrics import auc_key

    m = summary["validation_metrics"]
    seconds = summary["history"].get("epoch_seconds") or []
    per_epoch = f", {sum(seconds) / len(seconds):.1f} s/epoch" if seconds else ""
    auc = auc_key(m)
    label = "AUC" if auc == "roc_auc" else f"macro AUC ({len(m['class_names'])} classes)"
    return (f"{bundle}: {model} seed {seed}: validation {label} {m[auc]:.4f}, "
            f"accuracy {m['accuracy']:.4f}, best epoch {summary['history']['best_epoch']}"
            f"{per_epoch}")


def seed_summary(summaries: list[dict], seeds: list[int], reference_auc: float | None) -> dict:
    """Mean and sample standard deviation over the seeds of every headline metric (two
    classes: accuracy, AUC, rejections at 50% and 30%; more: accuracy, macro AUC, rejection
    per class); `reference_auc` is compared with the AUC (the macro AUC for more classes)."""
    import numpy as np

    from servable.models.metrics import auc_key, headline, reference_tail

    rows = [headline(r["validation_metrics"]) for r in summaries]
    values = {k: np.array([row[k] for row in rows], dtype=float) for k in rows[0]}
    summary = {"seeds": seeds, "metrics": {
        k: {"mean": float(v.mean()), "std": float(v.std(ddof=1)), "values": v.tolist()}
        for k, v in values.items()}}
    if reference_auc is not None:
        # one-sided: how likely a seed of this training reaches the reference AUC or more
        summary["reference_auc"] = reference_tail(
            reference_auc, values[auc_key(summaries[0]["validation_metrics"])])
    return summary


def format_seed_summary(summary: dict) -> str:
    lines = [f"{len(summary['seeds'])} seeds ({', '.join(map(str, summary['seeds']))}):"]
    for k, v in summary["metrics"].items():
        lines.append(f"  {k:13s} {v['mean']:.4f} +- {v['std']:.4f}")
    if "reference_auc" in summary:
        r = summary["reference_auc"]
        lines.append(f"  reference AUC {r['value']:.4f}: one-sided p-value "
                     f"{r['p_value_one_sided']:.3g}")
    return "\n".join(lines)


def evaluate(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    data: list[Path] = typer.Option(..., "--data", help="labelled file(s); repeat --data"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    plot: Path = typer.Option(None, help="write the ROC curve here (PNG or PDF)"),
    force: bool = typer.Option(False, help="overwrite an existing --plot file"),
) -> None:
    """Accuracy, ROC AUC and background rejection at 50% and 30% signal efficiency; for more
    than two classes (JetClass) the Particle Transformer paper's table: accuracy, macro
    one-vs-rest AUC and per class the QCD rejection at its working point.

    With --json, a rejection is null when no background jet passes the cut (infinite)."""
    from servable.files import check_output, json_text

    if plot is not None:  # before the evaluation, not after it
        check_output(plot, force=force, inputs=[bundle, *data])
    from servable import load
    from servable.models.metrics import metrics_table, plot_roc, roc_curves
    from servable.models.training import evaluate as run

    b = load(bundle)
    metrics, y, p = run(b.tagger, data)
    binary = p.shape[1] == 2
    if plot is not None:
        plot_roc(roc_curves(y, p, b.tagger.config["class_names"], b.name), plot, force=force)
    if as_json:
        typer.echo(json_text(metrics, indent=None))
    elif binary:
        typer.echo(f"{b.name} on {metrics['n_jets']} jets: accuracy {metrics['accuracy']:.4f}, "
                   f"ROC AUC {metrics['roc_auc']:.4f}, rejection at 50% "
                   f"{metrics['rejection_50']:.1f}, at 30% {metrics['rejection_30']:.1f}")
    else:
        typer.echo(f"{b.name} on {metrics['n_jets']} jets, {len(metrics['class_names'])} "
                   "classes (rejection of QCD, 1/eps_QCD at the signal efficiency shown):")
        typer.echo(metrics_table(metrics, b.name))
