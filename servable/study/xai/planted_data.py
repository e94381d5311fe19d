"""Training tasks whose mechanism is known by construction: the ground truth that the
explainability benchmark's verdicts are checked against (issue 31, item 4).

Both tasks are built from generated CMS-layout jets (`servable data generate`, which records
per track its generator origin, `track_origin`):

`decay_tracks_only` -- only the b/c-hadron decay tracks carry the label. Each output jet keeps
the label and the decay tracks (origin b or c hadron decay) of one source jet, its *host*.
Everything else -- every non-decay track, the secondary vertices, the jet-level features and
the spectators -- is copied as one block from a *donor* jet drawn uniformly from all source
jets, independently of the label. The non-decay tracks therefore come from one common pool
and their number from one common distribution (the donors' non-decay multiplicity, capped at
the same `60 - max decay count` for every jet), whatever the class: no input but the decay
tracks depends on the label. Tracks are re-ordered by trackBTag_Sip2dSig as in the CMS data.

`one_feature_group` -- the label is a function of two track features (`CARRIERS`) alone.
Every other track feature is permuted independently across all filled track slots of all
jets, the secondary vertices are moved as blocks to other jets and each jet-level feature is
permuted across jets. The label is 1 for the upper half of the carriers' score (the mean
over the jet's tracks of each carrier's quantile, summed) among the jets of the same track
multiplicity, so the multiplicity (the one thing the permutations keep in place) carries
nothing either.

`leakage` measures what the construction promises: the cross-validated AUC of a classifier on
per-jet summaries of everything but the carrier, against the band of the same AUC with the
labels permuted, beside the same classifier on the carrier's summaries (the positive
control).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from servable.data import schema
from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError
from servable.explain import uncertainty as U

DECAY_ORIGINS = (schema.TRUTH_ORIGINS.index("b_hadron_decay"),
                 schema.TRUTH_ORIGINS.index("c_hadron_decay"))
CARRIERS = ("track_deltaR", "track_drsubjet1")  # the group that carries task b's label
SORT_BY = "trackBTag_Sip2dSig"  # the CMS data's track order


def _decay(jets: Jets) -> tuple[np.ndarray, np.ndarray]:
    if "track_origin" not in jets.extras or not jets.has("tracks"):
        raise ServableError("the planted decay-track task needs generated CMS-layout jets with "
                            "per-track truth (track_origin): make them with `servable data "
                            "generate`")
    origin = np.asarray(jets.extras["track_origin"])
    filled = filled_mask(jets.tracks)
    return filled & np.isin(origin, DECAY_ORIGINS), filled


def decay_tracks_only(jets: Jets, seed: int = 0) -> Jets:
    """Jets in which only the b/c-decay tracks carry the label (the module docstring says
    how); `extras["track_origin"]` follows the tracks, `extras["donor"]` names each jet's donor.
    """
    if jets.labels is None:
        raise ServableError("the planted tasks need labelled jets")
    decay, filled = _decay(jets)
    other = filled & ~decay
    tracks, origin = jets.tracks, np.asarray(jets.extras["track_origin"])
    n, n_feat, slots = tracks.shape
    cap = slots - int(decay.sum(1).max())  # the same cap on non-decay tracks for every jet
    donor = np.random.default_rng(seed).integers(0, n, n)  # drawn without the labels
    order_col = jets.track_names.index(SORT_BY)
    out = np.zeros_like(tracks)
    out_origin = np.full(origin.shape, schema.TRUTH_PADDING, origin.dtype)
    for i in range(n):
        d = donor[i]
        own = np.flatnonzero(decay[i])
        rest = np.flatnonzero(other[d])[:cap]  # the donor's leading non-decay tracks
        x = np.concatenate([tracks[i][:, own], tracks[d][:, rest]], 1)
        o = np.concatenate([origin[i, own], origin[d, rest]])
        srt = np.argsort(-x[order_col], kind="stable")
        out[i, :, : len(srt)] = x[:, srt]
        out_origin[i, : len(srt)] = o[srt]
    jf = jets.jet_features[donor] if jets.has("jet_features") else None
    return Jets.cms(out, jets.vertices[donor], jf, jets.labels.copy(),
                    None if jets.spectators is None else jets.spectators[donor],
                    track_names=jets.track_names, vertex_names=jets.vertex_names,
                    jet_feature_names=jets.jet_feature_names if jf is not None else (),
                    class_names=jets.class_names,
                    extras={"track_origin": out_origin, "donor": donor.astype(np.int32)})


def _carrier_score(tracks: np.ndarray, filled: np.ndarray, cols: list[int]) -> np.ndarray:
    """Per jet, the sum over carriers of the mean over its tracks of the carrier's quantile
    among all filled tracks."""
    score = np.zeros(len(tracks))
    for c in cols:
        q = np.zeros(filled.shape)
        q[filled] = stats.rankdata(tracks[:, c][filled]) / filled.sum()
        score += q.sum(1) / np.maximum(filled.sum(1), 1)
    return score


def one_feature_group(jets: Jets, carriers=CARRIERS, seed: int = 0) -> Jets:
    """Jets whose label is a function of the track features `carriers` alone (the module
    docstring says how)."""
    if not jets.has("tracks"):
        raise ServableError("the planted feature-group task needs CMS-layout jets with tracks")
    missing = [c for c in carriers if c not in jets.track_names]
    if missing:
        raise ServableError(f"no track feature {', '.join(missing)}; choose carriers among "
                            f"{', '.join(jets.track_names)}")
    rng = np.random.default_rng(seed)
    tracks = jets.tracks.copy()
    filled = filled_mask(tracks)
    cols = [jets.track_names.index(c) for c in carriers]
    for j in range(tracks.shape[1]):
        if j not in cols:
            col = tracks[:, j]
            col[filled] = col[filled][rng.permutation(int(filled.sum()))]
    if not np.array_equal(filled_mask(tracks), filled):
        raise ServableError("a permuted track became all zero: the carriers are zero there")
    score = _carrier_score(tracks, filled, cols)
    mult = filled.sum(1)
    label = np.zeros(len(jets), int)
    for m in np.unique(mult):
        idx = np.flatnonzero(mult == m)
        ranked = idx[np.argsort(score[idx] + 1e-12 * rng.random(len(idx)), kind="stable")]
        half = len(idx) // 2
        label[ranked[len(idx) - half:]] = 1
        if len(idx) % 2:  # the middle jet of an odd bin: a fair coin
            label[ranked[half]] = rng.integers(0, 2)
    perm = rng.permutation(len(jets))
    jf = None
    if jets.has("jet_features"):
        jf = jets.jet_features.copy()
        for j in range(jf.shape[1]):
            jf[:, j] = jf[rng.permutation(len(jets)), j]
    return Jets.cms(tracks, jets.vertices[perm], jf, np.eye(2, dtype=np.float32)[label],
                    None if jets.spectators is None else jets.spectators[perm],
                    track_names=jets.track_names, vertex_names=jets.vertex_names,
                    jet_feature_names=jets.jet_feature_names if jf is not None else (),
                    class_names=jets.class_names[:2], extras={})


# measured leakage -------------------------------------------------------------------------
def _summaries(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per jet: the count of masked slots and the mean, min and max of each feature over
    them (0 where a jet has none)."""
    m = mask[:, None, :]
    count = mask.sum(1)
    safe = np.maximum(count, 1)[:, None]
    mean = np.where(m, values, 0).sum(2) / safe
    lo = np.where(m, values, np.inf).min(2)
    hi = np.where(m, values, -np.inf).max(2)
    lo[count == 0], hi[count == 0] = 0, 0
    return np.concatenate([count[:, None], mean, lo, hi], 1)


