"""ParticleNet (Qu & Gouskos, arXiv:1902.08570) as the JetClass models of the Particle
Transformer paper configure it, on PyTorch Geometric, and the same network written densely.

A jet is a point cloud: `points` (N, 2, P) = (deta, dphi), `features` (N, F, P) and `mask`
(N, 1, P), channels-first, padded particles after the real ones. Three EdgeConv blocks (k = 16
neighbours; widths 64, 128, 256, three layers each) turn each particle's features into
messages h([x_i, x_j - x_i]) from its k nearest neighbours, averaged, plus a shortcut. The
first block finds neighbours in (deta, dphi), later blocks in the previous block's features.
The real particles are averaged (`use_counts`) and a two-layer head gives the logits.

Neighbour search reproduces weaver-core's exactly (there is no pyg-lib/torch-cluster here for
`knn_graph`): a dense per-jet squared distance |a|^2 - 2 a.b + |b|^2, padded particles moved to
1e9 first, the k + 1 nearest taken and the nearest (the particle itself) dropped. A jet with
fewer than k + 1 particles therefore takes padded particles as neighbours: their features are
zero, so in the graph they are edges from one shared zero node, which keeps the published
behaviour with no padded nodes in the graph.

`ParticleNet` passes messages only along the edges of real particles (PyG `MessagePassing`,
mean aggregation). `DenseParticleNet` is the upstream formulation: every slot, padded ones
included, gathers its neighbours into an (N, C, P, k) tensor; it is the parity reference,
the benchmark baseline and the form the ONNX exporter traces. Both have the same parameters,
so one state dict loads into either.

Parameter layout: weaver-core's `ParticleNet` with 1x1 convolutions stored as linear maps.
`from_upstream` converts an official state dict:

| upstream key (`mod.` wrapper)          | here                         | change            |
| -------------------------------------- | ---------------------------- | ----------------- |
| mod.bn_fts.*                           | bn_fts.*                     | none              |
| mod.edge_convs.B.convs.L.weight        | edge_convs.B.convs.L.weight  | (o, i, 1, 1) -> (o, i) |
| mod.edge_convs.B.bns.L.*               | edge_convs.B.bns.L.*         | none              |
| mod.edge_convs.B.sc.weight             | edge_convs.B.sc.weight       | (o, i, 1) -> (o, i) |
| mod.edge_convs.B.sc_bn.*               | edge_convs.B.sc_bn.*         | none              |
| mod.fc.0.0.*, mod.fc.1.*               | fc.0.0.*, fc.1.*             | none              |
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn import MessagePassing

COORD_SHIFT = 1e9  # where padded particles are moved before the neighbour search
UPSTREAM_PREFIX = "mod."


def pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    """Squared distances (N, P, P) between the P points of x (N, C, P), computed as upstream
    does (the same rounding decides the same neighbours)."""
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    return (xx.transpose(2, 1) + inner + xx).clamp(min=0)


def nearest_neighbours(coords: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Slot indices (N, P, k) of each slot's k nearest neighbours in `coords` (N, C, P);
    padded slots (mask False) are moved far away, the nearest of k + 1 (itself) dropped."""
    shifted = coords.masked_fill(~mask, COORD_SHIFT)
    return pairwise_distance(shifted).topk(k + 1, dim=-1, largest=False, sorted=True)[1][..., 1:]


