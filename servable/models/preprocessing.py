"""Preprocessing declared as data (weaver-style): per-feature centre, scale and clip.

Statistics come from filled slots only, and zero-padded slots stay exactly zero after the
transform, so the padding convention (and the IN's closed-form pad handling) survives.
Categorical features (track_quality) keep their codes: centre 0, scale 1, no clip.
The torch module applies the same transform inside the network, so ONNX exports carry it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from servable.data import schema
from servable.data.jets import filled_mask

CLIP = 10.0


def _is_categorical(name: str) -> bool:
    try:
        return schema.lookup(name).categorical
    except KeyError:
        return False


def fit_standardization(values: np.ndarray, names: Sequence[str], slotted: bool) -> dict:
    """Robust centre (median) and scale (half the 16-84% range) per feature.

    values: (n, F, slots) channels-first when `slotted`, else (n, F).
    """
    if slotted:
        filled = filled_mask(values)  # (n, slots)
        per_feature = [values[:, i, :][filled] for i in range(values.shape[1])]
    else:
        per_feature = [values[:, i] for i in range(values.shape[1])]
    centre, scale = [], []
    for name, v in zip(names, per_feature, strict=True):
        if _is_categorical(name) or v.size == 0:
            centre.append(0.0)
            scale.append(1.0)
            continue
        q16, q50, q84 = np.quantile(v, [0.16, 0.5, 0.84])
        s = (q84 - q16) / 2
        if not np.isfinite(s) or s <= 0:
            s = float(np.std(v)) or 1.0
        centre.append(float(q50))
        scale.append(float(s))
    clip = [0.0 if _is_categorical(n) else CLIP for n in names]
    return {"features": list(names), "centre": centre, "scale": scale, "clip": clip}


def identity(names: Sequence[str]) -> dict:
    """The preprocessing of features `names` that changes nothing: centre 0, scale 1 and clip
    0 (no clip) for each."""
    n = len(names)
    return {"features": list(names), "centre": [0.0] * n, "scale": [1.0] * n, "clip": [0.0] * n}


class Standardize(nn.Module):
    """(x - centre) / scale, clipped; padded slots (all-zero columns) stay zero."""

    def __init__(self, spec: dict, slotted: bool):
        super().__init__()
        shape = (1, -1, 1) if slotted else (1, -1)
        self.slotted = slotted
        self.register_buffer("centre", torch.tensor(spec["centre"], dtype=torch.float32)
                             .view(shape))
        self.register_buffer("scale", torch.tensor(spec["scale"], dtype=torch.float32)
                             .view(shape))
        clip = torch.tensor(spec["clip"], dtype=torch.float32)
        self.register_buffer("clip", torch.where(clip > 0, clip, torch.full_like(clip, 1e30))
                             .view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.centre) / self.scale
        z = torch.maximum(torch.minimum(z, self.clip), -self.clip)
        if self.slotted:
            filled = filled_mask(x, keepdims=True)
            z = z * filled.to(z.dtype)
        return z
