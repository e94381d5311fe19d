"""A torch tagger as CMSSW runs weaver models: an ONNX graph on standardised inputs plus the
`preprocess.json` that tells CMSSW how to standardise, clip and pad them.

Every input is channels-first and three-dimensional, (jets, variables, length), as CMSSW's
ONNX producers feed them; a per-jet group (the MLP's jet features) has length 1. Each input
group of the tagger becomes an input of the same name whose variables carry the group's
declared centre, scale and clip (median = centre, norm_factor = 1 / scale, bounds = +-clip,
pad 0: servable's padded slots are zero after standardisation). Networks that also read raw
values get them as separate inputs, as weaver's models do: ParticleNet its neighbour
coordinates (`particles_points`: deta, dphi), ParT the kinematics of its pair features
(`particles_vectors`; `tracks_vectors` on CMS tracks), and both a mask (`particles_mask`,
one variable `<prefix>_mask` that is 1 for every real particle). The outputs are `softmax`
(the class probabilities, first, as CMSSW's producers read them) and `logits`;
`output_names` lists the classes in the bundle's order.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from servable.data.jets import filled_mask
from servable.errors import ServableError
from servable.models.nets import ParTNet, PNNet
from servable.models.preprocessing import identity
from servable.models.taggers import Tagger, TorchTagger
from servable.runtimes.onnx_export import OPSET
from servable.runtimes.preprocess_json import (
    MASK_SUFFIX,
    InputBlock,
    Preprocess,
    VarInfo,
    bounds,
)

OUTPUTS = ("softmax", "logits")
# the raw columns a network reads besides its standardised inputs: input suffix, attribute
RAW_COLUMNS = {PNNet: ("points", "points"), ParTNet: ("vectors", "kinematics")}


class NotExportable(ServableError):
    """A model that weaver's preprocess.json and CMSSW's ONNX producers cannot express."""


def _mask_variable(features) -> str:
    """`part_mask` for JetClass particles, `track_mask` for CMS tracks (weaver's naming)."""
    return features[0].split("_")[0] + MASK_SUFFIX


def cmssw_preprocess(tagger: TorchTagger) -> Preprocess:
    """The preprocess.json of `tagger`'s CMSSW export (see the module docstring)."""
    blocks = []
    for g in tagger.input_spec():
        spec = g.preprocessing or identity(g.features)
        infos = {}
        for name, centre, scale, clip in zip(spec["features"], spec["centre"], spec["scale"],
                                             spec["clip"], strict=True):
            low, high = bounds(float(clip))
            infos[name] = VarInfo(median=float(centre), norm_factor=1.0 / float(scale),
                                  lower_bound=low, upper_bound=high)
        length = g.slots or 1
        blocks.append(InputBlock(g.name, tuple(g.features), infos, length, length))
    raw = _raw_columns(tagger)
    if raw is not None:
        suffix, columns = raw
        (g,) = tagger.input_spec()  # ParT and ParticleNet read one particle group
        names = tuple(g.features[i] for i in columns)
        blocks.append(InputBlock(f"{g.name}_{suffix}", names, {n: VarInfo() for n in names},
                                 g.slots, g.slots))
        mask = _mask_variable(g.features)
        blocks.append(InputBlock(f"{g.name}_mask", (mask,), {mask: VarInfo()}, g.slots,
                                 g.slots))
    return Preprocess(tuple(blocks), tuple(tagger.config["class_names"]))


def _raw_columns(tagger: TorchTagger) -> tuple[str, list[int]] | None:
    for cls, (suffix, attr) in RAW_COLUMNS.items():
        if isinstance(tagger.net, cls):
            return suffix, list(getattr(tagger.net, attr))
    return None


class _OnStandardised(nn.Module):
    """The tagger's network fed as CMSSW feeds it: standardised groups, raw columns, mask.

    The fixed arguments (ParticleNet's points and mask, ParT's pair kinematics and mask)
    come from the network's own `standardize`, given a raw tensor rebuilt from the raw
    columns and the mask: its other columns hold the mask, so that a slot is padding
    exactly when the mask says so (the same `filled_mask` rule as the native model).
    """

    def __init__(self, net: nn.Module, groups, slotted, raw: tuple[str, list[int]] | None,
                 n_features: int):
        super().__init__()
        self.net, self.groups, self.slotted, self.raw = net, list(groups), list(slotted), raw
        self.n_features = n_features

    def forward(self, *inputs):
        std = [x if s else x[:, :, 0] for x, s in
               zip(inputs[:len(self.groups)], self.slotted, strict=True)]
        fixed: tuple = ()
        if self.raw is not None:
            columns, mask = inputs[len(self.groups):]
            where = {c: i for i, c in enumerate(self.raw[1])}
            rebuilt = torch.cat([columns[:, where[c]:where[c] + 1] if c in where else mask
                                 for c in range(self.n_features)], dim=1)
            fixed = self.net.standardize(rebuilt)[1]
        logits = self.net.core_forward(*std, *fixed)
        return torch.softmax(logits, dim=1), logits


def cmssw_example(tagger: TorchTagger, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The CMSSW inputs of raw model inputs `raw`, computed by the native network (for
    tracing): standardised groups (length 1 for a per-jet group), raw columns and mask."""
    with torch.no_grad():
        std, _ = tagger.net.standardize(*tagger.tensors(raw))
    out = {}
    for g, x in zip(tagger.input_spec(), std, strict=True):
        x = x.numpy()
        if g.slots is not None and x.shape[2] < g.slots:  # ParT trims trailing padding
            x = np.pad(x, ((0, 0), (0, 0), (0, g.slots - x.shape[2])))
        out[g.name] = x if g.slots is not None else x[:, :, None]
    spec = _raw_columns(tagger)
    if spec is not None:
        (group,) = tagger.input_names  # the one particle group (tracks or particles)
        out[f"{group}_{spec[0]}"] = raw[group][:, spec[1]]
        out[f"{group}_mask"] = filled_mask(raw[group], keepdims=True).astype(np.float32)
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def export_cmssw_onnx(tagger: Tagger, path) -> Preprocess:
    """Write the CMSSW ONNX graph of `tagger` to `path`; returns its preprocess.json."""
    if not isinstance(tagger, TorchTagger):
        raise NotExportable(f"the {tagger.kind} ({tagger.framework}) has no network that "
                            "CMSSW's ONNX producers can feed: weaver's preprocess.json "
                            "describes the inputs of neural networks; export it with "
                            "`servable export triton` or run its model.onnx directly")
    net = tagger.net.exportable().eval()
    spec = tagger.input_spec()
    raw = _raw_columns(tagger)
    probe = tagger.input_spec().example(4)
    if raw is None and tagger.net.standardize(*tagger.tensors(probe))[1] != ():
        raise NotExportable(f"the {tagger.kind} takes fixed inputs that the CMSSW export "
                            "does not describe")
    prep = cmssw_preprocess(tagger)
    wrapper = _OnStandardised(net, spec.names, [g.slots is not None for g in spec], raw,
                              len(spec.groups[0].features) if raw else 0).eval()
    example = cmssw_example(tagger, probe)
    names = [b.name for b in prep.inputs]
    args = tuple(torch.from_numpy(example[n]) for n in names)
    dynamic = {n: {0: "N"} for n in [*names, *OUTPUTS]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent shapes
        torch.onnx.export(wrapper, args, str(Path(path)), input_names=names,
                          output_names=list(OUTPUTS), dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)
    return prep
