"""Rhythmic and semantic alignment metrics of a video and its music; one pure function each.

Every rhythm metric has the shape ``metric(reference, estimate, **params) -> float``: event
times in seconds (1-D, sorted, finite, >= 0), checked by one validator; an empty input gives 0.0
with a warning (mir_eval's convention).

Matching: events of two lists *match* when they lie within ``tolerance`` seconds; matches are
one-to-one (a maximum bipartite matching, ``mir_eval.util.match_events``).

=================== ======================================================================
metric              definition
=================== ======================================================================
``biou``            beats of the music vs reference beats: IoU = m / (|A| + |B| - m), m the
                    matches within 0.5 s (the VeM paper's BIoU).
``tbiou``           video transitions vs music beats, the same IoU at 0.5 s (the paper's TBIoU).
                    At 0.5 s it cannot see beat sync: at 84-126 BPM every cut lies within 0.5 s
                    of some beat, and it is capped by |transitions| / |beats|. Kept to compare
                    with published numbers only.
``tbiou_tight``     the same IoU at 0.1 s: sensitive to sync.
``cut_beat_hit``    share of transitions with a beat within 0.1 s (1.0: every cut on a beat;
                    chance is about 2 * 0.1 s / beat period).
``cut_beat_align``  mean over transitions of exp(-d^2 / 2 sigma^2), d the distance to the
                    nearest beat, sigma = 0.05 s: a continuous version of the hit rate.
``bas``             Beat Align Score as in Bailando (Li et al. 2022): mean over *music* beats
                    of exp(-d^2 / 2 sigma^2) to the nearest visual beat (here: transition),
                    sigma = 0.05 s (Bailando's 3 frames at 60 fps).
``bhs`` / ``bcs``   beat hit / coverage scores of the dance-to-music lineage, this variant: both
                    lists binned into 1 s bins (a bin is "on" if it holds an event); hits =
                    bins on in both; BHS = hits / reference bins on, BCS = hits / estimated
                    bins on.
=================== ======================================================================

Semantic scores (:func:`semantic_score`, :func:`tw_semantic_score`) are cosines between a video
embedding and a music embedding from a joint embedder; without one they are not computed (the
caller reports them as unavailable, never a number from an untrained model).

:func:`frechet_distance` compares two sets of audio embeddings (FAD when the embeddings are of
audio): the distance between Gaussians fitted to each set.

Examples
--------
>>> cut_beat_hit([1.0, 2.02, 3.3], [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
0.6666666666666666
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "MetricError",
    "bas",
    "bcs",
    "bhs",
    "biou",
    "cut_beat_align",
    "cut_beat_hit",
    "event_iou",
    "frechet_distance",
    "semantic_score",
    "tbiou",
    "tbiou_tight",
    "tw_semantic_score",
    "validate_events",
]

PAPER_TOLERANCE_S = 0.5
TIGHT_TOLERANCE_S = 0.1
SIGMA_S = 0.05
MAX_EVENT_S = 86_400.0  # a day: larger times are not seconds


class MetricError(ValueError):
    """Invalid metric input; the message says what was received and what is expected."""


def validate_events(events: object, name: str = "events") -> np.ndarray:
    """Check event times in seconds: 1-D, finite, non-negative, sorted. Returns float64 array."""
    arr = np.asarray(events, dtype=np.float64)
    if arr.ndim != 1:
        raise MetricError(f"{name} must be a 1-D array of times in seconds, got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise MetricError(f"{name} contains NaN or infinite times")
    if arr.size and arr.min() < 0:
        raise MetricError(f"{name} contains negative times ({arr.min():g} s)")
    if arr.size and arr.max() > MAX_EVENT_S:
        raise MetricError(f"{name} has a time of {arr.max():g}; did you supply event times in seconds (not samples or ms)?")
    if arr.size > 1 and np.any(np.diff(arr) < 0):
        raise MetricError(f"{name} must be sorted in increasing time; sort them first (np.sort)")
    return arr


def _pair(reference: object, estimate: object, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray] | None:
    ref = validate_events(reference, names[0])
    est = validate_events(estimate, names[1])
    if ref.size == 0 or est.size == 0:
        warnings.warn(f"{names[0] if ref.size == 0 else names[1]} is empty; the score is 0", stacklevel=3)
        return None
    return ref, est


def _matches(ref: np.ndarray, est: np.ndarray, tolerance: float) -> int:
    import mir_eval  # noqa: PLC0415

    if tolerance <= 0:
        raise MetricError(f"tolerance must be > 0 s, got {tolerance}")
    return len(mir_eval.util.match_events(ref, est, tolerance))


def event_iou(reference: object, estimate: object, *, tolerance: float) -> float:
    """IoU of two event lists: ``m / (|A| + |B| - m)``, ``m`` one-to-one matches within ``tolerance`` s."""
    pair = _pair(reference, estimate, ("reference", "estimate"))
    if pair is None:
        return 0.0
    ref, est = pair
    m = _matches(ref, est, tolerance)
    return m / (len(ref) + len(est) - m)


def biou(reference_beats: object, estimated_beats: object, *, tolerance: float = PAPER_TOLERANCE_S) -> float:
    """BIoU: beats of generated music vs the reference music's beats (the paper's 0.5 s)."""
    return event_iou(reference_beats, estimated_beats, tolerance=tolerance)


def tbiou(transitions: object, beats: object, *, tolerance: float = PAPER_TOLERANCE_S) -> float:
    """TBIoU: video transitions vs music beats at the paper's 0.5 s (blind to sync; see module doc)."""
    return event_iou(transitions, beats, tolerance=tolerance)


