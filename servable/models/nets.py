"""The networks behind the torch taggers, with the one interface explanation methods use.

Every `TaggerNet` takes the raw input groups in order and exposes:

* `standardize(*inputs) -> (standardised, fixed)`: the tensors attributions refer to (the
  preprocessed inputs the core sees) and fixed extra arguments (ParT: pair kinematics and
  mask);
* `core_forward(*standardised, *fixed)`: logits from those (gradients, LRP, IG, SHAP);
* `hidden_layers()` and `hidden_forward(*standardised)`: the layers whose activations RNA
  reads, and a forward in which every node and edge passes through them;
* `stages(*inputs)`: per-jet representations after each stage, for linear probes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn

from servable.data.jets import filled_mask
from servable.models.interaction_network import InteractionNetwork
from servable.models.particle_transformer import ParticleTransformer, kinematics_from_vectors

IN_LAYERS = ("fr1", "fr2", "fr3", "fr1_pv", "fr2_pv", "fr3_pv", "fo1", "fo2", "fo3")


@contextmanager
def recorded(modules: dict[str, nn.Module]):
    """Record ReLU(output) of each module, summed over the edges/nodes of each jet.

    `store["_batch"][0]` must hold the batch size of the forward being recorded.
    """
    store: dict[str, list] = {name: [] for name in modules}
    store["_batch"] = [0]
    handles = []

    def make(name):
        def hook(module, args, output):
            a = torch.relu(output.detach())
            store[name].append(a.reshape(store["_batch"][0], -1, a.shape[-1]).sum(1))
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make(name)))
        yield store
    finally:
        for h in handles:
            h.remove()


class TaggerNet(nn.Module, ABC):
    """Base of the torch taggers' networks: forward = core_forward(standardize(inputs))."""

    def forward(self, *inputs):
        std, fixed = self.standardize(*inputs)
        return self.core_forward(*std, *fixed)

    @abstractmethod
    def standardize(self, *inputs) -> tuple[list[torch.Tensor], tuple]:
        """The preprocessed inputs attributions refer to, and fixed extra arguments."""

    @abstractmethod
    def core_forward(self, *args) -> torch.Tensor:
        """Logits from the standardised inputs and the fixed arguments."""

    def hidden_layers(self) -> dict[str, nn.Module]:
        """Hidden layers for relative neural activity; empty when not defined."""
        return {}

    def hidden_forward(self, *std) -> torch.Tensor:
        """The forward through which RNA records the activations of `hidden_layers`, from the
        standardised inputs; by default `core_forward`, enough where every node already passes
        through those layers there (the MLP)."""
        return self.core_forward(*std)

    def stages(self, *inputs) -> dict[str, torch.Tensor]:
        """Per-jet representation (n, width) after each stage, for linear probes; a network
        without stages has none to probe (probes apply to the IN, ParT and ParticleNet)."""
        return {}

    def exportable(self) -> nn.Module:
        """The module the ONNX exporter traces: the same function, in a traceable form."""
        return self


class INNet(TaggerNet):
    def __init__(self, track_norm, vertex_norm, core: InteractionNetwork):
        super().__init__()
        self.track_norm, self.vertex_norm, self.core = track_norm, vertex_norm, core

    def standardize(self, tracks, vertices):
        return [self.track_norm(tracks), self.vertex_norm(vertices)], ()

    def core_forward(self, tracks, vertices, lrp_rule=None):
        """Logits; `lrp_rule` is passed to the IN's split first layers (LRP)."""
        return self.core(tracks, vertices, lrp_rule=lrp_rule)

    def hidden_layers(self):
        return {name: getattr(self.core, name) for name in IN_LAYERS}

    def hidden_forward(self, tracks, vertices):
        """The dense published formulation: its layers see every edge and node one by one,
        padded ones included, exactly as the published model does."""
        return self.core.dense_forward(tracks, vertices)

    def stages(self, tracks, vertices):
        layers = {"edges (fr3)": self.core.fr3, "track-SV edges (fr3_pv)": self.core.fr3_pv,
                  "nodes (fo3)": self.core.fo3}
        with recorded(layers) as store:
            store["_batch"][0] = tracks.shape[0]
            self.hidden_forward(*self.standardize(tracks, vertices)[0])
        return {name: store[name][0] for name in layers}


