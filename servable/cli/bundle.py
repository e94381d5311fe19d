"""`servable bundle verify|pull|import-checkpoint|describe`, `servable cache list|clear`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Verify, import, export and retrieve servable bundles.",
                  no_args_is_help=True)
cache_app = typer.Typer(help="Bundles retrieved by DOI ($SERVABLE_CACHE).", no_args_is_help=True)


@app.command()
def verify(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    expect: str = typer.Option(None, help="content digest (sha256:...) the bundle must have, "
                                          "e.g. from a paper or its DOI record"),
) -> None:
    """Check every byte of a bundle and print its content digest (exit 2 naming a bad file)."""
    from servable.bundle.bundle import resolve
    from servable.bundle.manifest import verify as run

    path = resolve(bundle)
    manifest = run(path, expect=expect)
    typer.echo(f"{bundle}: {len(manifest['files']) + 1} files verified ({manifest['name']} "
               f"{manifest['version']}" + (f", DOI {manifest['doi']}" if manifest.get("doi")
                                           else "") + ")")
    typer.echo(f"content digest {manifest['digest']}"
               + (" (as expected)" if expect else ""))
    if str(path) != bundle:
        typer.echo(f"at {path}")


def pull(ref: str = typer.Argument(..., help="DOI, concept DOI or Zenodo record URL")) -> None:
    """Retrieve a bundle by its identifier into the cache (a concept DOI: its newest
    version), verify it and print where it is."""
    from servable.bundle.manifest import verify as run
    from servable.bundle.retrieve import RetrievalError, identifier, retrieve

    ident = identifier(ref)
    if ident is None:
        raise RetrievalError(f"{ref}: not a DOI (10.NNNN/...) or a Zenodo record URL")
    path = retrieve(ident, refresh=True)
    manifest = run(path)
    typer.echo(f"{ref}: {manifest['name']} {manifest['version']} (DOI {manifest.get('doi')}), "
               f"content digest {manifest['digest']}, at {path}")


@cache_app.command("list")
def cache_list() -> None:
    """The bundles retrieved by identifier, with their DOI, version and place."""
    from servable.bundle.retrieve import cache_entries, cache_root

    entries = cache_entries()
    typer.echo(f"{len(entries)} bundle(s) in {cache_root()}")
    for e in entries:
        typer.echo(f"  {e.get('doi')}  {e.get('name')} {e.get('version')}  {e['path']}")


@cache_app.command("clear")
def cache_clear(ref: str = typer.Argument(None, help="only this DOI or record URL "
                                                     "(default: everything)")) -> None:
    """Remove retrieved bundles (and partial downloads) from the cache."""
    from servable.bundle.retrieve import clear_cache

    typer.echo(f"removed {clear_cache(ref)} cached bundle(s)")


@app.command("import-checkpoint")
def import_checkpoint(
    checkpoint: Path = typer.Argument(..., help="published GraphNet .pth or JetClass "
                                                "ParticleNet_*.pt state dict"),
    metadata: Path = typer.Option(None, "--metadata", help="the GraphNet's "
                                                           "*_model_metadata.json"),
    feature_set: str = typer.Option(None, "--feature-set", help="ParticleNet: kin, kinpid "
                                    "or full (default: read from the weights' input width)"),
    output: Path = typer.Option(..., "-o", "--output", help="bundle directory to write"),
    force: bool = typer.Option(False, help="overwrite a non-empty output directory"),
    record: Path = typer.Option(None, help="metadata record to describe it with, e.g. "
                                           "metadata/hbb-in-baseline.yaml"),
) -> None:
    """Import a published checkpoint (read with weights_only=True): an Interaction Network
    with its --metadata, or an official JetClass ParticleNet (kin, kinpid, full)."""
    from servable.bundle.checkpoint import import_checkpoint as run
    from servable.bundle.describe import describe
    from servable.bundle.record import load_record

    rec = load_record(record) if record is not None else None  # a bad record: before writing
    out = run(checkpoint, metadata, output, overwrite=force, feature_set=feature_set)
    if rec is not None:
        describe(out, rec)
    typer.echo(f"{out}: imported {checkpoint.name} (safetensors, checksummed)")


@app.command("describe")
def describe(
    bundle: Path = typer.Argument(..., help="bundle directory (the one to change)"),
    record: Path = typer.Option(..., help="metadata record (metadata/NAME.yaml)"),
) -> None:
    """Describe a bundle with a metadata record: name, version, authors with ORCID, licence,
    related identifiers; regenerates CITATION.cff, codemeta.json, RO-Crate and checksums."""
    from servable.bundle.describe import describe as run
    from servable.bundle.record import load_record

    manifest = run(bundle, load_record(record))
    typer.echo(f"{bundle}: described as {manifest['name']} {manifest['version']} "
               f"({len(manifest['authors'])} authors)")
