"""What an explanation must beat: model-free per-slot scores of the decay truth and the null
explanations (uniform over the filled slots, random) that physics associations are read
against.

A per-track relevance that picks the b/c-decay tracks is only evidence about the model when it
does better than a fixed function of the inputs with no model at all: the impact-parameter
significance alone picks them with a high AUC on generated H->bb jets.
"""

from __future__ import annotations

import numpy as np

from servable.data.jets import Jets, filled_mask

# per-slot inputs whose |value| is a model-free guess of "from the decay" (those present)
PROXIES = ("track_dxysig", "trackBTag_Sip2dSig", "trackBTag_Sip3dSig", "track_dxy",
           "track_drminsv", "part_d0val", "part_dzval")


def model_free_scores(jets: Jets) -> dict[str, np.ndarray]:
    """Per-slot scores of the leading slotted group (tracks, particles) that use no model.

    Returns
    -------
    dict
        name -> (jets, slots): |feature| for each proxy the group has, `slot order` (leading
        slots first), `sum of |standardised features|` (each feature standardised over the
        filled slots) and `uniform` (the same for every slot: AUC 0.5); empty when the jets
        have no slotted group.
    """
    g = jets.leading_slotted()
    if g is None:
        return {}
    x = np.asarray(g.values, np.float64)
    filled = filled_mask(x)
    out = {f"|{name}|": np.abs(g.column(name)).astype(np.float64)
           for name in PROXIES if name in g.features}
    out["slot order"] = np.broadcast_to(-np.arange(x.shape[2], dtype=np.float64),
                                        filled.shape).copy()
    rows = x.transpose(0, 2, 1)[filled]
    mean, std = rows.mean(0), rows.std(0)
    z = (x - mean[None, :, None]) / np.where(std > 0, std, 1.0)[None, :, None]
    out["sum of |standardised features|"] = np.abs(z).sum(1) * filled
    out["uniform"] = filled.astype(np.float64)
    return out


def uniform_explanation(per_jet_shape: tuple[int, int] | None,
                        filled: np.ndarray | None) -> tuple[np.ndarray | None,
                                                            np.ndarray | None]:
    """The null explanation: equal relevance on every feature of a jet and on every filled
    slot, nothing on padding (the structure any explanation gets for free from the
    padding). Returns (per_jet (jets, features) or None, slot (jets, slots) or None)."""
    per_jet = None if per_jet_shape is None else np.ones(per_jet_shape)
    slot = None if filled is None else np.asarray(filled, np.float64)
    return per_jet, slot


def random_explanation(per_jet_shape: tuple[int, int] | None, filled: np.ndarray | None,
                       seed: int = 0) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A random explanation with the same padding structure as `uniform_explanation`."""
    rng = np.random.default_rng(seed)
    per_jet = None if per_jet_shape is None else rng.random(per_jet_shape)
    slot = None if filled is None else rng.random(np.shape(filled)) * filled
    return per_jet, slot
