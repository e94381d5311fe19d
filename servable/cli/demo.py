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
    import numpy as np

    from servable import load
    from servable.bundle.predict import predict_file, stream_scores
    from servable.cli.models import train_one
    from servable.data.generator import generate
    from servable.data.h5io import read_jets, write_jets
    from servable.data.summary import format_summary, summarize
    from servable.models.training import TrainConfig
    from servable.remote import Client

    output.mkdir(parents=True, exist_ok=True)
    jets_file, test_file = output / "jets.h5", output / "test-jets.h5"
    typer.echo(f"[1/5] generating {signal} H->bb + {background} QCD jets (Pythia 8 + FastJet)")
    for path, s, split, n_sig, n_bkg in ((jets_file, seed, "training", signal, background),
                                          (test_file, seed + 1000, "testing", signal // 3,
                                           background // 3)):
        jets, provenance = generate(n_sig, n_bkg, seed=s, workers=workers)
        write_jets(path, jets, split=split, attrs={"provenance": provenance}, overwrite=True)
    typer.echo(format_summary(summarize(jets_file)))
    typer.echo(f"      {provenance['jets_per_second']:.1f} jets/s with {workers} worker(s)")

    bundle_dir = output / "in-bundle"
    typer.echo(f"[2/5] training the Interaction Network for {epochs} epochs -> {bundle_dir}")
    cfg = TrainConfig(model="in", epochs=epochs, seed=seed)
    train_one([jets_file], cfg, bundle_dir, force=True, quiet=True)

    bundle = load(bundle_dir)
    typer.echo(f"[3/5] bundle verified: {len(bundle.manifest['files'])} files "
               f"({', '.join(sorted(bundle.manifest['files']))})")

    typer.echo(f"[4/5] predicting {test_file.name}: PyTorch on the local endpoint engine "
               "(Globus Compute ProcessPoolEngine), ONNX Runtime here")
    with Client("local") as client:
        stream_scores(client.scorer(bundle_dir.resolve(), "torch"), test_file,
                      output / "scores-torch.h5", overwrite=True)
    predict_file(bundle, test_file, output / "scores-onnx.h5", runtime="onnx", overwrite=True)
    scores = {r: read_scores(output / f"scores-{r}.h5") for r in ("torch", "onnx")}
    test = read_jets(test_file)
    from servable.models.metrics import classification_metrics

    m = classification_metrics(test.labels.argmax(1), scores["torch"])
    diff = float(np.max(np.abs(scores["torch"] - scores["onnx"])))
    typer.echo(f"      test AUC {m['roc_auc']:.4f}, accuracy {m['accuracy']:.4f}; "
               f"max |p_torch - p_onnx| = {diff:.2e}")

    from servable.explain import write_plots

    typer.echo("[5/5] explaining the IN: feature masking (dAUC) and LRP")
    servable = load(bundle_dir)
    for method in ("masking", "lrp"):
        result = servable.explain(test, method=method)
        folder = output / f"explain-{method}"
        folder.mkdir(exist_ok=True)
        result.to_json(folder / "explanation.json", force=True)
        write_plots(result, folder, force=True)
        typer.echo(f"      {method}: top features {', '.join(result.top(5))}")
    typer.echo(f"done: results in {output}/")


def read_scores(path: Path):
    import h5py

    with h5py.File(path) as f:
        return f["scores"][:]


def selftest(
    output: Path = typer.Option(None, "-o", "--output", help="keep the bundle and files here "
                                                             "(default: a temporary folder)"),
) -> None:
    """Smoke test of an installation (containers, endpoints): an untrained IN bundle is
    written, verified and run on synthetic jets with PyTorch and ONNX Runtime."""
    import tempfile

    import numpy as np

    from servable import load
    from servable.bundle.bundle import save_bundle
    from servable.cli.common import fail
    from servable.data.jets import Jets
    from servable.models.taggers import INTagger

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(output) if output else Path(tmp)
        tagger = INTagger({})
        bundle_dir = save_bundle(tagger, root / "selftest-bundle", name="selftest-in",
                                 overwrite=True, description="untrained IN (selftest)")
        bundle = load(bundle_dir)
        inputs = tagger.input_spec().example(32)
        jets = Jets(inputs["tracks"], inputs["vertices"])
        p_torch, p_onnx = bundle.predict(jets), bundle.predict(jets, runtime="onnx")
        diff = float(np.abs(p_torch - p_onnx).max())
        if not np.isfinite(p_torch).all() or diff > 1e-5:
            fail(f"selftest failed: max |p_torch - p_onnx| = {diff:.2e}")
        typer.echo(f"selftest ok: {len(jets.tracks)} jets, torch and onnx agree to {diff:.1e}")
