"""Video parsing, the "conductor": a video → transitions, shots and frame-level features.

Conventions (the Storyboard contract of DESIGN.md): the analysis runs at ``fps`` = 16 frames/s
on frames scaled to ``width`` pixels; times are in seconds. A transition's time is the boundary
between the last frame of a shot and the first of the next for a hard cut (the midpoint of the
two analysis frames around it), and the middle of the blend for a gradual one.

Decoding: PyAV with the decoder's own threads, no deblocking filter, and the non-reference
frames (most B-frames) not decoded at all (see :func:`decode_frames`: cuts keep their time, and a
stream whose remaining frames leave gaps over ``max_skip_gap_s`` is decoded in full instead).
Analysis slot ``k`` shows the picture on screen at ``k / fps``: the latest decoded frame at or
before it; each such frame is converted and scaled (box filter) once, however many slots it fills.

Detection (:mod:`vem.transitions`): fades from a dip of the picture's contrast, hard cuts from a
change between neighbouring frames that survives motion compensation and holds on both sides
(a flash frame returns; a whip pan or a person crossing the frame is not one frame's change),
and dissolves from the change across a half-second window; the thresholds adapt to each video's
own level of motion, the absolute floors only stop a static video's noise from counting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from vem.media import open_media
from vem.transitions import detect_transitions
from vem.transitions import hsv as colour_hsv

__all__ = ["ParseConfig", "Storyboard", "VideoError", "decode_frames", "light_embedding", "parse_frames", "parse_video",
           "read_frames"]


class VideoError(ValueError):
    """A video that cannot be parsed: unreadable, no video stream, or over a limit."""


@dataclass(frozen=True)
class ParseConfig:
    """Video parsing settings; defaults run at 16 frames/s on 128-pixel-wide frames."""

    fps: float = 16.0  # analysis rate (frames/s), the paper's
    width: int = 128  # analysis width (px); colour and coarse layout survive, costs stay small
    # transition detection (vem/transitions.py; chosen on the real-footage tuning half and the sample catalog)
    lag_s: float = 0.5  # half-window of the gradual-transition comparison
    residual_scale: float = 40.0  # grey levels of motion-compensated difference worth a whole colour change
    min_cut: float = 0.5  # floor of the hard-cut threshold (distance units: a cut between photos scores 1-3)
    cut_isolation: float = 2.0  # a cut's change is at least this many times any other within 3 frames
    min_gradual: float = 0.6  # floor of the gradual-transition threshold (distance units)
    valley: float = 0.7  # two peaks of the gradual signal are one transition unless it falls below this share between them
    fade_dip: float = 0.4  # a fade's contrast falls below this share of the contrast around it
    pan_structure: float = 0.5  # a window the camera pans across is no transition while its moved pictures differ less
    min_shot_s: float = 0.4  # transitions closer than this are one transition
    max_duration_s: float = 1800.0  # refuse longer videos (30 min)
    max_pixels: int = 3840 * 2160  # refuse larger frames (4K)
    max_frames: int = 30 * 60 * 60  # refuse more source frames (an hour at 30 fps)
    embedding: str = "light"  # frame embeddings: "light" (built-in) or "none" (scoring needs none)
    skip_nonref: bool = True  # skip decoding frames no other frame refers to (B-frames), see decode_frames
    max_skip_gap_s: float = 0.15  # longest gap between decoded frames that skipping may leave (else decode all)

    def __post_init__(self) -> None:
        if self.embedding not in ("light", "none"):
            raise ValueError(f"embedding must be 'light' or 'none', got {self.embedding!r}")

    @classmethod
    def debug(cls) -> ParseConfig:
        return cls(width=64)


@dataclass
class Storyboard:
    fps: float
    duration_s: float
    transitions: np.ndarray  # (n_t,) s
    transition_kinds: list[str]  # "hard" | "gradual"
    transition_strengths: np.ndarray  # (n_t,)
    shot_starts: np.ndarray  # (n_shots,) s
    shot_durations: np.ndarray  # (n_shots,) s
    keyframe_times: np.ndarray  # (n_shots,) s
    transition_indicator: np.ndarray  # (n_frames,) 0/1 at fps
    motion_energy: np.ndarray  # (n_frames,)
    embeddings: np.ndarray  # (n_frames, dim) visual embedding per analysis frame
    frames: np.ndarray | None = field(default=None, repr=False)  # (n_frames, h, w, 3) uint8 when kept
    transition_spans: np.ndarray | None = None  # (n_t, 2) s: start and end (a cut's are its time), when parsed

    @property
    def n_shots(self) -> int:
        return len(self.shot_starts)


def read_frames(source: str | bytes, config: ParseConfig | None = None) -> tuple[np.ndarray, float]:
    """Analysis frames ``(n, h, w, 3)`` uint8 RGB at ``config.fps``, and the duration in seconds.

    Slot ``k`` holds the picture on screen at ``k / fps`` s: the latest decoded frame at or
    before that time (a slot may repeat its neighbour when frames were skipped, see
    :func:`decode_frames`).
    """
    frames, _, duration = decode_frames(source, config)
    return frames, duration


def decode_frames(source: str | bytes, config: ParseConfig | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`read_frames` and a boolean ``fresh`` array: slot ``k`` holds a different decoded
    frame than slot ``k - 1`` (False where a slot repeats its neighbour).

    With ``config.skip_nonref`` the decoder skips the frames no other frame refers to (the
    B-frames of typical H.264/HEVC encodes: a third to a half of the frames, and their decoding
    time). Every frame that starts a shot after a cut is a reference frame in encodes that detect
    scene changes (x264's default, most encoders), so cuts keep their exact time. Should the
    stream leave a gap between decoded frames longer than ``config.max_skip_gap_s``, it is
    decoded again without skipping, which bounds the timing error of any cut on a skipped frame.
    """
    cfg = config or ParseConfig()
    if cfg.skip_nonref:
        try:
            return _decode(source, cfg, skip=True)
        except _GapTooLong:
            pass  # skipping would leave a gap over max_skip_gap_s: decode every frame below instead
    return _decode(source, cfg, skip=False)


