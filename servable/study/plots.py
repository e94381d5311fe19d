"""The study's figures, each written as PNG and PDF: per-feature dAUC (Figure 5), cumulative
masking (Table 9), LRP per feature and per slot (Figure 6), input correlations (Figure 7), and
NAP diagrams in the paper's style (Figures 8 and 9: QCD as negative RNA beside H->bb, and the
absolute difference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servable.figures import figure

GROUP_COLOURS = {"tracks": "C0", "vertices": "C1", "jet": "C2"}


def both(stem: Path, draw, figsize=(6, 4), force: bool = False, **kw) -> list[Path]:
    """Draw with `draw(fig, axes)` into STEM.png and STEM.pdf."""
    paths = []
    for suffix in (".png", ".pdf"):
        path = Path(stem).with_suffix(suffix)
        with figure(path, figsize, force=force, **kw) as (fig, axes):
            draw(fig, axes)
        paths.append(path)
    return paths


def plot_dauc(masking: dict, stem: Path, title: str, force: bool = False) -> list[Path]:
    """Figure 5: the AUC lost (percent) when each feature alone is masked, in input order."""
    names = list(masking["delta_auc"])
    values = 100 * np.array([masking["delta_auc"][n] for n in names])
    colours = [GROUP_COLOURS.get(masking["groups"][n], "C2") for n in names]

    def draw(fig, ax):
        ax.bar(range(len(names)), values, color=colours)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_ylabel("AUC lost when masked (%)")
        ax.set_title(f"{title}: per-feature masking ({masking['replacement']})")
        ax.grid(alpha=0.3, axis="y")

    return both(stem, draw, (10, 5), force)


def plot_cumulative(masking: dict, stem: Path, title: str, force: bool = False) -> list[Path]:
    """Table 9: AUC and fidelity with every feature below each dAUC threshold masked."""
    rows = masking["cumulative"]

    def draw(fig, ax):
        x = range(len(rows))
        ax.plot(x, [r["auc"] for r in rows], marker="o", label="AUC")
        ax.plot(x, [r["fidelity"] for r in rows], marker="s", label="fidelity")
        ax.set_xticks(x, [f"<{r['threshold']:g}%\n({r['n_masked']})" for r in rows])
        ax.set_xlabel("dAUC threshold (features masked)")
        ax.set_title(f"{title}: cumulative masking")
        ax.legend()
        ax.grid(alpha=0.3)

    return both(stem, draw, (6, 4), force)


def plot_nap(rna: dict, stem: Path, title: str, force: bool = False) -> list[Path]:
    """NAP diagram: per layer a QCD column (RNA shown negative) beside an H->bb column, and
    the map of |RNA(H->bb) - RNA(QCD)| (the upstream notebook's two panels)."""
    qcd, hbb = rna["QCD"], rna["Hbb"]
    layers = list(hbb)
    width = max(len(v) for v in hbb.values())
    signed = np.full((width, 2 * len(layers)), np.nan)
    diff = np.full((width, len(layers)), np.nan)
    for i, layer in enumerate(layers):
        q, h = np.asarray(qcd[layer]), np.asarray(hbb[layer])
        signed[: len(q), 2 * i], signed[: len(h), 2 * i + 1] = -q, h
        diff[: len(h), i] = np.abs(h - q)

    def draw(fig, axes):
        for ax in axes[0]:
            ax.set_facecolor("black")
        im = axes[0][0].imshow(signed, aspect="auto", cmap="bwr", vmin=-1, vmax=1,
                               origin="lower", interpolation="nearest")
        axes[0][0].set_xticks(np.arange(len(layers)) * 2 + 0.5, layers, rotation=90)
        axes[0][0].set_title(f"{title}: RNA (QCD < 0, H->bb > 0)")
        fig.colorbar(im, ax=axes[0][0])
        im = axes[0][1].imshow(diff, aspect="auto", cmap="Reds", vmin=0, vmax=1,
                               origin="lower", interpolation="nearest")
        axes[0][1].set_xticks(range(len(layers)), layers, rotation=90)
        axes[0][1].set_title("|RNA(H->bb) - RNA(QCD)|")
        fig.colorbar(im, ax=axes[0][1])
        for ax in axes[0]:
            ax.set_ylabel("node")

    return both(stem, draw, (11, 5), force, ncols=2, squeeze=False, layout="constrained")


def plot_lrp(relevance: dict, stem: Path, title: str, force: bool = False) -> list[Path]:
    """Figure 6: mean share of |LRP relevance| per feature and per slot (tracks, then SVs,
    each ordered by relative energy), QCD jets explained as QCD, H->bb jets as H->bb."""
    classes = list(relevance["per_feature"])

    def bars(ax, per_class: dict, labels: list[str]):
        x = np.arange(len(labels))
        w = 0.8 / len(classes)
        for i, c in enumerate(classes):
            ax.bar(x + (i - (len(classes) - 1) / 2) * w, per_class[c], w, label=c)
        ax.set_xticks(x, labels, rotation=90, fontsize=7)
        ax.legend()
        ax.grid(alpha=0.3, axis="y")

    def draw(fig, axes):
        names = relevance["feature_names"]
        bars(axes[0][0], {c: [relevance["per_feature"][c][n] for n in names] for c in classes},
             names)
        axes[0][0].set_ylabel("share of |relevance|")
        axes[0][0].set_title(f"{title}: LRP per feature")
        slots = [f"track {i}" for i in range(len(relevance["per_slot"][classes[0]]["tracks"]))] \
            + [f"SV {i}" for i in range(len(relevance["per_slot"][classes[0]]["vertices"]))]
        bars(axes[1][0], {c: [*relevance["per_slot"][c]["tracks"],
                              *relevance["per_slot"][c]["vertices"]] for c in classes}, slots)
        axes[1][0].set_ylabel("share of |relevance|")
        axes[1][0].set_title("per slot, by decreasing relative energy (erel)")

    return both(stem, draw, (12, 9), force, nrows=2, squeeze=False)


def plot_correlations(data: dict, stem: Path, force: bool = False) -> list[Path]:
    """Figure 7: sv_ptrel against sv_pt and sv_erel (filled SV slots), and the track_quality
    distribution of each class."""
    def draw(fig, axes):
        axes = axes[0]
        for c, points in data["scatter"].items():
            axes[0].scatter(points["sv_ptrel"], points["sv_pt"], s=4, alpha=0.4, label=c,
                            rasterized=True)
            axes[1].scatter(points["sv_ptrel"], points["sv_erel"], s=4, alpha=0.4, label=c,
                            rasterized=True)
        for ax, y in ((axes[0], "sv_pt"), (axes[1], "sv_erel")):
            rho = data["spearman"][f"sv_ptrel-{y}"]
            ax.set_xlabel("sv_ptrel")
            ax.set_ylabel(y + (" [GeV]" if y == "sv_pt" else ""))
            ax.set_title(f"Spearman rho = {rho:.2f}")
            ax.legend()
        codes = data["track_quality"]["codes"]
        w = 0.4
        for i, (c, shares) in enumerate(data["track_quality"]["shares"].items()):
            axes[2].bar(np.arange(len(codes)) + (i - 0.5) * w, shares, w, label=c)
        axes[2].set_xticks(range(len(codes)), [f"{c:g}" for c in codes])
        axes[2].set_xlabel("track_quality")
        axes[2].set_ylabel("share of tracks")
        axes[2].set_title(f"TV distance {data['track_quality']['tv_distance']:.3f}")
        axes[2].legend()

    return both(stem, draw, (15, 4.5), force, ncols=3, squeeze=False)
