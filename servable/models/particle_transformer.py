"""ParticleTransformer (Qu, Li, Qian 2022, arXiv:2202.03772) with the parameters of weaver-core's
`ParticleTransformer` (weaver/nn/model/ParticleTransformer.py as the published JetClass
checkpoints ParT_{kin,kinpid,full}.pt were trained with, weaver-core up to 0.4.x).

Module tree and parameter names as upstream, so an upstream state dict (keys without the
`mod.` of its wrapper) loads with `load_state_dict(strict=True)`:

* cls_token (1, 1, D): the class token;
* embed.input_bn: BatchNorm1d over the particle features; embed.embed.{3i, 3i+1}: LayerNorm
  and Linear of embedding layer i (GELU at 3i+2);
* pair_embed.embed.0: BatchNorm1d over the 4 pair features; pair_embed.embed.{3i+1, 3i+2}:
  Conv1d (kernel 1) and BatchNorm1d of pair layer i (GELU at 3i+3), the last one per head;
* blocks.L and cls_blocks.L: pre_attn_norm, attn.in_proj_weight, attn.in_proj_bias,
  attn.out_proj (nn.MultiheadAttention's names), post_attn_norm, pre_fc_norm, fc1,
  post_fc_norm, fc2, c_attn (one per head), w_resid;
* norm, fc.0: the final LayerNorm and the linear head.

The function is upstream's: the particle features pass the input batch norm and the
embedding, the four pair features (ln kT, ln z, ln Delta, ln m^2 of each pair, from the
particles' pT, rapidity, azimuth and mass) pass the pair embedding into one additive attention
bias per head, particle blocks then class-attention blocks (the class token is the query,
un-normalised, as upstream) and the head. The head scale `c_attn` multiplies each head's
slice of the attention output and interleaves the channels (d * heads + h), as weaver-core
did up to 0.4.x (from 0.5.0 it no longer interleaves, which changes what the published
checkpoints compute). Differences, on purpose:

* attention is written out (not nn.MultiheadAttention) so the weights of every layer and
  head can be returned, and the graph exports to plain ONNX; padded keys get a -1e9 bias
  instead of -inf (exactly zero weight; no NaN for an empty jet);
* padding is zeros and a mask, not weaver's `pad_mode: wrap` (padded slots filled with copies
  of the jet's particles, mask 0): no output depends on padded slots either way, but in
  training the batch norms here take their statistics from real particles (and real pairs)
  only, where weaver's include the copies;
* the pair mass is computed without cancellation, from transverse masses:
  m^2 = m_i^2 + m_j^2 + 2 (m_i^2 mT_j^2 + pT_i^2 m_j^2) / (mT_i mT_j + pT_i pT_j)
        + 4 mT_i mT_j sinh^2(dy/2) + 4 pT_i pT_j sin^2(dphi/2),
  algebraically upstream's (E_i + E_j)^2 - |p_i + p_j|^2, which cancels for collinear pairs
  (its logarithm then differed by 1e-2 between PyTorch and ONNX Runtime); each particle's
  m^2 = E^2 - p^2 is taken in float64;
* no sequence trimmer in training (weaver drops random particles of long jets); batches are
  trimmed to their widest jet, which is exact.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

NEG = -1e9  # additive mask: exp() underflows to exactly 0 for masked keys
EPS = 1e-8  # upstream's clamp of the pair features' logarithms
# the configuration of the published JetClass models (networks/example_ParticleTransformer.py)
PUBLISHED_JETCLASS = {"embed_dims": [128, 512, 128], "pair_embed_dims": [64, 64, 64],
                      "num_heads": 8, "num_layers": 8, "num_cls_layers": 2, "dropout": 0.1}


def masked_batch_norm(bn: nn.BatchNorm1d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`bn` over x (B, C, L), zero where `mask` (B, L) is False. In training the statistics
    come from the unmasked positions only; in evaluation it is the same affine map anywhere."""
    if bn.training:
        flat = x.transpose(1, 2)
        out = flat.new_zeros(flat.shape)
        out[mask] = bn(flat[mask])
        return out.transpose(1, 2)
    return bn(x) * mask.unsqueeze(1).to(x.dtype)


