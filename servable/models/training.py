"""Reproducible training: splits, chunked streaming from jets files, Adam, early stopping.

Files are read through one reader interface (`servable.data.io.open_jets`): HDF5 in the CMS
or the JetClass layout, and JetClass ROOT files, so the splits below serve every format. The
classes come from the data (`Jets.class_names`): every file must name the same ones.

Split methods (the FAIR paper's Table 5): `kfold` (by file: files sorted by path, fold K of
`folds` is validation), `files` (a seeded random choice of files is validation) and `random`
(random jets of every file). The split depends on `split_seed` only, so trainings with
different seeds see the same validation jets. Everything random is seeded: on a CPU the same
seed gives bit-identical weights.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from servable.data.io import open_jets
from servable.data.jets import JETCLASS, Jets
from servable.errors import ServableError, check_int
from servable.files import regular_file, sha256_file
from servable.models.metrics import classification_metrics
from servable.models.spec import chosen_features
from servable.models.taggers import (
    FEATURE_KEYS,
    TAGGERS,
    BDTTagger,
    Tagger,
    TorchTagger,
    build_tagger,
    feature_config,
)

log = logging.getLogger(__name__)
SPLITS = ("random", "files", "kfold")


@dataclass
class TrainConfig:
    """The options of one training run (the `servable train` options): model kind, epochs,
    minibatch, learning rate, early-stopping patience, seed, split method and its folds,
    hyperparameters and an optional subset of track features.
    """

    model: str = "in"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    patience: int = 8
    seed: int = 1
    split: str = "random"
    fold: int = 0
    folds: int = 5
    val_fraction: float = 0.2
    split_seed: int = 42
    chunk_size: int = 8192
    hyperparameters: dict = field(default_factory=dict)
    track_features: list[str] | None = None  # train on a subset (ablation), by name
    vertex_features: list[str] | None = None
    drop_features: list[str] = field(default_factory=list)  # left out of every group
    feature_set: str = "full"  # on JetClass particles: kin, kinpid or full

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Refuse counts, rates, seeds and names that no training takes, with one line naming
        the value (run on construction, and again by `train`: a dataclass can be changed
        after it was built)."""
        from servable.data.particles import FEATURE_SETS

        if self.model not in TAGGERS:
            raise ServableError(f"model must be one of {', '.join(sorted(TAGGERS))}, not "
                                f"{self.model!r}")
        for name in ("epochs", "batch_size", "patience", "chunk_size"):
            check_int(getattr(self, name), name)
        for name in ("seed", "split_seed"):  # numpy takes seeds in [0, 2**32)
            check_int(getattr(self, name), name, 0, 2**32 - 1)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or \
                not (math.isfinite(self.lr) and self.lr > 0):
            raise ServableError(f"lr must be a positive learning rate, not {self.lr!r}")
        v = self.val_fraction
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            raise ServableError(f"val_fraction must be a fraction in (0, 1), not {v!r}")
        if self.split not in SPLITS:
            raise ServableError(f"split must be one of {', '.join(SPLITS)}, not "
                                f"{self.split!r}")
        if self.split == "kfold":
            check_int(self.folds, "folds", 2)
            check_int(self.fold, "fold", 0, self.folds - 1)
        if self.feature_set not in FEATURE_SETS:
            raise ServableError(f"feature_set must be one of {', '.join(FEATURE_SETS)}, not "
                                f"{self.feature_set!r}")


@dataclass
class Source:
    """Rows of one file that belong to a split (None: all rows)."""

    path: Path
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        if self.rows is not None:
            return int(self.rows.sum())
        with open_jets(self.path) as f:
            return len(f)