class MLPNet(TaggerNet):
    """A dense network on the groups it reads (`groups`, in input order): the jet-level
    features, the `n_lead` leading track (particle) slots and every vertex slot, flattened."""

    NORMS = {"tracks": "track_norm", "particles": "particle_norm", "vertices": "vertex_norm",
             "jet_features": "jet_norm"}

    def __init__(self, groups: Sequence[str], norms: dict[str, nn.Module], n_lead: int,
                 n_in: int, hidden: Sequence[int], n_classes: int):
        super().__init__()
        self.groups = list(groups)
        for group, attr in self.NORMS.items():  # absent groups: identity, no parameters
            setattr(self, attr, norms.get(group, nn.Identity()))
        self.n_lead = n_lead
        layers, d = [], n_in
        for width in hidden:
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        layers.append(nn.Linear(d, n_classes))
        self.mlp = nn.Sequential(*layers)

    def standardize(self, *inputs):
        return [getattr(self, self.NORMS[g])(x)
                for g, x in zip(self.groups, inputs, strict=True)], ()

    def core_forward(self, *inputs):
        parts = dict(zip(self.groups, inputs, strict=True))
        flat = [parts["jet_features"]] if "jet_features" in parts else []
        for group in ("tracks", "particles"):  # the leading slots of the particle group
            if group in parts:
                flat.append(parts[group][:, :, : self.n_lead].flatten(1))
        if "vertices" in parts:
            flat.append(parts["vertices"].flatten(1))
        return self.mlp(torch.cat(flat, dim=1))

    def hidden_layers(self):
        linears = [m for m in self.mlp if isinstance(m, nn.Linear)][:-1]
        return {f"dense{i + 1}": m for i, m in enumerate(linears)}


class ParTNet(TaggerNet):
    """ParticleTransformer on one particle group: `embedded` columns enter the embedding; the
    `kinematics` columns give the pair features: JetClass four-vectors (px, py, pz, E), or
    CMS track kinematics (ptrel, etarel, phirel; massless)."""

    def __init__(self, track_norm, core: ParticleTransformer, embedded: Sequence[int],
                 kinematics: Sequence[int], four_vectors: bool):
        super().__init__()
        self.track_norm, self.core = track_norm, core
        self.embedded, self.kinematics = list(embedded), list(kinematics)
        self.four_vectors = four_vectors

    def forward(self, tracks, return_details: bool = False):
        std, fixed = self.standardize(tracks)
        return self.core_forward(*std, *fixed, return_details=return_details)

    def standardize(self, tracks):
        """Standardised particle features; pair kinematics and mask as fixed arguments."""
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            occupied = filled_mask(tracks).any(0)
            width = int(torch.nonzero(occupied).max()) + 1 if occupied.any() else 1
            tracks = tracks[:, :, :width]  # padded slots are masked: trimming is exact
        mask = filled_mask(tracks)
        kin = tracks[:, self.kinematics]
        kin = kinematics_from_vectors(kin) if self.four_vectors else \
            torch.cat([kin, torch.zeros_like(kin[:, :1])], dim=1)  # massless tracks
        return [self.track_norm(tracks)], (kin, mask)

    def core_forward(self, features, kinematics, mask, return_details=False):
        return self.core(features[:, self.embedded], kinematics, mask,
                         return_details=return_details)

    def attention_layers(self) -> dict[str, int]:
        """How many particle-attention and class-attention layers `return_details` lists."""
        return {"particle": len(self.core.blocks), "class": len(self.core.cls_blocks)}

    def stages(self, tracks):
        _, details = self.forward(tracks, return_details=True)
        embeddings = details["embeddings"]
        m = filled_mask(tracks)[:, : embeddings[0].shape[1]].float()
        n_particle = len(self.core.blocks)
        out = {}
        for i, emb in enumerate(embeddings):
            if i < n_particle:
                pooled = (emb * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
                out[f"particle layer {i + 1}"] = pooled
            else:
                out[f"class layer {i - n_particle + 1}"] = emb[:, 0]
        return out


class PNNet(TaggerNet):
    """ParticleNet: standardised particle features; points (deta, dphi) and the mask fixed."""

    def __init__(self, track_norm, core: nn.Module, points: Sequence[int]):
        super().__init__()
        self.track_norm, self.core = track_norm, core
        self.points = list(points)  # indices of deta, dphi among the particle features

    def standardize(self, tracks):
        return [self.track_norm(tracks)], (tracks[:, self.points],
                                           filled_mask(tracks, keepdims=True))

    def core_forward(self, features, points, mask):
        return self.core(points, features, mask)

    def stages(self, tracks):
        std, (points, mask) = self.standardize(tracks)
        return self.core(points, std[0], mask, return_stages=True)[1]

    def exportable(self):
        """The dense formulation (PyG's edge lists do not trace): same weights, same logits."""
        return PNNet(self.track_norm, self.core.dense(), self.points).train(self.training)