class _GapTooLong(Exception):
    """Skipping non-reference frames left too long a gap: decode everything instead."""


def _decode(source: str | bytes, cfg: ParseConfig, *, skip: bool) -> tuple[np.ndarray, np.ndarray, float]:
    import av  # noqa: PLC0415
    from av.video.reformatter import VideoReformatter  # noqa: PLC0415

    with open_media(source, VideoError) as container:
        if not container.streams.video:
            raise VideoError("no video track")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # No deblocking: a third less decoding time; block edges vanish in the 128-pixel analysis frames.
        stream.codec_context.options = {"skip_loop_filter": "all"}
        if skip:
            stream.codec_context.skip_frame = "NONREF"
        w, h = stream.codec_context.width, stream.codec_context.height
        if w * h > cfg.max_pixels:
            raise VideoError(f"frames of {w}x{h} are over the limit of {cfg.max_pixels} pixels")
        duration = _duration(container, stream)
        if duration > cfg.max_duration_s:
            raise VideoError(f"video of {duration:.0f} s is over the {cfg.max_duration_s:.0f} s limit")
        if stream.frames and stream.frames > cfg.max_frames:
            raise VideoError(f"{stream.frames} frames is over the limit of {cfg.max_frames}")
        rate = stream.average_rate or stream.guessed_rate
        period = 1.0 / float(rate) if rate else 1.0 / cfg.fps  # how long the last frame stays on screen
        out_w = cfg.width
        out_h = max(2, int(round(h * out_w / max(w, 1) / 2)) * 2)
        scaler = VideoReformatter()  # one for the whole video: its scaling context is set up once, not per frame
        frames: list[np.ndarray] = []
        fresh: list[bool] = []
        held: Any = None  # the latest decoded frame: it fills every slot until the next one starts
        held_t = 0.0
        held_rgb: np.ndarray | None = None
        count = 0
        start = None

        def fill(until: float) -> None:  # the slots before ``until`` s show the held frame
            nonlocal held_rgb
            while len(frames) / cfg.fps < until - 1e-6:
                if held_rgb is None:  # converted (AREA: a box filter, no aliasing in frame differences) once
                    held_rgb = scaler.reformat(held, width=out_w, height=out_h, format="rgb24",
                                               interpolation="AREA").to_ndarray()
                    fresh.append(True)
                else:
                    fresh.append(False)
                frames.append(held_rgb)

        try:
            for frame in container.decode(stream):
                count += 1
                if count > cfg.max_frames:
                    raise VideoError(f"more than {cfg.max_frames} frames")
                if frame.width * frame.height > cfg.max_pixels:  # the stream may change size after its header
                    raise VideoError(f"a frame of {frame.width}x{frame.height} is over the limit of {cfg.max_pixels} pixels")
                if frame.time is None:
                    continue
                if start is None:
                    start = frame.time
                t = frame.time - start
                if t > cfg.max_duration_s:  # a timestamp far ahead would otherwise fill that many slots
                    raise VideoError(f"a frame at {t:.0f} s is past the {cfg.max_duration_s:.0f} s limit")
                if held is not None:
                    if skip and t - held_t > cfg.max_skip_gap_s:
                        raise _GapTooLong
                    fill(t)
                held, held_t, held_rgb = frame, t, None
        except av.error.FFmpegError as e:
            if held is None:
                raise VideoError(f"video does not decode: {e}") from e
            # a truncated file: keep what decoded
        if held is not None:
            fill(held_t + period)
    if not frames:
        raise VideoError("no frames decoded")
    return np.stack(frames), np.array(fresh), max(duration, len(frames) / cfg.fps)


