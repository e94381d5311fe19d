"""`servable data generate|inspect`: make jets with Pythia 8 + FastJet, check a jet file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Generate and inspect jet files in the CMS H->bb layout.",
                  no_args_is_help=True)


@app.command()
def generate(
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file to write"),
    signal: int = typer.Option(1000, help="number of H->bb jets"),
    background: int = typer.Option(1000, help="number of QCD jets"),
    seed: int = typer.Option(1, help="random seed (Pythia and smearing)"),
    workers: int = typer.Option(1, help="worker processes, each with its own seeds"),
    split: str = typer.Option("training", help="layout group: training or testing"),
    force: bool = typer.Option(False, help="overwrite an existing output file"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Generate H->bb and QCD jets with Pythia 8 and FastJet into the CMS layout."""
    from servable.cli.common import fail
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
    jets, provenance = run(signal, background, seed=seed, workers=workers, progress=not quiet)
    write_jets(output, jets, split=split, attrs={"provenance": provenance}, overwrite=force)
    typer.echo(format_summary(summarize(output)))
    typer.echo(f"{len(jets)} jets in {provenance['wall_seconds']:.1f} s: "
               f"{provenance['jets_per_second']:.1f} jets/s with {workers} worker(s)")


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="HDF5 file in the CMS H->bb layout"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Validate a jet file and print counts, multiplicities and soft-drop mass quantiles."""
    from servable.data.summary import format_summary, summarize

    summary = summarize(path)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        typer.echo(format_summary(summary))
        prov = summary.get("provenance")
        if isinstance(prov, dict) and "seed" in prov:
            typer.echo(f"  generated with seed {prov['seed']}, {prov['workers']} worker(s)")
