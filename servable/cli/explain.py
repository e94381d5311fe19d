"""`servable explain`: one method on one bundle, JSON plus figures."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _params(items: list[str] | None) -> dict:
    from servable.cli.common import fail

    out = {}
    for item in items or []:
        if "=" not in item:
            fail(f"--param takes key=value, not {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def check_explanation_output(output: Path, force: bool, inputs: list) -> Path:
    """DIR/explanation.json, refused (before any work) inside a bundle or an input, or when it
    exists and `force` is not given."""
    from servable.files import check_output

    return check_output(output / "explanation.json", force=force, inputs=inputs)


def write_explanation(explanation, output: Path, n_jets: int, per_jet: bool,
                      force: bool = False, inputs: list = ()) -> list[Path]:
    """DIR/explanation.json (the summary, n_jets, with `per_jet` the per-jet relevance) and
    the method's figures: what `servable explain` and `servable remote explain` write. The
    figures come first, so that an explanation.json always has its figures beside it."""
    from servable.explain import write_plots
    from servable.files import output_dir, write_json

    output_dir(output, inputs=inputs)
    path = check_explanation_output(output, force, inputs)
    figures = write_plots(explanation, output, force)
    write_json(path, {**explanation.to_dict(per_jet), "n_jets": n_jets}, force=force,
               inputs=inputs)
    return [path, *figures]


def explain(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    input_file: Path = typer.Argument(..., help="jets: CMS-layout HDF5 or JetClass ROOT"),
    method: str = typer.Option(..., help="masking, lrp, rna, shap, lime, ig, saliency, "
                                         "attention or probes"),
    target: str = typer.Option("1", help="class to explain: its index or name (1 = H->bb in "
                                          "the CMS task, e.g. Tbqq in JetClass)"),
    n_jets: int = typer.Option(1000, min=1, help="explain the first N jets"),
    param: list[str] = typer.Option(None, help="method parameter key=value (repeatable), "
                                               "e.g. rule=gamma, baseline=mean"),
    per_jet: bool = typer.Option(False, help="also store per-jet relevance in the JSON"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for the results"),
    force: bool = typer.Option(False, help="overwrite an existing explanation.json and "
                                           "figures in the folder"),
) -> None:
    """Explain a model: writes DIR/explanation.json and PNG figures."""
    from servable import load
    from servable.cli.common import fail, target_option
    from servable.data.io import read_jets
    from servable.explain import METHODS

    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    inputs = [input_file, bundle]
    check_explanation_output(output, force, inputs)  # before any work
    params = _params(param)
    METHODS[method].check_params(params)
    servable = load(bundle)
    target_class = target_option(target, servable.manifest["outputs"][0]["classes"])
    inputs = [input_file, servable.path]  # the bundle found by name or DOI
    jets = read_jets(input_file, 0, n_jets)
    result = servable.explain(jets, method=method, target=target_class, **params)
    written = write_explanation(result, output, len(jets), per_jet, force, inputs)
    top = ", ".join(result.top(5)) or "(node-level method: see the figures)"
    typer.echo(f"{method} on {len(jets)} jets ({servable.kind}): top features {top}")
    typer.echo(f"wrote {written[0]} and {', '.join(p.name for p in written[1:])}")
