"""`servable data generate|inspect|compare`: make jets with Pythia 8 + FastJet (CMS H->bb or
JetClass layout), check and compare jet files."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Generate (CMS H->bb or JetClass layout), inspect and compare jet "
                  "files.",
                  no_args_is_help=True)


@app.command()
def generate(
    output: Path = typer.Option(..., "-o", "--output",
                                help="file to write: HDF5 (cms) or ROOT (jetclass)"),
    dataset: str = typer.Option("cms", help="cms: H->bb vs QCD in the CMS layout (HDF5); "
                                "jetclass: the ten JetClass classes in the JetClass layout "
                                "(ROOT)"),
    signal: int = typer.Option(1000, help="number of H->bb jets (cms)"),
    background: int = typer.Option(1000, help="number of QCD jets (cms)"),
    classes: str = typer.Option(None, help="comma-separated JetClass classes (jetclass; "
                                "default: all ten)"),
    jets_per_class: int = typer.Option(None, "--jets-per-class",
                                       help="jets of each class (jetclass; default 1000)"),
    seed: int = typer.Option(1, help="random seed (Pythia and smearing)"),
    workers: int = typer.Option(1, help="worker processes, each with its own seeds"),
    split: str = typer.Option("training", help="layout group: training or testing (cms)"),
    pileup: float = typer.Option(0.0, "--pileup", help="mean number of pileup interactions "
                                 "(Poisson, Pythia soft QCD); 0: none (cms)"),
    cms_selection: bool = typer.Option(False, "--cms-selection", help="the IN's selection: "
                                       "250 < pT < 2500 GeV, 40 < m_SD < 200 GeV (cms)"),
    reweight_pt: bool = typer.Option(False, "--reweight-pt", help="write per-jet weights "
                                     "(generator_truth/weight) that give the signal the QCD "
                                     "pT spectrum (cms)"),
    force: bool = typer.Option(False, help="overwrite an existing output file"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Generate jets with Pythia 8 and FastJet: H->bb and QCD in the CMS layout, or the ten
    JetClass classes in the JetClass layout."""
    from servable.cli.common import fail

    if dataset not in ("cms", "jetclass"):
        fail(f"--dataset must be 'cms' or 'jetclass', not {dataset!r}")
    if output.exists() and not force:
        fail(f"{output} exists; choose another name or pass --force")
    if workers < 1:
        fail("--workers must be at least 1")
    if dataset == "jetclass":
        _generate_jetclass(output, classes, jets_per_class, seed, workers, force, quiet,
                           pileup=pileup, cms_selection=cms_selection, reweight_pt=reweight_pt)
        return
    if classes is not None or jets_per_class is not None:
        fail("--classes and --jets-per-class are options of --dataset jetclass")
    from servable.data.generator import GeneratorSettings
    from servable.data.generator import generate as run
    from servable.data.h5io import write_jets
    from servable.data.summary import format_summary, summarize

    if split not in ("training", "testing"):
        fail(f"--split must be 'training' or 'testing', not {split!r}")
    if signal < 0 or background < 0 or signal + background == 0:
        fail("--signal and --background must be >= 0 and not both 0")
    if not 0 <= pileup <= 200:
        fail(f"--pileup must be between 0 and 200, not {pileup}")
    if reweight_pt and (signal == 0 or background == 0):
        fail("--reweight-pt needs both signal and background jets")
    options = {"pileup_mu": pileup, "reweight_pt": reweight_pt}
    settings = (GeneratorSettings.cms(**options) if cms_selection
                else GeneratorSettings(**options))
    jets, provenance = run(signal, background, seed=seed, workers=workers, settings=settings,
                           progress=not quiet)
    write_jets(output, jets, split=split, attrs={"provenance": provenance}, overwrite=force)
    typer.echo(format_summary(summarize(output)))
    typer.echo(f"{len(jets)} jets in {provenance['wall_seconds']:.1f} s: "
               f"{provenance['jets_per_second']:.1f} jets/s with {workers} worker(s)")


