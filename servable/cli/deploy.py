"""`servable export cmssw|triton` and `servable bundle import-onnx`: where CMS runs taggers."""

from __future__ import annotations

from pathlib import Path

import typer

export_app = typer.Typer(help="Export a bundle to where experiments run taggers: CMSSW "
                              "(ONNX + preprocess.json) and Triton model repositories.",
                         no_args_is_help=True)


@export_app.command("cmssw")
def cmssw(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for model.onnx and "
                                                            "preprocess.json"),
    force: bool = typer.Option(False, help="overwrite existing files"),
) -> None:
    """model.onnx on standardised inputs plus weaver's preprocess.json, as CMSSW's ONNX
    taggers read them (checked against the bundle before writing)."""
    from servable import load
    from servable.bundle.deploy import export_cmssw

    paths = export_cmssw(load(bundle), output, force=force)
    typer.echo(f"{output}: {', '.join(p.name for p in paths)} written (CMSSW / weaver "
               "format; the pair reproduces the bundle)")


@export_app.command("triton")
def triton(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    output: Path = typer.Option(..., "-o", "--output", help="Triton model repository"),
    name: str = typer.Option(None, help="model name (default: the bundle's name)"),
    max_batch_size: int = typer.Option(256, min=1, help="Triton's max_batch_size"),
    cmssw_inputs: bool = typer.Option(False, "--cmssw-inputs", help="serve the CMSSW "
                                      "export (standardised inputs, as SONIC sends them) "
                                      "instead of the bundle's model.onnx (raw features)"),
    force: bool = typer.Option(False, help="overwrite existing files"),
) -> None:
    """A Triton model repository: NAME/config.pbtxt, NAME/1/model.onnx, NAME/labels.txt."""
    from servable import load
    from servable.bundle.deploy import export_triton

    paths = export_triton(load(bundle), output, name=name, max_batch_size=max_batch_size,
                          cmssw_inputs=cmssw_inputs, force=force)
    typer.echo(f"{paths[0].parent}: Triton model ({', '.join(p.name for p in paths)})")


def import_onnx(
    model: Path = typer.Argument(..., help="model.onnx exported by weaver or for CMSSW"),
    preprocess: Path = typer.Option(..., "--preprocess", help="its preprocess.json"),
    output: Path = typer.Option(..., "-o", "--output", help="bundle directory to write"),
    license: str = typer.Option(..., "--license", help="the model's SPDX licence "
                                "identifier (e.g. MIT for the JetClass models)"),
    author: list[str] = typer.Option(None, "--author", help="an author's name (repeat)"),
    name: str = typer.Option(None, help="bundle name (default: from the file names)"),
    force: bool = typer.Option(False, help="overwrite a non-empty output directory"),
) -> None:
    """Seal a weaver/CMSSW ONNX export as a bundle: inputs, features, preprocessing and
    classes from preprocess.json; ONNX Runtime as its runtime."""
    from servable.bundle.onnx_import import import_onnx as run

    out = run(model, preprocess, output, license=license, name=name, authors=author,
              overwrite=force)
    typer.echo(f"{out}: imported {model.name} with {preprocess.name} (runtime onnx, sealed)")
