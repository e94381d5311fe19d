"""Streamed summary of a jet file: counts per class, multiplicities, soft-drop mass quantiles."""

from __future__ import annotations

import numpy as np

from servable.data import schema
from servable.data.h5io import JetFile
from servable.data.jets import filled_mask, validate_jets


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
    out["ignored"] = list(f.ignored)
    return out


def format_summary(summary: dict) -> str:
    """`summarize`'s result as the lines `servable data inspect` prints."""
    lines = [f"{summary['path']}: {summary['n_jets']} jets ({summary['split']} layout, valid)"]
    for label, c in summary["classes"].items():
        line = (f"  {label:>4}: {c['jets']:7d} jets, {c['mean_tracks']:5.1f} tracks/jet, "
                f"{c['mean_vertices']:4.2f} SVs/jet")
        if "sdmass_quantiles_gev" in c:
            q = c["sdmass_quantiles_gev"]
            line += (f", soft-drop mass median {q['median']:6.1f} GeV "
                     f"(16-84%: {q['q16']:.1f}-{q['q84']:.1f})")
        lines.append(line)
    if summary.get("ignored"):  # names as repr: a name of the user's own may hold anything
        names = ", ".join(repr(k) for k in summary["ignored"])
        lines.append(f"  note: not part of the layout, ignored (nothing reads them): {names}")
    return "\n".join(lines)


def _groups(jets):
    """(group name, schema features, values per feature over filled slots) of a chunk."""
    track_filled = filled_mask(jets.tracks)
    vertex_filled = filled_mask(jets.vertices)
    yield "tracks", schema.TRACK_FEATURES, jets.track_names, \
        [jets.tracks[:, i, :][track_filled] for i in range(jets.tracks.shape[1])]
    yield "vertices", schema.VERTEX_FEATURES, jets.vertex_names, \
        [jets.vertices[:, i, :][vertex_filled] for i in range(jets.vertices.shape[1])]
    if jets.jet_features is not None:
        yield "jet_features", schema.JET_FEATURES, jets.jet_feature_names, \
            list(jets.jet_features.T)
    if jets.spectators is not None:
        yield "spectators", schema.SPECTATORS, schema.SPECTATOR_NAMES, list(jets.spectators.T)


def _violations(feature, v: np.ndarray) -> int:
    bad = np.zeros(len(v), bool)
    if feature.lo is not None:
        bad |= v < feature.lo
    if feature.hi is not None:
        bad |= v > feature.hi
    if feature.integer:
        bad |= v != np.round(v)
    if feature.values is not None:
        bad |= ~np.isin(v, feature.values)
    return int(bad.sum())


def feature_ranges(path, chunk_size: int = 20_000) -> list[dict]:
    """Per feature over filled slots: min, max, and how many values lie outside the
    documented CMS range (bounds, integer values, allowed values) of `servable.data.schema`."""
    rows: dict[tuple, dict] = {}
    with JetFile(path) as f:
        for start in range(0, len(f), chunk_size):
            jets = f.read(start, start + chunk_size)
            for group, features, names, values in _groups(jets):
                known = {feat.name: feat for feat in features}
                for name, v in zip(names, values, strict=True):
                    row = rows.setdefault((group, name), {
                        "group": group, "feature": name, "n": 0, "min": np.inf,
                        "max": -np.inf, "outside": 0, "documented": _documented(known.get(name))})
                    if len(v) == 0:
                        continue
                    row["n"] += len(v)
                    row["min"] = min(row["min"], float(v.min()))
                    row["max"] = max(row["max"], float(v.max()))
                    if name in known:
                        row["outside"] += _violations(known[name], v)
    return list(rows.values())


def _documented(feature) -> str:
    if feature is None:
        return "not in the schema"
    if feature.values is not None:
        return "{" + ", ".join(f"{x:g}" for x in feature.values) + "}"
    lo = "-inf" if feature.lo is None else f"{feature.lo:g}"
    hi = "inf" if feature.hi is None else f"{feature.hi:g}"
    return f"[{lo}, {hi}]" + (" integer" if feature.integer else "")


def format_ranges(rows: list[dict]) -> str:
    lines = [f"  {'feature':32s} {'min':>11s} {'max':>11s}  documented CMS range"]
    for r in rows:
        flag = f"  <-- {r['outside']} values outside" if r["outside"] else ""
        if r["n"] == 0:
            lines.append(f"  {r['feature']:32s} {'(empty)':>23s}  {r['documented']}")
            continue
        lines.append(f"  {r['feature']:32s} {r['min']:11.4g} {r['max']:11.4g}  "
                     f"{r['documented']}{flag}")
    n_bad = sum(1 for r in rows if r["outside"])
    lines.append(f"  {n_bad} feature(s) with values outside the documented CMS range")
    return "\n".join(lines)
