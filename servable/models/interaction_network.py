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
  published.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from servable.data.jets import filled_mask
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
        # an LRP rule set by servable.explain.lrp for the split first layers (None: plain)
        self.lrp_rule = None

    # ------------------------------------------------------------------ fast exact path
    def forward(self, tracks: torch.Tensor, vertices: torch.Tensor,
                bucket: bool = True) -> torch.Tensor:
        """Logits. `bucket` sorts jets by multiplicity into chunks (off inside ONNX export)."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self._forward_explicit(tracks, vertices, _filled_width_tensor(tracks))
        if not bucket:
            return self._forward_explicit(tracks, vertices, _filled_width(tracks))
        n_tracks = filled_mask(tracks).sum(1)
        out = tracks.new_empty((tracks.shape[0], self.n_classes))
        for idx, k in bucket_chunks(n_tracks):
            idx = torch.from_numpy(idx)
            out[idx] = self._forward_explicit(tracks[idx], vertices[idx], k)
        return out

    def _forward_explicit(self, tracks, vertices, k) -> torch.Tensor:
        """Exact forward: slots [0, k) explicit, the N - k trailing pads in closed form.

        `k` is an int, or a 0-d tensor when tracing for export (the graph stays dynamic).
        """
        x = tracks[:, :, :k].transpose(1, 2)  # (B, K, P)
        y = vertices.transpose(1, 2)  # (B, Nv, S)
        m = self.N - k  # number of implicit pad nodes (all zero)
        P = self.P

        # track-track messages: first layer split into receiver and sender halves
        w1, bias = self.fr1.weight, self.fr1.bias
        recv = F.linear(x, w1[:, :P], bias)  # (B, K, H), includes the bias
        send = F.linear(x, w1[:, P:])  # (B, K, H)
        rule = self.lrp_rule
        if rule is not None:  # the rule acts on each pair's summed pre-activation
            pair, to_pad, from_pad = self._rule_halves(rule, x, x, w1, bias, recv, send)
        else:
            pair = (recv.unsqueeze(2) + send.unsqueeze(1)).relu_()  # (B, K, K, H): r, s
            to_pad, from_pad = F.relu(recv), F.relu(bias + send)
        msg = self._edge(pair)  # (B, K, K, De)
        # sum over senders s != r: all senders minus the diagonal
        ebar = msg.sum(dim=2) - torch.diagonal(msg, dim1=1, dim2=2).transpose(1, 2)
        # pads in closed form, without branching (m may be 0, and a tensor inside ONNX):
        # explicit receivers get m identical pad messages; a pad receiver gets one message
        # from each explicit sender and m - 1 from the other pads (unused when m = 0)
        ebar = ebar + m * self._edge(to_pad)
        ebar_pad = self._edge(from_pad).sum(dim=1) + (m - 1) * self._edge(F.relu(bias)).unsqueeze(0)

        # track-vertex messages, summed over vertices for each track
        wv, bv = self.fr1_pv.weight, self.fr1_pv.bias
        trk_half = F.linear(x, wv[:, :P], bv)  # (B, K, H)
        sv_half = F.linear(y, wv[:, P:])  # (B, Nv, H)
        if rule is not None:
            tv, _, pad_tv = self._rule_halves(rule, x, y, wv, bv, trk_half, sv_half)
        else:
            tv = (trk_half.unsqueeze(2) + sv_half.unsqueeze(1)).relu_()  # (B, K, Nv, H)
            pad_tv = F.relu(bv + sv_half)
        ebar_pv = self._edge_pv(tv).sum(dim=2)

        out = self._node(torch.cat([x, ebar, ebar_pv], dim=-1)).sum(dim=1)  # (B, Do)
        pad_pv = self._edge_pv(pad_tv).sum(dim=1)  # (B, De)
        zeros = x.new_zeros((x.shape[0], P))
        out = out + m * self._node(torch.cat([zeros, ebar_pad, pad_pv], dim=-1))
        return self.fc_fixed(out)

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


def _tmul(x, y):
    """(I, J, K) x (K, L) -> (I, J, L), as the published code."""
    return torch.mm(x.reshape(-1, x.shape[2]), y).view(-1, x.shape[1], y.shape[1])


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