def kinematics_from_vectors(vectors: torch.Tensor) -> torch.Tensor:
    """(B, 4, N) four-vectors (px, py, pz, E) -> (B, 4, N): pT, rapidity, azimuth, m^2 (as
    weaver-core's `to_ptrapphim`; rapidity and m^2 = E^2 - p^2 in float64, where E - pz and
    E^2 - p^2 cancel; zero vectors give zeros)."""
    px, py, pz, energy = vectors.double().unbind(1)
    pt = torch.sqrt(px * px + py * py)
    rapidity = 0.5 * torch.log((1 + 2 * pz / (energy - pz).clamp(min=1e-20)).clamp(min=1e-20))
    m2 = (energy * energy - (px * px + py * py + pz * pz)).clamp(min=0)
    x, y = vectors[:, 0], vectors[:, 1]
    # atan2(0, 0) is NaN in the exported graph (atan(y / x)): no pT, azimuth 0; float32 (ONNX
    # Runtime has no float64 Atan)
    phi = torch.atan2(y, torch.where(pt > 0, x, torch.ones_like(x)))
    return torch.stack([pt.to(vectors.dtype), rapidity.to(vectors.dtype), phi,
                        m2.to(vectors.dtype)], dim=1)


def _sinh(x: torch.Tensor) -> torch.Tensor:
    """sinh without cancellation near 0 (the TorchScript ONNX exporter has no Sinh)."""
    x2 = x * x
    series = x * (1 + x2 / 6 * (1 + x2 / 20))  # error below 3e-10 relative for |x| < 0.1
    return torch.where(x.abs() < 0.1, series, (torch.exp(x) - torch.exp(-x)) / 2)


def pair_features(kinematics: torch.Tensor) -> torch.Tensor:
    """(B, 4, N) pT, rapidity, azimuth, m^2 -> (B, 4, N, N): ln kT, ln z, ln Delta, ln m^2
    (weaver-core's `pairwise_lv_fts`, four outputs; logarithms clamped at 1e-8)."""
    pt, y, phi, m2 = kinematics.unbind(1)
    pti, ptj = pt.unsqueeze(2), pt.unsqueeze(1)
    dy = y.unsqueeze(2) - y.unsqueeze(1)
    dphi = torch.remainder(phi.unsqueeze(2) - phi.unsqueeze(1) + math.pi, 2 * math.pi) - math.pi
    delta = torch.sqrt(dy * dy + dphi * dphi)
    ptmin = torch.minimum(pti, ptj)
    mt = torch.sqrt(m2 + pt * pt)
    mti, mtj, m2i, m2j = mt.unsqueeze(2), mt.unsqueeze(1), m2.unsqueeze(2), m2.unsqueeze(1)
    transverse = (m2i * mtj * mtj + pti * pti * m2j) / (mti * mtj + pti * ptj).clamp(min=1e-30)
    pair_m2 = (m2i + m2j + 2 * transverse + 4 * mti * mtj * _sinh(dy / 2) ** 2
               + 4 * pti * ptj * torch.sin(dphi / 2) ** 2)
    return torch.stack([
        torch.log((ptmin * delta).clamp(min=EPS)),
        torch.log((ptmin / (pti + ptj).clamp(min=EPS)).clamp(min=EPS)),
        torch.log(delta.clamp(min=EPS)),
        torch.log(pair_m2.clamp(min=EPS)),
    ], dim=1)


class Embed(nn.Module):
    """Input batch norm, then (LayerNorm, Linear, GELU) per layer."""

    def __init__(self, input_dim: int, dims: tuple[int, ...]):
        super().__init__()
        self.input_bn = nn.BatchNorm1d(input_dim)
        layers, d = [], input_dim
        for dim in dims:
            layers += [nn.LayerNorm(d), nn.Linear(d, dim), nn.GELU()]
            d = dim
        self.embed = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, N) channels-first, mask (B, N) -> (B, N, D), padded particles zero."""
        x = self.embed(masked_batch_norm(self.input_bn, x, mask).transpose(1, 2))
        return x * mask.unsqueeze(-1).to(x.dtype)


class PairEmbed(nn.Module):
    """Batch norm of the 4 pair features, then (Conv1d k=1, BatchNorm1d, GELU) per layer, the
    last layer giving one value per head."""

    def __init__(self, dims: tuple[int, ...], num_heads: int):
        super().__init__()
        layers, d = [nn.BatchNorm1d(4)], 4
        for dim in (*dims, num_heads):
            layers += [nn.Conv1d(d, dim, 1), nn.BatchNorm1d(dim), nn.GELU()]
            d = dim
        self.embed = nn.Sequential(*layers)

    def forward(self, pairs: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        """(B, 4, N, N) features and (B, N, N) mask of real pairs -> (B, heads, N, N)."""
        b, _, n, _ = pairs.shape
        h, mask = pairs.reshape(b, 4, n * n), pair_mask.reshape(b, n * n)
        for layer in self.embed:
            h = masked_batch_norm(layer, h, mask) if isinstance(layer, nn.BatchNorm1d) \
                else layer(h)
        return h.view(b, -1, n, n)


class Attention(nn.Module):
    """Multi-head attention with nn.MultiheadAttention's parameters (in_proj_weight,
    in_proj_bias, out_proj), returning its weights."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.head_dim, self.dropout = num_heads, dim // num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)  # as nn.MultiheadAttention
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query, key, bias):
        """query (B, Nq, D), key = value (B, Nk, D); bias (B, heads, Nq, Nk) additive."""
        b, nq, nk = query.shape[0], query.shape[1], key.shape[1]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = F.linear(query, w_q, b_q).view(b, nq, self.num_heads, self.head_dim).transpose(1, 2)
        k = F.linear(key, w_k, b_k).view(b, nk, self.num_heads, self.head_dim).transpose(1, 2)
        v = F.linear(key, w_v, b_v).view(b, nk, self.num_heads, self.head_dim).transpose(1, 2)
        weights = torch.softmax(q * self.head_dim ** -0.5 @ k.transpose(-1, -2) + bias, dim=-1)
        dropped = F.dropout(weights, self.dropout, self.training)
        out = (dropped @ v).transpose(1, 2).reshape(b, nq, -1)
        return self.out_proj(out), weights


