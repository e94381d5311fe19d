"""`servable predict`, `servable bundle export`, `servable bench parity|throughput|inference`."""

from __future__ import annotations

from pathlib import Path

import typer

bench_app = typer.Typer(help="Runtime parity and speed reports.", no_args_is_help=True)


def predict(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    input_file: Path = typer.Argument(..., help="jets: HDF5 (CMS or JetClass layout) or "
                                                "JetClass ROOT"),
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file for the scores"),
    runtime: str = typer.Option("torch", help="torch, onnx, openvino or tensorrt"),
    precision: str = typer.Option("f32", help="f32 (default, exact), or bf16 (opt-in: torch "
                                              "or openvino on a CPU with native bf16; check "
                                              "its cost with `bench parity --precision bf16`)"),
    batch_size: int = typer.Option(None, min=1, help="jets per forward pass"),
    force: bool = typer.Option(False, help="overwrite an existing output file"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Score jets: writes dataset `scores` (n, classes) and `row_index`."""
    from servable import load
    from servable.bundle.predict import predict_file
    from servable.cli.common import fail
    from servable.models.precision import PRECISIONS

    if precision not in PRECISIONS:  # before anything is loaded or written
        fail(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    result = predict_file(load(bundle), input_file, output, runtime=runtime,
                          batch_size=batch_size, overwrite=force, progress=not quiet,
                          precision=precision)
    shown = runtime if precision == "f32" else f"{runtime}, {precision}"
    typer.echo(f"{result['output']}: scores for {result['n_jets']} jets ({shown})")


def export(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    output: Path = typer.Option(..., "-o", "--output", help="zip file to write"),
    force: bool = typer.Option(False, help="overwrite an existing zip"),
) -> None:
    """Verify a bundle and pack it into a zip."""
    from servable.bundle.bundle import export_zip, resolve

    typer.echo(f"{export_zip(resolve(bundle), output, overwrite=force)}: written")


def _sample(data: Path, n_jets: int | None):
    from servable.data.io import read_jets

    return read_jets(data, 0, n_jets)  # only the jets asked for


@bench_app.command("parity")
def bench_parity(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    data: Path = typer.Option(..., "--data", help="jets to compare on"),
    n_jets: int = typer.Option(None, min=1, help="use the first N jets"),
    precision: str = typer.Option("f32", help="bf16 adds torch-bf16 and openvino-bf16 rows, "
                                              "compared with float32 PyTorch"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Compare runtimes on the same jets: max |dp|, accuracy, AUC and its difference, fidelity."""
    from servable import load
    from servable.bundle.bench import format_parity, parity
    from servable.cli.common import fail
    from servable.files import json_text
    from servable.models.precision import PRECISIONS

    if precision not in PRECISIONS:
        fail(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    report = parity(load(bundle), _sample(data, n_jets), precision=precision, unfused=True)
    typer.echo(json_text(report) if as_json else format_parity(report))


def _sizes(text: str) -> list[int]:
    from servable.cli.common import fail

    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        fail(f"--batch-sizes must be comma-separated integers, not {text!r}")
    if not sizes or min(sizes) < 1:
        fail("--batch-sizes must be positive integers")
    return sizes


@bench_app.command("throughput")
def bench_throughput(
    bundle: str = typer.Argument(..., help="bundle: directory, name, DOI or record URL"),
    data: Path = typer.Option(..., "--data", help="jets to run"),
    batch_sizes: str = typer.Option("1,16,128,1024", help="comma-separated batch sizes"),
    repeats: int = typer.Option(10, min=1, help="repetitions per batch size"),
    runtime: list[str] = typer.Option(None, help="a runtime to time; repeat --runtime for "
                                                 "several (default: all available)"),
    output: Path = typer.Option(Path("throughput"), "-o", "--output",
                                help="output stem: writes STEM.png, STEM.pdf and STEM.json"),
    force: bool = typer.Option(False, help="overwrite existing output files"),
) -> None:
    """Jets/s against batch size, repeated, as box plots (paper Figure 4)."""
    import statistics

    from servable.files import check_output, write_json

    sizes = _sizes(batch_sizes)
    outputs = {s: output.with_suffix(s) for s in (".png", ".pdf", ".json")}
    for path in outputs.values():  # before the measurement, not after it
        check_output(path, force=force, inputs=[data, bundle])
    from servable import load
    from servable.bundle.bench import plot_throughput, throughput

    result = throughput(load(bundle), _sample(data, None), sizes, repeats, runtime)
    for suffix in (".png", ".pdf"):
        plot_throughput(result, outputs[suffix], force=force)
    write_json(outputs[".json"], result, force=force)
    for name, per in result["runtimes"].items():
        typer.echo(f"{name}: " + ", ".join(f"bs {b}: {statistics.median(v):.0f} jets/s"
                                            for b, v in per.items()))
    typer.echo(f"plots: {output.with_suffix('.png')}, {output.with_suffix('.pdf')}")


@bench_app.command("inference")
def bench_inference(
    data: Path = typer.Option(..., "--data", help="jets to run"),
    bundle: str = typer.Option(None, help="IN bundle (default: the published architecture "
                                           "with random weights; cost does not depend on them)"),
    batch_sizes: str = typer.Option("128,1024", help="comma-separated batch sizes"),
    n_jets: int = typer.Option(4096, min=1, help="jets for the fast paths"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Dense published IN vs fast exact path vs ONNX Runtime vs OpenVINO, side by side."""
    from servable import load
    from servable.bundle.bench import format_inference, inference_bench
    from servable.files import json_text

    jets = _sample(data, n_jets)
    report = inference_bench(load(bundle) if bundle else None, jets, _sizes(batch_sizes))
    typer.echo(json_text(report) if as_json else format_inference(report))
