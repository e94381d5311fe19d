"""`servable reproduce`: the FAIR AI paper's study of the IN, regenerated end to end on jets made
here, and on the imported published checkpoints where no training is needed.

Stages: generate the jets (or reuse given files; the training jets are written as several
files so that the split by files and by k-fold apply), train the IN once per seed (Table 4) and
with the two other splits (Table 5), compare runtimes (Table 8) and throughput (Figure 4),
explain (masking: Figure 5, Table 9; LRP per class and slot: Figure 6; input correlations:
Figure 7; NAP: Figure 8) and ablate by retraining at each size (Table 10, Figure 9). Every
stage prints its time; training and generation show progress bars. The results go to
results.json and report.md (servable.study.report) with the figures as PNG and PDF.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from servable.bundle.bundle import open_bundle
from servable.data.jets import Jets
from servable.errors import ServableError, check_int
from servable.explain import Servable
from servable.files import output_dir, regular_file, write_json
from servable.study import paper
from servable.study.ablation import (
    DEFAULT_SIZES,
    DEFAULT_THRESHOLDS,
    ablation,
    parse_sizes,
    parse_thresholds,
    size_label,
)
from servable.timing import StageTimer

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
PUBLISHED_FIXTURES = FIXTURES / "published-in"
TABLE10_FIXTURES = FIXTURES / "published-in-table10"  # the paper's Table 10 checkpoints
TIMED_BATCHES = (1, 128)  # Table 8's time per batch


@dataclass
class Settings:
    """What `servable reproduce` runs; the defaults are the committed full run's."""

    jets: int = 6000  # training jets (half H->bb), written as `files` files
    test_jets: int = 3000
    seeds: int = 10
    epochs: int = 300  # a cap only: early stopping ends every training (the paper: 55-150)
    patience: int = 8  # epochs without a better validation loss (the paper's 8)
    sizes: tuple = DEFAULT_SIZES
    thresholds: tuple = DEFAULT_THRESHOLDS
    explain_jets: int = 2000
    files: int = 10
    folds: int = 5  # k-fold by file (Table 5): files i with i % folds == k are fold k
    batch_sizes: tuple = (1, 16, 64, 128, 256, 512, 1024, 2048)  # Figure 4's scan
    repeats: int = 10
    workers: int = 2
    seed: int = 1
    threads: int | None = None  # torch threads; None: the cores the machine's load leaves
    train_data: Path | None = None  # reuse these jets instead of generating them
    test_data: Path | None = None
    published: Path | None = None  # folder of upstream checkpoints with their metadata
    reference_auc: float | None = None

    def __post_init__(self):
        """Refuse what `servable reproduce` refuses, with the same one-line message (the CLI
        builds this object and prints its error)."""
        for name, minimum in COUNTS.items():
            check_int(getattr(self, name), name, minimum)
        if self.threads is not None:
            check_int(self.threads, "threads")
        if self.folds > self.files:
            raise ServableError(f"folds ({self.folds}) cannot exceed files ({self.files}): "
                                "every k-fold fold is at least one file")
        if not self.batch_sizes or isinstance(self.batch_sizes, str):
            raise ServableError(f"batch_sizes must list batch sizes, not {self.batch_sizes!r}")
        self.batch_sizes = tuple(check_int(b, "each of batch_sizes") for b in self.batch_sizes)
        # sizes and thresholds: the rules (and words) of the --sizes / --thresholds parsers
        self.sizes = tuple(parse_sizes(",".join(size_label(x) if isinstance(x, Sequence)
                                                else repr(x) for x in self.sizes)))
        self.thresholds = tuple(parse_thresholds(",".join(str(t) for t in self.thresholds)))
        for name in ("train_data", "test_data"):
            path = getattr(self, name)
            if path is not None:
                setattr(self, name, regular_file(path))  # missing, a folder, a link loop
        if self.published is not None:
            self.published = Path(self.published)
            if not self.published.is_dir():
                raise ServableError(f"{self.published}: not a folder of published checkpoints")
        auc = self.reference_auc
        if auc is not None and (isinstance(auc, bool) or not isinstance(auc, numbers.Real)
                                or not 0 < auc <= 1):
            raise ServableError(f"reference_auc must be an AUC in (0, 1], not {auc!r}")


# the smallest value of each count of the Settings (as the CLI declares them)
COUNTS = {"jets": 10, "test_jets": 10, "seeds": 2, "epochs": 1, "patience": 1,
          "explain_jets": 10, "files": 3, "folds": 2, "repeats": 1, "workers": 1, "seed": 0}

