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
    from servable.bundle.train import seed_summary, train_seeds
    from servable.cli import features
    from servable.cli.common import fail
    from servable.cli.explain import _params
    from servable.data.particles import FEATURE_SETS
    from servable.files import write_json
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
    cfg = TrainConfig(model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                      patience=patience, seed=seed_values[0], split=split, fold=fold,
                      folds=folds, hyperparameters={**hyper, **sizes}, feature_set=feature_set,
                      track_features=keep["tracks"], vertex_features=keep["vertices"],
                      drop_features=drop)
    targets = [output if len(seed_values) == 1 else output / f"seed-{s}" for s in seed_values]
    if executor:
        from servable.remote.fanout import train_seeds_on

        results = train_seeds_on(executor, data, cfg, seed_values, targets, force, workers,
                                 report=typer.echo)
    else:
        results = train_seeds(data, cfg, seed_values, targets, force=force,
                              progress=not quiet, report=typer.echo)
    if len(seed_values) > 1:
        summary = seed_summary([s for _, s in results], seed_values, reference_auc)
        write_json(output / "summary.json", summary, force=force)
        typer.echo(format_seed_summary(summary))


def format_seed_summary(summary: dict) -> str:
    """The seeds' statistics as printed by `servable train --seeds`."""
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