def plan_split(paths, method: str, fold: int = 0, folds: int = 5, val_fraction: float = 0.2,
               split_seed: int = 42) -> tuple[list[Source], list[Source]]:
    """Training and validation sources of jets files, split one of the `SPLITS` ways.

    Parameters
    ----------
    paths
        The jets files; sorted by path first, so glob order never matters.
    method
        ``random``: every file on both sides, each jet in validation with probability
        `val_fraction` (seeded by `split_seed` and the file's index); ``files``: whole files,
        round(`val_fraction` x files) of them (at least one) drawn with `split_seed` for
        validation; ``kfold``: the files whose sorted index i has i % `folds` == `fold`.

    Returns
    -------
    (train, val)
        Lists of `Source`; rows None takes every jet of the file.

    Raises
    ------
    ServableError
        An unknown method; fewer than 2 files for ``files`` or ``kfold``; a fold outside
        [0, folds) or one that leaves either side without files.
    """
    paths = sorted(Path(p) for p in paths)  # never glob order
    if method not in SPLITS:
        raise ServableError(f"the split must be one of {', '.join(SPLITS)}, not {method!r}")
    if method == "random":
        train, val = [], []
        for i, p in enumerate(paths):
            with open_jets(p) as f:
                n = len(f)
            is_val = np.random.default_rng([split_seed, i]).random(n) < val_fraction
            train.append(Source(p, ~is_val))
            val.append(Source(p, is_val))
        return train, val
    if len(paths) < 2:
        raise ServableError(f"the {method} split needs at least 2 files (got {len(paths)}); "
                            "split random jets of a single file")
    if method == "files":
        n_val = max(1, round(val_fraction * len(paths)))
        chosen = set(np.random.default_rng(split_seed).choice(len(paths), n_val, replace=False))
    else:
        if not 0 <= fold < folds:
            raise ServableError(f"the validation fold must be in [0, {folds}), not {fold}")
        chosen = {i for i in range(len(paths)) if i % folds == fold}
        if not chosen or len(chosen) == len(paths):
            raise ServableError(f"a k-fold split with {folds} folds leaves fold {fold} empty or "
                                f"without training files for {len(paths)} files")
    train = [Source(p) for i, p in enumerate(paths) if i not in chosen]
    val = [Source(p) for i, p in enumerate(paths) if i in chosen]
    return train, val


def iter_chunks(sources: list[Source], chunk_size: int,
                rng: np.random.Generator | None = None) -> Iterator[Jets]:
    """Stream the split's jets chunk by chunk (chunk order and rows shuffled when rng given)."""
    order = []
    for s_i, src in enumerate(sources):
        with open_jets(src.path) as f:
            n = len(f)
        order += [(s_i, start) for start in range(0, n, chunk_size)]
    if rng is not None:
        order = [order[i] for i in rng.permutation(len(order))]
    for s_i, start in order:
        src = sources[s_i]
        with open_jets(src.path) as f:
            jets = f.read(start, start + chunk_size)
        if src.rows is not None:
            jets = jets[src.rows[start:start + chunk_size]]
        if jets.labels is None:
            raise ServableError(f"{src.path}: the jets carry no labels (target_subgroup/"
                                "target in HDF5, label_* branches in ROOT); training and "
                                "evaluation need labelled jets")
        if len(jets) == 0:
            continue
        if rng is not None:
            jets = jets[rng.permutation(len(jets))]
        yield jets


def _collect(sources: list[Source], chunk_size: int, limit: int | None = None) -> Jets:
    parts, have = [], 0
    for jets in iter_chunks(sources, chunk_size):
        parts.append(jets)
        have += len(jets)
        if limit is not None and have >= limit:
            break
    if not parts:
        raise ServableError("the split holds no jets: check the input files and --split")
    jets = Jets.concatenate(parts)
    return jets[:limit] if limit is not None else jets


def make_tagger(cfg: TrainConfig, sample: Jets) -> Tagger:
    """A fresh tagger for the task of the training sample (its classes, its layout's
    features: `feature_config`, less what the config leaves out) with preprocessing fitted on
    the sample."""
    base = feature_config(cfg.model, sample, cfg.feature_set)
    chosen = chosen_features(
        {group: base[key] for group, key in FEATURE_KEYS.items()},
        {"tracks": cfg.track_features, "vertices": cfg.vertex_features}, cfg.drop_features)
    config = {"kind": cfg.model, "hyperparameters": dict(cfg.hyperparameters),
              "n_classes": len(sample.class_names), "class_names": list(sample.class_names),
              **{key: chosen[group] for group, key in FEATURE_KEYS.items()}}
    particle_group = "particles" if sample.layout == JETCLASS else "tracks"
    if "n_tracks" in TAGGERS[cfg.model].defaults:  # the data's slot count
        config["hyperparameters"].setdefault("n_tracks", sample.group(particle_group).slots)
    probe = build_tagger(config)
    config["preprocessing"] = probe.fit_preprocessing(probe.inputs(sample))
    return build_tagger(config)