def _duration(container: object, stream: object) -> float:
    if getattr(stream, "duration", None) and getattr(stream, "time_base", None):
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    if getattr(container, "duration", None):
        return float(container.duration) / 1e6  # type: ignore[attr-defined]
    return 0.0


def light_embedding(frames: np.ndarray, hsv: np.ndarray | None = None) -> np.ndarray:
    """The built-in visual embedding: colour layout, colour statistics and texture, per frame.

    30 dimensions: mean RGB of a 2x3 grid (18), HSV mean and spread (6), edge energy in 4
    orientations (4), brightness mean and spread (2). No learning, no download.
    """
    x = frames[:, ::2, ::2].astype(np.float32) / 255.0  # half resolution: layout and texture statistics survive
    n, h, w, _ = x.shape
    grid = x[:, : h - h % 2, : w - w % 3].reshape(n, 2, (h - h % 2) // 2, 3, (w - w % 3) // 3, 3).mean(axis=(2, 4))
    hsv = colour_hsv(x) if hsv is None else hsv  # the caller's is at the same half resolution
    flat = hsv.reshape(n, -1, 3)
    grey = x.mean(axis=3)
    gx = np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2))
    gy = np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))
    gd1 = np.abs(grey[:, 1:, 1:] - grey[:, :-1, :-1]).mean(axis=(1, 2))
    gd2 = np.abs(grey[:, 1:, :-1] - grey[:, :-1, 1:]).mean(axis=(1, 2))
    g = grey.reshape(n, -1)
    return np.concatenate([
        grid.reshape(n, -1), flat.mean(axis=1), flat.std(axis=1),
        np.stack([gx, gy, gd1, gd2, g.mean(axis=1), g.std(axis=1)], axis=1),
    ], axis=1).astype(np.float32)


