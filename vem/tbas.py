"""TB-As: the transition-beat aligner and the adapter it drives.

The **aligner** reads the storyboard's frame features (:func:`vem.conditioning.frame_features`,
16 fps) and predicts per frame the probability of a transition that should land on a beat; it is
trained with BCE against transition ∩ beat targets (:func:`vem.training.aligner_loss`). The paper
uses a ResNet(2+1)D-18 on pixels; we run a dilated temporal ConvNet on the parser's features
(cuts, motion, appearance): the parser already did the pixel work, and this trains on a CPU.

Its penultimate activations, resampled to the latent frame rate, drive the **adapter**: per
denoiser block, two zero-initialised convolutions give γ and β and the block applies
z ← z + s·(γ·z + β) with the user's adapter strength s. Zero initialisation makes the adapter a
no-op until it is trained (phase 3), so it cannot disturb a trained denoiser.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Aligner", "Adapter", "resample"]


class _Residual(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.GroupNorm(1, dim), nn.SiLU(), nn.Conv1d(dim, dim, 3, padding=dilation, dilation=dilation),
            nn.GroupNorm(1, dim), nn.SiLU(), nn.Conv1d(dim, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class Aligner(nn.Module):
    """``frame features (B, n_frames, F) -> (features (B, hidden, n_frames), logits (B, n_frames))``.

    Receptive field: dilations 1, 2, 4, ... (2^layers frames each way), about 1 s at 16 fps with 4
    layers: enough to see a cut and the rhythm of the cuts around it.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        self.inp = nn.Conv1d(in_dim, hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[_Residual(hidden, 2**i) for i in range(layers)])
        self.head = nn.Sequential(nn.GroupNorm(1, hidden), nn.SiLU(), nn.Conv1d(hidden, 1, 1))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(self.inp(frames.transpose(1, 2)))
        return h, self.head(h).squeeze(1)


def resample(features: torch.Tensor, length: int) -> torch.Tensor:
    """``(B, C, n) -> (B, C, length)`` by linear interpolation (frame rate → latent rate)."""
    if features.shape[-1] == length:
        return features
    return nn.functional.interpolate(features, size=length, mode="linear", align_corners=False)


class Adapter(nn.Module):
    """γ, β for one denoiser block from aligner features at the latent rate (zero-initialised)."""

    def __init__(self, hidden: int, dim: int):
        super().__init__()
        self.gamma = nn.Conv1d(hidden, dim, 3, padding=1)
        self.beta = nn.Conv1d(hidden, dim, 3, padding=1)
        for conv in (self.gamma, self.beta):
            nn.init.zeros_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def forward(self, z: torch.Tensor, features: torch.Tensor, strength: float | torch.Tensor) -> torch.Tensor:
        """``z`` (B, L, dim), ``features`` (B, hidden, L) → z + s·(γ·z + β)."""
        gamma = self.gamma(features).transpose(1, 2)
        beta = self.beta(features).transpose(1, 2)
        return z + strength * (gamma * z + beta)
