"""Where the LRP relevance goes, per class (FAIR paper Figure 6): QCD jets explained as QCD and
H->bb jets as H->bb, per feature and per track and SV slot ordered by relative energy.

Each jet's relevance is normalised to shares, |R| / sum |R| over all its inputs, before the
mean over the class's jets, so that the classes compare on one scale whatever the size of
their logits. Slots are ordered per jet by decreasing track_erel (tracks) and sv_erel (SVs),
read from the full-layout jets; padded slots have zero relevance and sort last.
"""

from __future__ import annotations

import numpy as np

from servable.data.jets import Jets
from servable.errors import ServableError
from servable.explain import Servable, explain_bundle

LEADING = 5  # the leading tracks by relative energy, compared with the next LEADING


def _by_energy(relevance: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """(n, slots) relevance reordered per jet by decreasing relative energy."""
    order = np.argsort(-energy, axis=1, kind="stable")
    return np.take_along_axis(relevance, order, axis=1)


def lrp_by_class(bundle: Servable, jets: Jets, rule: str = "gamma",
                 gamma: float = 2.0) -> dict:
    """Mean relevance shares per feature and per slot, per class; the share on SV features,
    and the shares of the tracks' relevance on the LEADING tracks by relative energy and on
    the LEADING after them."""
    if jets.labels is None:
        raise ServableError("relevance per class needs labelled jets")
    classes = list(bundle.manifest["outputs"][0]["classes"])
    out = {"rule": rule, "gamma": gamma, "per_feature": {}, "per_slot": {}, "sv_share": {},
           "leading_track_share": {}, "next_track_share": {}, "n_jets": {}}
    for c, label in enumerate(classes):
        sub = jets[jets.labels.argmax(1) == c]
        if len(sub) == 0:
            continue
        e = explain_bundle(bundle, sub, "lrp", target=c, rule=rule, gamma=gamma)
        t, v = np.abs(e.tracks), np.abs(e.vertices)
        total = t.sum((1, 2)) + v.sum((1, 2))
        keep = total > 0
        t = t[keep] / total[keep, None, None]
        v = v[keep] / total[keep, None, None]
        names = e.feature_names
        out["feature_names"] = [*names["tracks"], *names["vertices"]]
        out["per_feature"][label] = dict(zip(out["feature_names"], [
            *t.sum(2).mean(0).tolist(), *v.sum(2).mean(0).tolist()], strict=True))
        sub = sub[keep]
        tracks = _by_energy(t.sum(1), sub.tracks[:, sub.track_names.index("track_erel")])
        vertices = _by_energy(v.sum(1), sub.vertices[:, sub.vertex_names.index("sv_erel")])
        out["per_slot"][label] = {"tracks": tracks.mean(0).tolist(),
                                  "vertices": vertices.mean(0).tolist()}
        out["sv_share"][label] = float(v.sum((1, 2)).mean())
        mean_tracks = tracks.mean(0) / max(tracks.mean(0).sum(), 1e-30)
        out["leading_track_share"][label] = float(mean_tracks[:LEADING].sum())
        out["next_track_share"][label] = float(mean_tracks[LEADING:2 * LEADING].sum())
        out["n_jets"][label] = int(keep.sum())
    return out
