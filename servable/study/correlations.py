"""The input correlations behind the paper's feature choices (FAIR paper Figure 7): sv_ptrel
against sv_pt and sv_erel over the filled SV slots, and the track_quality distribution of each
jet class (a categorical code whose distribution barely differs between the classes)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError


def input_correlations(jets: Jets, max_points: int = 3000, seed: int = 0) -> dict:
    """Spearman and Pearson correlations (all classes together), per-class scatter points (at most
    `max_points` per class, drawn at random), track_quality shares per class and their total
    variation distance."""
    if jets.labels is None:
        raise ServableError("the correlations are drawn per class: they need labelled jets")
    classes = list(jets.class_names)
    cls = jets.labels.argmax(1)
    filled = filled_mask(jets.vertices)  # (n, slots)
    sv = {n: jets.vertices[:, jets.vertex_names.index(n)] for n in ("sv_ptrel", "sv_pt",
                                                                    "sv_erel")}
    values = {n: a[filled] for n, a in sv.items()}
    slot_class = np.broadcast_to(cls[:, None], filled.shape)[filled]
    pairs = (("sv_ptrel", "sv_pt"), ("sv_erel", "sv_pt"), ("sv_ptrel", "sv_erel"))
    spearman = {f"{x}-{y}": float(stats.spearmanr(values[x], values[y])[0])
                if len(values[y]) > 2 else float("nan") for x, y in pairs}
    # the paper quotes a correlation coefficient (0.85 with sv_pt): Pearson's beside Spearman's
    pearson = {f"{x}-{y}": float(np.corrcoef(values[x], values[y])[0, 1])
               if len(values[y]) > 2 else float("nan") for x, y in pairs}
    rng = np.random.default_rng(seed)
    scatter = {}
    for c, label in enumerate(classes):
        idx = np.flatnonzero(slot_class == c)
        idx = rng.choice(idx, min(max_points, len(idx)), replace=False) if len(idx) else idx
        scatter[label] = {n: v[np.sort(idx)].tolist() for n, v in values.items()}
    quality = jets.tracks[:, jets.track_names.index("track_quality")][filled_mask(jets.tracks)]
    track_class = np.broadcast_to(cls[:, None], jets.tracks.shape[::2])[filled_mask(
        jets.tracks)]
    codes = np.unique(quality)
    shares = {label: [float(np.mean(quality[track_class == c] == code))
                      if np.any(track_class == c) else 0.0 for code in codes]
              for c, label in enumerate(classes)}
    tv = 0.5 * float(np.abs(np.subtract(*[shares[label] for label in classes[:2]])).sum()) \
        if len(classes) >= 2 else float("nan")
    return {"spearman": spearman, "pearson": pearson, "n_vertices": int(filled.sum()),
            "scatter": scatter,
            "track_quality": {"codes": codes.tolist(), "shares": shares, "tv_distance": tv}}
