"""`servable demo`: the README's main job on its embedded default (no GPU, no network)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    output: Path = typer.Option(Path("demo-output"), "-o", "--output", help="folder for results"),
    signal: int = typer.Option(500, help="H->bb jets to generate"),
    background: int = typer.Option(500, help="QCD jets to generate"),
    seed: int = typer.Option(1, help="random seed"),
    workers: int = typer.Option(2, help="generator processes"),
) -> None:
    """Generate a small jet sample with Pythia 8 + FastJet and summarise it."""
    from servable.data.generator import generate
    from servable.data.h5io import write_jets
    from servable.data.summary import format_summary, summarize

    output.mkdir(parents=True, exist_ok=True)
    jets_file = output / "jets.h5"
    typer.echo(f"[1/1] generating {signal} H->bb + {background} QCD jets -> {jets_file}")
    jets, provenance = generate(signal, background, seed=seed, workers=workers)
    write_jets(jets_file, jets, attrs={"provenance": provenance}, overwrite=True)
    typer.echo(format_summary(summarize(jets_file)))
    typer.echo(f"generated at {provenance['jets_per_second']:.1f} jets/s with {workers} worker(s)")