def parse_frames(
    frames: np.ndarray, duration_s: float, config: ParseConfig | None = None,
    encoder: Callable[[np.ndarray], np.ndarray] | None = None, *, keep_frames: bool = False,
    fresh: np.ndarray | None = None,
) -> Storyboard:
    """Storyboard of analysis frames (see the module docstring for the detection steps).

    ``fresh`` (from :func:`decode_frames`; default all True) marks the slots that hold a newly
    decoded frame; the motion measured at one is spread over the repeated slots before it, so
    that motion energy stays per unit of time.
    """
    cfg = config or ParseConfig()
    n = len(frames)
    fps = cfg.fps
    # motion energy: mean absolute grey difference from the slot before (0..1)
    thumbs, change = _grey_and_change(np.ascontiguousarray(frames))
    motion = change if fresh is None else _spread(change, np.asarray(fresh, dtype=bool))
    merged = detect_transitions(
        frames, fps, lag_s=cfg.lag_s, residual_scale=cfg.residual_scale, min_cut=cfg.min_cut, cut_isolation=cfg.cut_isolation,
        min_gradual=cfg.min_gradual, valley=cfg.valley, fade_dip=cfg.fade_dip, pan_structure=cfg.pan_structure,
        min_shot_s=cfg.min_shot_s, fresh=fresh,
        grey=thumbs)
    times = np.array([e.time for e in merged])
    starts = np.concatenate([[0.0], times])
    ends = np.concatenate([times, [duration_s]])
    indicator = np.zeros(n, dtype=np.float32)
    for t in times:
        indicator[min(n - 1, int(round(t * fps)))] = 1.0
    if encoder is not None:
        embeddings = encoder(frames)
    elif cfg.embedding == "light":
        embeddings = light_embedding(frames)
    else:
        embeddings = np.zeros((n, 0), dtype=np.float32)
    return Storyboard(
        fps=fps, duration_s=float(duration_s), transitions=times, transition_kinds=[e.kind for e in merged],
        transition_strengths=np.array([e.strength for e in merged]),
        transition_spans=np.array([(e.start, e.end) for e in merged]).reshape(-1, 2), shot_starts=starts,
        shot_durations=ends - starts,
        keyframe_times=(starts + ends) / 2, transition_indicator=indicator, motion_energy=motion.astype(np.float32),
        embeddings=embeddings, frames=frames if keep_frames else None,
    )


@numba.njit(cache=True)
def _grey_and_change(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover  (compiled)
    """Channel sums (``(n, h, w)`` int16, 0-765) of uint8 RGB frames, and each frame's mean
    absolute difference of them from the frame before, over 3 * 255 (0 for the first): one pass."""
    n, h, w, _ = frames.shape
    grey = np.empty((n, h, w), dtype=np.int16)
    change = np.zeros(n)
    for k in range(n):
        total = 0
        for y in range(h):
            for x in range(w):
                v = np.int16(frames[k, y, x, 0]) + np.int16(frames[k, y, x, 1]) + np.int16(frames[k, y, x, 2])
                grey[k, y, x] = v
                if k > 0:
                    total += abs(v - grey[k - 1, y, x])
        if k > 0:
            change[k] = total / (3 * 255.0 * h * w)
    return grey, change


def _spread(change: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """``change`` with the value of each fresh slot shared evenly by it and the repeated slots
    just before it (a repeated slot itself changes nothing)."""
    out = np.zeros_like(change)
    idx = np.flatnonzero(fresh)
    if len(idx) == 0:
        return out
    prev = np.concatenate([[-1], idx[:-1]])  # the fresh slot before each one
    run = idx - prev  # slots since it: this one and the repeats before it
    owner = np.repeat(np.arange(len(idx)), run)  # fresh slot whose change each slot up to the last fresh one shares
    out[: idx[-1] + 1] = (change[idx] / run)[owner]
    return out


def parse_video(source: str | bytes, config: ParseConfig | None = None,
                encoder: Callable[[np.ndarray], np.ndarray] | None = None, *, keep_frames: bool = False) -> Storyboard:
    """Decode ``source`` (a path or the file's bytes) and build its storyboard."""
    cfg = config or ParseConfig()
    frames, fresh, duration = decode_frames(source, cfg)
    return parse_frames(frames, duration, cfg, encoder, keep_frames=keep_frames, fresh=fresh)
