"""`servable bundle verify|import-checkpoint`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Verify, import and export servable bundles.", no_args_is_help=True)


@app.command()
def verify(bundle: Path = typer.Argument(..., help="bundle: directory, name or DOI")) -> None:
    """Check every file of a bundle against its SHA-256 (exit 2 naming a bad file)."""
    from servable.bundle.bundle import verify as run

    manifest = run(bundle)
    typer.echo(f"{bundle}: {len(manifest['files'])} files verified ({manifest['name']} "
               f"{manifest['version']})")


@app.command("import-checkpoint")
def import_checkpoint(
    checkpoint: Path = typer.Argument(..., help="published GraphNet .pth state dict"),
    metadata: Path = typer.Option(..., "--metadata", help="its *_model_metadata.json"),
    output: Path = typer.Option(..., "-o", "--output", help="bundle directory to write"),
    force: bool = typer.Option(False, help="overwrite a non-empty output directory"),
    record: Path = typer.Option(None, help="metadata record to describe it with, e.g. "
                                           "metadata/hbb-in-baseline.yaml"),
) -> None:
    """Import a published Interaction Network checkpoint (read with weights_only=True)."""
    from servable.bundle.checkpoint import import_checkpoint as run
    from servable.bundle.describe import describe
    from servable.bundle.record import load_record

    rec = load_record(record) if record is not None else None  # a bad record: before writing
    out = run(checkpoint, metadata, output, overwrite=force)
    if rec is not None:
        describe(out, rec)
    typer.echo(f"{out}: imported {checkpoint.name} (safetensors, checksummed)")


@app.command("describe")
def describe(
    bundle: Path = typer.Argument(..., help="bundle: directory, name or DOI"),
    record: Path = typer.Option(..., help="metadata record (metadata/NAME.yaml)"),
) -> None:
    """Describe a bundle with a metadata record: name, version, authors with ORCID, licence,
    related identifiers; regenerates CITATION.cff, codemeta.json, RO-Crate and checksums."""
    from servable.bundle.describe import describe as run
    from servable.bundle.record import load_record

    manifest = run(bundle, load_record(record))
    typer.echo(f"{bundle}: described as {manifest['name']} {manifest['version']} "
               f"({len(manifest['authors'])} authors)")
