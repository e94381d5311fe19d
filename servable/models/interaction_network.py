"""The Interaction Network of Moreno et al. as published in the FAIR HEP paper (Table 3).

Module names (fr1..fr3, fr1_pv..fr3_pv, fo1..fo3, fc_fixed) match the published `GraphNet`, so
its state dicts load unchanged. Two forwards compute the same function:

* `dense_forward`: the published formulation with the dense receiver/sender matrices
  (N x N(N-1) and N x N*Nv), padded slots included as real nodes. Test oracle and baseline.
* `forward`: the fast exact path. The first layer of each relational MLP is split into a
  receiver and a sender half, computed once per node and broadcast over pairs; only the
  leading K slots of a bucket are explicit (K = the largest track count in it) and the
  remaining N - K zero-padded slots, which are all identical, are computed once in closed
  form and scaled. Jets are bucketed by multiplicity so that cost follows the real track
  count. Padded slots still send and receive messages and add to the sum, exactly as
  published. The edge MLPs run on folded weights (`fold_edge_mlp`): the biases ride on a
  constant channel and the hidden width is padded to a multiple of 8, so that every pair
  layer is one bias-free matrix product (no per-layer bias broadcast, aligned rows). LRP
  rules act on the unfolded first layer (`_rule_halves`). For inference on the CPU it hands
  the batch to the fused kernel (`servable.models.fused`) where that is built.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from servable.data.jets import filled_mask
from servable.models import fused
from servable.models.batching import bucket_chunks


class InteractionNetwork(nn.Module):
    """Published IN: tracks (B, P, N) and secondary vertices (B, S, Nv) -> logits (B, classes)."""

    def __init__(self, n_track_features: int = 30, n_tracks: int = 60,
                 n_vertex_features: int = 14, n_vertices: int = 5, hidden: int = 60,
                 De: int = 20, Do: int = 24, n_classes: int = 2):
        super().__init__()
        self.P, self.N, self.S, self.Nv = n_track_features, n_tracks, n_vertex_features, n_vertices
        self.hidden, self.De, self.Do, self.n_classes = hidden, De, Do, n_classes
        self.fr1 = nn.Linear(2 * self.P, hidden)
        self.fr2 = nn.Linear(hidden, hidden)
        self.fr3 = nn.Linear(hidden, De)
        self.fr1_pv = nn.Linear(self.S + self.P, hidden)
        self.fr2_pv = nn.Linear(hidden, hidden)
        self.fr3_pv = nn.Linear(hidden, De)
        self.fo1 = nn.Linear(self.P + 2 * De, hidden)
        self.fo2 = nn.Linear(hidden, hidden)
        self.fo3 = nn.Linear(hidden, Do)
        self.fc_fixed = nn.Linear(Do, n_classes)

    # ------------------------------------------------------------------ fast exact path
    def forward(self, tracks: torch.Tensor, vertices: torch.Tensor,
                bucket: bool = True, lrp_rule=None) -> torch.Tensor:
        """Logits. `bucket` sorts jets by multiplicity into chunks (off inside ONNX export).

        `lrp_rule` (a `servable.explain.lrp.LRPRule`; None: the plain forward) acts on the
        split first layers, which no module hook reaches; `servable.explain.lrp.lrp_rule`
        passes it, and hooks the other linear layers."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self._forward_explicit(tracks, vertices, _filled_width_tensor(tracks))
        if not bucket:
            return self._forward_explicit(tracks, vertices, _filled_width(tracks), lrp_rule)
        n_tracks = filled_widths(tracks)
        if fused.usable(tracks, lrp_rule) and (kernel := fused.kernel()) is not None:
            return fused.forward(self, tracks, vertices, n_tracks, kernel)
        out = tracks.new_empty((tracks.shape[0], self.n_classes))
        for idx, k in bucket_chunks(n_tracks):
            idx = torch.from_numpy(idx)
            part = self._forward_explicit(tracks[idx], vertices[idx], k, lrp_rule)
            out[idx] = part.to(out.dtype)  # bf16 under autocast (servable.models.precision)
        return out

    def _forward_explicit(self, tracks, vertices, k, rule=None) -> torch.Tensor:
        """Exact forward: slots [0, k) explicit, the N - k trailing pads in closed form.

        `k` is an int, or a 0-d tensor when tracing for export (the graph stays dynamic).
        """
        x = tracks[:, :, :k].transpose(1, 2)  # (B, K, P)
        y = vertices.transpose(1, 2)  # (B, Nv, S)
        m = self.N - k  # number of implicit pad nodes (all zero)
        if rule is not None:  # LRP: the rule acts on each pair's summed pre-activation
            return self._forward_rule(rule, x, y, m)
        tt, tv_w = self._folded()
        # track-track messages: the folded first layer split into receiver and sender
        # halves; channel H of the receiver half carries the constant 1 of the biases
        recv = torch.matmul(x, tt.receiver) + tt.bias  # (B, K, W)
        send = torch.matmul(x, tt.sender)  # (B, K, W)
        pair = (recv.unsqueeze(2) + send.unsqueeze(1)).relu_()  # (B, K, K, W): r, s
        ebar, ebar_pad = _received(tt.edge(pair), tt.edge(F.relu(recv)),
                                   tt.edge(F.relu(tt.bias + send)),
                                   tt.edge(F.relu(tt.bias)), m)

        # track-vertex messages, summed over vertices for each track
        trk_half = torch.matmul(x, tv_w.receiver) + tv_w.bias  # (B, K, W)
        sv_half = torch.matmul(y, tv_w.sender)  # (B, Nv, W)
        tv = (trk_half.unsqueeze(2) + sv_half.unsqueeze(1)).relu_()  # (B, K, Nv, W)
        ebar_pv = tv_w.edge(tv).sum(dim=2)
        pad_pv = tv_w.edge(F.relu(tv_w.bias + sv_half)).sum(dim=1)  # (B, De)
        return self._readout(x, ebar, ebar_pv, ebar_pad, pad_pv, m)

    def _forward_rule(self, rule, x, y, m) -> torch.Tensor:
        """`_forward_explicit` with an LRP rule on the (unfolded) split first layers."""
        P = self.P
        w1, bias = self.fr1.weight, self.fr1.bias
        recv = F.linear(x, w1[:, :P], bias)  # (B, K, H), includes the bias
        send = F.linear(x, w1[:, P:])  # (B, K, H)
        pair, to_pad, from_pad = self._rule_halves(rule, x, x, w1, bias, recv, send)
        ebar, ebar_pad = _received(self._edge(pair), self._edge(to_pad),
                                   self._edge(from_pad), self._edge(F.relu(bias)), m)
        wv, bv = self.fr1_pv.weight, self.fr1_pv.bias
        trk_half = F.linear(x, wv[:, :P], bv)  # (B, K, H)
        sv_half = F.linear(y, wv[:, P:])  # (B, Nv, H)
        tv, _, pad_tv = self._rule_halves(rule, x, y, wv, bv, trk_half, sv_half)
        ebar_pv = self._edge_pv(tv).sum(dim=2)
        pad_pv = self._edge_pv(pad_tv).sum(dim=1)
        return self._readout(x, ebar, ebar_pv, ebar_pad, pad_pv, m)

    def _readout(self, x, ebar, ebar_pv, ebar_pad, pad_pv, m) -> torch.Tensor:
        """Node MLP on the explicit tracks and, m times, on a pad node; summed; the head."""
        out = self._node(torch.cat([x, ebar, ebar_pv], dim=-1)).sum(dim=1)  # (B, Do)
        zeros = x.new_zeros((x.shape[0], self.P))
        out = out + m * self._node(torch.cat([zeros, ebar_pad, pad_pv], dim=-1))
        return self.fc_fixed(out)

    def _folded(self) -> tuple[FoldedEdgeMLP, FoldedEdgeMLP]:
        """The two edge MLPs with folded weights. Rebuilt from the parameters on every call
        while they take gradients (training) and while tracing (the export folds them as
        constants); otherwise kept until a parameter changes (its version counter moves)."""
        layers = (self.fr1, self.fr2, self.fr3, self.fr1_pv, self.fr2_pv, self.fr3_pv)
        params = [p for layer in layers for p in (layer.weight, layer.bias)]
        if torch.jit.is_tracing() or (torch.is_grad_enabled()
                                      and any(p.requires_grad for p in params)):
            return self._fold()
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        cached = getattr(self, "_folded_cache", None)
        if cached is None or cached[0] != key:
            # plain tensors even under inference_mode, so that input gradients (IG, saliency)
            # can later be taken through them
            with torch.inference_mode(False), torch.no_grad():
                cached = (key, self._fold())
            self._folded_cache = cached
        return cached[1]

    def _fold(self) -> tuple[FoldedEdgeMLP, FoldedEdgeMLP]:
        return (fold_edge_mlp(self.fr1, self.fr2, self.fr3, self.P),
                fold_edge_mlp(self.fr1_pv, self.fr2_pv, self.fr3_pv, self.P))

    def _rule_halves(self, rule, x, y, w, b, first, second):
        """LRP on a split first layer: the rule acts on each pair's summed pre-activation.

        Returns the activations of (explicit, explicit) pairs, of (node, pad partner) and of
        (pad, node) pairs. Rules with unchanged weights (epsilon) reuse the plain halves.
        """
        P = x.shape[-1]
        wr, br = rule.weights(w, b)
        if wr is w and br is b:
            first_r, second_r = first, second
        else:
            first_r, second_r = F.linear(x, wr[:, :P], br), F.linear(y, wr[:, P:])
        z = first.unsqueeze(2) + second.unsqueeze(1)
        z_r = z if first_r is first else first_r.unsqueeze(2) + second_r.unsqueeze(1)
        pad_partner = rule.combine(first, first_r).relu_()
        z_pad = b + second
        pad_node = rule.combine(z_pad, z_pad if second_r is second else br + second_r).relu_()
        return rule.combine(z, z_r).relu_(), pad_partner, pad_node

    def _edge(self, h):
        return F.relu(self.fr3(F.relu(self.fr2(h), inplace=True)), inplace=True)

    def _edge_pv(self, h):
        return F.relu(self.fr3_pv(F.relu(self.fr2_pv(h), inplace=True)), inplace=True)

    def _node(self, c):
        return F.relu(self.fo3(F.relu(self.fo2(F.relu(self.fo1(c))))))

    # ------------------------------------------------------------------ published oracle
    def dense_forward(self, tracks: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
        """The published GraphNet.forward: dense R_r, R_s, R_k, R_v incidence matrices."""
        rr, rs, rk, rv = self._incidence(tracks.dtype, tracks.device)
        x, y = tracks, vertices
        B = x.shape[0]
        orr, ors = _tmul(x, rr), _tmul(x, rs)
        e = torch.cat([orr, ors], 1).transpose(1, 2).reshape(-1, 2 * self.P)
        e = F.relu(self.fr3(F.relu(self.fr2(F.relu(self.fr1(e)))))).view(B, -1, self.De)
        ebar_pp = _tmul(e.transpose(1, 2).contiguous(), rr.t().contiguous())
        ork, orv = _tmul(x, rk), _tmul(y, rv)
        e = torch.cat([ork, orv], 1).transpose(1, 2).reshape(-1, self.S + self.P)
        e = F.relu(self.fr3_pv(F.relu(self.fr2_pv(F.relu(self.fr1_pv(e)))))).view(B, -1, self.De)
        ebar_pv = _tmul(e.transpose(1, 2).contiguous(), rk.t().contiguous())
        c = torch.cat([x, ebar_pp, ebar_pv], 1).transpose(1, 2).reshape(-1, self.P + 2 * self.De)
        o = F.relu(self.fo3(F.relu(self.fo2(F.relu(self.fo1(c)))))).view(B, self.N, self.Do)
        return self.fc_fixed(o.sum(dim=1))

    def _incidence(self, dtype, device):
        key = (dtype, device)
        if getattr(self, "_incidence_cache", (None,))[0] != key:
            n, nv = self.N, self.Nv
            pairs = [(r, s) for r, s in itertools.product(range(n), range(n)) if r != s]
            rr = torch.zeros(n, len(pairs), dtype=dtype, device=device)
            rs = torch.zeros_like(rr)
            for i, (r, s) in enumerate(pairs):
                rr[r, i] = 1
                rs[s, i] = 1
            tv = list(itertools.product(range(n), range(nv)))
            rk = torch.zeros(n, len(tv), dtype=dtype, device=device)
            rv = torch.zeros(nv, len(tv), dtype=dtype, device=device)
            for i, (k, v) in enumerate(tv):
                rk[k, i] = 1
                rv[v, i] = 1
            self._incidence_cache = (key, (rr, rs, rk, rv))
        return self._incidence_cache[1]


class FoldedEdgeMLP(NamedTuple):
    """An edge MLP relu(L3 relu(L2 relu(L1 [a; b]))) with L1 split into the halves acting on
    a (receiver) and b (sender), biases folded in: with W = the hidden width H + 1 rounded
    up to a multiple of 8, `receiver` and `sender` are (features, W), `bias` (W,) holds L1's
    bias and a 1 in channel H, `second` (W, W) carries that 1 through L2 (its row H is L2's
    bias) and `third` (W, De) has L3's bias in row H. Channels above H are zero. Exact: each
    product adds the bias once, as nn.Linear does."""

    receiver: torch.Tensor
    sender: torch.Tensor
    bias: torch.Tensor
    second: torch.Tensor
    third: torch.Tensor

    def edge(self, h: torch.Tensor) -> torch.Tensor:
        """relu(L3 relu(L2 h)) for h = relu(first layer) in the folded layout (..., W)."""
        flat = h.reshape(-1, h.shape[-1])
        out = torch.mm(torch.mm(flat, self.second).relu_(), self.third).relu_()
        return out.view(*h.shape[:-1], self.third.shape[1])


def fold_edge_mlp(first: nn.Linear, second: nn.Linear, third: nn.Linear,
                  n_receiver: int) -> FoldedEdgeMLP:
    """`FoldedEdgeMLP` of three linear layers; the first `n_receiver` inputs of `first`
    belong to the receiver. Differentiable in the layers' parameters."""
    H = second.in_features
    width = -(-(H + 1) // 8) * 8
    pad = width - H
    w1, b1 = first.weight, first.bias
    unit = F.pad(b1.new_ones(1), (0, pad - 1))  # [1, 0, ...]: the constant channel H
    receiver = F.pad(w1[:, :n_receiver].t(), (0, pad))
    sender = F.pad(w1[:, n_receiver:].t(), (0, pad))
    bias = torch.cat([b1, unit])
    w2 = torch.cat([F.pad(second.weight.t(), (0, pad)),  # (H, W)
                    torch.cat([second.bias, unit])[None],  # row H: L2's bias, keep the 1
                    b1.new_zeros((pad - 1, width))])
    w3 = torch.cat([third.weight.t(), third.bias[None],
                    b1.new_zeros((pad - 1, third.out_features))])
    return FoldedEdgeMLP(receiver, sender, bias, w2, w3)


def _received(msg, to_pad, from_pad, pad_to_pad, m):
    """Summed track-track messages of the explicit receivers (B, K, De) and of one pad
    receiver (B, De), from the explicit pair messages `msg` (B, K, K, De), each explicit
    node's message to a pad `to_pad` (B, K, De), each one's message from a pad `from_pad`
    (B, K, De) and a pad's message to a pad `pad_to_pad` (De,). Senders s != r: all minus
    the diagonal. The m pads in closed form, without branching (m may be 0, and a tensor
    inside ONNX): explicit receivers get m identical pad messages; a pad receiver gets one
    message from each explicit sender and m - 1 from the other pads (unused when m = 0)."""
    ebar = msg.sum(dim=2) - torch.diagonal(msg, dim1=1, dim2=2).transpose(1, 2) + m * to_pad
    return ebar, from_pad.sum(dim=1) + (m - 1) * pad_to_pad.unsqueeze(0)


def _tmul(x, y):
    """(I, J, K) x (K, L) -> (I, J, L), as the published code."""
    return torch.mm(x.reshape(-1, x.shape[2]), y).view(-1, x.shape[1], y.shape[1])


def filled_widths(tracks: torch.Tensor) -> torch.Tensor:
    """Per jet, the slots up to its last filled one (0 without tracks): its explicit slots,
    the rest being pads. The track count where filled slots come first, as in every file
    this package reads; an empty slot between filled ones is an explicit zero track."""
    filled = filled_mask(tracks)
    return (filled * torch.arange(1, filled.shape[1] + 1)).amax(1)


def _filled_width_tensor(tracks: torch.Tensor) -> torch.Tensor:
    """As `_filled_width`, as a 0-d tensor so that exported graphs keep it dynamic."""
    occupied = filled_mask(tracks).any(0).to(torch.int64)  # (N,)
    position = torch.arange(1, tracks.shape[2] + 1, dtype=torch.int64)
    return torch.clamp((occupied * position).max(), min=1)


def _filled_width(tracks: torch.Tensor) -> int:
    """Slots up to the last filled one in the batch (at least 1); trailing ones are pads."""
    occupied = filled_mask(tracks).any(0)
    idx = torch.nonzero(occupied)
    return int(idx.max()) + 1 if idx.numel() else 1
