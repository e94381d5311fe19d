"""`servable ablate` and `servable reproduce`: ablation by masking and retraining, and the
FAIR AI paper's IN study regenerated into one report."""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import typer


def _new_output(out: Path, force: bool) -> None:
    from servable.cli.common import fail

    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        fail(f"{out} exists; choose another directory or pass --force")


def _parsed(parse, text: str | None, flag: str | None = None):
    """`parse(text)` (None when the option was not given), its error prefixed by `flag` (none
    where a settings object words the error, as `reproduce`'s does)."""
    from servable.cli.common import fail
    from servable.errors import ServableError

    if text is None:
        return None
    try:
        return parse(text)
    except ServableError as exc:
        fail(f"{flag}: {exc}" if flag else str(exc))


def ablate(
    bundle: str = typer.Argument(..., help="IN bundle: directory, name, DOI or record URL"),
    data: Path = typer.Option(..., "--data", help="labelled jets to measure on"),
    output: Path = typer.Option(..., "-o", "--output", help="directory to write"),
    thresholds: str = typer.Option("0.001,0.005,0.01,0.05,1",
                                   help="dAUC thresholds in percent for cumulative masking"),
    sizes: str = typer.Option("60/20/24,32/16/16,32/8/8,16/8/8",
                              help="hidden/De/Do of each retrained IN"),
    retrain_threshold: float = typer.Option(0.01, help="retrain without the features whose "
                                                       "dAUC (percent) is below this"),
    drop_features: str = typer.Option(None, help="leave these out of the retrained models "
                                                 "too, e.g. track_quality,sv_ptrel"),
    train_data: list[Path] = typer.Option(None, "--train-data", help="training file(s) "
                                          "(default: those the bundle records)"),
    epochs: int = typer.Option(None, min=1, help="epochs of each retraining (default: the "
                                                 "bundle's)"),
    compare: list[str] = typer.Option(None, "--compare", help="already trained bundles to "
                                      "compare with the baseline as well (repeat)"),
    no_retrain: bool = typer.Option(False, "--no-retrain", help="masking and --compare only"),
    replacement: str = typer.Option("zero", help="masked value: zero (the paper) or mean"),
    n_jets: int = typer.Option(None, min=1, help="use the first N jets of --data"),
    force: bool = typer.Option(False, help="write into an existing, non-empty directory"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Per-feature masking (Figure 5), cumulative masking by threshold (Table 9), retraining
    without the features below a threshold at each size (Table 10) and NAP diagrams (Figure 9)."""
    from servable.cli import features
    from servable.cli.common import fail
    from servable.study.ablation import parse_sizes, parse_thresholds

    _new_output(output, force)
    threshold_values = _parsed(parse_thresholds, thresholds, "--thresholds")
    size_values = [] if no_retrain else _parsed(parse_sizes, sizes, "--sizes")
    if not (math.isfinite(retrain_threshold) and retrain_threshold > 0):
        fail(f"--retrain-threshold must be a positive percentage, not {retrain_threshold}")
    if replacement not in ("zero", "mean"):
        fail(f"--replacement must be zero or mean, not {replacement!r}")
    also = features.names(drop_features, "drop-features") or []
    from servable import load
    from servable.data.io import read_jets
    from servable.study.ablation import ablation
    from servable.study.report import write_ablation

    b = load(bundle)
    if b.kind != "in":
        fail(f"ablation by retraining at hidden/De/Do sizes applies to the IN, not to a "
             f"{b.kind} model")
    jets = read_jets(data, 0, n_jets)
    result = ablation(b, jets, output, thresholds=threshold_values, sizes=size_values,
                      retrain_threshold=retrain_threshold, also_drop=also,
                      train_data=train_data or None, epochs=epochs, compare=compare or (),
                      retrain_models=not no_retrain, replacement=replacement, force=force,
                      progress=not quiet)
    written = write_ablation(result, output, force)
    for row in result["models"]:
        typer.echo(f"{row['model']:>10s} {row['size']:>9s}: {row['parameters']:6d} parameters, "
                   f"AUC {row['roc_auc']:.4f}, fidelity {row['fidelity']:.4f}, sparsity "
                   + ", ".join(f"{c} {v:.2f}" for c, v in row["sparsity"].items()))
    typer.echo(f"{written[1]}: Tables 9 and 10, figures in {output / 'figures'}")


def reproduce(
    out: Path = typer.Option(..., "--out", "-o", help="directory for the report"),
    quick: bool = typer.Option(False, "--quick", help="a small run: 3000 training jets, 2 "
                               "seeds, 2 epochs, 2 k-fold folds, 2 sizes (minutes)"),
    jets: int = typer.Option(None, help="training jets, at least 10 (default 6000)"),
    test_jets: int = typer.Option(None, help="test jets, at least 10 (default 3000)"),
    seeds: int = typer.Option(None, help="trainings with different seeds, at least 2 "
                                         "(default 10)"),
    epochs: int = typer.Option(None, help="cap on the epochs per training, at least 1 "
                                          "(default 300: early stopping ends training)"),
    patience: int = typer.Option(None, help="early stopping: epochs without a better "
                                            "validation loss, at least 1 (default 8)"),
    folds: int = typer.Option(None, help="k-fold folds of the training files (Table 5), at "
                                         "least 2 and at most the files (default 5 of 10)"),
    sizes: str = typer.Option(None, help="hidden/De/Do of the retrained models (default "
                                         "60/20/24,32/16/16,32/8/8,16/8/8)"),
    thresholds: str = typer.Option(None, help="dAUC thresholds in percent (default "
                                              "0.001,0.005,0.01,0.05,1)"),
    explain_jets: int = typer.Option(None, help="test jets explained, at least 10 (default "
                                                "2000)"),
    train_data: Path = typer.Option(None, help="reuse these training jets (no generation)"),
    test_data: Path = typer.Option(None, help="reuse these test jets (no generation)"),
    published: Path = typer.Option(None, help="folder of upstream IN checkpoints with their "
                                              "metadata (default: the repository's fixtures)"),
    reference_auc: float = typer.Option(None, help="Table 4's reference AUC (default: the "
                                                   "published baseline's on the test jets)"),
    workers: int = typer.Option(None, help="generator processes, at least 1 (default 2)"),
    threads: int = typer.Option(None, help="torch threads, at least 1 (default: the cores "
                                           "the machine's load leaves free)"),
    force: bool = typer.Option(False, help="write into an existing, non-empty directory"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Generate jets, train, explain and ablate the IN, and write report.md with the FAIR AI
    paper's Tables 4, 5, 8, 9, 10 and Figures 4-9 beside ours, each finding with a verdict."""
    import dataclasses

    from servable.study.ablation import parse_sizes, parse_thresholds
    from servable.study.reproduce import QUICK, Settings
    from servable.study.reproduce import reproduce as run

    _new_output(out, force)
    # the counts, files and folders are checked by Settings (the API refuses what the CLI
    # refuses, with the same message)
    given = {"jets": jets, "test_jets": test_jets, "seeds": seeds, "epochs": epochs,
             "patience": patience, "folds": folds,
             "explain_jets": explain_jets, "workers": workers, "threads": threads,
             "train_data": train_data, "test_data": test_data, "published": published,
             "reference_auc": reference_auc,
             "sizes": _parsed(lambda t: tuple(parse_sizes(t)), sizes),
             "thresholds": _parsed(lambda t: tuple(parse_thresholds(t)), thresholds)}
    # what is given overrides --quick's counts (--quick --n-jets 100: 100 jets)
    settings = dataclasses.replace(Settings(), **{**(QUICK if quick else {}), **{
        k: v for k, v in given.items() if v is not None}})
    command = "servable " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results = run(out, settings, force=force, progress=not quiet, command=command)
    typer.echo(f"{out / 'report.md'}: written in {results['seconds']['total'] / 60:.1f} min")


def bundle_refs(given: list[str], more: list[str]) -> list[str]:
    """The bundles of `xai-benchmark`: the values of each --bundles, the arguments after one
    (`--bundles A B C`: click gives B and C as extra arguments), and, as older runs wrote them,
    several in one quoted value separated by spaces (unless that value names a folder)."""
    from servable.cli.common import fail

    refs = []
    for ref in [*given, *more]:
        refs += [ref] if Path(ref).is_dir() else ref.split()
    if not refs:
        fail("--bundles names no bundle; give at least one (directory, name or DOI)")
    return refs


def xai_benchmark(
    ctx: typer.Context,
    bundles: list[str] = typer.Option(..., "--bundles", help="bundles to measure: several "
                                      "after one --bundles (--bundles A B C), or --bundles "
                                      "repeated; directory, name or DOI; bundles of one kind "
                                      "with the same inputs are training seeds of one model"),
    data: Path = typer.Option(..., "--data", help="labelled jets (HDF5 or JetClass ROOT)"),
    output: Path = typer.Option(..., "-o", "--output", help="report directory to write"),
    methods: str = typer.Option(None, help="comma-separated methods (default: those of each "
                                           "model kind, see docs/xai-benchmark.md)"),
    seeds: list[Path] = typer.Option(None, "--seeds", help="folder of more bundles trained "
                                     "with other seeds (each subfolder a bundle; repeat)"),
    train_seeds: int = typer.Option(None, min=2, help="train each model again until it has K "
                                    "seeds (its recorded training configuration and files)"),
    train_epochs: int = typer.Option(None, min=1, help="epochs of those trainings (default: "
                                     "the bundle's)"),
    bootstraps: int = typer.Option(None, help="bootstrap resamples of the jets, at least 2 "
                                              "(default 20)"),
    n_jets: int = typer.Option(None, help="jets measured, at least 20 (default 2000)"),
    target: str = typer.Option("1", help="class explained: index or name (default 1: Hbb); "
                               "several, comma-separated (Hbb,Tbqq,Wqq,QCD): one report per "
                               "class in <output>/<class>/ and a summary over them"),
    quick: bool = typer.Option(False, "--quick", help="300 jets, 5 bootstraps, cheaper methods "
                               "and curves (minutes)"),
    curve_replacement: str = typer.Option(None, help="what a removed feature takes in the "
                                          "deletion/insertion curves: marginal (default: "
                                          "draws from its own values), mean or zero"),
    curve_fine: int = typer.Option(None, help="curves step feature by feature up to this "
                                   "many removed features (default 10; the top-K verdict's "
                                   "resolution)"),
    force: bool = typer.Option(False, help="write into an existing, non-empty directory"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Do the explanation methods agree, are they stable, faithful, and do they mean physics?
    Writes report.md, report.html, results.json and figures/ (see docs/xai-benchmark.md)."""
    import dataclasses
    import time

    from servable import load
    from servable.cli.common import fail, target_option
    from servable.data.io import read_jets
    from servable.files import regular_file
    from servable.study.xai import verdicts as V
    from servable.study.xai_benchmark import QUICK, Settings, benchmark, check_models
    from servable.study.xai_report import write_benchmark

    _new_output(output, force)
    regular_file(data)
    chosen = None
    if methods:
        chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    # the counts and methods are checked by Settings (the API refuses what the CLI refuses)
    given = {"bootstraps": bootstraps, "n_jets": n_jets, "methods": chosen,
             "curve_replacement": curve_replacement, "curve_fine": curve_fine}
    # what is given overrides --quick's counts (--quick --n-jets 100: 100 jets)
    settings = dataclasses.replace(Settings(), **{**(QUICK if quick else {}), **{
        k: v for k, v in given.items() if v is not None}})
    for folder in seeds or ():
        if not folder.is_dir():
            fail(f"--seeds {folder}: not a folder of bundles")
    loaded = [load(r) for r in bundle_refs(bundles, ctx.args)]
    for folder in seeds or ():
        loaded += [load(str(p)) for p in sorted(folder.iterdir())
                   if (p / "servable.yaml").is_file()]
    models = check_models(loaded)
    jets = read_jets(data, 0, settings.n_jets)
    targets = [target_option(t.strip(), jets.class_names) for t in target.split(",")
               if t.strip()] or [target_option(target, jets.class_names)]
    if len(set(targets)) < len(targets):
        fail(f"--target {target}: a class is named twice")
    t0 = time.perf_counter()
    if train_seeds:
        from servable.study.xai_benchmark import train_more_seeds

        models = {label: train_more_seeds(bs, train_seeds, output / "seeds" / label,
                                          train_epochs, force, not quiet)
                  for label, bs in models.items()}
    training = time.perf_counter() - t0
    command = "servable " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    per_class, memo = {}, {}
    for index in targets:
        name = jets.class_names[index]
        results = benchmark(models, jets, dataclasses.replace(settings, target=index),
                            progress=not quiet, memo=memo)
        if train_seeds and index == targets[0]:  # the seeds are trained once, for all
            results["seconds"]["training seeds"] = training
            results["seconds"]["total"] += training
        results["command"] = command
        where = output if len(targets) == 1 else output / name
        write_benchmark(results, where, force)
        per_class[name] = results
        for label, model in results["models"].items():
            use = model["verdicts"]["use"]
            typer.echo(f"{name}, {label}: " + "; ".join(f"{q} -> {V.cell_text(c)}"
                                                      for q, c in use.items()))
    if len(targets) > 1:
        from servable.study.xai_report import write_class_summary

        write_class_summary(per_class, output, command, time.perf_counter() - t0)
    typer.echo(f"{output / 'report.md'}: written in {time.perf_counter() - t0:.0f} s")


def part_transparency(
    bundle: str = typer.Argument(..., help="a ParticleTransformer bundle (directory, name or DOI)"),
    data: Path = typer.Option(..., "--data", help="labelled jets with generator truth "
                              "(JetClass-like ROOT or HDF5)"),
    output: Path = typer.Option(..., "-o", "--output", help="report directory to write"),
    train_data: Path = typer.Option(None, "--train-data", help="jets for the short fine-tune "
                                    "after ablation (default: no fine-tune)"),
    seed: int = typer.Option(1, help="seed of the random-init control, resamples and folds"),
    force: bool = typer.Option(False, help="write into an existing, non-empty directory"),
) -> None:
    """Where a ParT encodes physics (linear probes beside a random-init network and shuffled
    targets), which heads attend to the decay products, and what ablating heads and blocks
    does per class. Writes results.json and report.md (docs/results/part-transparency/)."""
    import time

    from servable import load
    from servable.data.io import read_jets
    from servable.files import regular_file
    from servable.study.part_transparency import run

    _new_output(output, force)
    for f in (data, train_data):
        if f is not None:
            regular_file(f)
    t0 = time.perf_counter()
    run(load(bundle), read_jets(data), output,
        read_jets(train_data) if train_data is not None else None, seed=seed, force=force)
    typer.echo(f"{output / 'report.md'}: written in {time.perf_counter() - t0:.0f} s")
