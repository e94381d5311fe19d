"""Edge relevance of ParticleNet: gradient x message on every EdgeConv edge (`edges`).

Each EdgeConv block averages over a particle's k nearest neighbours the messages
h([x_i, x_j - x_i]) of the edges j -> i. The relevance of an edge is the first-order
contribution of its message to the target logit, sum_c m_c dy/dm_c: exactly the gradient of
the logit with respect to a multiplicative edge mask held at one (PyTorch Geometric's
`explain_message` hook, the mechanism its GNNExplainer and Captum edge explanations use). Each
block gets its own edges: the graph is rebuilt from the previous block's features.

Per particle (`extras["slot_relevance"]`, (n, slots), the layout of attention's): the sum, over
blocks, of the relevance of the edges it sends as a neighbour, i.e. how much its messages to
other particles move the logit. `extras["received_relevance"]` sums the edges a particle
receives. A jet with fewer than k + 1 particles also takes padded particles as neighbours (a
shared zero node, as upstream): those edges' relevance is in `extras["padding_edges"]` per
jet, never on a padded slot, which gets exactly zero. Per edge, `extras["edges"]` lists for
each block the relevance (n, W, k) of each filled slot's k incoming edges and the slot each
comes from (-1: a padded neighbour), W the widest jet's filled slots.
"""

from __future__ import annotations

import numpy as np
import torch

from servable.data.jets import Jets, filled_mask
from servable.explain.base import Explanation, Method
from servable.explain.modelstate import explaining


class EdgeRelevance(Method):
    """Gradient x message on ParticleNet's EdgeConv edges, aggregated per neighbour particle.
    """

    name = "edges"
    applies_to = ("particlenet",)

    def attribute(self, jets: Jets, target: int = 1, batch_size: int = 128) -> Explanation:
        net = self.tagger.net
        blocks = list(net.core.edge_convs)
        k = net.core.k
        (x,) = (self.tagger.inputs(jets)[name] for name in self.spec.names)
        n, _, slots = x.shape
        filled = filled_mask(x)  # (n, slots)
        width = int(filled.sum(1).max(initial=1))
        sent, received = np.zeros((n, slots)), np.zeros((n, slots))
        padding = np.zeros((len(blocks), n))
        edge_rel = np.zeros((len(blocks), n, width, k))
        neighbour = np.full((len(blocks), n, width, k), -1, np.int64)
        output = np.zeros(n, np.float32)
        with explaining(net):
            for start in range(0, n, batch_size):
                rows = slice(start, start + batch_size)
                result = _edge_gradients(net, blocks, torch.from_numpy(x[rows]), target)
                output[rows] = result["logit"]
                jet, slot = np.nonzero(filled[rows])  # node r is the r-th filled slot
                jet += start
                for b, (grad, sources) in enumerate(zip(result["masks"], result["sources"],
                                                        strict=True)):
                    grad = grad.reshape(-1, k)  # (R, k): node r's incoming edges
                    real = sources < len(jet)
                    src_jet = np.where(real, jet[np.minimum(sources, len(jet) - 1)], -1)
                    src_slot = np.where(real, slot[np.minimum(sources, len(jet) - 1)], -1)
                    np.add.at(sent, (src_jet[real], src_slot[real]), grad[real])
                    np.add.at(padding[b], np.broadcast_to(jet[:, None], grad.shape)[~real],
                              grad[~real])
                    received[jet, slot] += grad.sum(1)
                    edge_rel[b, jet, slot] = grad
                    neighbour[b, jet, slot] = src_slot
        sent *= filled
        per_slot = np.abs(sent).sum(0) / np.maximum(filled.sum(0), 1)
        return Explanation(
            method=self.name, target=target, model=self.tagger.kind,
            feature_names=self.feature_names(),
            feature_relevance={f"particle slot {i}": float(v) for i, v in enumerate(per_slot)
                               if filled[:, i].any()},
            output=output,
            extras={"slot_relevance": sent, "received_relevance": received,
                    "padding_edges": padding.sum(0),
                    "block_totals": {f"EdgeConv block {b + 1}": edge_rel[b].sum((1, 2))
                                     for b in range(len(blocks))},
                    "edges": [{"relevance": edge_rel[b], "neighbour_slot": neighbour[b]}
                              for b in range(len(blocks))],
                    "k": k,
                    "relevance_label": "mean |edge relevance| sent by the particle in the slot"})


def _edge_gradients(net, blocks, x: torch.Tensor, target: int) -> dict:
    """The target logit of jets `x` and, per EdgeConv block, d logit / d edge mask at one (the
    edge relevance, one per edge in PyG's order: node r's k edges together) and the source
    node of each edge (R real nodes; R is the shared padded node), as numpy arrays."""
    sources: list[np.ndarray] = []
    masks: list[torch.Tensor] = []

    def record_sources(module, args):
        neighbours = args[1]
        sources.append(neighbours.detach().numpy().copy())
        mask = torch.ones(neighbours.numel(), dtype=args[0].dtype, requires_grad=True)
        module._edge_mask = mask  # read by MessagePassing.explain_message
        masks.append(mask)

    handles = [b.register_forward_pre_hook(record_sources) for b in blocks]
    try:
        for b in blocks:
            b.explain = True
            b._apply_sigmoid = False  # the mask multiplies the messages as it is: 1
        logits = net(x)
        logits[:, target].sum().backward()
    finally:
        for h in handles:
            h.remove()
    return {"logit": logits[:, target].detach().numpy(),
            "masks": [m.grad.numpy().astype(np.float64) for m in masks],
            "sources": sources}
