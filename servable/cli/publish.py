"""`servable publish zenodo`, `servable cite`, `servable fair-report`, `servable metadata`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(help="Publish bundles and mint DOIs.", no_args_is_help=True)
metadata_app = typer.Typer(help="Metadata records (metadata/*.yaml) and what derives from them.",
                           no_args_is_help=True)


@app.command("zenodo")
def zenodo(
    bundle: Path = typer.Argument(..., help="bundle directory to publish"),
    sandbox: bool = typer.Option(False, help="use the Zenodo sandbox (test DOIs 10.5072/...) "
                                             "and $ZENODO_SANDBOX_TOKEN"),
    new_version_of: str = typer.Option(None, help="deposition id of the published version "
                                                  "this one follows"),
    dry_run: bool = typer.Option(False, help="print the requests, send nothing"),
    base_url: str = typer.Option(None, help="instance root of another Zenodo-compatible "
                                            "server (the client appends /api/...)"),
) -> None:
    """Mint a DOI: deposition, uploads, metadata, publish; the DOI is written back."""
    from servable.publish.zenodo import (
        SANDBOX,
        SANDBOX_TOKEN_ENV,
        TOKEN_ENV,
        ZENODO,
        ZenodoClient,
        publish_bundle,
    )

    token = os.environ.get(SANDBOX_TOKEN_ENV if sandbox else TOKEN_ENV)
    client = ZenodoClient(base_url or (SANDBOX if sandbox else ZENODO), token,
                          dry_run=dry_run, echo=typer.echo)
    state = publish_bundle(bundle, client, new_version_of=new_version_of, echo=typer.echo)
    if dry_run:
        typer.echo("dry run: nothing was sent")
    else:
        typer.echo(f"published {bundle}: DOI {state['doi']} (all versions: "
                   f"{state['concept_doi']}), record {state['record_url']}")


def cite(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    fmt: str = typer.Option("bibtex", "--format", help="bibtex, cff or apa"),
) -> None:
    """Print how to cite the exact model in this bundle."""
    from servable.bundle.citation import CITATION_FORMATS
    from servable.cli.common import fail
    from servable.publish.cite import citation

    if fmt not in CITATION_FORMATS:
        fail(f"--format must be one of {', '.join(CITATION_FORMATS)}, not {fmt!r}")
    text, warning = citation(bundle, fmt)
    if warning:
        typer.echo(f"note: {warning}", err=True)
    typer.echo(text)


def fair_report(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    minimum: float = typer.Option(0.0, "--min", help="exit 1 when the share of principles "
                                                     "met is below this (0 to 1)"),
) -> None:
    """Score a bundle against the FAIR principles for AI models, with the evidence."""
    from servable.cli.common import fail
    from servable.publish.fair import fair_checks, format_report

    if not 0.0 <= minimum <= 1.0:
        fail(f"--min is a share between 0 and 1, not {minimum}")
    checks = fair_checks(bundle)
    typer.echo(format_report(bundle, checks))
    score = sum(c.ok for c in checks) / len(checks)
    if score < minimum:
        typer.echo(f"score {score:.2f} is below --min {minimum:.2f}", err=True)
        raise typer.Exit(1)


@metadata_app.command("sync")
def sync(
    root: Path = typer.Option(Path("."), help="repository root (holds metadata/)"),
    check: bool = typer.Option(False, help="only report stale files (exit 2 if any)"),
) -> None:
    """Regenerate CITATION.cff, codemeta.json and metadata/generated/* from the records."""
    from servable.publish.metadata_sync import sync as run

    changed = run(root, check=check)
    verb = "up to date" if check else f"{len(changed)} file(s) written"
    typer.echo(f"metadata {verb}" + (f": {', '.join(map(str, changed))}" if changed else ""))
