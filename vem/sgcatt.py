"""SG-CAtt: storyboard-guided cross-attention from latent time frames to condition tokens.

Queries are latent frames, keys/values the condition tokens (global tokens first, then one token
per shot). The storyboard mask lets a latent frame inside shot i attend to shot i's token and to
the global tokens. It enters the softmax as an additive bias:

- ``hard``: other shots' tokens get -inf (the paper's softmax(mask ⊙ QKᵀ/√d)V);
- ``soft``: they get ``-strength`` (a frame near a cut can still hear the neighbouring shot);
- ``off``: plain cross-attention to every token.

Padding tokens (shots that do not exist in a batch row) are always excluded.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["storyboard_mask", "attention_bias", "SGCrossAttention"]


def storyboard_mask(frame_times: torch.Tensor, shot_starts: torch.Tensor, shot_durations: torch.Tensor,
                    shot_valid: torch.Tensor, n_global: int) -> torch.Tensor:
    """``(batch, frames, n_global + shots)`` bool: may frame t attend to token k (ignoring padding).

    ``frame_times`` (batch, frames) and the shots' starts/durations (batch, shots) are in seconds on
    one clock; a frame belongs to the shot with start <= t < start + duration.
    """
    t = frame_times[:, :, None]
    inside = (t >= shot_starts[:, None, :]) & (t < (shot_starts + shot_durations)[:, None, :]) & shot_valid[:, None, :]
    glob = torch.ones((*frame_times.shape, n_global), dtype=torch.bool, device=frame_times.device)
    return torch.cat([glob, inside], dim=-1)


def attention_bias(mask: torch.Tensor, valid: torch.Tensor, mode: str, strength: float) -> torch.Tensor:
    """Additive attention bias ``(batch, 1, frames, tokens)`` for :class:`SGCrossAttention`.

    ``mask`` from :func:`storyboard_mask`; ``valid`` (batch, tokens) marks real (non-padding) tokens.
    """
    neg = torch.finfo(torch.float32).min
    bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    if mode == "hard":
        bias = bias.masked_fill(~mask, neg)
    elif mode == "soft":
        bias = bias.masked_fill(~mask, -float(strength))
    elif mode != "off":
        raise ValueError(f"mask mode must be hard, soft or off, got {mode!r}")
    bias = bias.masked_fill(~valid[:, None, :], neg)
    return bias.unsqueeze(1)


class SGCrossAttention(nn.Module):
    """Multi-head cross-attention with an additive storyboard bias (``scaled_dot_product_attention``)."""

    def __init__(self, dim: int, n_heads: int, cond_dim: int | None = None):
        super().__init__()
        cond_dim = cond_dim or dim
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(cond_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.n_heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv(cond).view(b, cond.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.out(y.transpose(1, 2).reshape(b, n, d))
