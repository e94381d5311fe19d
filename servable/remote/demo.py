"""The README's main job as one library pipeline, data flowing one way: generate jets, train
the IN into a bundle, verify it, predict on the local endpoint engine (PyTorch) and here
(ONNX Runtime), and explain it (masking and LRP). `servable demo` only prints its lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from servable.errors import check_int


@dataclass(frozen=True)
class DemoSettings:
    """How much the demo generates and trains (each count checked as the CLI checks it)."""

    signal: int = 600
    background: int = 600
    seed: int = 1
    workers: int = 2
    epochs: int = 4

    def __post_init__(self):
        for name, minimum in (("signal", 30), ("background", 30), ("workers", 1),
                              ("epochs", 1)):
            check_int(getattr(self, name), name, minimum=minimum)
        check_int(self.seed, "seed", minimum=0)


@dataclass
class DemoResult:
    """What the demo wrote and measured."""

    output: Path
    bundle: Path
    bundle_files: list[str]
    test_auc: float
    test_accuracy: float
    max_dp_torch_onnx: float
    top_features: dict[str, list[str]] = field(default_factory=dict)


def run_demo(output, settings: DemoSettings = DemoSettings(),
             report: Callable[[str], None] = print) -> DemoResult:
    """Run the demo into `output` (files of an earlier run there are replaced); `report`
    receives one line per step.

    Returns
    -------
    DemoResult
        the bundle, its files, the test AUC and accuracy, the largest PyTorch/ONNX Runtime
        difference and the top features per explanation method.
    """
    from servable.bundle.bundle import open_bundle
    from servable.bundle.predict import predict_file, read_scores, stream_scores
    from servable.bundle.train import train_bundle
    from servable.data.generator import generate
    from servable.data.h5io import read_jets, write_jets
    from servable.data.summary import format_summary, summarize
    from servable.explain import Servable, write_plots
    from servable.files import output_dir
    from servable.models.metrics import classification_metrics
    from servable.models.training import TrainConfig
    from servable.remote import Client

    s = settings
    output = output_dir(output)
    jets_file, test_file = output / "jets.h5", output / "test-jets.h5"
    report(f"[1/5] generating {s.signal} H->bb + {s.background} QCD jets (Pythia 8 + FastJet)")
    for path, seed, split, n_sig, n_bkg in (
            (jets_file, s.seed, "training", s.signal, s.background),
            (test_file, s.seed + 1000, "testing", s.signal // 3, s.background // 3)):
        jets, provenance = generate(n_sig, n_bkg, seed=seed, workers=s.workers)
        write_jets(path, jets, split=split, attrs={"provenance": provenance}, overwrite=True)
    report(format_summary(summarize(jets_file)))
    report(f"      {provenance['jets_per_second']:.1f} jets/s with {s.workers} worker(s)")

    bundle_dir = output / "in-bundle"
    report(f"[2/5] training the Interaction Network for {s.epochs} epochs -> {bundle_dir}")
    _, summary = train_bundle([jets_file], TrainConfig(model="in", epochs=s.epochs,
                                                       seed=s.seed),
                              bundle_dir, force=True, progress=False)
    report(f"      validation AUC {summary['validation_metrics']['roc_auc']:.4f}")

    bundle = open_bundle(bundle_dir, cls=Servable)
    files = sorted(bundle.manifest["files"])
    report(f"[3/5] bundle verified: {len(files)} files ({', '.join(files)})")

    report(f"[4/5] predicting {test_file.name}: PyTorch on the local endpoint engine "
           "(Globus Compute ProcessPoolEngine), ONNX Runtime here")
    with Client("local") as client:
        stream_scores(client.scorer(bundle_dir.resolve(), "torch"), test_file,
                      output / "scores-torch.h5", overwrite=True)
    predict_file(bundle, test_file, output / "scores-onnx.h5", runtime="onnx", overwrite=True)
    scores = {r: read_scores(output / f"scores-{r}.h5") for r in ("torch", "onnx")}
    test = read_jets(test_file)
    m = classification_metrics(test.labels.argmax(1), scores["torch"])
    diff = float(np.max(np.abs(scores["torch"] - scores["onnx"])))
    report(f"      test AUC {m['roc_auc']:.4f}, accuracy {m['accuracy']:.4f}; "
           f"max |p_torch - p_onnx| = {diff:.2e}")

    report("[5/5] explaining the IN: feature masking (dAUC) and LRP")
    top = {}
    for method in ("masking", "lrp"):
        result = bundle.explain(test, method=method)
        folder = output_dir(output / f"explain-{method}")
        result.to_json(folder / "explanation.json", force=True)
        write_plots(result, folder, force=True)
        top[method] = result.top(5)
        report(f"      {method}: top features {', '.join(top[method])}")
    report(f"done: results in {output}/")
    return DemoResult(output, bundle_dir, files, m["roc_auc"], m["accuracy"], diff, top)