def _class_names(paths: list[Path]) -> tuple[str, ...]:
    """The classes every file names (one task), or a one-line error."""
    named = {}
    for p in paths:
        with open_jets(p) as f:
            named[p] = tuple(f.class_names)
    first = named[paths[0]]
    for p, names in named.items():
        if names != first:
            raise ServableError(f"{p}: its classes ({', '.join(names)}) are not those of "
                                f"{paths[0]} ({', '.join(first)}); train on files of one task")
    return first


def train(paths, cfg: TrainConfig,
          progress: bool = True) -> tuple[Tagger, dict, tuple[np.ndarray, np.ndarray]]:
    """Train one model.

    Returns the tagger (best epoch), the training summary (plain data for the manifest) and
    the validation class indices and probabilities (n, classes), for plots.
    """
    cfg.validate()
    paths = [Path(p) for p in paths]
    for p in paths:
        regular_file(p)  # one line for a missing file, a folder, a pipe or a link loop
    _class_names(paths)
    train_src, val_src = plan_split(paths, cfg.split, cfg.fold, cfg.folds, cfg.val_fraction,
                                    cfg.split_seed)
    n_train, n_val = sum(len(s) for s in train_src), sum(len(s) for s in val_src)
    if n_train == 0 or n_val == 0:
        raise ServableError(f"the split leaves {n_train} training and {n_val} validation jets;"
                            " both must be non-empty")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    sample = _collect(train_src, cfg.chunk_size, limit=20_000)
    tagger = make_tagger(cfg, sample)
    t0 = time.perf_counter()
    history = TRAINING_LOOPS[tagger.framework](tagger, train_src, val_src, cfg, progress)
    val = _collect(val_src, cfg.chunk_size)
    val_labels, val_probs = val.labels.argmax(1), tagger.predict(val)
    try:
        metrics = classification_metrics(val_labels, val_probs, tagger.config["class_names"])
    except ValueError as exc:
        raise ServableError(f"cannot compute the validation metrics: {exc}") from None
    summary = {
        "config": asdict(cfg),
        "data": [{"path": str(p), "sha256": sha256_file(p)} for p in sorted(paths)],
        "n_train": n_train,
        "n_val": n_val,
        "history": history,
        "validation_metrics": metrics,
        "train_seconds": time.perf_counter() - t0,
        "torch_threads": torch.get_num_threads(),
    }
    return tagger, summary, (val_labels, val_probs)


def _targets(jets: Jets) -> torch.Tensor:
    return torch.from_numpy(jets.labels.argmax(1).astype(np.int64))


def _epoch_loss(tagger: TorchTagger, sources, cfg, rng=None, optimizer=None, bar=None) -> float:
    total, count = 0.0, 0
    for jets in iter_chunks(sources, cfg.chunk_size, rng):
        tensors = tagger.tensors(tagger.inputs(jets))
        y = _targets(jets)
        for start in range(0, len(jets), cfg.batch_size):
            batch = [t[start:start + cfg.batch_size] for t in tensors]
            target = y[start:start + cfg.batch_size]
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(tagger.net(*batch), target)
                loss.backward()
                optimizer.step()
                if bar is not None:
                    bar.update(len(target))
            else:
                with torch.inference_mode():
                    loss = F.cross_entropy(tagger.net(*batch), target)
            total += float(loss.detach()) * len(target)
            count += len(target)
    return total / max(count, 1)


def _train_torch(tagger: TorchTagger, train_src, val_src, cfg: TrainConfig,
                 progress: bool) -> dict:
    from tqdm import tqdm

    rng = np.random.default_rng(cfg.seed)
    optimizer = torch.optim.Adam(tagger.net.parameters(), lr=cfg.lr)
    n_train = sum(len(s) for s in train_src)
    best, best_state, stale = math.inf, None, 0
    history = {"train_loss": [], "val_loss": [], "epoch_seconds": [], "best_epoch": 0}
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        tagger.net.train()
        with tqdm(total=n_train, unit="jet", desc=f"epoch {epoch + 1}/{cfg.epochs}",
                  disable=not progress, leave=False) as bar:
            train_loss = _epoch_loss(tagger, train_src, cfg, rng, optimizer, bar)
        tagger.net.eval()
        val_loss = _epoch_loss(tagger, val_src, cfg)
        seconds = time.perf_counter() - t0
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["epoch_seconds"].append(seconds)
        log.info("epoch %d: train loss %.4f, val loss %.4f, %.1f s", epoch + 1, train_loss,
                 val_loss, seconds)
        if progress:
            print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f}, "
                  f"val loss {val_loss:.4f}, {seconds:.1f} s")
        if val_loss < best:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in tagger.net.state_dict().items()}
            history["best_epoch"] = epoch + 1
        else:
            stale += 1
            if stale >= cfg.patience:
                history["stopped_early"] = True
                break
    tagger.net.load_state_dict(best_state)
    tagger.net.eval()
    return history


