"""Streamed summary of a jet file: counts per class, multiplicities, soft-drop mass quantiles."""

from __future__ import annotations

import numpy as np

from servable.data import schema
from servable.data.h5io import JetFile
from servable.data.jets import validate_jets


def summarize(path, chunk_size: int = 20_000) -> dict:
    """Validate every chunk of `path` against the layout and summarise it."""
    counts = np.zeros(2, dtype=int)
    sums = {"tracks": np.zeros(2), "vertices": np.zeros(2)}
    sdmass: list[np.ndarray] = [[], []]
    with JetFile(path) as f:
        attrs = f.attrs
        n = len(f)
        for start in range(0, n, chunk_size):
            jets = f.read(start, start + chunk_size)
            validate_jets(jets.tracks, jets.vertices, jets.jet_features, jets.labels,
                          jets.spectators, track_names=jets.track_names,
                          vertex_names=jets.vertex_names,
                          jet_feature_names=jets.jet_feature_names)
            cls = (jets.labels[:, 1] > 0.5).astype(int) if jets.labels is not None \
                else np.zeros(len(jets), int)
            for c in (0, 1):
                sel = cls == c
                counts[c] += sel.sum()
                sums["tracks"][c] += jets.n_tracks[sel].sum()
                sums["vertices"][c] += jets.n_vertices[sel].sum()
                if jets.spectators is not None:
                    sdmass[c].append(jets.spectator("fj_sdmass")[sel])
    out = {"path": str(path), "split": f.split, "n_jets": int(n), "classes": {}}
    for c, label in enumerate(schema.LABELS):
        if counts[c] == 0:
            continue
        entry = {
            "jets": int(counts[c]),
            "mean_tracks": float(sums["tracks"][c] / counts[c]),
            "mean_vertices": float(sums["vertices"][c] / counts[c]),
        }
        if sdmass[c]:
            q = np.quantile(np.concatenate(sdmass[c]), [0.16, 0.5, 0.84])
            entry["sdmass_quantiles_gev"] = {"q16": float(q[0]), "median": float(q[1]),
                                             "q84": float(q[2])}
        out["classes"][label] = entry
    out["provenance"] = attrs.get("provenance")
    return out


def format_summary(summary: dict) -> str:
    lines = [f"{summary['path']}: {summary['n_jets']} jets ({summary['split']} layout, valid)"]
    for label, c in summary["classes"].items():
        line = (f"  {label:>4}: {c['jets']:7d} jets, {c['mean_tracks']:5.1f} tracks/jet, "
                f"{c['mean_vertices']:4.2f} SVs/jet")
        if "sdmass_quantiles_gev" in c:
            q = c["sdmass_quantiles_gev"]
            line += (f", soft-drop mass median {q['median']:6.1f} GeV "
                     f"(16-84%: {q['q16']:.1f}-{q['q84']:.1f})")
        lines.append(line)
    return "\n".join(lines)