def _generate_jetclass(output: Path, classes: str | None, jets_per_class: int | None,
                       seed: int, workers: int, force: bool, quiet: bool, **cms_only) -> None:
    from servable.cli.common import fail
    from servable.data.jetclass_generator import CLASSES

    given = [k.replace("_", "-") for k, v in cms_only.items() if v]
    if given:
        fail(f"--{', --'.join(given)}: options of --dataset cms only")
    if output.suffix.lower() in (".h5", ".hdf5"):
        fail(f"{output}: JetClass files are ROOT files; name the output FILE.root (HDF5 for "
             "the JetClass layout is not supported yet)")
    if output.suffix.lower() != ".root":
        fail(f"{output}: --dataset jetclass writes ROOT files; name the output FILE.root")
    names = CLASSES if classes is None else tuple(c.strip() for c in classes.split(","))
    unknown = [c for c in names if c not in CLASSES]
    if unknown or not names:
        fail(f"unknown class {', '.join(unknown) or '(none given)'} in --classes; choose "
             f"from {', '.join(CLASSES)}")
    if len(set(names)) != len(names):
        fail("--classes names a class twice")
    n = 1000 if jets_per_class is None else jets_per_class
    if n < 1:
        fail(f"--jets-per-class must be at least 1, not {n}")
    from servable.data.jetclass import write_jetclass
    from servable.data.jetclass_generator import generate as run
    from servable.files import check_output

    check_output(output, force=force)  # before the work: a bad output path fails at once
    jets, provenance = run(names, n, seed=seed, workers=workers, progress=not quiet)
    write_jetclass(output, jets, provenance, force=force)
    typer.echo(f"{len(jets)} jets ({n} per class) in {provenance['wall_seconds']:.1f} s with "
               f"{workers} worker(s): {provenance['jets_per_second']:.1f} jets/s; wrote {output}")
    typer.echo(f"{'class':6s} {'events':>7s} {'jets/s/core':>12s}")
    for name, row in provenance["per_class"].items():
        typer.echo(f"{name:6s} {row['events']:7d} {row['jets_per_second_per_core']:12.1f}")


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="HDF5 file in the CMS H->bb layout"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Validate a jet file; print counts, multiplicities, soft-drop mass quantiles and the
    range of every feature, flagging values outside the documented CMS range."""
    from servable.data.summary import feature_ranges, format_ranges, format_summary, summarize
    from servable.files import json_text

    summary = summarize(path)
    summary["features"] = feature_ranges(path)
    if as_json:
        typer.echo(json_text(summary, default=str))
        return
    typer.echo(format_summary(summary))
    prov = summary.get("provenance")
    if isinstance(prov, dict) and "seed" in prov:
        typer.echo(f"  generated with seed {prov['seed']}, {prov['workers']} worker(s)")
    typer.echo(format_ranges(summary["features"]))


@app.command()
def compare(
    a: Path = typer.Argument(..., help="first jet file (e.g. generated)"),
    b: Path = typer.Argument(..., help="second jet file (e.g. CMS open data)"),
    output: Path = typer.Option(Path("compare"), "-o", "--output",
                                help="folder for the figures (PNG and PDF per feature group)"),
    as_json: bool = typer.Option(False, "--json", help="print the distances as JSON"),
    force: bool = typer.Option(False, help="overwrite existing figures"),
) -> None:
    """Per-feature distributions of two files side by side, with Wasserstein and KS distances."""
    from servable.data.compare import compare as run
    from servable.data.compare import format_comparison
    from servable.files import json_text

    rows = run(a, b, output, force=force)
    if as_json:
        typer.echo(json_text(rows))
    else:
        typer.echo(format_comparison(rows))
        typer.echo(f"figures in {output}/compare_<group>.png|pdf")