def _train_bdt(tagger: BDTTagger, train_src, val_src, cfg: TrainConfig,
               progress: bool = False) -> dict:
    import xgboost as xgb

    tr, va = _collect(train_src, cfg.chunk_size), _collect(val_src, cfg.chunk_size)
    names = list(tagger.config["jet_features"])
    dtrain = xgb.DMatrix(tagger.inputs(tr)["jet_features"], label=tr.labels.argmax(1),
                         feature_names=names)
    dval = xgb.DMatrix(tagger.inputs(va)["jet_features"], label=va.labels.argmax(1),
                       feature_names=names)
    h, k = tagger.hyper, tagger.config["n_classes"]
    # two classes: the log-odds of class 1 (one margin); more: one margin per class (softmax)
    loss = {"objective": "binary:logistic", "eval_metric": "logloss"} if k == 2 else \
        {"objective": "multi:softprob", "eval_metric": "mlogloss", "num_class": k}
    params = {**loss, "tree_method": "hist",
              "max_depth": h["max_depth"], "eta": h["learning_rate"], "subsample": h["subsample"],
              "colsample_bytree": h["colsample_bytree"], "seed": cfg.seed, "nthread": 2}
    evals: dict = {}
    tagger.booster = xgb.train(params, dtrain, num_boost_round=h["n_estimators"],
                               evals=[(dtrain, "train"), (dval, "val")],
                               early_stopping_rounds=cfg.patience, evals_result=evals,
                               verbose_eval=False)
    best = tagger.booster.best_iteration
    tagger.booster = tagger.booster[: best + 1]
    metric = params["eval_metric"]
    return {"train_loss": evals["train"][metric], "val_loss": evals["val"][metric],
            "best_epoch": best + 1}


# the training loop of each framework a tagger declares
TRAINING_LOOPS = {"torch": _train_torch, "xgboost": _train_bdt}


def plot_history(history: dict, path, title: str = "") -> None:
    """Training and validation loss per epoch (boosting round for a BDT) with the best one
    marked, written to `path` (PNG or PDF by its suffix; never over an existing file)."""
    from servable.figures import figure

    with figure(path, (5, 3.5)) as (fig, ax):
        x = np.arange(1, len(history["train_loss"]) + 1)
        ax.plot(x, history["train_loss"], label="training")
        ax.plot(x, history["val_loss"], label="validation")
        ax.axvline(history["best_epoch"], color="grey", ls=":", label="best")
        ax.set_xlabel("epoch" if "epoch_seconds" in history else "boosting round")
        ax.set_ylabel("cross-entropy loss")
        ax.set_title(title)
        ax.legend()


def labelled_chunks(paths, chunk_size: int) -> Iterator[Jets]:
    """The jets of labelled files (any format `open_jets` reads), chunk by chunk."""
    yield from iter_chunks([Source(Path(p)) for p in paths], chunk_size)


def evaluate(tagger: Tagger, paths, chunk_size: int = 20_000) -> tuple[dict, np.ndarray,
                                                                        np.ndarray]:
    """Metrics on labelled files, streamed; returns metrics, class indices and probabilities
    (n, classes). The jets' classes must be the model's, in its order."""
    check_int(chunk_size, "chunk_size")
    classes = list(tagger.config["class_names"])
    labels, probs = [], []
    for jets in labelled_chunks(paths, chunk_size):
        if list(jets.class_names) != classes:
            raise ServableError(
                f"the data's classes ({', '.join(jets.class_names)}) are not the model's "
                f"({', '.join(classes)}); evaluate on data of the task the model was trained for")
        labels.append(jets.labels.argmax(1))
        probs.append(tagger.predict(jets))
    if not labels:
        raise ServableError("no jets to evaluate in the given files")
    y, p = np.concatenate(labels), np.concatenate(probs)
    try:
        metrics = classification_metrics(y, p, classes)
    except ValueError as exc:
        raise ServableError(f"cannot evaluate: {exc}") from None
    return metrics, y, p
