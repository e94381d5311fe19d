"""Methods that read the network's hidden layers: relative neural activity (RNA) with NAP
diagrams (paper Eq. 7, Figure 8), and linear probes for physics observables.

Hidden activations come from forward hooks (removed afterwards; the model is unchanged). For
the IN they are taken on the dense published formulation, whose layers see every edge and
node one by one, padded ones included, exactly as the published model does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from servable.data.jets import Jets, filled_mask
from servable.errors import ServableError
from servable.explain.base import Explanation, Method
from servable.explain.modelstate import explaining
from servable.models.nets import recorded
from servable.models.spec import leading_slotted

SPARSE_BELOW = 0.2


def hidden_activations(tagger, jets: Jets, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Per hidden layer the network declares, the activations of each node summed over
    edges/nodes: (n_jets, width)."""
    net = tagger.net
    modules = net.hidden_layers()
    if not modules:
        raise ServableError(f"the {tagger.kind} network declares no hidden layers")
    tensors = tagger.tensors(tagger.inputs(jets))
    with explaining(net), recorded(modules) as store, torch.no_grad():
        for start in range(0, len(jets), batch_size):
            batch = [t[start:start + batch_size] for t in tensors]
            store["_batch"][0] = batch[0].shape[0]
            std, _ = net.standardize(*batch)
            net.hidden_forward(*std)
    return {name: torch.cat(store[name]).numpy() for name in modules}


class RelativeNeuralActivity(Method):
    """Relative neural activity per hidden node and class (paper Eq. 7), NAP diagrams and
    sparsity (the share of nodes with RNA < 0.2). IN and MLP.
    """

    name = "rna"
    applies_to = ("in", "mlp")
    splittable = False  # normalised over the whole set

    @classmethod
    def figures(cls, explanation: Explanation, out, force: bool = False) -> list:
        plot_nap(explanation, Path(out) / "nap.png", force)
        return [Path(out) / "nap.png", *super().figures(explanation, out, force)]

    def attribute(self, jets: Jets, target: int = 1) -> Explanation:
        acts = hidden_activations(self.tagger, jets)
        cls = jets.labels.argmax(1) if jets.labels is not None else \
            self.tagger.predict(jets).argmax(1)
        rna, sparsity = {}, {}
        for c, label in enumerate(self.tagger.config["class_names"]):
            sel = cls == c
            if not sel.any():
                continue
            rna[label], sparsity[label] = {}, {}
            for layer, a in acts.items():
                total = a[sel].sum(0)
                r = total / total.max() if total.max() > 0 else total
                rna[label][layer] = r
                sparsity[label][layer] = float(np.mean(r < SPARSE_BELOW))
        all_nodes = [v for per in rna.values() for v in per.values()]
        overall = float(np.mean(np.concatenate(all_nodes) < SPARSE_BELOW))
        return Explanation(
            method=self.name, target=target, model=self.tagger.kind,
            feature_names=self.feature_names(), feature_relevance={},
            extras={"rna": rna, "sparsity": sparsity, "sparsity_overall": overall,
                    "sparse_below": SPARSE_BELOW,
                    "definition": "RNA(node) = sum over jets of a class of the node's "
                                  "activation / max over the layer's nodes (paper Eq. 7)"})


PANELS_PER_ROW = 5


