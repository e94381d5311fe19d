"""Attention maps of the ParticleTransformer: per layer and head, averaged per class.

Particle layers give (slot x slot) maps; class-attention layers give the attention of the
class token to each slot. Maps are kept per class of the model (every class with jets: the
true class when the jets are labelled, the predicted one otherwise), each entry averaged over
the jets of the class in which both slots are filled (an average over all jets would mostly
show how often a slot is filled), and cut at the last slot any jet fills.
`extras["slot_relevance"]` holds, per jet, the last class layer's
attention to each track slot (heads averaged); padded slots get exactly zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from servable.data.jets import Jets, filled_mask
from servable.explain.base import Explanation, Method
from servable.explain.modelstate import explaining


class Attention(Method):
    """ParT attention maps per layer and head, averaged per class, and the class token's
    attention per track slot.
    """

    name = "attention"
    applies_to = ("part",)
    splittable = False  # maps averaged over the whole set

    @classmethod
    def figures(cls, explanation: Explanation, out, force: bool = False) -> list:
        plot_attention(explanation, Path(out) / "attention.png", force=force)
        return [Path(out) / "attention.png", *super().figures(explanation, out, force)]

    def attribute(self, jets: Jets, target: int = 1, batch_size: int = 256) -> Explanation:
        (x,) = self.tagger.inputs(jets).values()  # ParT reads one particle group
        n_slots = x.shape[2]
        names = list(self.tagger.config["class_names"])
        classes = range(len(names))
        cls = jets.labels.argmax(1) if jets.labels is not None else \
            self.tagger.predict(jets).argmax(1)
        sums, counts = {}, np.zeros(len(names))
        slot_relevance = np.zeros((len(jets), n_slots))
        filled = filled_mask(x)  # (n, slots)
        keys = np.concatenate([np.ones((len(jets), 1), bool), filled], axis=1)  # class + slots
        pairs = {k: filled[cls == k].astype(float).T @ filled[cls == k].astype(float)
                 for k in classes}
        cls_pairs = {k: keys[cls == k].sum(0).astype(float)[None, :] for k in classes}
        with explaining(self.tagger.net), torch.no_grad():
            for start in range(0, len(jets), batch_size):
                xb = torch.from_numpy(x[start:start + batch_size])
                _, details = self.tagger.net(xb, return_details=True)
                c = cls[start:start + batch_size]
                for layer, w in enumerate(details["attention"]):
                    w = w.numpy()  # (B, heads, queries, keys), slots trimmed to the batch
                    if w.shape[2] == 1:  # class attention: keys are the class token + slots
                        w = np.pad(w, [(0, 0), (0, 0), (0, 0), (0, n_slots + 1 - w.shape[3])])
                    else:  # particle attention: slots x slots; padded queries do not count
                        extra = n_slots - w.shape[3]
                        w = np.pad(w, [(0, 0), (0, 0), (0, extra), (0, extra)])
                        w = w * filled[start:start + len(xb), None, :, None]
                    for k in np.unique(c):
                        sums[(k, layer)] = sums.get((k, layer), 0) + w[c == k].sum(0)
                last = details["attention"][-1].numpy().mean(1)[:, 0, 1:]  # drop the cls key
                slot_relevance[start:start + len(xb), : last.shape[1]] = last
                counts += np.bincount(c, minlength=len(names))

        width = int(filled.sum(1).max(initial=1))  # slots beyond every jet's last: all zero

        def average(k, layer):
            total = sums[(k, layer)]  # (heads, queries, keys)
            n = pairs[k] if total.shape[1] > 1 else cls_pairs[k]
            mean = np.divide(total, n[None], out=np.zeros_like(total), where=n[None] > 0)
            return mean[:, :width, :width] if total.shape[1] > 1 else mean[:, :, :width + 1]

        n_layers = len(details["attention"])
        maps = {names[k]: [average(k, layer) for layer in range(n_layers)]
                for k in classes if counts[k] > 0}
        slot_relevance *= filled
        per_slot = slot_relevance.sum(0) / np.maximum(filled.sum(0), 1)
        return Explanation(
            method=self.name, target=target, model=self.tagger.kind,
            feature_names=self.feature_names(),
            feature_relevance={f"track slot {i}": float(v) for i, v in enumerate(per_slot)
                               if filled[:, i].any()},
            extras={"maps": maps, "slot_relevance": slot_relevance,
                    "jets_per_class": {names[k]: int(counts[k]) for k in classes
                                       if counts[k] > 0},
                    "layers": self.tagger.net.attention_layers(),
                    "relevance_label": "mean class-token attention to the slot"})


def plot_attention(explanation: Explanation, path, max_slots: int = 30,
                   force: bool = False) -> None:
    """The particle-attention maps (heads averaged, cut to the first `max_slots` slots), one row
    per class and one column per particle layer, written to `path` (PNG or PDF by its suffix;
    never over an existing file without `force`); class-attention layers are not drawn."""
    from servable.figures import figure

    maps = explanation.extras["maps"]
    n_particle = explanation.extras["layers"]["particle"]
    classes = list(maps)
    with figure(path, (3.2 * n_particle, 3 * len(classes)), dpi=110, nrows=len(classes),
                ncols=n_particle, squeeze=False, force=force) as (fig, axes):
        for r, label in enumerate(classes):
            for layer in range(n_particle):
                ax = axes[r, layer]
                ax.imshow(np.asarray(maps[label][layer]).mean(0)[:max_slots, :max_slots],
                          cmap="magma")
                ax.set_title(f"{label}, layer {layer + 1}", fontsize=9)
                ax.set_xlabel("key slot", fontsize=8)
                ax.set_ylabel("query slot", fontsize=8)
