"""Any length from fixed-size windows: window plans and overlap-add with raised-cosine fades.

The pipeline uses the same two functions at two levels: while sampling, the denoiser's outputs on
overlapping latent windows are blended at every step (MultiDiffusion, Bar-Tal et al. 2023), so the
windows agree on the shared frames instead of being glued afterwards; when decoding, mel chunks of
the VAE decoder are blended the same way. A weight that rises as a raised cosine over the overlap
and is normalised by the sum of weights keeps a stationary signal unchanged across a join.
"""

from __future__ import annotations

import math

import torch

__all__ = ["window_starts", "fade_weights", "overlap_add"]


def window_starts(total: int, window: int, overlap: int) -> list[int]:
    """Starts of windows of ``window`` frames covering ``total`` frames, neighbours sharing at
    least ``overlap`` frames; the last window ends exactly at ``total``. One window (start 0) when
    ``total <= window``."""
    if window <= 0 or not 0 <= overlap < window:
        raise ValueError(f"need 0 <= overlap < window, got window={window}, overlap={overlap}")
    if total <= window:
        return [0]
    n = math.ceil((total - overlap) / (window - overlap))
    step = (total - window) / (n - 1)
    return [round(i * step) for i in range(n)]


def fade_weights(length: int, head: int, tail: int) -> torch.Tensor:
    """Per-frame weights of one chunk: a raised-cosine rise over its first ``head`` frames (shared
    with the previous chunk), a fall over its last ``tail`` frames (shared with the next), 1
    elsewhere; never exactly 0."""
    w = torch.ones(length)
    for n, flip in ((min(head, length), False), (min(tail, length), True)):
        if n > 0:
            ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(n) + 0.5) / n)
            if flip:
                w[length - n :] = torch.minimum(w[length - n :], ramp.flip(0))
            else:
                w[:n] = torch.minimum(w[:n], ramp)
    return w


def overlap_add(chunks: list[torch.Tensor], starts: list[int], total: int, *, dim: int = -1) -> torch.Tensor:
    """Blend ``chunks`` placed at ``starts`` along ``dim`` into one tensor of length ``total``.

    Each chunk is weighted by :func:`fade_weights` over the frames it shares with its neighbours
    and the sum is divided by the summed weights, so where only one chunk covers a frame it is
    copied unchanged.
    """
    if len(chunks) != len(starts) or not chunks:
        raise ValueError("need one start per chunk and at least one chunk")
    moved = [c.movedim(dim, -1) for c in chunks]
    ref = moved[0]
    out = torch.zeros((*ref.shape[:-1], total), dtype=ref.dtype, device=ref.device)
    norm = torch.zeros(total, dtype=ref.dtype, device=ref.device)
    order = sorted(range(len(starts)), key=lambda i: starts[i])
    ends = [starts[i] + moved[i].shape[-1] for i in range(len(moved))]
    for rank, i in enumerate(order):
        start, end = starts[i], ends[i]
        if start < 0 or end > total:
            raise ValueError(f"chunk {i} ({start}..{end}) is outside 0..{total}")
        head = max(0, ends[order[rank - 1]] - start) if rank else 0
        tail = max(0, end - starts[order[rank + 1]]) if rank + 1 < len(order) else 0
        w = fade_weights(end - start, head, tail).to(dtype=ref.dtype, device=ref.device)
        out[..., start:end] += moved[i] * w
        norm[start:end] += w
    if bool((norm <= 0).any()):
        raise ValueError("the chunks leave gaps")
    return (out / norm).movedim(-1, dim)
