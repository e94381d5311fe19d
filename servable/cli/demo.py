"""`servable demo`: the README's main job on its embedded default (no GPU, no network)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    output: Path = typer.Option(Path("demo-output"), "-o", "--output", help="folder for results"),
    signal: int = typer.Option(600, min=30, help="H->bb jets to generate"),
    background: int = typer.Option(600, min=30, help="QCD jets to generate"),
    seed: int = typer.Option(1, help="random seed"),
    workers: int = typer.Option(2, min=1, help="generator processes"),
    epochs: int = typer.Option(4, min=1, help="IN training epochs"),
) -> None:
    """Generate jets, train the IN, bundle it, predict (torch, ONNX) and explain it; a
    second run replaces the first's files."""
    from servable.remote.demo import DemoSettings, run_demo

    settings = DemoSettings(signal=signal, background=background, seed=seed, workers=workers,
                            epochs=epochs)
    run_demo(output, settings, report=typer.echo)


def selftest(
    output: Path = typer.Option(None, "-o", "--output", help="keep the bundle and files here "
                                                             "(default: a temporary folder)"),
) -> None:
    """Smoke test of an installation (containers, endpoints): an untrained IN bundle is
    written, verified and run on synthetic jets with PyTorch and with ONNX Runtime (where
    ONNX Runtime is not installed: the IN's dense formulation in float64)."""
    from servable.bundle.selftest import ONNX
    from servable.bundle.selftest import selftest as run

    result = run(output)
    line = f"selftest ok: {result['n_jets']} jets, torch and "
    if result["comparison"] == ONNX:
        typer.echo(f"{line}onnx agree to {result['max_dp']:.1e}")
    else:
        typer.echo(f"{line}the float64 dense reference agree to {result['max_dp']:.1e} "
                   "(ONNX Runtime is not installed)")