def plot_nap(explanation: Explanation, path, force: bool = False) -> None:
    """NAP diagram: RNA per node (columns) and layer (rows), one panel per class (at most
    five in a row)."""
    from servable.figures import figure

    rna = explanation.extras["rna"]
    classes = list(rna)
    layers = list(next(iter(rna.values())))
    width = max(len(v) for v in next(iter(rna.values())).values())
    ncols = min(len(classes), PANELS_PER_ROW)
    nrows = -(-len(classes) // ncols)
    size = (5 * ncols, (0.4 * len(layers) + 1.5) * nrows)
    with figure(path, size, nrows=nrows, ncols=ncols, squeeze=False, layout="constrained",
                force=force) as (fig, axes):
        for ax in axes.flat[len(classes):]:
            ax.set_axis_off()
        for ax, label in zip(axes.flat, classes, strict=False):
            grid = np.full((len(layers), width), np.nan)
            for i, layer in enumerate(layers):
                grid[i, : len(rna[label][layer])] = rna[label][layer]
            im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_yticks(range(len(layers)), layers)
            ax.set_xlabel("node")
            sparse = np.mean(grid[~np.isnan(grid)] < SPARSE_BELOW)
            ax.set_title(f"{label}: sparsity {sparse:.2f}")
        fig.colorbar(im, ax=axes.ravel().tolist(), label="relative neural activity")


# JetClass jet observables the probes regress to (when the jets carry them)
JETCLASS_PROBED = ("jet_sdmass", "jet_tau21", "jet_tau32", "jet_nparticles")


def observables(jets: Jets) -> dict[str, np.ndarray]:
    """What the probes regress to: CMS jets, the number of SVs, the soft-drop mass and the
    generator's number of b hadrons; JetClass jets, the soft-drop mass, tau21, tau32 and the
    multiplicity."""
    out = {"n_vertices": jets.n_vertices.astype(float)} if jets.has("vertices") else {}
    if jets.spectators is not None:
        out["fj_sdmass"] = jets.spectator("fj_sdmass").astype(float)
    if "n_b_hadrons" in jets.extras:
        out["n_b_hadrons"] = jets.extras["n_b_hadrons"].astype(float)
    for name in JETCLASS_PROBED:
        if jets.jet_features is not None and name in jets.jet_feature_names:
            out[name] = jets.jet_features[:, jets.jet_feature_names.index(name)].astype(float)
    return out


class LinearProbes(Method):
    """Ridge regression from each stage's representation to physics observables (CV R^2)."""

    name = "probes"
    applies_to = ("in", "part", "particlenet")
    splittable = False  # cross-validated over the whole set

    @classmethod
    def figures(cls, explanation: Explanation, out, force: bool = False) -> list:
        plot_probes(explanation, Path(out) / "probes.png", force)
        return [Path(out) / "probes.png", *super().figures(explanation, out, force)]

    def attribute(self, jets: Jets, target: int = 1, folds: int = 5) -> Explanation:
        from sklearn.linear_model import RidgeCV
        from sklearn.model_selection import cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        stages = self._representations(jets)
        targets = observables(jets)
        scores: dict[str, dict[str, float]] = {}
        for obs, y in targets.items():
            if np.std(y) == 0:
                continue
            scores[obs] = {}
            for stage, x in stages.items():
                model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 7)))
                r2 = cross_val_score(model, x, y, cv=folds, scoring="r2")
                scores[obs][stage] = float(np.mean(r2))
        return Explanation(
            method=self.name, target=target, model=self.tagger.kind,
            feature_names=self.feature_names(), feature_relevance={},
            extras={"r2": scores, "stages": list(stages), "folds": folds,
                    "definition": "cross-validated R^2 of a ridge regression from the stage's "
                                  "representation to the observable"})

    def _representations(self, jets: Jets, batch_size: int = 128) -> dict[str, np.ndarray]:
        """The mean filled slot of the particle group (inputs), then each stage the network
        declares."""
        inputs = self.tagger.inputs(jets)
        t = leading_slotted(inputs)
        mask = filled_mask(t, keepdims=True)
        out = {"inputs": (t * mask).sum(2) / np.maximum(mask.sum(2), 1)}
        tensors = self.tagger.tensors(inputs)
        parts: dict[str, list] = {}
        with explaining(self.tagger.net), torch.no_grad():
            for start in range(0, len(jets), batch_size):
                stages = self.tagger.net.stages(*(x[start:start + batch_size] for x in tensors))
                for name, value in stages.items():
                    parts.setdefault(name, []).append(value.numpy())
        out.update({name: np.concatenate(v) for name, v in parts.items()})
        return out


def plot_probes(explanation: Explanation, path, force: bool = False) -> None:
    """Cross-validated R^2 of the linear probes per network stage, one line per observable,
    written to `path` (PNG or PDF by its suffix; never over an existing file without `force`)."""
    from servable.figures import figure

    r2 = explanation.extras["r2"]
    stages = explanation.extras["stages"]
    with figure(path, (6, 4), force=force) as (fig, ax):
        for obs, per in r2.items():
            ax.plot(range(len(stages)), [per[s] for s in stages], marker="o", label=obs)
        ax.set_xticks(range(len(stages)), stages, rotation=30, ha="right")
        ax.set_ylabel("cross-validated R$^2$")
        ax.set_title(f"{explanation.model}: linear probes")
        ax.legend()
        ax.grid(alpha=0.3)
