"""`servable data generate|inspect|compare`: make jets with Pythia 8 + FastJet, check and
compare jet files."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Generate, inspect and compare jet files in the CMS H->bb layout.",
                  no_args_is_help=True)


@app.command()
def generate(
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file to write"),
    signal: int = typer.Option(1000, help="number of H->bb jets"),
    background: int = typer.Option(1000, help="number of QCD jets"),
    seed: int = typer.Option(1, help="random seed (Pythia and smearing)"),
    workers: int = typer.Option(1, help="worker processes, each with its own seeds"),
    split: str = typer.Option("training", help="layout group: training or testing"),
    pileup: float = typer.Option(0.0, "--pileup", help="mean number of pileup interactions "
                                 "(Poisson, Pythia soft QCD); 0: none"),
    cms_selection: bool = typer.Option(False, "--cms-selection", help="the IN's selection: "
                                       "250 < pT < 2500 GeV, 40 < m_SD < 200 GeV"),
    reweight_pt: bool = typer.Option(False, "--reweight-pt", help="write per-jet weights "
                                     "(generator_truth/weight) that give the signal the QCD "
                                     "pT spectrum"),
    force: bool = typer.Option(False, help="overwrite an existing output file"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Generate H->bb and QCD jets with Pythia 8 and FastJet into the CMS layout."""
    from servable.cli.common import fail
    from servable.data.generator import GeneratorSettings
    from servable.data.generator import generate as run
    from servable.data.h5io import write_jets
    from servable.data.summary import format_summary, summarize

    if output.exists() and not force:
        fail(f"{output} exists; choose another name or pass --force")
    if split not in ("training", "testing"):
        fail(f"--split must be 'training' or 'testing', not {split!r}")
    if signal < 0 or background < 0 or signal + background == 0:
        fail("--signal and --background must be >= 0 and not both 0")
    if workers < 1:
        fail("--workers must be at least 1")
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
