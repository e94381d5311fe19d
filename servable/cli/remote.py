"""`servable remote predict|explain|register`: the same work, run on an endpoint."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Run predictions and explanations on a Globus Compute endpoint "
                       "(or this machine's endpoint engine: --endpoint local).",
                  no_args_is_help=True)

ENDPOINT = typer.Option("local", help="'local' (this machine's engine) or an endpoint UUID")
ENGINE = typer.Option("process", help="local engine: process (ProcessPoolEngine) or parsl "
                                      "(GlobusComputeEngine over a LocalProvider)")
WORKERS = typer.Option(None, min=1, help="local engine workers (default: up to 4 cores)")
BUNDLE = typer.Argument(..., help="bundle path on the endpoint, or its name or DOI there")


@app.command("predict")
def predict(
    bundle: str = BUNDLE,
    input_file: Path = typer.Argument(..., help="jets in the CMS H->bb layout (read here)"),
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file for the scores"),
    endpoint: str = ENDPOINT,
    engine: str = ENGINE,
    workers: int = WORKERS,
    runtime: str = typer.Option("auto", help="auto (torch if the endpoint has it, else "
                                             "onnx), torch, onnx or tensorrt"),
    force: bool = typer.Option(False, help="overwrite an existing output file"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Score jets on an endpoint: same output as `servable predict` (scores, row_index)."""
    from servable.bundle.predict import stream_scores
    from servable.remote import Client

    with Client(endpoint, engine=engine, workers=workers) as client:
        summary = stream_scores(client.scorer(bundle, runtime), input_file, output, overwrite=force,
                                progress=not quiet, bundle_path=_local(bundle))
        typer.echo(f"{summary['output']}: scores for {summary['n_jets']} jets on endpoint "
                   f"{endpoint} ({summary['runtime']}; {client.tasks_sent} tasks, largest "
                   f"payload {client.largest_payload / 1e6:.1f} MB)")


@app.command("explain")
def explain(
    bundle: str = BUNDLE,
    input_file: Path = typer.Argument(..., help="jets in the CMS H->bb layout (read here)"),
    method: str = typer.Option(..., help="an explanation method (see `servable explain`)"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for the results"),
    target: int = typer.Option(1, min=0, help="class to explain (1 = H->bb)"),
    n_jets: int = typer.Option(1000, min=1, help="explain the first N jets"),
    param: list[str] = typer.Option(None, help="method parameter key=value (repeatable)"),
    per_jet: bool = typer.Option(False, help="also store per-jet relevance in the JSON"),
    force: bool = typer.Option(False, help="overwrite an existing explanation.json and "
                                           "figures in the folder"),
    endpoint: str = ENDPOINT,
    engine: str = ENGINE,
    workers: int = WORKERS,
) -> None:
    """Explain on an endpoint: writes the same files as `servable explain`."""
    from servable.cli.common import fail
    from servable.cli.explain import _params, check_explanation_output, write_explanation
    from servable.data.io import open_jets
    from servable.explain import METHODS
    from servable.remote import Client
    from servable.remote.combine import as_explanation

    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    inputs = [input_file, *filter(None, [_local(bundle)])]
    check_explanation_output(output, force, inputs)
    with open_jets(input_file) as f:
        jets = f.read(0, n_jets)
    with Client(endpoint, engine=engine, workers=workers) as client:
        result = client.explain(bundle, jets, method, target, **_params(param)).result()
    explanation = as_explanation(result)
    written = write_explanation(explanation, output, result["n_jets"], per_jet, force, inputs)
    top = ", ".join(explanation.top(5)) or "(node-level method: see the figures)"
    worker = result["worker"]
    typer.echo(f"{method} on {result['n_jets']} jets on endpoint {endpoint} "
               f"({result['tasks']} tasks; worker Python {worker['python']} on "
               f"{worker['host']}): top features {top}")
    typer.echo(f"wrote {written[0]} and {', '.join(p.name for p in written[1:])}")


def _local(bundle: str) -> Path | None:
    """The bundle's directory when the reference names one on this machine."""
    path = Path(bundle).expanduser()
    return path if path.is_dir() else None


@app.command("register")
def register(endpoint: str = ENDPOINT) -> None:
    """Register the shipped functions once and record their ids for later calls.

    With a UUID the functions are registered with the Globus Compute service (later calls
    submit by function id); `local` records what would be registered. Either way the registry
    ($SERVABLE_FUNCTION_REGISTRY, default ~/.servable/functions.json) notes each function's
    source digest, so a changed function is registered again instead of run stale.
    """
    from servable.remote.endpoints import GlobusEndpoint, serializer
    from servable.remote.functions import SHIPPED
    from servable.remote.registry import read_registry, register_functions

    globus = None if endpoint == "local" else GlobusEndpoint(endpoint)
    register = globus.executor.register_function if globus is not None else None
    path = register_functions(SHIPPED, serializer(), register)
    for name, entry in read_registry().items():
        typer.echo(f"{name}: {entry['function_id'] or 'local (serialized per call)'} "
                   f"sha256 {entry['sha256'][:12]}")
    typer.echo(f"wrote {path}")