class Block(nn.Module):
    """A pre-LayerNorm transformer block with upstream's scalings (post-attention and
    post-fc LayerNorms, per-head `c_attn`, residual weights `w_resid`)."""

    def __init__(self, dim: int, num_heads: int, ffn_ratio: int = 4, dropout: float = 0.1):
        super().__init__()
        self.num_heads = num_heads
        self.pre_attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, dropout)
        self.post_attn_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.pre_fc_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * ffn_ratio)
        self.act = nn.GELU()
        self.act_dropout = nn.Dropout(dropout)
        self.post_fc_norm = nn.LayerNorm(dim * ffn_ratio)
        self.fc2 = nn.Linear(dim * ffn_ratio, dim)
        self.c_attn = nn.Parameter(torch.ones(num_heads))
        self.w_resid = nn.Parameter(torch.ones(dim))

    def forward(self, x, bias, cls_token=None):
        if cls_token is None:
            residual = x
            h = self.pre_attn_norm(x)
            a, w = self.attn(h, h, bias)
        else:  # class attention: the class token asks, the normalised token and particles answer
            residual = cls_token
            u = self.pre_attn_norm(torch.cat([cls_token, x], dim=1))
            a, w = self.attn(cls_token, u, bias)
        b, t, d = a.shape
        a = (a.view(b, t, self.num_heads, d // self.num_heads)
             * self.c_attn.view(1, 1, -1, 1)).transpose(2, 3).reshape(b, t, d)
        x = residual + self.dropout(self.post_attn_norm(a))
        h = self.fc2(self.post_fc_norm(self.act_dropout(self.act(self.fc1(self.pre_fc_norm(x))))))
        return self.dropout(h) + self.w_resid * x, w


class ParticleTransformer(nn.Module):
    """Particle features (B, F, N) channels-first (standardised), kinematics (B, 4, N) = pT,
    rapidity, azimuth, m^2 (for the pair features) and the mask (B, N) -> logits."""

    def __init__(self, input_dim: int, n_classes: int = 2, embed_dims=(64, 64, 64),
                 pair_embed_dims=(32, 32, 32), num_heads: int = 4, num_layers: int = 3,
                 num_cls_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        dim = embed_dims[-1]
        self.embed = Embed(input_dim, tuple(embed_dims))
        self.pair_embed = PairEmbed(tuple(pair_embed_dims), num_heads)
        self.blocks = nn.ModuleList(Block(dim, num_heads, dropout=dropout)
                                    for _ in range(num_layers))
        self.cls_blocks = nn.ModuleList(Block(dim, num_heads, dropout=0.0)
                                        for _ in range(num_cls_layers))
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Sequential(nn.Linear(dim, n_classes))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.num_heads = num_heads

    def forward(self, features, kinematics, mask, return_details: bool = False):
        """Logits (B, classes); with `return_details` also the attention weights and the
        embeddings after every block."""
        return self.blocks_forward(*self.prepare(features, kinematics, mask),
                                   return_details=return_details)

    def prepare(self, features, kinematics, mask):
        """What the blocks read (`blocks_forward`), which no head changes: the embedded
        particles (B, N, D), the attention bias of the particle blocks (B, heads, N, N) and of
        the class blocks (B, 1, 1, N + 1), and the mask."""
        x = self.embed(features, mask)  # (B, N, D)
        pad_bias = (~mask).to(x.dtype).mul(NEG)  # (B, N)
        with torch.no_grad():  # as upstream: the pair features carry no gradient
            pairs = pair_features(kinematics)
        bias = self.pair_embed(pairs, mask.unsqueeze(2) & mask.unsqueeze(1))
        bias = bias + pad_bias.view(-1, 1, 1, pad_bias.shape[1])
        cls_bias = torch.cat([torch.zeros_like(pad_bias[:, :1]), pad_bias], dim=1)
        return x, bias, cls_bias.view(-1, 1, 1, cls_bias.shape[1]), mask

    def blocks_forward(self, x, bias, cls_bias, mask, return_details: bool = False):
        """The particle blocks, the class blocks and the head, from `prepare`'s outputs."""
        keep = mask.unsqueeze(-1).to(x.dtype)
        attention, embeddings = [], []
        for block in self.blocks:
            x, w = block(x, bias)
            x = x * keep  # padded rows never reach a real output; kept zero for the probes
            attention.append(w)
            embeddings.append(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        for block in self.cls_blocks:
            cls, w = block(x, cls_bias, cls_token=cls)
            attention.append(w)
            embeddings.append(cls)
        logits = self.fc(self.norm(cls).squeeze(1))
        if return_details:
            return logits, {"attention": attention, "embeddings": embeddings}
        return logits


def attention_blocks(model: ParticleTransformer) -> list[Block]:
    """The particle blocks, then the class-attention blocks: the order `return_details`
    lists their attention weights in, which numbers blocks and heads everywhere."""
    return [*model.blocks, *model.cls_blocks]


@contextmanager
def heads_replaced(model: ParticleTransformer, replace: dict, skipped=()):
    """Within the block, the output of each head (block, head) in `replace` (its
    attention-weighted values, before the output projection mixes the heads) is replaced by
    the given (head_dim,) tensor, or zeros for None; each block in `skipped` passes its input
    stream through (particles, or the class token) unchanged. The hooks are removed on exit."""
    blocks = attention_blocks(model)
    handles = []

    def pre_hook(block_index):
        def hook(module, args):
            (out,) = args
            b, t, d = out.shape
            heads = out.view(b, t, blocks[block_index].num_heads, -1).clone()
            for (k, h), value in replace.items():
                if k == block_index:
                    heads[:, :, h] = 0 if value is None else value.to(heads.dtype)
            return (heads.view(b, t, d),)
        return hook

    def skip_hook(module, args, kwargs, output):
        stream = kwargs.get("cls_token") if kwargs.get("cls_token") is not None else args[0]
        return stream, output[1]

    try:
        for k in sorted({k for k, _ in replace}):
            handles.append(blocks[k].attn.out_proj.register_forward_pre_hook(pre_hook(k)))
        for k in skipped:
            handles.append(blocks[k].register_forward_hook(skip_hook, with_kwargs=True))
        yield model
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def recorded_head_outputs(model: ParticleTransformer):
    """Within the block, every forward adds each head's output (before the output
    projection) over the real queries into `sums[(block, head)]` and their number into
    `counts[block]`; yields (sums, counts). The hooks are removed on exit."""
    blocks = attention_blocks(model)
    sums, counts, state = {}, {}, {}
    handles = []

    def keep_mask(module, args):  # padded keys carry the bias NEG in every row
        state["mask"] = args[1][:, 0, 0] > NEG / 2

    def record(block_index):
        def hook(module, args):
            (out,) = args
            b, t, _ = out.shape
            heads = out.detach().view(b, t, blocks[block_index].num_heads, -1)
            real = state["mask"] if block_index < len(model.blocks) else \
                torch.ones(b, 1, dtype=torch.bool)
            total = heads[real].sum(0)  # (heads, head_dim)
            for h in range(total.shape[0]):
                sums[(block_index, h)] = sums.get((block_index, h), 0) + total[h]
            counts[block_index] = counts.get(block_index, 0) + int(real.sum())
        return hook

    try:
        handles += [block.register_forward_pre_hook(keep_mask) for block in model.blocks]
        for k, block in enumerate(blocks):
            handles.append(block.attn.out_proj.register_forward_pre_hook(record(k)))
        yield sums, counts
    finally:
        for handle in handles:
            handle.remove()