class EdgeConvBlock(MessagePassing):
    """One EdgeConv block: a per-edge MLP on [x_i, x_j - x_i] (linear without bias, batch
    norm, ReLU; three times), the mean over the k neighbours, a shortcut (linear + batch
    norm when the width changes) and a ReLU of the sum."""

    def __init__(self, in_features: int, widths: Sequence[int]):
        super().__init__(aggr="mean")
        ins = [2 * in_features, *widths[:-1]]
        self.convs = nn.ModuleList(nn.Linear(i, o, bias=False)
                                   for i, o in zip(ins, widths, strict=True))
        self.bns = nn.ModuleList(nn.BatchNorm1d(o) for o in widths)
        if in_features == widths[-1]:
            self.sc, self.sc_bn = None, None
        else:
            self.sc = nn.Linear(in_features, widths[-1], bias=False)
            self.sc_bn = nn.BatchNorm1d(widths[-1])

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """x (R, C) for the R real particles; neighbours (R, k) node indices, R meaning a
        padded particle (a zero node)."""
        r, k = neighbours.shape
        target = torch.arange(r, device=x.device).repeat_interleave(k)
        edges = torch.stack([neighbours.reshape(-1), target])
        source = torch.cat([x, x.new_zeros(1, x.shape[1])])
        mean = self.propagate(edges, x=(source, x), size=(r + 1, r))
        return torch.relu(self.shortcut(x) + mean)

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x_i, x_j - x_i], dim=1)
        for conv, bn in zip(self.convs, self.bns, strict=True):
            h = torch.relu(bn(conv(h)))
        return h

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """x (R, C) or channels-first (N, C, P)."""
        if self.sc is None:
            return x
        if x.dim() == 3:
            return self.sc_bn(F.conv1d(x, self.sc.weight.unsqueeze(-1)))
        return self.sc_bn(self.sc(x))

    def dense(self, features: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """The same block over every slot: features (N, C, P), neighbours (N, P, k)."""
        n, c, p = features.shape
        k = neighbours.shape[-1]
        flat = features.transpose(1, 2).reshape(n * p, c)
        offset = torch.arange(n, device=features.device).view(-1, 1, 1) * p
        gathered = flat[(neighbours + offset).reshape(-1)].view(n, p, k, c).permute(0, 3, 1, 2)
        centre = features.unsqueeze(-1).expand(n, c, p, k)
        h = torch.cat([centre, gathered - centre], dim=1).reshape(n, 2 * c, p * k)
        for conv, bn in zip(self.convs, self.bns, strict=True):
            h = torch.relu(bn(F.conv1d(h, conv.weight.unsqueeze(-1))))
        mean = h.view(n, -1, p, k).mean(dim=-1)
        return torch.relu(self.shortcut(features) + mean)


class _ParticleNetLayers(nn.Module):
    """The parameters both formulations share (names as upstream, see the module table)."""

    def __init__(self, n_features: int, n_classes: int, k: int = 16,
                 channels: Sequence[int] = (64, 128, 256), layers_per_block: int = 3,
                 fc_width: int = 256, dropout: float = 0.1):
        super().__init__()
        self.args = {"n_features": n_features, "n_classes": n_classes, "k": k,
                     "channels": tuple(channels), "layers_per_block": layers_per_block,
                     "fc_width": fc_width, "dropout": dropout}
        self.k = k
        self.bn_fts = nn.BatchNorm1d(n_features)
        ins = [n_features, *channels[:-1]]
        self.edge_convs = nn.ModuleList(EdgeConvBlock(i, [w] * layers_per_block)
                                        for i, w in zip(ins, channels, strict=True))
        self.fc = nn.Sequential(
            nn.Sequential(nn.Linear(channels[-1], fc_width), nn.ReLU(), nn.Dropout(dropout)),
            nn.Linear(fc_width, n_classes))

    def trimmed(self, points, features, mask):
        """Drop the trailing slots no jet of the batch fills, keeping at least k + 1 so the
        neighbour search sees as many padded neighbours as the full width gives (exact: they
        are all alike). Not while tracing: the graph takes any width."""
        mask = mask.bool()
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return points, features, mask
        filled = mask.any(0).any(0)
        last = int(torch.nonzero(filled).max()) + 1 if bool(filled.any()) else 0
        width = min(mask.shape[-1], max(last, self.k + 1))
        return points[..., :width], features[..., :width], mask[..., :width]


class ParticleNet(_ParticleNetLayers):
    """ParticleNet on PyTorch Geometric: messages along the edges of real particles only."""

    def forward(self, points: torch.Tensor, features: torch.Tensor,
                mask: torch.Tensor, return_stages: bool = False):
        """Logits (N, classes); with `return_stages` also the per-jet mean of the real
        particles' features after each EdgeConv block, and the head's hidden layer."""
        points, features, mask = self.trimmed(points, features, mask)
        real = mask[:, 0]  # (N, W)
        n, width = real.shape
        jet = torch.arange(n, device=real.device).unsqueeze(1).expand(n, width)[real]
        n_real = jet.shape[0]
        node = torch.full((n, width), n_real, dtype=torch.long, device=real.device)
        node[real] = torch.arange(n_real, device=real.device)
        x = self.bn_fts(features.transpose(1, 2)[real])  # (R, F)
        counts = real.sum(1, keepdim=True).clamp(min=1).to(x.dtype)

        def pool(values):
            return values.new_zeros(n, values.shape[1]).index_add_(0, jet, values) / counts

        coords, stages = points, {}
        for i, block in enumerate(self.edge_convs):
            if i > 0:
                coords = x.new_zeros(n, width, x.shape[1])
                coords[real] = x
                coords = coords.transpose(1, 2)
            slots = nearest_neighbours(coords, mask, self.k)[real]  # (R, k)
            x = block(x, node[jet.unsqueeze(1), slots])
            if return_stages:
                stages[f"EdgeConv block {i + 1}"] = pool(x)
        pooled = pool(x)
        if not return_stages:
            return self.fc(pooled)
        stages["head"] = self.fc[0](pooled)
        return self.fc[1](stages["head"]), stages

    def dense(self) -> DenseParticleNet:
        """The dense formulation with a copy of these weights (same mode)."""
        twin = DenseParticleNet(**self.args)
        twin.load_state_dict(self.state_dict())
        return twin.train(self.training)


class DenseParticleNet(_ParticleNetLayers):
    """The upstream dense formulation: every slot gathers k neighbours, padded ones too."""

    def forward(self, points: torch.Tensor, features: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        points, features, mask = self.trimmed(points, features, mask)
        padded = ~mask
        counts = mask.to(features.dtype).sum(-1).clamp(min=1)  # (N, 1)
        fts = self.bn_fts(features).masked_fill(padded, 0)
        for i, block in enumerate(self.edge_convs):
            neighbours = nearest_neighbours(points if i == 0 else fts, mask, self.k)
            fts = block.dense(fts, neighbours).masked_fill(padded, 0)
        return self.fc(fts.sum(-1) / counts)


def from_upstream(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official weaver-core ParticleNet state dict (keys `mod.`...) in this layout (the
    module table): prefix dropped, 1x1 convolution kernels flattened to linear weights."""
    out = {}
    for key, value in state.items():
        name = key[len(UPSTREAM_PREFIX):] if key.startswith(UPSTREAM_PREFIX) else key
        if (".convs." in name or name.endswith(".sc.weight")) and value.dim() > 2:
            value = value.reshape(value.shape[0], value.shape[1])
        out[name] = value
    return out
