"""Shot transitions in analysis frames: hard cuts, dissolves and fades, robust to camera motion.

Conventions: frames are ``(n, h, w, 3)`` uint8 RGB at ``fps`` (the storyboard's 16 frames/s,
128 pixels wide); slot ``k`` shows time ``k / fps``; a hard cut between slots ``b - 1`` and
``b`` is at ``(b - 0.5) / fps``; a gradual transition's time is the middle of its span.

What is compared
----------------
Two frames ``i`` and ``j`` are compared by a **distance** ``D(i, j) = H(i, j) + R(i, j) / s``:

- ``H``: half the L1 distance of their HSV colour histograms (16 hues x 4 saturations x 4
  values; 0 = same colours, 1 = none in common);
- ``R``: the motion-compensated difference of their grey thumbnails (32 x 18): the camera's
  translation from ``i`` to ``j`` is taken from phase correlation (the highest peak; where it
  leaves a difference, the next two peaks and, for frames far apart, the sum of the shifts
  between neighbouring frames, which follows a fast pan that a single correlation loses; then
  each block may move a pixel more, for shifts measured to the pixel and slight zooms), and
  ``R`` is the median over the 4 x 4 blocks inside both frames of the mean absolute difference
  left, in grey levels. The median ignores what covers less than half the picture: a caption
  appearing, a person crossing the frame.
- ``s`` (``residual_scale``, 40 grey levels) puts ``R`` on ``H``'s scale: a cut between two
  photographs scores 1-3, a pan or a shaking camera 0-0.5.

What is detected, in this order
-------------------------------
1. **Fades** (through black or white): the picture's contrast (the thumbnail's standard
   deviation) dips below ``fade_dip`` (0.4) of its level on both sides within 0.75 s, while its
   brightness falls below half (or rises to white) and the dip lasts at least three frames
   unless it is dark (a flash frame is one or two bright frames). The transition is the middle
   of the dip; its span, where the contrast is under 90 % of the sides.
2. **Hard cuts**: ``C[b] = min(D(b-1, b), D(b-1, b+4), D(b-5, b))``: the change across the
   boundary must hold a quarter second on both sides, so a flash frame (which returns) gives
   none; ``C[b]`` must exceed ``cut_isolation`` (2) times every other ``C`` within 3 frames (a
   whip pan or a moving object changes several frames in a row) and an adaptive threshold
   ``max(min_cut, median + 8 MAD)`` of ``C`` over the 2 s around it.
3. **Dissolves** (and any other gradual change): ``G[k] = min(D(k-L, k+L), D(k-L-3, k+L+3))``
   with ``L = lag_s`` (0.5 s) rises to a plateau over a gradual transition (the two offsets make
   a flash at one end harmless). Its local maxima, strongest first, that are not within
   ``L + 3`` frames of a cut or a fade, and exceed ``max(min_gradual, median + 4 MAD)`` of ``G``
   over the 2 s around (leaving out the plateau itself and the stretches already explained by
   transitions, so that a dense sequence of transitions does not raise its own threshold) are
   transitions, unless ``G`` stays above ``valley`` (0.7) of the weaker of two peaks everywhere
   between them (one plateau, one transition). The time is the plateau's middle (where ``G`` is
   within 10 % of the peak); the span is where ``G`` rises over a fifth of the way from its
   surroundings to the peak, shortened by ``L`` at both ends. A window over which the camera
   travelled a quarter of the frame or more (the sum of the shifts between neighbouring frames)
   while its structural part ``R / s`` stays under ``pan_structure`` (0.5) is a pan, not a
   transition: the colours change as the view moves, the pictures match once moved.

Transitions closer than ``min_shot_s`` are one transition (the stronger is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as scipy_fft
from scipy.ndimage import maximum_filter1d

__all__ = ["Detected", "detect_transitions", "histograms"]

_THUMB_W = 32  # thumbnail width (px) for the motion-compensated difference
_BLOCK = 4  # block size (px) of the thumbnail's median
_PEAKS = 3  # phase-correlation peaks tried per pair
_MOVED = 0.25  # a pair whose difference is under this share of ``residual_scale`` tries no other shift


@dataclass(frozen=True)
class Detected:
    """One transition: ``time`` (s), ``kind`` (``hard`` / ``gradual``), its ``span`` (s, start and
    end; a cut's has no length) and its ``strength`` (the distance that found it)."""

    time: float
    kind: str
    start: float
    end: float
    strength: float


def detect_transitions(frames: np.ndarray, fps: float, *, lag_s: float = 0.5, residual_scale: float = 40.0,
                       min_cut: float = 0.5, cut_isolation: float = 2.0, min_gradual: float = 0.6, valley: float = 0.7,
                       fade_dip: float = 0.4, pan_structure: float = 0.5, min_shot_s: float = 0.4,
                       fresh: np.ndarray | None = None, grey: np.ndarray | None = None) -> list[Detected]:
    """Transitions of ``frames`` (``(n, h, w, 3)`` uint8 RGB at ``fps``), in time order; see the
    module docstring for the method and its parameters. ``fresh`` (from
    :func:`vem.storyboard.decode_frames`) marks the frames that are not a repeat of the one
    before: a pair of repeats is compared once. ``grey`` may pass the frames' channel sums
    (``(n, h, w)`` int16, 0-765) when the caller has them."""
    n = len(frames)
    if n < 2:
        return []
    d = _Distances(frames, residual_scale, fresh, grey)
    lag = max(1, int(round(lag_s * fps)))
    reach = lag + 3
    events: list[Detected] = []
    no_cut = np.zeros(n, dtype=bool)  # inside a fade
    explained = np.zeros(n, dtype=bool)  # near a cut or a fade: no gradual candidate, not in a baseline
    # 1. fades
    for lo, hi, a, b in _fades(d.contrast, d.brightness, fps, fade_dip):
        events.append(Detected(((lo + hi) / 2) / fps, "gradual", a / fps, b / fps, 10.0))
        no_cut[a : b + 1] = True
        explained[max(0, a - reach) : b + reach + 1] = True
    # 2. hard cuts
    cut = d.step(-1, 0)
    cut[0] = 0.0
    at = np.flatnonzero(cut > min_cut)  # the two other comparisons can only lower it: made where it matters
    cut[at] = np.minimum(cut[at], np.minimum(d.step(-1, 4, at), d.step(-5, 0, at)))
    half = int(round(2 * fps))
    shot = int(round(min_shot_s * fps))  # no second cut within a shot's shortest length
    taken = no_cut.copy()
    around = np.maximum(_window_max(cut, 3, "before"), _window_max(cut, 3, "after"))  # the largest other within 3 frames
    isolated = np.flatnonzero((cut > min_cut) & (cut >= cut_isolation * around))
    for b in isolated[np.argsort(-cut[isolated], kind="stable")]:
        if taken[b]:
            continue
        if cut[b] <= _adaptive(cut, b, half, min_cut, 8.0, own=(b - 2, b + 3)):
            continue
        t = (b - 0.5) / fps
        events.append(Detected(t, "hard", t, t, float(cut[b])))
        taken[max(0, b - shot) : b + shot] = True
        explained[max(0, b - reach) : b + reach] = True
    # 3. gradual transitions
    colour, structure = d.parts(-lag, lag)
    across = colour + structure
    at = np.flatnonzero(across > 0.5 * min_gradual)
    across[at] = np.minimum(across[at], d.step(-lag - 3, lag + 3, at))
    g = across.copy()
    g[1:-1] = np.median(np.stack([across[:-2], across[1:-1], across[2:]]), axis=0)  # a one-frame spike is no plateau
    # a window over which the camera travelled a quarter of the frame or more, and whose pictures match once
    # moved (the structure is explained), is a pan: its colours change as the view moves, but no shot ends there
    k = np.arange(n)
    travel = np.abs(d.path[np.minimum(k + lag, n - 1)] - d.path[np.maximum(k - lag, 0)]) / d.thumbs.shape[1:]
    panned = np.flatnonzero(travel.max(axis=1) >= 0.25)
    camera = np.zeros(n, dtype=bool)
    if len(panned):
        camera[panned] = structure[panned] < pan_structure
    events += _gradual(g, explained, camera, fps, lag, reach, half, min_gradual, valley)
    # 4. one transition per shot boundary
    events.sort(key=lambda e: e.time)
    merged: list[Detected] = []
    for ev in events:
        if merged and ev.time - merged[-1].time < min_shot_s:
            if ev.strength > merged[-1].strength:
                merged[-1] = ev
            continue
        merged.append(ev)
    return merged


class _Distances:
    """``D(i, j)`` of the module docstring for whole arrays of frame pairs."""

    def __init__(self, frames: np.ndarray, scale: float, fresh: np.ndarray | None, grey: np.ndarray | None) -> None:
        self.n = len(frames)
        # each slot's decoded frame: repeated slots share one (and their comparisons)
        self.source = np.arange(self.n) if fresh is None else np.maximum(np.cumsum(np.asarray(fresh, dtype=bool)) - 1, 0)
        self.thumbs = _thumbnails(frames if grey is None else grey)  # (n, 18, 32) grey levels
        self.hist = histograms(frames[:, ::4, ::4] if frames.shape[2] >= 4 * _THUMB_W else frames)  # colours need no detail
        self.scale = scale
        flat = self.thumbs.reshape(self.n, -1)
        self.contrast = flat.std(axis=1)
        self.brightness = flat.mean(axis=1)
        t = self.thumbs - self.thumbs.mean(axis=(1, 2), keepdims=True)
        h, w = t.shape[1:]
        self.spectra = scipy_fft.rfft2(t * np.outer(np.hanning(h), np.hanning(w)).astype(np.float32))
        self._moves: np.ndarray | None = None  # (n, 2) the shift from each frame's predecessor, once measured
        self._path: np.ndarray | None = None

    @property
    def path(self) -> np.ndarray:
        """(n, 2) the camera's path: the sum of the (dy, dx) shifts between neighbouring frames."""
        if self._moves is None:
            self.step(-1, 0)
        assert self._moves is not None
        if self._path is None:
            self._path = np.cumsum(self._moves, axis=0)
        return self._path

    def step(self, before: int, after: int, at: np.ndarray | None = None) -> np.ndarray:
        """``D(k + before, k + after)`` for every ``k`` (or those ``at``; indices clipped to the video)."""
        colour, structure = self.parts(before, after, at)
        return colour + structure

    def parts(self, before: int, after: int, at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``H`` and ``R / s`` of :meth:`step`'s pairs, apart."""
        k = np.arange(self.n) if at is None else at
        i, j = np.clip(k + before, 0, self.n - 1), np.clip(k + after, 0, self.n - 1)
        pairs, inverse = np.unique(self.source[i] * self.n + self.source[j], return_inverse=True)
        first = np.zeros(len(pairs), dtype=np.int64)  # a slot pair standing for all with the same decoded frames
        first[inverse[::-1]] = np.arange(len(k))[::-1]
        colour, structure = np.zeros(len(pairs)), np.zeros(len(pairs))
        moves = np.zeros((len(pairs), 2), dtype=np.int64)
        todo = np.flatnonzero(pairs // self.n != pairs % self.n)  # a frame against itself differs by nothing
        if len(todo):
            colour[todo], structure[todo], moves[todo] = self._pairs(i[first[todo]], j[first[todo]], far=after - before > 1)
        if (before, after) == (-1, 0) and at is None:
            self._moves = moves[inverse.ravel()]
        return colour[inverse.ravel()], structure[inverse.ravel()]

    def _pairs(self, i: np.ndarray, j: np.ndarray, *, far: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``H(i, j)``, ``R(i, j) / s`` and the (dy, dx) of the highest correlation peak, pair by pair."""
        surface = self._correlation(i, j)
        best = self._peaks(surface, 1)[0]
        residual = self._residual(i, j, *best)
        chosen = np.stack(best, axis=1)
        high = np.flatnonzero(residual > _MOVED * self.scale)  # the other candidates only where the best peak leaves a difference
        if len(high):
            shifts = self._peaks(surface[high], _PEAKS)[1:]
            if far:
                move = self.path[j[high]] - self.path[i[high]]
                shifts.append((move[:, 0], move[:, 1]))
            for dy, dx in shifts:
                left = np.flatnonzero(residual[high] > _MOVED * self.scale)
                if len(left) == 0:
                    break
                k = high[left]
                trial = self._residual(i[k], j[k], dy[left], dx[left])
                better = trial < residual[k]
                residual[k[better]] = trial[better]
                chosen[k[better]] = np.stack([dy[left][better], dx[left][better]], axis=1)
            # last, for frames far apart (where a pan has moved the view most), a pixel's play around the best shift
            rest = np.flatnonzero(residual > _MOVED * self.scale) if far else np.zeros(0, dtype=np.int64)
            if len(rest):
                residual[rest] = np.minimum(residual[rest], self._residual(i[rest], j[rest], chosen[rest, 0], chosen[rest, 1],
                                                                           local=True))
        colour = 0.5 * np.abs(self.hist[j] - self.hist[i]).sum(axis=1)
        return colour, residual / self.scale, np.stack(best, axis=1)

    def _correlation(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """(m, h * w) phase-correlation surfaces of the pairs: a peak at (dy, dx) where ``thumbs[j]``
        is ``thumbs[i]`` moved by it."""
        h, w = self.thumbs.shape[1:]
        cross = self.spectra[j] * np.conj(self.spectra[i])
        cross /= np.abs(cross) + 1e-3
        return scipy_fft.irfft2(cross, s=(h, w)).reshape(len(i), -1)

    def _peaks(self, surface: np.ndarray, peaks: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``peaks`` highest peaks of each surface as (dy, dx), highest first."""
        h, w = self.thumbs.shape[1:]
        if peaks > 1:
            top = np.argpartition(-surface, peaks - 1, axis=1)[:, :peaks]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(surface, top, axis=1), axis=1), axis=1)
        else:
            top = surface.argmax(axis=1)[:, None]
        out = []
        for c in range(top.shape[1]):
            dy, dx = np.unravel_index(top[:, c], (h, w))
            out.append((np.where(dy > h // 2, dy - h, dy), np.where(dx > w // 2, dx - w, dx)))
        return out

    def _residual(self, i: np.ndarray, j: np.ndarray, dy: np.ndarray, dx: np.ndarray, *, local: bool = False) -> np.ndarray:
        """Median over the 4 x 4 blocks where they overlap of ``|thumbs[j] - thumbs[i] moved by
        (dy, dx)|``; a shift that leaves less than two blocks of overlap compares the frames unmoved.
        ``local``: each block takes the best of the shifts within a pixel of (dy, dx), which
        absorbs a shift measured to the nearest pixel, a slight zoom or roll."""
        h, w = self.thumbs.shape[1:]
        far = (h - np.abs(dy) < 2 * _BLOCK) | (w - np.abs(dx) < 2 * _BLOCK)
        blocks = self._blocks(i, j, np.where(far, 0, dy), np.where(far, 0, dx), 1 if local else 0).reshape(len(i), -1)
        ranked = np.sort(blocks, axis=1)
        count = np.isfinite(blocks).sum(axis=1)
        rows = np.arange(len(i))
        return (0.5 * (ranked[rows, (count - 1) // 2] + ranked[rows, count // 2])).astype(np.float32)

    def _blocks(self, i: np.ndarray, j: np.ndarray, dy: np.ndarray, dx: np.ndarray, play: int) -> np.ndarray:
        """(m, bh, bw) mean ``|thumbs[j] - thumbs[i] moved by (dy, dx)|`` per 4 x 4 block, the least
        over the moves up to ``play`` pixels more; inf for a block that is not wholly inside the
        moved frame."""
        t = self.thumbs
        h, w = t.shape[1:]
        # frame i moved by (dy, dx) on a canvas ``play`` pixels larger all round: window (a, b) of it is frame i
        # moved by (dy + play - a, dx + play - b)
        ys = np.arange(-play, h + play)[None, :] - dy[:, None]  # (m, h + 2 play): the rows of frame i
        xs = np.arange(-play, w + play)[None, :] - dx[:, None]
        canvas = t[i[:, None, None], np.clip(ys, 0, h - 1)[:, :, None], np.clip(xs, 0, w - 1)[:, None, :]]
        target = t[j]
        best = None
        for a in range(2 * play + 1):
            for b in range(2 * play + 1):
                blocks = _box_sum(np.abs(target - canvas[:, a : a + h, b : b + w]), _BLOCK) / _BLOCK**2
                top = np.arange(blocks.shape[1])[None, :] * _BLOCK - (dy + play - a)[:, None]
                left = np.arange(blocks.shape[2])[None, :] * _BLOCK - (dx + play - b)[:, None]
                whole = ((top >= 0) & (top + _BLOCK <= h))[:, :, None] & ((left >= 0) & (left + _BLOCK <= w))[:, None, :]
                blocks = np.where(whole, blocks, np.inf)
                best = blocks if best is None else np.minimum(best, blocks)
        assert best is not None
        return best


def _thumbnails(frames: np.ndarray) -> np.ndarray:
    """(n, h', 32) float32 grey thumbnails (mean of the channels, box-filtered) of RGB frames or
    of their channel sums."""
    if frames.shape[2] >= 4 * _THUMB_W:
        frames = frames[:, ::2, ::2]  # every other pixel is enough from 128 wide
    grey = frames[..., 0].astype(np.int16) + frames[..., 1] + frames[..., 2] if frames.ndim == 4 else frames
    f = max(1, grey.shape[2] // _THUMB_W)
    return _box_sum(grey.astype(np.float32), f)[:, :, :_THUMB_W] / (3.0 * f * f)


def _box_sum(x: np.ndarray, f: int) -> np.ndarray:
    """Sums of ``x``'s ``f`` x ``f`` blocks over its last two axes (cropped to whole blocks), by
    adding strided views: ten times faster than a reshape and a reduction over two axes."""
    h, w = x.shape[-2] // f * f, x.shape[-1] // f * f
    x = x[..., :h, :w]
    rows = sum(x[..., a::f, :] for a in range(1, f)) + x[..., 0::f, :] if f > 1 else x
    return sum(rows[..., b::f] for b in range(1, f)) + rows[..., 0::f] if f > 1 else rows


def _fades(contrast: np.ndarray, brightness: np.ndarray, fps: float, dip: float) -> list[tuple[int, int, int, int]]:
    """(lo, hi, start, end) frame indices of each fade: its darkest stretch and its whole span."""
    n = len(contrast)
    w = int(round(0.75 * fps))
    found: list[tuple[int, int, int, int]] = []
    used = np.zeros(n, dtype=bool)
    sides = np.minimum(_window_max(contrast, w, "before", True), _window_max(contrast, w, "after", True))
    bright_sides = np.minimum(_window_max(brightness, w, "before", True), _window_max(brightness, w, "after", True))
    lowest = -_window_max(-contrast, 1, "both", True)
    dips = np.flatnonzero((contrast <= lowest) & (contrast < dip * sides))
    for m in dips[np.argsort(contrast[dips], kind="stable")]:
        if used[m]:
            continue
        side, bright_side = sides[m], bright_sides[m]
        dark = brightness[m] < 0.5 * bright_side
        if not (dark or brightness[m] > 200):
            continue
        lo, hi = _run(contrast, m, contrast[m] + 0.1 * (side - contrast[m]))
        if hi - lo > 2 * fps:  # a dark shot, not a fade
            continue
        a, b = _run(contrast, m, 0.5 * side, strict=True)
        if b - a + 1 < 3 and not dark:  # a flash: one or two washed-out frames
            continue
        start, end = _run(contrast, m, 0.9 * side, strict=True, limit=w)
        found.append((lo, hi, start, end))
        used[start : end + 1] = True
    return found


def _window_max(x: np.ndarray, width: int, where: str, inclusive: bool = False) -> np.ndarray:
    """Per frame, the largest value of ``x`` among the ``width`` frames ``before`` it, ``after`` it
    or on ``both`` sides (``inclusive``: the frame itself too); -inf where there are none."""
    n = len(x)
    pad = np.concatenate([np.full(width + 1, -np.inf), x.astype(np.float64), np.full(width + 1, -np.inf)])
    size = 2 * width + 1 if where == "both" else width + (1 if inclusive else 0)
    if where == "both":
        return maximum_filter1d(pad, size, mode="nearest")[width + 1 : width + 1 + n]
    shifted = maximum_filter1d(pad, size, mode="nearest", origin=(size - 1) // 2 if where == "before" else -(size // 2))
    offset = 0 if inclusive else (1 if where == "after" else -1)
    return shifted[width + 1 + offset : width + 1 + offset + n]


def _run(x: np.ndarray, m: int, level: float, *, strict: bool = False, limit: int | None = None) -> tuple[int, int]:
    """The stretch of frames around ``m`` where ``x`` stays at or below (``strict``: below) ``level``."""
    below = (lambda v: v < level) if strict else (lambda v: v <= level)
    lo, hi = m, m
    first, last = (0, len(x) - 1) if limit is None else (max(0, m - limit), min(len(x) - 1, m + limit))
    while lo > first and below(x[lo - 1]):
        lo -= 1
    while hi < last and below(x[hi + 1]):
        hi += 1
    return lo, hi


def _gradual(g: np.ndarray, explained: np.ndarray, camera: np.ndarray, fps: float, lag: int, reach: int, half: int, floor: float,
             valley: float) -> list[Detected]:
    n = len(g)
    is_peak = (g > floor) & ~explained & ~camera & (g >= maximum_filter1d(g, 7, mode="nearest"))
    peaks = [int(k) for k in np.flatnonzero(is_peak)[np.argsort(-g[is_peak], kind="stable")]]
    accepted: list[int] = []
    baseline_skip = explained.copy()
    for _ in range(3):  # a peak accepted leaves the baseline of its neighbours: look again
        changed = False
        for k in peaks:
            if k in accepted or any(g[min(j, k) : max(j, k) + 1].min() >= valley * min(g[j], g[k]) for j in accepted):
                continue
            lo, hi = _plateau(g, k)
            own = (max(0, lo - reach), hi + reach + 1)
            if g[k] <= _adaptive(g, k, half, floor, 4.0, own=own, skip=baseline_skip):
                continue
            accepted.append(k)
            baseline_skip[own[0] : own[1]] = True
            changed = True
        if not changed:
            break
    out = []
    accepted.sort()
    for idx, k in enumerate(accepted):
        left = accepted[idx - 1] if idx else None
        right = accepted[idx + 1] if idx + 1 < len(accepted) else None
        # this peak's own stretch: up to the lowest point towards each accepted neighbour
        first = left + int(np.argmin(g[left : k + 1])) if left is not None else 0
        last = k + int(np.argmin(g[k : right + 1])) if right is not None else n - 1
        lo, hi = _plateau(g, k, first, last)
        lo_w, hi_w = max(0, k - half), min(n, k + half + 1)
        ground = float(np.median(g[lo_w:hi_w][~baseline_skip[lo_w:hi_w]])) if (~baseline_skip[lo_w:hi_w]).any() else 0.0
        a, b = _run(-g, k, -(ground + 0.2 * (g[k] - ground)), strict=True)
        a, b = max(a, first), min(b, last)
        middle = (lo + hi) / 2
        start, end = min(middle, a + lag), max(middle, b - lag)
        out.append(Detected(middle / fps, "gradual", start / fps, end / fps, float(g[k])))
    return out


def _plateau(g: np.ndarray, k: int, first: int = 0, last: int | None = None) -> tuple[int, int]:
    """The frames around the peak ``k`` where ``g`` stays within 10 % of it, between ``first`` and ``last``."""
    last = len(g) - 1 if last is None else last
    lo, hi = k, k
    while lo > first and g[lo - 1] >= 0.9 * g[k]:
        lo -= 1
    while hi < last and g[hi + 1] >= 0.9 * g[k]:
        hi += 1
    return lo, hi


def _adaptive(x: np.ndarray, k: int, half: int, floor: float, spread: float, *, own: tuple[int, int],
              skip: np.ndarray | None = None) -> float:
    """``max(floor, median + spread * MAD)`` of ``x`` within ``half`` of ``k``, leaving out the
    event's own span ``own = (start, stop)`` and the frames ``skip`` marks."""
    lo, hi = max(0, k - half), min(len(x), k + half + 1)
    keep = np.ones(hi - lo, dtype=bool)
    keep[max(0, own[0] - lo) : max(0, own[1] - lo)] = False
    if skip is not None:
        keep &= ~skip[lo:hi]
    window = x[lo:hi][keep]
    if len(window) == 0:
        return floor
    med = float(np.median(window))
    return max(floor, med + spread * float(np.median(np.abs(window - med))))


# ---- colour histograms -------------------------------------------------------------------------
_LUT_BITS = 5  # bits kept of each RGB channel for the histogram lookup (the value bins' edges fall on its cells)
_lut: np.ndarray | None = None


def hsv(x: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] → HSV in [0, 1], vectorised (channel-wise operations, no reductions over
    the short last axis, which numpy does slowly)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    delta = mx - mn
    safe = np.where(delta > 0, delta, np.float32(1.0))
    hue = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    hue = np.where(delta > 0, hue, np.float32(0.0))
    sat = np.where(mx > 0, delta / np.where(mx > 0, mx, np.float32(1.0)), np.float32(0.0))
    out = np.empty(x.shape, dtype=np.float32)
    out[..., 0], out[..., 1], out[..., 2] = hue, sat, mx
    return out


def _bin_lut() -> np.ndarray:
    """``(2**15,)`` uint8: the histogram bin (16 hues x 4 saturations x 4 values) of each RGB
    colour quantised to 5 bits per channel, taken at the middle of its quantisation cell."""
    global _lut  # noqa: PLW0603  (built once per process: 32768 colours, about a millisecond)
    if _lut is None:
        levels = (np.arange(2**_LUT_BITS, dtype=np.float32) + 0.5) / 2**_LUT_BITS
        r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
        v = hsv(np.stack([r, g, b], axis=-1).reshape(1, -1, 3))[0]
        h = np.minimum((v[:, 0] * 16).astype(np.int64), 15)
        s = np.minimum((v[:, 1] * 4).astype(np.int64), 3)
        val = np.minimum((v[:, 2] * 4).astype(np.int64), 3)
        _lut = (h * 16 + s * 4 + val).astype(np.uint8)
    return _lut


def histograms(frames: np.ndarray) -> np.ndarray:
    """(n, 256) normalised HSV histograms (16 hues x 4 saturations x 4 values) of uint8 RGB
    frames, through a lookup table of quantised colours: no per-pixel HSV arithmetic, and the
    32 kB table stays in cache."""
    n = len(frames)
    drop = 8 - _LUT_BITS
    code = (frames[..., 0] >> drop).astype(np.uint16) << (2 * _LUT_BITS)
    code |= (frames[..., 1] >> drop).astype(np.uint16) << _LUT_BITS
    code |= frames[..., 2] >> drop
    bins = _bin_lut()[code].reshape(n, -1).astype(np.int64) + (256 * np.arange(n, dtype=np.int64))[:, None]
    out = np.bincount(bins.ravel(), minlength=256 * n).reshape(n, 256).astype(np.float32)
    return out / out.sum(axis=1, keepdims=True)