QUICK = {"jets": 3000, "test_jets": 1000, "seeds": 2, "epochs": 2,
         "sizes": (DEFAULT_SIZES[0], DEFAULT_SIZES[-1]), "explain_jets": 400, "files": 4,
         "folds": 2, "batch_sizes": (1, 128, 1024), "repeats": 3}


def free_threads(cores: int | None = None) -> int:
    """The cores not taken by the machine's running load (1-minute average), at least 1: a
    torch thread pool larger than the free cores spins against the other processes (an IN
    epoch took 30.9 s with 2 threads and 3.1 s with 1 at load 5.5 on 2 cores)."""
    cores = cores or os.cpu_count() or 1
    return int(min(cores, max(1, cores - round(os.getloadavg()[0]))))


def prepare_data(s: Settings, out: Path, force: bool, progress: bool) -> tuple[list[Path], Path]:
    """The training jets as `s.files` files and the test file (generated, or from the given
    files: the first `s.jets` / `s.test_jets` jets, generated files being shuffled)."""
    from servable.data.generator import generate
    from servable.data.h5io import write_jets
    from servable.data.io import read_jets

    data = output_dir(out / "data")
    if s.train_data is not None:
        jets = read_jets(s.train_data, 0, s.jets)
        origin = {"source": str(s.train_data)}
    else:
        jets, origin = generate(s.jets // 2, s.jets - s.jets // 2, seed=s.seed,
                                workers=s.workers, progress=progress)
    if len(jets) < 2 * s.files:
        raise ServableError(f"{len(jets)} training jets cannot fill {s.files} files")
    files = []
    for i, part in enumerate(np.array_split(np.arange(len(jets)), s.files)):
        files.append(write_jets(data / f"train_{i}.h5", jets[part], split="training",
                                attrs={"provenance": origin}, overwrite=force))
    if s.test_data is not None:
        test = read_jets(s.test_data, 0, s.test_jets)
        origin = {"source": str(s.test_data)}
    else:
        test, origin = generate(s.test_jets // 2, s.test_jets - s.test_jets // 2,
                                seed=s.seed + 1000, workers=s.workers, progress=progress)
    test_file = write_jets(data / "test.h5", test, split="testing",
                           attrs={"provenance": origin}, overwrite=force)
    return files, test_file


def _evaluated(path: Path, summary: dict, cfg, test: Path) -> dict:
    """One trained bundle's row: its test accuracy and AUC, the epochs it ran (and whether
    early stopping or the cap ended it), its best epoch and time per epoch."""
    from servable.models.training import evaluate

    metrics, _, _ = evaluate(open_bundle(path, cls=Servable).tagger, [test])
    history = summary["history"]
    return {"bundle": str(path), "seed": cfg.seed, "split": cfg.split,
            "accuracy": metrics["accuracy"], "roc_auc": metrics["roc_auc"],
            "epochs": len(history["train_loss"]), "best_epoch": history["best_epoch"],
            "stopped_early": bool(history.get("stopped_early")),
            "seconds_per_epoch": float(np.mean(history["epoch_seconds"]))}


def files_split_seed(n_files: int, folds: int, val_fraction: float = 0.2,
                     start: int = 42) -> int:
    """The first split seed from `start` whose random validation files are not one of the
    k-fold folds, so that the random-files row of Table 5 is a training of its own (with one
    file per fold every single file is a fold: then `start`). The draw is plan_split's: the
    sorted files' indices, `rng(seed).choice(n, max(1, round(val_fraction n)))`."""
    folds_sets = [{i for i in range(n_files) if i % folds == k} for k in range(folds)]
    n_val = max(1, round(val_fraction * n_files))
    for seed in range(start, start + 1000):
        chosen = {int(i) for i in np.random.default_rng(seed).choice(n_files, n_val,
                                                                      replace=False)}
        if chosen not in folds_sets:
            return seed
    return start


