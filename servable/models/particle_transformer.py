"""ParticleTransformer (Qu, Li, Qian 2022) in the structure of weaver-core's ParticleTransformer.

Particle embedding (LayerNorm + Linear + GELU per layer), pair embedding of the Lorentz-vector
features (ln kT, ln z, ln dR, ln m^2) into one attention bias per head, pre-LayerNorm particle
attention blocks, class-attention blocks with a class token, LayerNorm and a linear head.
Differences from weaver-core, on purpose: the input BatchNorm is replaced by the bundle's
declared preprocessing, and attention is written out (not nn.MultiheadAttention) so that the
weights of every layer and head can be returned and the graph exports to plain ONNX.

Particles are the tracks; their four-vectors come from the relative kinematics of the CMS
layout (pT and E in units of the jet pT, massless), so the pair features are invariant
under the jet's boost along its axis up to the constant ln(jet pT).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

NEG = -1e9  # additive mask: exp() underflows to exactly 0 for masked keys


def pair_features(ptrel, etarel, phirel, mask, eps: float = 1e-8) -> torch.Tensor:
    """(B, N) kinematics -> (B, 4, N, N): ln kT, ln z, ln dR, ln m^2 (zero on masked pairs)."""
    pti, ptj = ptrel.unsqueeze(2), ptrel.unsqueeze(1)
    deta = etarel.unsqueeze(2) - etarel.unsqueeze(1)
    dphi = torch.remainder(phirel.unsqueeze(2) - phirel.unsqueeze(1) + math.pi, 2 * math.pi) \
        - math.pi
    delta = torch.sqrt(deta * deta + dphi * dphi + eps)
    ptmin = torch.minimum(pti, ptj)
    # massless pair mass without cancellation: m^2 = 4 pTi pTj (sinh^2(deta/2) + sin^2(dphi/2))
    # (E^2 - p^2 cancels for collinear pairs, and its log then differs between runtimes);
    # sinh from exp because the TorchScript ONNX exporter has no Sinh
    half = deta / 2
    sinh_half = (torch.exp(half) - torch.exp(-half)) / 2
    m2 = 4 * pti * ptj * (sinh_half * sinh_half + torch.sin(dphi / 2) ** 2)
    feats = torch.stack([
        torch.log(ptmin * delta + eps), torch.log(ptmin / (pti + ptj + eps) + eps),
        torch.log(delta), torch.log(m2 + eps),
    ], dim=1)
    pair_mask = (mask.unsqueeze(2) & mask.unsqueeze(1)).unsqueeze(1)
    return feats * pair_mask.to(feats.dtype)


class Embed(nn.Module):
    def __init__(self, input_dim: int, dims: tuple[int, ...]):
        super().__init__()
        layers, d = [], input_dim
        for dim in dims:
            layers += [nn.LayerNorm(d), nn.Linear(d, dim), nn.GELU()]
            d = dim
        self.embed = nn.Sequential(*layers)

    def forward(self, x):
        return self.embed(x)


class PairEmbed(nn.Module):
    def __init__(self, dims: tuple[int, ...], num_heads: int):
        super().__init__()
        layers, d = [], 4
        for dim in dims:
            layers += [nn.Conv2d(d, dim, 1), nn.BatchNorm2d(dim), nn.GELU()]
            d = dim
        layers += [nn.Conv2d(d, num_heads, 1)]
        self.embed = nn.Sequential(*layers)

    def forward(self, pair):  # (B, 4, N, N) -> (B, heads, N, N)
        return self.embed(pair)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)

    def forward(self, query, key, bias):
        """bias: (B, heads, Nq, Nk) additive (pair embedding and padding mask)."""
        B, nq, nk = query.shape[0], query.shape[1], key.shape[1]
        q = self.q(query).view(B, nq, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k(key).view(B, nk, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v(key).view(B, nk, self.num_heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias
        weights = torch.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(B, nq, -1)
        return self.out(out), weights


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, ffn_ratio: int = 4):
        super().__init__()
        self.pre_attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.post_attn_norm = nn.LayerNorm(dim)
        self.pre_fc_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * ffn_ratio)
        self.post_fc_norm = nn.LayerNorm(dim * ffn_ratio)
        self.fc2 = nn.Linear(dim * ffn_ratio, dim)

    def forward(self, x, bias, cls_token=None):
        if cls_token is None:
            h = self.pre_attn_norm(x)
            a, w = self.attn(h, h, bias)
            residual = x
        else:
            u = self.pre_attn_norm(torch.cat([cls_token, x], dim=1))
            a, w = self.attn(u[:, :1], u, bias)
            residual = cls_token
        x = residual + self.post_attn_norm(a)
        h = self.fc2(self.post_fc_norm(F.gelu(self.fc1(self.pre_fc_norm(x)))))
        return x + h, w


class ParticleTransformer(nn.Module):
    """Tracks (B, P, N) channels-first, standardised, plus raw kinematics -> logits."""

    def __init__(self, input_dim: int, n_classes: int = 2, embed_dims=(64, 64, 64),
                 pair_embed_dims=(32, 32, 32), num_heads: int = 4, num_layers: int = 3,
                 num_cls_layers: int = 2):
        super().__init__()
        dim = embed_dims[-1]
        self.embed = Embed(input_dim, tuple(embed_dims))
        self.pair_embed = PairEmbed(tuple(pair_embed_dims), num_heads)
        self.blocks = nn.ModuleList(Block(dim, num_heads) for _ in range(num_layers))
        self.cls_blocks = nn.ModuleList(Block(dim, num_heads) for _ in range(num_cls_layers))
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, n_classes)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.num_heads = num_heads

    def forward(self, features, ptrel, etarel, phirel, mask, return_details: bool = False):
        """features (B, P, N); kinematics and mask (B, N). Returns logits (and details)."""
        x = self.embed(features.transpose(1, 2))  # (B, N, dim)
        x = x * mask.unsqueeze(-1).to(x.dtype)
        pad_bias = (~mask).to(x.dtype).mul(NEG)  # (B, N)
        bias = self.pair_embed(pair_features(ptrel, etarel, phirel, mask))
        bias = bias + pad_bias.view(-1, 1, 1, pad_bias.shape[1])
        attention, embeddings = [], []
        for block in self.blocks:
            x, w = block(x, bias)
            x = x * mask.unsqueeze(-1).to(x.dtype)
            attention.append(w)
            embeddings.append(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        cls_bias = torch.cat([torch.zeros_like(pad_bias[:, :1]), pad_bias], dim=1)
        cls_bias = cls_bias.view(-1, 1, 1, cls_bias.shape[1])
        for block in self.cls_blocks:
            cls, w = block(x, cls_bias, cls_token=cls)
            attention.append(w)
            embeddings.append(cls)
        logits = self.fc(self.norm(cls).squeeze(1))
        if return_details:
            return logits, {"attention": attention, "embeddings": embeddings}
        return logits