def tbiou_tight(transitions: object, beats: object, *, tolerance: float = TIGHT_TOLERANCE_S) -> float:
    """TBIoU at 0.1 s: the IoU that does tell on-beat cuts from off-beat ones."""
    return event_iou(transitions, beats, tolerance=tolerance)


def _nearest_distance(points: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Distance (s) from each point to the nearest event; ``events`` sorted and non-empty."""
    idx = np.searchsorted(events, points)
    left = events[np.clip(idx - 1, 0, len(events) - 1)]
    right = events[np.clip(idx, 0, len(events) - 1)]
    return np.minimum(np.abs(points - left), np.abs(points - right))


def cut_beat_hit(transitions: object, beats: object, *, tolerance: float = TIGHT_TOLERANCE_S) -> float:
    """Share of transitions with a beat within ``tolerance`` seconds."""
    pair = _pair(transitions, beats, ("transitions", "beats"))
    if pair is None:
        return 0.0
    cuts, b = pair
    return float(np.mean(_nearest_distance(cuts, b) <= tolerance + 1e-9))


def cut_beat_align(transitions: object, beats: object, *, sigma: float = SIGMA_S) -> float:
    """Mean over transitions of ``exp(-d^2 / 2 sigma^2)``, ``d`` the distance to the nearest beat (s)."""
    pair = _pair(transitions, beats, ("transitions", "beats"))
    return 0.0 if pair is None else _gaussian_alignment(*pair, sigma)


def _gaussian_alignment(points: np.ndarray, events: np.ndarray, sigma: float) -> float:
    """Mean over ``points`` of ``exp(-d^2 / 2 sigma^2)``, ``d`` the distance to the nearest event."""
    d = _nearest_distance(points, events)
    return float(np.mean(np.exp(-(d**2) / (2 * sigma**2))))


def bas(music_beats: object, visual_beats: object, *, sigma: float = SIGMA_S) -> float:
    """Bailando's Beat Align Score: mean over music beats of ``exp(-d^2 / 2 sigma^2)`` to the nearest visual beat."""
    pair = _pair(music_beats, visual_beats, ("music_beats", "visual_beats"))
    return 0.0 if pair is None else _gaussian_alignment(*pair, sigma)


def _occupied_bins(reference: object, estimate: object, bin_s: float) -> tuple[set[int], set[int]] | None:
    """The ``bin_s``-second bins holding at least one event, for each list (None if one is empty)."""
    pair = _pair(reference, estimate, ("reference_beats", "estimated_beats"))
    if pair is None:
        return None
    ref, est = (set(np.floor(x / bin_s).astype(int).tolist()) for x in pair)
    return ref, est


def bhs(reference_beats: object, estimated_beats: object, *, bin_s: float = 1.0) -> float:
    """Beat hit score: share of the reference's 1 s bins holding a beat that the estimate also fills."""
    bins = _occupied_bins(reference_beats, estimated_beats, bin_s)
    return 0.0 if bins is None else len(bins[0] & bins[1]) / len(bins[0])


def bcs(reference_beats: object, estimated_beats: object, *, bin_s: float = 1.0) -> float:
    """Beat coverage score: share of the estimate's 1 s bins holding a beat that the reference also fills."""
    bins = _occupied_bins(reference_beats, estimated_beats, bin_s)
    return 0.0 if bins is None else len(bins[0] & bins[1]) / len(bins[1])


def semantic_score(video_embedding: object, music_embedding: object) -> float:
    """Cosine of a video embedding and a music embedding from the same joint space."""
    v = np.asarray(video_embedding, dtype=np.float64).reshape(-1)
    m = np.asarray(music_embedding, dtype=np.float64).reshape(-1)
    if v.shape != m.shape or v.size == 0:
        raise MetricError(f"embeddings must be non-empty and of one size, got {v.shape} and {m.shape}")
    denom = np.linalg.norm(v) * np.linalg.norm(m)
    if denom == 0:
        raise MetricError("an embedding is all zeros")
    return float(v @ m / denom)


def tw_semantic_score(shot_embeddings: object, music_embeddings: object, durations_s: object) -> float:
    """Time-weighted semantic score: per-shot cosines weighted by the shots' share of the duration.

    Parameters
    ----------
    shot_embeddings, music_embeddings : array-like, shape (n_shots, dim)
        The video embedding of each shot and the embedding of the music under it.
    durations_s : array-like, shape (n_shots,)
    """
    v = np.asarray(shot_embeddings, dtype=np.float64)
    m = np.asarray(music_embeddings, dtype=np.float64)
    w = np.asarray(durations_s, dtype=np.float64).reshape(-1)
    if v.ndim != 2 or v.shape != m.shape or len(w) != len(v):
        raise MetricError(f"need (n_shots, dim) embeddings and (n_shots,) durations, got {v.shape}, {m.shape}, {w.shape}")
    if np.any(w < 0) or w.sum() <= 0:
        raise MetricError("shot durations must be >= 0 s with a positive total")
    cos = np.array([semantic_score(a, b) for a, b in zip(v, m, strict=True)])
    return float(np.sum(cos * w) / w.sum())


def frechet_distance(a: object, b: object) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings, shape (n, dim) each:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Heusel et al. 2017; Kilgour et al.'s
    FAD on audio embeddings). Needs at least two rows per set; small sets bias it upwards, so
    compare only figures made from sets of the same sizes.
    """
    from scipy import linalg  # noqa: PLC0415

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise MetricError(f"need two sets of at least 2 embeddings of one size, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise MetricError("embeddings must be finite")
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = linalg.sqrtm(sx @ sy)
    if not np.isfinite(root).all():  # near-singular covariances: nudge both, as FID implementations do
        eps = 1e-6 * np.eye(len(sx))
        root = linalg.sqrtm((sx + eps) @ (sy + eps))
    diff = x.mean(0) - y.mean(0)
    return float(max(diff @ diff + np.trace(sx) + np.trace(sy) - 2.0 * np.trace(np.real(root)), 0.0))
