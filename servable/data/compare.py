"""Compare two jet files feature by feature: distributions side by side and distances.

For every feature present in both files (tracks and vertices over filled slots, jet features
and spectators per jet) the Wasserstein-1 distance and the two-sample Kolmogorov-Smirnov
statistic (scipy.stats), and one figure per group (PNG and PDF) with both histograms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servable.data.io import open_jets
from servable.data.summary import _groups
from servable.figures import figure, save
from servable.files import output_dir

MAX_VALUES = 200_000  # per feature and file: a seeded subsample beyond this


def _collect(path, chunk_size: int = 20_000) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, list]] = {}
    with open_jets(path) as f:
        for start in range(0, len(f), chunk_size):
            for group, _, names, values in _groups(f.read(start, start + chunk_size)):
                g = out.setdefault(group, {})
                for name, v in zip(names, values, strict=True):
                    g.setdefault(name, []).append(np.asarray(v, np.float64))
    rng = np.random.default_rng(0)
    result = {}
    for group, features in out.items():
        result[group] = {}
        for name, parts in features.items():
            v = np.concatenate(parts)
            if len(v) > MAX_VALUES:
                v = rng.choice(v, MAX_VALUES, replace=False)
            result[group][name] = v
    return result


def _draw(ax, name, x, y, labels):
    both = np.concatenate([x, y])
    lo, hi = np.percentile(both, [0.5, 99.5]) if len(both) else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
    for v, label in ((x, labels[0]), (y, labels[1])):
        if len(v):
            ax.hist(np.clip(v, bins[0], bins[-1]), bins, histtype="step", density=True,
                    label=label)
    ax.set_title(name, fontsize=8)
    ax.tick_params(labelsize=6)


def compare(a, b, out_dir, labels: tuple[str, str] | None = None,
            force: bool = False) -> list[dict]:
    """Distances per feature between files `a` and `b`; figures written into `out_dir`
    (over existing figures only with `force`)."""
    from scipy import stats

    labels = labels or (Path(a).name, Path(b).name)
    va, vb = _collect(a), _collect(b)
    out_dir = output_dir(out_dir, inputs=(a, b))
    rows = []
    for group in va:
        names = [n for n in va[group] if n in vb.get(group, {})]
        if not names:
            continue
        ncols = 5
        nrows = -(-len(names) // ncols)
        with figure(out_dir / f"compare_{group}.png", figsize=(3.2 * ncols, 2.4 * nrows),
                    nrows=nrows, ncols=ncols, squeeze=False, force=force) as (fig, axes):
            for ax, name in zip(axes.flat, names, strict=False):
                _draw(ax, name, va[group][name], vb[group][name], labels)
            for ax in list(axes.flat)[len(names):]:
                ax.axis("off")
            axes.flat[0].legend(fontsize=6)
            fig.tight_layout()
            save(fig, out_dir / f"compare_{group}.pdf", force=force)
        for name in names:
            x, y = va[group][name], vb[group][name]
            row = {"group": group, "feature": name, "n_a": len(x), "n_b": len(y),
                   "wasserstein": float("nan"), "ks": float("nan")}
            if len(x) and len(y):
                row["wasserstein"] = float(stats.wasserstein_distance(x, y))
                row["ks"] = float(stats.ks_2samp(x, y).statistic)
            rows.append(row)
    return rows


def format_comparison(rows: list[dict]) -> str:
    """The `compare` rows as a text table: per feature, the Wasserstein distance and the
    Kolmogorov-Smirnov statistic (nan where either file has no values)."""
    lines = [f"  {'feature':32s} {'Wasserstein':>12s} {'KS':>7s}"]
    for r in rows:
        lines.append(f"  {r['feature']:32s} {r['wasserstein']:12.4g} {r['ks']:7.3f}")
    return "\n".join(lines)
