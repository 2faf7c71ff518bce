"""Synthetic "ad" videos with soundtracks whose every cut, beat and key is known.

The sample catalog is the test and demo data of the whole project: the scoring metrics, the
storyboard parser and the VeM model are checked against the ground truth written here.

Conventions
-----------
- Times are in seconds from the first frame. A video has ``n_frames = round(duration_s * fps)``
  frames; frame ``k`` shows time ``k / fps``.
- A *transition* at time ``t`` is the first frame of the new shot for a hard cut, and the
  middle of the blend for a gradual one (``dissolve``: cross-fade; ``fade``: out to black and
  in again). Transition times are frame-aligned.
- A transition is *on beat* when its time is within half a frame of a beat; off-beat ones are
  displaced by 0.3-0.5 beat periods, as a hurried editor would place them.
- The mood of a video is carried by its palette and followed by its music: ``bright`` → light,
  saturated colours, a major key and a faster tempo; ``dark`` → dim, cool colours, a minor key
  and a slower tempo. Within those ranges every video draws its own values.
- Everything is a pure function of ``(seed, index)``: :func:`plan_ad` draws the plan,
  :func:`render_frames` and :func:`render_soundtrack` render it and :func:`encode_mp4` muxes
  H.264 video and AAC audio into an mp4. The same plan always gives the same bytes.

Examples
--------
>>> plan = plan_ad(seed=0, index=3, config=SyntheticAdConfig.debug())
>>> plan.n_frames == round(plan.duration_s * plan.fps)
True
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AdPlan",
    "Shot",
    "SyntheticAdConfig",
    "Transition",
    "encode_mp4",
    "ground_truth_row",
    "plan_ad",
    "render_frames",
    "render_soundtrack",
    "texture_picture",
]

MOODS = ("bright", "dark")
TEXTURES = ("stripes", "checker", "rings", "blobs", "gradient")
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class SyntheticAdConfig:
    """How the sample catalog's videos are drawn; defaults make short web-sized ads."""

    width: int = 320  # px; even (H.264 4:2:0); small enough to render 30 s in about a second
    height: int = 180  # px
    fps: int = 24  # frames/s of the encoded video (the analysis rate of the parser is 16)
    sample_rate: int = 44100  # Hz of the soundtrack, as in most delivered ads
    min_duration_s: float = 8.0  # ads run 8-30 s
    max_duration_s: float = 30.0
    min_shots: int = 3
    max_shots: int = 12
    min_gap_s: float = 2.0  # shortest shot; leaves room for a 1 s gradual transition
    on_beat_share: float = 0.85  # share of transitions an editor puts on a beat
    gradual_share: float = 0.2  # share of transitions that are dissolves or fades
    crf: int = 23  # x264 quality; 23 is its default

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ValueError(f"width and height must be even and >= 32 px, got {self.width}x{self.height}")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be in 1..120, got {self.fps}")
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ValueError(f"need 0 < min_duration_s <= max_duration_s, got {self.min_duration_s}, {self.max_duration_s}")
        if not 2 <= self.min_shots <= self.max_shots:
            raise ValueError(f"need 2 <= min_shots <= max_shots, got {self.min_shots}, {self.max_shots}")
        if self.min_duration_s < self.min_shots * self.min_gap_s:
            raise ValueError(
                f"min_duration_s={self.min_duration_s} cannot hold {self.min_shots} shots of at least {self.min_gap_s} s"
            )

    @classmethod
    def debug(cls) -> SyntheticAdConfig:
        """Tiny videos (160x96, 8-10 s, 3-4 shots) that build in well under a second each."""
        return cls(width=160, height=96, max_duration_s=10.0, max_shots=4, sample_rate=22050)


@dataclass(frozen=True)
class Shot:
    """The look of one shot: a two-colour texture, moving shapes and a camera move."""

    start_s: float
    duration_s: float
    hue: float  # 0..1
    saturation: float
    value: float
    texture: str
    texture_period_px: float
    texture_angle: float  # radians
    pan_px_s: tuple[float, float]  # camera pan, px/s
    zoom_per_s: float  # relative zoom rate
    shapes: tuple[tuple[float, float, float, float, float], ...]  # (x, y, vx, vy, radius) in px, px/s