def train_seeds_and_splits(s: Settings, files, test, out: Path, force, progress) -> dict:
    """Table 4: one training per seed (random split of jets), early stopping after
    `s.patience` epochs; Table 5: the random split (the seeds' first run), random files (a
    split seed that picks other files than any fold) and k-fold by file, one training per
    fold, averaged over the folds."""
    from tqdm import tqdm

    from servable.bundle.train import train_bundle, train_seeds
    from servable.models.training import TrainConfig

    seeds = list(range(s.seed, s.seed + s.seeds))
    cfg = TrainConfig(model="in", epochs=s.epochs, patience=s.patience, seed=s.seed,
                      split="random")
    trained = train_seeds(files, cfg, seeds, [out / "models" / f"seed-{x}" for x in seeds],
                          force=force, progress=progress)
    runs = [_evaluated(path, summary, dataclasses.replace(cfg, seed=x), test)
            for x, (path, summary) in zip(seeds, trained, strict=True)]
    splits = {"random": runs[0]}
    split_seed = files_split_seed(len(files), s.folds)
    cfg_files = dataclasses.replace(cfg, split="files", split_seed=split_seed)
    path, summary = train_bundle(files, cfg_files, out / "models" / "split-files",
                                 force=force, progress=progress)
    splits["files"] = {**_evaluated(path, summary, cfg_files, test), "split_seed": split_seed,
                       "validation_files": sorted({Path(d["path"]).name for d in
                                                   summary["data"]} - _train_names(summary))}
    folds = []
    for k in tqdm(range(s.folds), desc="k-fold", disable=not progress):
        cfg_k = dataclasses.replace(cfg, split="kfold", fold=k, folds=s.folds)
        path, summary = train_bundle(files, cfg_k, out / "models" / f"split-kfold-{k}",
                                     force=force, progress=progress)
        folds.append({**_evaluated(path, summary, cfg_k, test), "fold": k})
    splits["kfold"] = {"split": "kfold", "folds": folds,
                       **{key: float(np.mean([f[key] for f in folds]))
                          for key in ("accuracy", "roc_auc", "epochs", "seconds_per_epoch")}}
    return {"seeds": runs, "splits": splits}


def _train_names(summary: dict) -> set[str]:
    """The files a training summary trained on (its split's training side)."""
    from servable.models.training import plan_split

    c = summary["config"]
    train, _ = plan_split([d["path"] for d in summary["data"]], c["split"], c["fold"],
                          c["folds"], c["val_fraction"], c["split_seed"])
    return {Path(src.path).name for src in train}


def seed_table(runs: list[dict], reference: dict | None) -> dict:
    """Table 4: mean and sample standard deviation over the seeds, the epochs each ran, and
    the reference values' (accuracy and AUC, or only AUC) one-sided p-values under the seeds'
    distribution. `reference`: {"source": ..., "accuracy": ..., "roc_auc": ...}."""
    from servable.models.metrics import reference_tail, seed_statistics

    table = seed_statistics([{k: r[k] for k in ("accuracy", "roc_auc")} for r in runs])
    table["epochs"] = [r["epochs"] for r in runs]
    table["stopped_early"] = [r["stopped_early"] for r in runs]
    if reference is not None and len(runs) > 1:
        table["reference"] = {"source": reference["source"]}
        for key in ("accuracy", "roc_auc"):
            if reference.get(key) is not None:
                table["reference"][key] = reference_tail(reference[key], table[key]["values"])
    return table


def portability(bundle: Servable, jets: Jets, s: Settings) -> dict:
    """Table 8 (accuracy, AUC, max |dp|, fidelity per runtime; time per batch at 1 and 128)
    and Figure 4 (throughput per batch size, repeated)."""
    from servable.bundle.bench import parity, throughput

    report = parity(bundle, jets, runtimes=("onnx", "tensorrt"))  # the paper's Table 8
    sizes = sorted(set(s.batch_sizes) | set(TIMED_BATCHES))
    scan = throughput(bundle, jets, sizes, s.repeats, list(report["runtimes"]))
    for name, row in report["runtimes"].items():
        for bs in TIMED_BATCHES:
            row[f"ms_per_batch_{bs}"] = 1000 * bs / float(np.median(scan["runtimes"][name][bs]))
    return {"table8": report, "figure4": scan}


def explain_part(bundle: Servable, jets: Jets, out: Path, s: Settings, *, train_data=None,
                 compare=(), retrain: bool, force: bool, progress: bool) -> dict:
    """Figures 5, 6, 8, 9 and Tables 9, 10 for one baseline bundle."""
    from servable.study.relevance import lrp_by_class

    result = ablation(bundle, jets, out, thresholds=s.thresholds, sizes=s.sizes,
                      retrain_threshold=paper.TABLE10_THRESHOLD,
                      also_drop=paper.TABLE10_ALSO_DROPPED, train_data=train_data,
                      epochs=s.epochs, compare=compare, retrain_models=retrain, force=force,
                      progress=progress)
    result["lrp"] = lrp_by_class(bundle, jets)
    return result