def inputs_apart(jets: Jets, task: str, carriers=CARRIERS) -> tuple[np.ndarray, np.ndarray]:
    """(everything but the carrier, the carrier) as per-jet summary tables: for task
    `decay`, the non-decay tracks, SVs and jet features vs the decay tracks; for task
    `group`, the other track features (with the multiplicity), SVs and jet features vs the
    carrier features."""
    tracks = jets.tracks
    filled = filled_mask(tracks)
    sv = jets.vertices
    common = [_summaries(sv, filled_mask(sv))]
    if jets.has("jet_features"):
        common.append(jets.jet_features)
    if task == "decay":
        decay, _ = _decay(jets)
        rest = _summaries(tracks, filled & ~decay)
        carrier = _summaries(tracks, decay)
    elif task == "group":
        cols = [jets.track_names.index(c) for c in carriers]
        keep = [j for j in range(tracks.shape[1]) if j not in cols]
        rest = _summaries(tracks[:, keep], filled)
        carrier = _summaries(tracks[:, cols], filled)[:, 1:]  # the count is not the carrier
    else:
        raise ServableError(f"task must be decay or group, not {task!r}")
    return np.concatenate([rest, *common], 1), carrier


def classifier_auc(x: np.ndarray, y: np.ndarray, seed: int = 0, bootstraps: int = 200,
                   folds: int = 5, permutations: int = 20) -> dict:
    """The AUC of a classifier (standardised logistic regression) on `x`, each jet predicted
    by the fold that did not train on it, with a bootstrap interval, and `null`: the band of
    the same cross-validated AUC with the labels permuted (cross-validation on inputs without
    information gives AUCs a little below 0.5, so the band, not 0.5, is the reference)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.nan_to_num(np.asarray(x, np.float64))
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)

    def predict(labels):
        return cross_val_predict(clf, x, labels, cv=cv, method="predict_proba")[:, 1]

    p = predict(y)

    def auc(idx):
        yy = y[idx]
        return roc_auc_score(yy, p[idx]) if yy.any() and not yy.all() else np.nan

    out = U.bootstrap_scalar(auc, len(y), bootstraps, seed=seed)
    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(y) for _ in range(permutations)]
    out["null"] = U.band([roc_auc_score(t, predict(t)) for t in shuffled])
    return out


def leakage(jets: Jets, task: str, target: int = 1, seed: int = 0) -> dict:
    """What the label can be read from: `others` (the classifier on everything but the
    carrier: 0.5 when the construction holds) and `carrier` (on the carrier: the control)."""
    y = jets.labels.argmax(1) == target
    rest, carrier = inputs_apart(jets, task)
    return {"others": classifier_auc(rest, y, seed), "carrier": classifier_auc(carrier, y, seed),
            "n_jets": len(jets)}