@dataclass(frozen=True)
class Transition:
    time_s: float  # frame-aligned; the cut frame, or the middle of a gradual transition
    kind: str  # "cut" | "dissolve" | "fade"
    duration_s: float  # 0 for cuts
    on_beat: bool
    beat_offset_s: float  # signed distance to the nearest beat

    @property
    def category(self) -> str:
        """``hard`` or ``gradual``, as in the Storyboard contract."""
        return "hard" if self.kind == "cut" else "gradual"


@dataclass(frozen=True)
class AdPlan:
    """Everything that defines one synthetic ad; rendering it is deterministic."""

    id: str
    seed: int
    index: int
    width: int
    height: int
    fps: int
    sample_rate: int
    n_frames: int
    mood: str
    mode: str  # "major" | "minor"
    tonic: int  # pitch class 0..11
    tempo_bpm: float
    first_beat_s: float
    shots: tuple[Shot, ...]
    transitions: tuple[Transition, ...]
    crf: int
    texture_seed: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    @property
    def beat_period_s(self) -> float:
        return 60.0 / self.tempo_bpm

    @property
    def beats(self) -> np.ndarray:
        """Beat times in seconds, shape (n_beats,)."""
        n = int(math.floor((self.duration_s - self.first_beat_s) / self.beat_period_s)) + 1
        return self.first_beat_s + self.beat_period_s * np.arange(max(n, 0))

    @property
    def downbeats(self) -> np.ndarray:
        """First beat of every 4/4 bar, in seconds."""
        return self.beats[::4]

    @property
    def key(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


# --------------------------------------------------------------------------------------------
# 1. Plan


def plan_ad(*, seed: int, index: int, config: SyntheticAdConfig | None = None) -> AdPlan:
    """Draw the plan of ad ``index`` of the catalog with ``seed``.

    Parameters
    ----------
    seed : int
        Catalog seed; with ``index`` it fixes every random choice.
    index : int
        Position of the video in the catalog (0-based); the id is ``f"ad{index:05d}"``.
    config : SyntheticAdConfig, optional
        Sizes and shares; defaults to :class:`SyntheticAdConfig`.
    """
    cfg = config or SyntheticAdConfig()
    if index < 0 or seed < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))

    mood = MOODS[int(rng.integers(len(MOODS)))]
    mode = "major" if mood == "bright" else "minor"
    tempo = float(rng.uniform(112, 136) if mood == "bright" else rng.uniform(84, 100))
    tempo = round(tempo, 1)
    period = 60.0 / tempo
    first_beat = float(rng.uniform(0.05, 0.45))
    n_frames = int(round(rng.uniform(cfg.min_duration_s, cfg.max_duration_s) * cfg.fps))
    duration = n_frames / cfg.fps

    max_shots = min(cfg.max_shots, int(duration // cfg.min_gap_s))
    n_shots = int(rng.integers(cfg.min_shots, max_shots + 1))
    transitions = _draw_transitions(rng, cfg, duration, first_beat, period, n_shots - 1)

    starts = [0.0] + [t.time_s for t in transitions]
    ends = starts[1:] + [duration]
    hues = _distinct_hues(rng, len(starts))
    textures = _distinct_textures(rng, len(starts))
    shots = tuple(
        _draw_shot(rng, cfg, mood, start, end - start, hue, texture)
        for start, end, hue, texture in zip(starts, ends, hues, textures, strict=True)
    )
    return AdPlan(
        id=f"ad{index:05d}", seed=seed, index=index, width=cfg.width, height=cfg.height, fps=cfg.fps,
        sample_rate=cfg.sample_rate, n_frames=n_frames, mood=mood, mode=mode, tonic=int(rng.integers(12)),
        tempo_bpm=tempo, first_beat_s=first_beat, shots=shots, transitions=transitions, crf=cfg.crf,
        texture_seed=int(rng.integers(2**31)),
    )


def _draw_transitions(
    rng: np.random.Generator, cfg: SyntheticAdConfig, duration: float, first_beat: float, period: float, n_cuts: int
) -> tuple[Transition, ...]:
    """``n_cuts`` transitions, each on a beat or (1 - on_beat_share of them) displaced from one.

    Draws beats at random until every shot, after the off-beat displacements and the snap to
    frames, lasts at least ``min_gap_s``; asks for one cut fewer if no draw fits.
    """
    beats = first_beat + period * np.arange(int((duration - first_beat) / period) + 1)
    candidates = beats[(beats >= cfg.min_gap_s) & (beats <= duration - cfg.min_gap_s)]
    for cuts in range(min(n_cuts, len(candidates)), 0, -1):
        on_beat = rng.random(cuts) < cfg.on_beat_share  # drawn once, so retries do not favour on-beat cuts
        for _attempt in range(200):
            chosen = _spaced_choice(rng, candidates, cuts, cfg.min_gap_s, duration)
            if chosen is None:
                continue
            shift = rng.choice([-1.0, 1.0], size=cuts) * rng.uniform(0.3, 0.5, size=cuts) * period
            times = np.round(np.where(on_beat, chosen, chosen + shift) * cfg.fps) / cfg.fps  # frame-aligned
            if np.all(np.diff(np.concatenate([[0.0], times, [duration]])) >= cfg.min_gap_s):
                break
        else:
            continue
        out = []
        for t in times:
            gradual = bool(rng.random() < cfg.gradual_share)
            kind = str(rng.choice(["dissolve", "fade"])) if gradual else "cut"
            length = round(float(rng.uniform(0.5, 1.0)) * cfg.fps) / cfg.fps if gradual else 0.0
            offset = float(t - beats[np.argmin(np.abs(beats - t))])
            out.append(Transition(float(t), kind, length, abs(offset) <= 0.5 / cfg.fps + 1e-9, offset))
        return tuple(out)
    return ()


def _spaced_choice(
    rng: np.random.Generator, candidates: np.ndarray, k: int, gap: float, duration: float
) -> np.ndarray | None:
    """``k`` sorted candidates, each at least ``gap`` after the previous one (and after 0), leaving
    room for the rest before ``duration``; None when the draw runs out of room."""
    chosen: list[float] = []
    prev = 0.0
    for j in range(k):
        room_after = (k - j) * gap  # this cut's shot to the next, ..., the last shot
        pool = candidates[(candidates >= prev + gap) & (candidates <= duration - room_after)]
        if len(pool) == 0:
            return None
        # Favour earlier candidates so that later cuts keep room: the minimum of two draws.
        prev = float(pool[min(rng.integers(len(pool)), rng.integers(len(pool)))])
        chosen.append(prev)
    return np.array(chosen)


def _distinct_hues(rng: np.random.Generator, n: int) -> list[float]:
    """Hues that differ by at least a fifth of the colour wheel from the previous shot."""
    hues = [float(rng.uniform(0.0, 1.0))]
    while len(hues) < n:
        step = float(rng.uniform(0.2, 0.8))
        hues.append((hues[-1] + step) % 1.0)
    return hues


def _distinct_textures(rng: np.random.Generator, n: int) -> list[str]:
    textures = [str(rng.choice(TEXTURES))]
    while len(textures) < n:
        textures.append(str(rng.choice([t for t in TEXTURES if t != textures[-1]])))
    return textures


def _draw_shot(
    rng: np.random.Generator, cfg: SyntheticAdConfig, mood: str, start: float, duration: float, hue: float, texture: str
) -> Shot:
    scale = cfg.width / 320.0
    if mood == "bright":
        saturation, value = rng.uniform(0.55, 0.9), rng.uniform(0.85, 1.0)
    else:
        saturation, value = rng.uniform(0.35, 0.7), rng.uniform(0.22, 0.42)
    pan = rng.uniform(-30, 30, size=2) * scale
    zoom = float(rng.uniform(-0.04, 0.06)) if rng.random() < 0.4 else 0.0
    n_shapes = int(rng.integers(1, 4))
    shapes = tuple(
        (
            float(rng.uniform(0.2, 0.8) * cfg.width), float(rng.uniform(0.2, 0.8) * cfg.height),
            float(rng.uniform(-50, 50) * scale), float(rng.uniform(-40, 40) * scale),
            float(rng.uniform(0.06, 0.14) * cfg.height),
        )
        for _ in range(n_shapes)
    )
    return Shot(
        start_s=start, duration_s=duration, hue=hue, saturation=float(saturation), value=float(value),
        texture=texture, texture_period_px=float(rng.uniform(40, 90) * scale),
        texture_angle=float(rng.uniform(0, np.pi)), pan_px_s=(float(pan[0]), float(pan[1])),
        zoom_per_s=zoom, shapes=shapes,
    )


# --------------------------------------------------------------------------------------------
# 2. Pictures


def render_frames(plan: AdPlan) -> Iterator[np.ndarray]:
    """Yield the video's frames, each ``(height, width, 3)`` uint8 RGB, ``plan.n_frames`` in all."""
    ys, xs = np.mgrid[0 : plan.height, 0 : plan.width].astype(np.float32)
    tex_rng = np.random.default_rng(plan.texture_seed)
    waves = [(tex_rng.uniform(-1, 1, size=(5, 2)), tex_rng.uniform(0, 2 * np.pi, size=5)) for _ in plan.shots]
    starts = np.array([s.start_s for s in plan.shots])
    for k in range(plan.n_frames):
        t = k / plan.fps
        i = int(np.searchsorted(starts, t, side="right") - 1)
        frame = _shot_frame(plan.shots[i], t, xs, ys, waves[i])
        # Gradual transitions: blend the two shots around the transition time.
        for j, tr in enumerate(plan.transitions):
            if tr.kind == "cut" or not (tr.time_s - tr.duration_s / 2 <= t < tr.time_s + tr.duration_s / 2):
                continue
            alpha = (t - (tr.time_s - tr.duration_s / 2)) / tr.duration_s  # 0 → 1 across the transition
            before = _shot_frame(plan.shots[j], t, xs, ys, waves[j])
            after = _shot_frame(plan.shots[j + 1], t, xs, ys, waves[j + 1])
            if tr.kind == "dissolve":
                frame = (1 - alpha) * before + alpha * after
            else:  # fade out to black, then in
                frame = before * max(0.0, 1 - 2 * alpha) + after * max(0.0, 2 * alpha - 1)
        yield np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _shot_frame(shot: Shot, t: float, xs: np.ndarray, ys: np.ndarray, waves: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    h, w = xs.shape
    local_t = t - shot.start_s
    zoom = 1.0 + shot.zoom_per_s * local_t
    u = (xs - w / 2) / zoom + shot.pan_px_s[0] * local_t
    v = (ys - h / 2) / zoom + shot.pan_px_s[1] * local_t
    period, angle = shot.texture_period_px, shot.texture_angle
    along = u * math.cos(angle) + v * math.sin(angle)
    if shot.texture == "stripes":
        f = 0.5 + 0.5 * np.sin(2 * np.pi * along / period)
    elif shot.texture == "checker":
        f = 0.5 + 0.5 * np.tanh(4 * np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period))
    elif shot.texture == "rings":
        f = 0.5 + 0.5 * np.sin(2 * np.pi * np.hypot(u, v) / period)
    elif shot.texture == "blobs":
        dirs, phases = waves
        f = sum(np.sin(2 * np.pi * (d[0] * u + d[1] * v) / (1.5 * period) + p) for d, p in zip(dirs, phases, strict=True))
        f = 0.5 + 0.5 * np.tanh(np.asarray(f) / 2)
    else:  # gradient sweeping across the frame
        f = 0.5 + 0.5 * np.sin(2 * np.pi * along / (3 * w))
    c0 = np.array(colorsys.hsv_to_rgb(shot.hue, shot.saturation, shot.value), dtype=np.float32)
    c1 = np.array(colorsys.hsv_to_rgb((shot.hue + 0.08) % 1, shot.saturation * 0.6, shot.value * 0.55), dtype=np.float32)
    frame = c0 + (c1 - c0) * f.astype(np.float32)[..., None]
    shape_colour = np.array(
        colorsys.hsv_to_rgb((shot.hue + 0.5) % 1, min(1.0, shot.saturation + 0.2), min(1.0, shot.value * 1.1)),
        dtype=np.float32,
    )
    for x0, y0, vx, vy, r in shot.shapes:
        cx = _bounce(x0 + vx * local_t, w)
        cy = _bounce(y0 + vy * local_t, h)
        # Only the disc's bounding box is touched.
        y_lo, y_hi = max(0, int(cy - r - 1)), min(h, int(cy + r + 2))
        x_lo, x_hi = max(0, int(cx - r - 1)), min(w, int(cx + r + 2))
        box = (slice(y_lo, y_hi), slice(x_lo, x_hi))
        inside = np.clip(r + 0.5 - np.hypot(xs[box] - cx, ys[box] - cy), 0, 1)[..., None]  # anti-aliased disc
        frame[box] = frame[box] + (shape_colour - frame[box]) * inside
    return frame


def texture_picture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A still of one synthetic shot (a bright palette), ``(height, width, 3)`` uint8 RGB: a
    picture :mod:`vem.footage` can film like a photograph."""
    cfg = SyntheticAdConfig(width=width - width % 2, height=height - height % 2)
    hue = float(rng.uniform())
    shot = _draw_shot(rng, cfg, "bright", 0.0, 1.0, hue, str(rng.choice(TEXTURES)))
    ys, xs = np.mgrid[0 : cfg.height, 0 : cfg.width].astype(np.float32)
    waves = (rng.uniform(-1, 1, size=(5, 2)), rng.uniform(0, 2 * np.pi, size=5))
    return np.clip(_shot_frame(shot, 0.0, xs, ys, waves) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _bounce(x: float, size: float) -> float:
    """Position of a point moving freely in [0, size] and reflecting at the edges."""
    x = x % (2 * size)
    return 2 * size - x if x > size else x


# --------------------------------------------------------------------------------------------
# 3. Music

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 11)  # harmonic minor: the raised 7th makes V major, the leading tone of the key
# I-V-vi-IV and i-VI-iv-V (scale degrees). Not the natural-minor loop i-VI-III-VII: its chords are
# those of I-V-vi-IV in the relative major, so its pitch classes cannot tell the two modes apart.
_PROGRESSION = {"major": (0, 4, 5, 3), "minor": (0, 5, 3, 4)}


def render_soundtrack(plan: AdPlan) -> np.ndarray:
    """The ad's music: drums, bass and chords at ``plan.tempo_bpm`` in ``plan.key``.

    Returns
    -------
    np.ndarray
        Mono float32 waveform in [-1, 1], shape ``(round(duration_s * sample_rate),)``.

    Notes
    -----
    A kick drum sounds on every beat (the pulse a listener taps), a snare on beats 2 and 4, a
    closed hi-hat on the off-beat eighths; the bass plays the chord root on every beat and the
    chords change every bar (4 beats) along a I-V-vi-IV (major) or i-VI-iv-V (harmonic minor) loop.
    The music starts at time 0; the first beat falls at ``plan.first_beat_s``.
    """
    sr = plan.sample_rate
    n = int(round(plan.duration_s * sr))
    rng = np.random.default_rng(plan.texture_seed + 1)
    out = np.zeros(n + sr, dtype=np.float64)  # one second of tail room, trimmed at the end
    scale = _MAJOR if plan.mode == "major" else _MINOR
    period = plan.beat_period_s
    bright = plan.mood == "bright"

    kick = _kick(sr)
    snare = _snare(sr, rng)
    hat = _hat(sr, rng)
    for k, beat in enumerate(plan.beats):
        i = int(round(beat * sr))
        _add(out, i, kick, 0.9)
        if k % 2 == 1:
            _add(out, i, snare, 0.3)
        _add(out, int(round((beat + period / 2) * sr)), hat, 0.18 if bright else 0.12)
        degree = _PROGRESSION[plan.mode][(k // 4) % 4]
        root = 36 + (plan.tonic + scale[degree]) % 12  # MIDI, octave 2
        _add(out, i, _pluck(sr, _hz(root), period * 0.9, bright), 0.35)
        if k % 4 == 0:  # a new chord every bar
            triad = [scale[(degree + step) % 7] + 12 * ((degree + step) // 7) for step in (0, 2, 4)]
            base = 60 + plan.tonic - (12 if plan.tonic > 6 else 0)  # chords between F#3 and B4
            chord = sum(_pad(sr, _hz(base + p), 4 * period, bright) for p in triad)
            _add(out, i, np.asarray(chord), 0.12)
    out = out[:n]
    fade = min(n, int(0.05 * sr))
    out[n - fade :] *= np.linspace(1, 0, fade)
    peak = float(np.max(np.abs(out))) or 1.0
    return (0.8 * out / peak).astype(np.float32)


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _add(out: np.ndarray, start: int, sound: np.ndarray, gain: float) -> None:
    if start >= len(out) or start < 0:
        return
    end = min(len(out), start + len(sound))
    out[start:end] += gain * sound[: end - start]


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.3 * sr)) / sr
    freq = 50 + 110 * np.exp(-t / 0.025)
    click = np.diff(np.random.default_rng(7).standard_normal(len(t)), prepend=0.0) * np.exp(-t / 0.004)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.09) + 0.5 * click


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.2 * sr)) / sr
    noise = rng.standard_normal(len(t))
    noise = np.diff(noise, prepend=0.0)  # tilt towards the highs
    return (0.6 * noise / 2 + 0.5 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t / 0.05)


def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.05 * sr)) / sr
    noise = np.diff(rng.standard_normal(len(t) + 2), n=2)[: len(t)]
    return noise / 4 * np.exp(-t / 0.012)


def _pluck(sr: int, freq: float, length: float, bright: bool) -> np.ndarray:
    t = np.arange(int(length * sr)) / sr
    harmonics = (1, 2, 3, 4, 5) if bright else (1, 2, 3)
    wave = sum(np.sin(2 * np.pi * h * freq * t) / h for h in harmonics)
    env = np.minimum(1.0, t / 0.005) * np.exp(-t / (0.25 * length + 0.05))
    return np.asarray(wave) * env


def _pad(sr: int, freq: float, length: float, bright: bool) -> np.ndarray:
    t = np.arange(int(length * sr)) / sr
    harmonics = (1, 2, 3, 4) if bright else (1, 2)
    wave = sum(np.sin(2 * np.pi * h * freq * t + h) / h**1.5 for h in harmonics)
    env = np.minimum(1.0, t / 0.04) * np.exp(-t / (0.6 * length)) * np.minimum(1.0, (length - t) / 0.05)
    return np.asarray(wave) * env


# --------------------------------------------------------------------------------------------
# 4. Container


def encode_mp4(plan: AdPlan, path: str, *, streams: str = "both") -> None:
    """Render ``plan`` and write an H.264 + AAC mp4 to the local file ``path``.

    ``streams`` = ``"video"`` or ``"audio"`` writes only that track (test inputs: a video with
    no soundtrack, an audio-only file). The same plan always gives the same bytes.
    """
    from vem.media import write_mp4  # noqa: PLC0415

    if streams not in ("both", "video", "audio"):
        raise ValueError(f"streams must be 'both', 'video' or 'audio', got {streams!r}")
    write_mp4(path, render_frames(plan) if streams != "audio" else None, width=plan.width, height=plan.height,
              fps=plan.fps, crf=plan.crf, audio=render_soundtrack(plan) if streams != "video" else None,
              sample_rate=plan.sample_rate)


# --------------------------------------------------------------------------------------------
# 5. Ground truth


def ground_truth_row(plan: AdPlan, *, uri: str) -> dict[str, Any]:
    """One row of the catalog's ground-truth table (times in seconds; see the module docstring)."""
    beats = plan.beats
    return {
        "id": plan.id,
        "uri": uri,
        "seed": plan.seed,
        "duration_s": plan.duration_s,
        "fps": float(plan.fps),
        "n_frames": plan.n_frames,
        "width": plan.width,
        "height": plan.height,
        "sample_rate": plan.sample_rate,
        "mood": plan.mood,
        "key": PITCH_NAMES[plan.tonic],
        "mode": plan.mode,
        "tempo_bpm": plan.tempo_bpm,
        "beats": [round(float(b), 6) for b in beats],
        "downbeats": [round(float(b), 6) for b in plan.downbeats],
        "n_shots": len(plan.shots),
        "shot_start_s": [s.start_s for s in plan.shots],
        "shot_duration_s": [s.duration_s for s in plan.shots],
        "shot_texture": [s.texture for s in plan.shots],
        "transitions": [t.time_s for t in plan.transitions],
        "transition_kind": [t.kind for t in plan.transitions],
        "transition_category": [t.category for t in plan.transitions],
        "transition_duration_s": [t.duration_s for t in plan.transitions],
        "transition_on_beat": [t.on_beat for t in plan.transitions],
        "transition_beat_offset_s": [round(t.beat_offset_s, 6) for t in plan.transitions],
    }