def import_published(folders: Sequence[Path], out: Path,
                     force: bool) -> tuple[Path, list[Path]]:
    """The upstream baseline checkpoint and the paper's Table 10 checkpoints (labels
    `psvfeaturesdropped_001_noTrackQ*`) found in `folders` (NAME_best.pth beside
    NAME_model_metadata.json) as bundles: the baseline, then Table 10's by decreasing size.
    Other upstream checkpoints are not models of the paper's tables and are left out."""
    from servable.bundle.checkpoint import import_checkpoint

    found = {}
    for folder in folders:
        for meta in sorted(Path(folder).glob("*_model_metadata.json")):
            name = meta.name.removesuffix("_model_metadata.json")
            checkpoint = meta.with_name(f"{name}_best.pth")
            wanted = name == "gnn_baseline" or name.startswith(
                f"gnn_{paper.TABLE10_CHECKPOINTS}")
            if wanted and checkpoint.is_file() and name not in found:
                found[name] = (checkpoint, meta)
    if "gnn_baseline" not in found:
        raise ServableError(f"{', '.join(map(str, folders))}: no gnn_baseline_best.pth with "
                            "its gnn_baseline_model_metadata.json (the reference of the study)")
    bundles = {name: import_checkpoint(c, m, out / "published" / name, overwrite=force)
               for name, (c, m) in found.items()}
    baseline = bundles.pop("gnn_baseline")
    size = {name: open_bundle(path, cls=Servable).tagger.n_parameters()
            for name, path in bundles.items()}
    return baseline, [bundles[n] for n in sorted(bundles, key=lambda n: -size[n])]


def reproduce(out: Path, s: Settings, force: bool = False, progress: bool = True,
              command: str = "servable reproduce") -> dict:
    """Run the study into `out` (results.json, report.md, figures/); returns the results.
    `command` is how it was started, for the report."""
    import torch

    from servable.data.io import read_jets
    from servable.study.correlations import input_correlations
    from servable.study.report import write_report

    out = output_dir(out)
    torch.set_num_threads(s.threads or free_threads())
    stages = StageTimer(announce=lambda line: print(line, flush=True))
    t_start = time.perf_counter()
    settings = {k: (str(v) if isinstance(v, Path) else v)
                for k, v in dataclasses.asdict(s).items()}
    results: dict = {"command": command, "settings": settings,
                     "load_average_start": list(os.getloadavg()),
                     "torch_threads": torch.get_num_threads(), "trained": {},
                     "published": None}
    published_dir = s.published or (PUBLISHED_FIXTURES if PUBLISHED_FIXTURES.is_dir() else None)
    published_dirs = [published_dir, *([TABLE10_FIXTURES] if TABLE10_FIXTURES.is_dir() else [])]
    with stages.stage("data"):
        files, test_file = prepare_data(s, out, force, progress)
        test = read_jets(test_file)
        explain_jets = test[: s.explain_jets]
    published = None
    if published_dir is not None:
        with stages.stage("published checkpoints: import"):
            baseline, others = import_published(published_dirs, out, force)
            published = open_bundle(baseline, cls=Servable)
            results["published"] = {"baseline": str(baseline), "others": list(map(str, others))}
    reference = ({"roc_auc": s.reference_auc, "source": "the given reference AUC"}
                 if s.reference_auc is not None else None)
    if reference is None and published is not None:
        from servable.models.metrics import classification_metrics

        m = classification_metrics(test.labels.argmax(1), published.predict(test))
        reference = {"accuracy": m["accuracy"], "roc_auc": m["roc_auc"],
                     "source": "the published baseline checkpoint on the same test jets"}
    with stages.stage(f"training: {s.seeds} seeds, random files and {s.folds} k-fold folds"):
        runs = train_seeds_and_splits(s, files, test_file, out, force, progress)
    trained = results["trained"]
    trained["table4"] = seed_table(runs["seeds"], reference)
    trained["table4"]["runs"] = runs["seeds"]
    trained["table5"] = runs["splits"]
    baseline_trained = open_bundle(runs["seeds"][0]["bundle"], cls=Servable)
    with stages.stage("portability: runtimes and throughput"):
        trained.update(portability(baseline_trained, test, s))
        if published is not None:
            results["published"].update(portability(published, test, s))
    with stages.stage("explanations and ablation (trained)"):
        trained["explain"] = explain_part(baseline_trained, explain_jets, out / "ablation", s,
                                          train_data=files, retrain=True, force=force,
                                          progress=progress)
    if published is not None:
        with stages.stage("explanations (published checkpoints)"):
            results["published"]["explain"] = explain_part(
                published, explain_jets, out / "published-ablation", s, compare=others,
                retrain=False, force=force, progress=progress)
    with stages.stage("input correlations"):
        results["figure7"] = input_correlations(test)
    results["seconds"] = dict(stages.seconds)
    results["seconds"]["total"] = time.perf_counter() - t_start
    results["load_average_end"] = list(os.getloadavg())
    with stages.stage("report"):
        write_json(out / "results.json", json.loads(json.dumps(results, default=str)),
                   force=force)
        write_report(results, out, force=force)
    return results
