"""Streamed summary of a jet file: counts per class, multiplicities, soft-drop mass quantiles,
feature ranges against the documented ones."""

from __future__ import annotations

import numpy as np

from servable.data import schema
from servable.data.h5io import JetFile
from servable.data.jets import filled_mask

# the schema features of each input group, where the schema documents them
SCHEMA_FEATURES = {"tracks": schema.TRACK_FEATURES, "vertices": schema.VERTEX_FEATURES,
                   "jet_features": schema.JET_FEATURES,
                   "particles": (*schema.JETCLASS_PARTICLE_FEATURES,
                                 *schema.JETCLASS_DERIVED_FEATURES)}
# what a slotted group's objects are called in the summary line
OBJECT_NAMES = {"tracks": "tracks", "vertices": "SVs", "particles": "particles"}


def summarize(path, chunk_size: int = 20_000) -> dict:
    """Summarise `path` chunk by chunk (each chunk validated as it is read): jets per class,
    the mean filled slots per jet of every slotted group, soft-drop mass quantiles.

    Returns
    -------
    dict
        path, split, n_jets, classes ({class: {jets, mean_<group>, sdmass_quantiles_gev}}),
        provenance.
    """
    with JetFile(path) as f:
        attrs, n, names = f.attrs, len(f), tuple(f.class_names)
        counts = np.zeros(len(names), dtype=int)
        sums: dict[str, np.ndarray] = {}
        sdmass: list[list[np.ndarray]] = [[] for _ in names]
        for start in range(0, n, chunk_size):
            jets = f.read(start, start + chunk_size)
            cls = jets.class_index if jets.labels is not None else np.zeros(len(jets), int)
            mass = _sdmass(jets)
            for c in range(len(names)):
                sel = cls == c
                counts[c] += sel.sum()
                for g in jets.groups.values():
                    if g.slotted:
                        sums.setdefault(g.name, np.zeros(len(names)))[c] += g.filled()[sel].sum()
                if mass is not None:
                    sdmass[c].append(mass[sel])
    out = {"path": str(path), "split": f.split, "n_jets": int(n), "classes": {}}
    for c, label in enumerate(names):
        if counts[c] == 0:
            continue
        entry = {"jets": int(counts[c])}
        entry.update({f"mean_{g}": float(s[c] / counts[c]) for g, s in sums.items()})
        if sdmass[c]:
            q = np.quantile(np.concatenate(sdmass[c]), [0.16, 0.5, 0.84])
            entry["sdmass_quantiles_gev"] = {"q16": float(q[0]), "median": float(q[1]),
                                             "q84": float(q[2])}
        out["classes"][label] = entry
    out["provenance"] = attrs.get("provenance")
    out["ignored"] = list(f.ignored)
    return out


def _sdmass(jets) -> np.ndarray | None:
    """The soft-drop mass per jet: a CMS spectator, or a JetClass jet feature."""
    if jets.spectators is not None:
        return jets.spectator("fj_sdmass")
    if "jet_sdmass" in jets.jet_feature_names:
        return jets.group("jet_features").column("jet_sdmass")
    return None


def format_summary(summary: dict) -> str:
    """The summary as printed by `servable data inspect`: one line per class."""
    lines = [f"{summary['path']}: {summary['n_jets']} jets ({summary['split']} layout, valid)"]
    for label, c in summary["classes"].items():
        parts = [f"{c[f'mean_{g}']:5.1f} {OBJECT_NAMES.get(g, g)}/jet"
                 for g in OBJECT_NAMES if f"mean_{g}" in c]
        line = f"  {label:>4}: {c['jets']:7d} jets, " + ", ".join(parts)
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
    """(group name, schema features, feature names, values per feature over filled slots) of
    a chunk, for every input group and the spectators."""
    for g in jets.groups.values():
        if g.slotted:
            filled = filled_mask(g.values)
            values = [g.values[:, i, :][filled] for i in range(len(g.features))]
        else:
            values = list(g.values.T)
        yield g.name, SCHEMA_FEATURES.get(g.name, ()), g.features, values
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
    """The `feature_ranges` rows as a text table: per feature, min and max over filled slots
    ("(empty)" without any), the documented range and how many values lie outside it; then
    the number of features with values outside."""
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
