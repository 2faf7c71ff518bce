"""The denoiser: a transformer over latent time frames with SG-CAtt in every block.

Each block: adaLN-Zero self-attention over the window's latent frames (timestep-modulated, DiT
style), SG-CAtt to the condition tokens under the storyboard bias, adaLN-Zero feed-forward. The
first half of the blocks (the "encoder" half) also apply a TB-As adapter. A 1-D transformer rather
than a 2-D UNet: the latent is a sequence in time, the storyboard mask is a mask over time, and
any window length works without padding to a power of two.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from vem.beatgrid import BEAT_CHANNELS
from vem.conditioning import sinusoid
from vem.presets import VeMConfig
from vem.sgcatt import SGCrossAttention
from vem.tbas import Adapter

__all__ = ["Denoiser"]


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, ff_mult: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = _SelfAttention(dim, n_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.cross = SGCrossAttention(dim, n_heads)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(approximate="tanh"), nn.Linear(ff_mult * dim, dim))
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, cond: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(nn.functional.silu(temb))[:, None].chunk(6, dim=-1)
        x = x + g1 * self.attn(self.norm1(x) * (1 + sc1) + sh1)
        x = x + self.cross(self.norm2(x), cond, bias)
        return x + g2 * self.ff(self.norm3(x) * (1 + sc2) + sh2)


class Denoiser(nn.Module):
    """``(z (B, L, F), t (B,), tokens (B, N, d), bias (B, 1, L, N), adapter input (B, H [+ beat channels], L) | None)
    -> prediction (B, L, F)`` (ε or v, as configured)."""

    def __init__(self, cfg: VeMConfig):
        super().__init__()
        d = cfg.d_model
        self.inp = nn.Linear(cfg.latent_features, d)
        self.t_proj = Timesteps(d, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.t_embed = TimestepEmbedding(d, d)
        self.blocks = nn.ModuleList([Block(d, cfg.n_heads, cfg.ff_mult) for _ in range(cfg.n_layers)])
        inputs = cfg.aligner_hidden + (BEAT_CHANNELS if cfg.beat_plan else 0)
        self.adapters = nn.ModuleList([Adapter(inputs, d) for _ in range(max(1, cfg.n_layers // 2))])
        self.out_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.out_ada = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, cfg.latent_features)
        for layer in (self.out_ada, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, bias: torch.Tensor,
                align: torch.Tensor | None = None, adapter_strength: float = 1.0) -> torch.Tensor:
        b, n, _ = z.shape
        temb = self.t_embed(self.t_proj(t.reshape(-1).expand(b)).to(z.dtype))
        pos = sinusoid(torch.arange(n, device=z.device), self.inp.out_features)
        x = self.inp(z) + pos
        for i, block in enumerate(self.blocks):
            if align is not None and i < len(self.adapters) and adapter_strength:
                x = self.adapters[i](x, align, adapter_strength)
            x = block(x, temb, tokens, bias)
        shift, scale = self.out_ada(nn.functional.silu(temb))[:, None].chunk(2, dim=-1)
        return self.out(self.out_norm(x) * (1 + scale) + shift)
