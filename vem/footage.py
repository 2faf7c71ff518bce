"""Videos made of real photographs, with camera motion, transitions at known times and traps.

The sample catalog (:mod:`vem.synthetic`) draws its own pictures, and a video parser tuned on
them learns what those pictures look like. This module makes footage from photographs a user
hands it: every shot is a moving crop of a photo, so the parser meets real texture, real colour
statistics and the motions of a camera, while every transition time is still known.

Conventions (as in :mod:`vem.synthetic`)
-----------------------------------------
- Times in seconds from the first frame; frame ``k`` shows time ``k / fps``; transition times
  are frame-aligned: the first frame of the new shot for a cut, the middle of the blend for a
  ``dissolve`` (cross-fade) or a ``fade`` (out to black, then in); ``span_s`` is the blend.
- A **shot** is a crop of one photo seen through a moving camera: a pan, a zoom in or out,
  hand-held shake (smoothed random translation and rotation), or a still camera with a little
  shake; consecutive shots show different photos, or different crops of the same photo (at
  least 1.6x apart in scale, or not overlapping): cuts an editor makes within one scene.
- A **trap** is a change that is not a transition: a ``flash`` (1-3 frames washed towards white),
  a ``whip`` pan (the camera jumps along the photo in 0.2-0.4 s, with motion blur), an ``object``
  crossing the frame (a person-sized textured shape entering on one side and leaving on the
  other) and a ``caption`` (a text box that appears at once and stays to the shot's end).
  Traps keep at least 0.6 s from any transition.
- Everything is a pure function of ``(seed, index)`` and the photos: :func:`plan_footage` draws
  the plan, :func:`render_footage` renders it.

Examples
--------
>>> import numpy as np
>>> photos = [np.full((400, 600, 3), v, np.uint8) for v in (40, 200)]
>>> plan = plan_footage([p.shape[:2] for p in photos], seed=0, index=0, config=FootageConfig.debug())
>>> len(plan.transitions) == len(plan.shots) - 1
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FootageConfig", "FootagePlan", "FootageShot", "FootageTransition", "Trap", "ground_truth_row", "load_photo",
           "packaged_photos", "plan_footage", "render_footage"]

MOTIONS = ("pan", "zoom", "handheld", "still")
TRAPS = ("flash", "whip", "object", "caption")


@dataclass(frozen=True)
class FootageConfig:
    """What one video looks like; defaults make 30 s of 1280x720 footage at 25 frames/s."""

    width: int = 1280
    height: int = 720
    fps: int = 25
    duration_s: float = 30.0
    min_shot_s: float = 1.2  # shortest shot: ads cut fast, but a shot still has to be seen
    max_shot_s: float = 4.5
    p_cut: float = 0.6  # share of hard cuts; the rest dissolves and fades, half each
    p_same_photo: float = 0.3  # share of shots that show another crop of the previous shot's photo
    p_trap: float = 0.45  # chance that a shot long enough holds a trap
    crf: int = 23  # x264 quality

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise ValueError(f"width and height must be even and at least 32, got {self.width}x{self.height}")
        if not 0 < self.min_shot_s <= self.max_shot_s:
            raise ValueError(f"need 0 < min_shot_s <= max_shot_s, got {self.min_shot_s} and {self.max_shot_s}")
        if self.duration_s < 2 * self.min_shot_s:
            raise ValueError(f"duration_s {self.duration_s} holds fewer than two shots of {self.min_shot_s} s")

    @classmethod
    def debug(cls) -> FootageConfig:
        """Small and short: tests."""
        return cls(width=256, height=144, fps=25, duration_s=8.0, min_shot_s=1.2, max_shot_s=2.0)


@dataclass(frozen=True)
class FootageShot:
    photo: int  # index into the photos
    start_s: float  # the shot's first frame (for a gradual transition: the middle of the blend)
    duration_s: float
    motion: str  # one of MOTIONS
    center0: tuple[float, float]  # crop centre (x, y) at the shot's start, photo pixels
    center1: tuple[float, float]  # ... at its end
    width0: float  # crop width at the start, photo pixels
    width1: float
    shake_px: float  # hand-held shake amplitude, output pixels
    shake_seed: int


@dataclass(frozen=True)
class FootageTransition:
    time_s: float
    kind: str  # "cut" | "dissolve" | "fade"
    duration_s: float  # 0 for cuts

    @property
    def category(self) -> str:
        return "hard" if self.kind == "cut" else "gradual"

    @property
    def span_s(self) -> tuple[float, float]:
        return (self.time_s - self.duration_s / 2, self.time_s + self.duration_s / 2)


@dataclass(frozen=True)
class Trap:
    kind: str  # one of TRAPS
    shot: int
    time_s: float  # when it starts
    duration_s: float
    seed: int


@dataclass(frozen=True)
class FootagePlan:
    id: str
    seed: int
    index: int
    width: int
    height: int
    fps: int
    n_frames: int
    crf: int
    shots: tuple[FootageShot, ...]
    transitions: tuple[FootageTransition, ...]
    traps: tuple[Trap, ...]

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps


def plan_footage(photo_shapes: Sequence[tuple[int, int]], *, seed: int, index: int, config: FootageConfig | None = None,
                 cut_grid_s: np.ndarray | None = None) -> FootagePlan:
    """Draw one video's shots, transitions and traps.

    Parameters
    ----------
    photo_shapes : the (height, width) of each photo, pixels; at least two photos.
    seed, index : the video is a pure function of them (and of the photos).
    config : sizes, rates and shares.
    cut_grid_s : optional times (s) the transitions should fall on (a soundtrack's beats); each
        transition takes the grid time nearest to where it would fall, if one is within a shot's
        tolerance, so that a plan can put its cuts on the beat.
    """
    cfg = config or FootageConfig()
    if len(photo_shapes) < 2:
        raise ValueError(f"need at least two photos, got {len(photo_shapes)}")
    rng = np.random.default_rng([seed, index, 0xF00])
    n_frames = int(round(cfg.duration_s * cfg.fps))
    # 1. shot boundaries (frame-aligned), on the grid where one is given
    bounds: list[float] = []
    t = 0.0
    while True:
        t += rng.uniform(cfg.min_shot_s, cfg.max_shot_s)
        if cut_grid_s is not None and len(cut_grid_s):
            near = cut_grid_s[np.argmin(np.abs(cut_grid_s - t))]
            if abs(near - t) < 0.5 * cfg.min_shot_s and near - (bounds[-1] if bounds else 0.0) >= cfg.min_shot_s:
                t = float(near)
        t = round(t * cfg.fps) / cfg.fps
        if t > cfg.duration_s - cfg.min_shot_s:
            break
        bounds.append(t)
    # 2. transitions
    transitions = []
    for i, b in enumerate(bounds):
        room = min(b - (bounds[i - 1] if i else 0.0), (bounds[i + 1] if i + 1 < len(bounds) else cfg.duration_s) - b)
        u = rng.uniform()
        if u < cfg.p_cut or room < 1.0:
            transitions.append(FootageTransition(b, "cut", 0.0))
        else:
            kind = "dissolve" if u < cfg.p_cut + (1 - cfg.p_cut) / 2 else "fade"
            d = round(rng.uniform(0.4, min(1.2, room - 0.5)) * cfg.fps / 2) * 2 / cfg.fps  # even frames: frame-aligned middle
            transitions.append(FootageTransition(b, kind, d))
    # 3. shots: photos and camera paths
    starts = [0.0, *bounds]
    ends = [*bounds, cfg.duration_s]
    aspect = cfg.width / cfg.height
    shots: list[FootageShot] = []
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        prev = shots[-1] if shots else None
        if prev is not None and rng.uniform() < cfg.p_same_photo:
            photo = prev.photo
        else:
            photo = int(rng.choice([p for p in range(len(photo_shapes)) if prev is None or p != prev.photo]))
        # the shot is rendered over its blends too: the camera path covers them
        lead = transitions[i - 1].duration_s / 2 if i else 0.0
        tail = transitions[i].duration_s / 2 if i < len(transitions) else 0.0
        shots.append(_draw_shot(rng, photo, photo_shapes[photo], aspect, s, e - s, lead, tail, cfg.width,
                                same_as=prev if prev is not None and prev.photo == photo else None))
    # 4. traps, away from every transition
    traps = []
    for i, shot in enumerate(shots):
        lo = shot.start_s + 0.6 + (transitions[i - 1].duration_s / 2 if i else 0.0)
        hi = shot.start_s + shot.duration_s - 0.6 - (transitions[i].duration_s / 2 if i < len(transitions) else 0.0)
        if hi - lo < 0.5 or rng.uniform() >= cfg.p_trap:
            continue
        kind = str(rng.choice(TRAPS))
        length = {"flash": rng.integers(1, 4) / cfg.fps, "whip": rng.uniform(0.2, 0.4),
                  "object": rng.uniform(0.6, 1.5), "caption": 0.0}[kind]
        if kind in ("whip", "object"):
            length = min(length, hi - lo)
        start = round(rng.uniform(lo, max(lo, hi - length)) * cfg.fps) / cfg.fps
        traps.append(Trap(kind, i, start, float(length), int(rng.integers(2**31))))
    return FootagePlan(
        id=f"real{index:05d}", seed=seed, index=index, width=cfg.width, height=cfg.height, fps=cfg.fps, n_frames=n_frames,
        crf=cfg.crf, shots=tuple(shots), transitions=tuple(transitions), traps=tuple(traps),
    )


def _draw_shot(rng: np.random.Generator, photo: int, shape: tuple[int, int], aspect: float, start: float, duration: float,
               lead: float, tail: float, out_w: int, same_as: FootageShot | None) -> FootageShot:
    ph, pw = shape
    full = min(pw, ph * aspect)  # widest crop of the output's aspect that fits the photo
    motion = str(rng.choice(MOTIONS, p=[0.35, 0.3, 0.2, 0.15]))
    span = lead + duration + tail
    for _ in range(50):
        w0 = rng.uniform(0.45, 0.95) * full
        if same_as is not None:  # another crop of the same photo: far in scale, or elsewhere
            ref = same_as.width1
            if rng.uniform() < 0.5:
                w0 = ref / rng.uniform(1.6, 2.2) if ref / 1.6 >= 0.3 * full else min(ref * rng.uniform(1.6, 2.2), full)
        w1 = w0 * (rng.uniform(1.15, 1.4) ** rng.choice([-1, 1]) if motion == "zoom" else 1.0)
        w_big = max(w0, w1)
        move = rng.uniform(0.1, 0.35) * w_big * (span / 3.0) if motion == "pan" else 0.0
        angle = rng.uniform(0, 2 * math.pi)
        dx, dy = move * math.cos(angle), move * math.sin(angle) * 0.5
        margin = 0.04 * w_big  # room for the shake
        xlo, xhi = w_big / 2 + margin + abs(dx) / 2, pw - w_big / 2 - margin - abs(dx) / 2
        ylo, yhi = w_big / aspect / 2 + margin + abs(dy) / 2, ph - w_big / aspect / 2 - margin - abs(dy) / 2
        if xlo > xhi or ylo > yhi:
            continue
        cx, cy = rng.uniform(xlo, xhi), rng.uniform(ylo, yhi)
        if same_as is not None and abs(w0 / same_as.width1 - 1) < 0.5:  # same scale: must not overlap
            ox, oy = same_as.center1
            if abs(cx - ox) < w0 and abs(cy - oy) < w0 / aspect:
                continue
        shake = {"handheld": rng.uniform(0.008, 0.02), "still": rng.uniform(0.0, 0.003)}.get(motion, rng.uniform(0, 0.006))
        return FootageShot(photo, start, duration, motion, (cx - dx / 2, cy - dy / 2), (cx + dx / 2, cy + dy / 2), w0, w1,
                           shake * out_w, int(rng.integers(2**31)))
    # a photo too small for the drawn path: a still, centred crop
    return FootageShot(photo, start, duration, "still", (pw / 2, ph / 2), (pw / 2, ph / 2), 0.9 * full, 0.9 * full, 0.0,
                       int(rng.integers(2**31)))


def render_footage(plan: FootagePlan, photos: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    """Yield the video's frames, each ``(height, width, 3)`` uint8 RGB, ``plan.n_frames`` in all.

    ``photos`` are the (h, w, 3) uint8 RGB images the plan was drawn for (same order and shapes).
    """
    from PIL import Image  # noqa: PLC0415  (Pillow comes with matplotlib)

    images = [Image.fromarray(np.ascontiguousarray(p)) for p in photos]
    cameras = [_Camera(s, plan) for s in plan.shots]
    overlays = [_Overlay(tr, plan, photos) for tr in plan.traps]
    bounds = np.array([s.start_s for s in plan.shots])
    for k in range(plan.n_frames):
        t = k / plan.fps
        i = int(np.searchsorted(bounds, t + 1e-9, side="right") - 1)

        frame = _shot_frame(i, t, cameras, images, overlays, plan)
        for j, tr in enumerate(plan.transitions):
            a, b = tr.span_s
            if tr.kind == "cut" or not (a <= t < b):
                continue
            alpha = (t - a) / tr.duration_s
            before = _shot_frame(j, t, cameras, images, overlays, plan).astype(np.float32)
            after = _shot_frame(j + 1, t, cameras, images, overlays, plan).astype(np.float32)
            mixed = ((1 - alpha) * before + alpha * after if tr.kind == "dissolve"
                     else before * max(0.0, 1 - 2 * alpha) + after * max(0.0, 2 * alpha - 1))
            frame = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        yield frame


def _shot_frame(j: int, t: float, cameras: list[_Camera], images: list[Any], overlays: list[_Overlay],
                plan: FootagePlan) -> np.ndarray:
    frame = cameras[j].frame(images[plan.shots[j].photo], t)
    for ov in overlays:
        if ov.trap.shot == j:
            frame = ov.apply(frame, t)
    return frame


class _Camera:
    """One shot's camera: crop centre and width along the shot, plus shake and whip pans."""

    def __init__(self, shot: FootageShot, plan: FootagePlan) -> None:
        self.shot, self.plan = shot, plan
        rng = np.random.default_rng(shot.shake_seed)
        n = int(shot.duration_s * 10) + 40  # shake keys every 0.1 s, covering the blends around the shot
        self.keys = rng.normal(0, 1, (n, 3))
        kernel = np.hanning(7)
        self.keys = np.stack([np.convolve(self.keys[:, c], kernel / kernel.sum() * 2.2, mode="same") for c in range(3)], 1)
        self.whips = [tr for tr in plan.traps if tr.kind == "whip" and plan.shots[tr.shot] is shot]
        self.whip_dir = [float(np.random.default_rng(tr.seed).uniform(0, 2 * math.pi)) for tr in self.whips]

    def frame(self, image: Any, t: float) -> np.ndarray:
        from PIL import Image  # noqa: PLC0415

        blur = any(tr.time_s - 0.05 <= t <= tr.time_s + tr.duration_s + 0.05 for tr in self.whips)
        times = [t + (j / 4 - 0.5) / self.plan.fps for j in range(5)] if blur else [t]  # open shutter during a whip
        views = [np.asarray(image.transform((self.plan.width, self.plan.height), Image.Transform.AFFINE,
                                            self._affine(u, image.size), resample=Image.Resampling.BILINEAR)) for u in times]
        if not blur:
            return views[0]
        mean = np.mean(np.stack(views).astype(np.float32), axis=0)
        return np.clip(mean + 0.5, 0, 255).astype(np.uint8)

    def _affine(self, t: float, size: tuple[int, int]) -> tuple[float, ...]:
        s = self.shot
        pos = float(np.clip((t - s.start_s) / max(s.duration_s, 1e-6), -0.5, 1.5))
        ease = pos * pos * (3 - 2 * pos) if 0 <= pos <= 1 else pos  # smooth start and stop, linear past the ends
        cx = s.center0[0] + (s.center1[0] - s.center0[0]) * ease
        cy = s.center0[1] + (s.center1[1] - s.center0[1]) * ease
        w = s.width0 * (s.width1 / s.width0) ** ease
        for tr, ang in zip(self.whips, self.whip_dir, strict=True):  # a whip moves the camera by 0.6 crop widths
            q = float(np.clip((t - tr.time_s) / tr.duration_s, 0, 1))
            q = q * q * (3 - 2 * q)
            dist = 0.6 * w * q
            cx, cy = cx + dist * math.cos(ang), cy + 0.4 * dist * math.sin(ang)
        cx = float(np.clip(cx, w / 2, size[0] - w / 2))
        cy = float(np.clip(cy, w * self.plan.height / self.plan.width / 2, size[1] - w * self.plan.height / self.plan.width / 2))
        key = (t - s.start_s) * 10 + 20
        k0 = int(np.clip(math.floor(key), 0, len(self.keys) - 2))
        f = float(np.clip(key - k0, 0, 1))
        jx, jy, jr = (1 - f) * self.keys[k0] + f * self.keys[k0 + 1]
        scale = w / self.plan.width  # photo pixels per output pixel
        cx, cy = cx + jx * s.shake_px * scale, cy + jy * s.shake_px * scale
        theta = jr * s.shake_px / self.plan.width * 0.5  # a little roll with the shake
        a, b = scale * math.cos(theta), -scale * math.sin(theta)
        d, e = scale * math.sin(theta), scale * math.cos(theta)
        w2, h2 = self.plan.width / 2, self.plan.height / 2
        return (a, b, cx - a * w2 - b * h2, d, e, cy - d * w2 - e * h2)


class _Overlay:
    """A flash, an object crossing the frame or a caption on one shot (whips live in the camera)."""

    def __init__(self, trap: Trap, plan: FootagePlan, photos: Sequence[np.ndarray]) -> None:
        self.trap, self.plan = trap, plan
        rng = np.random.default_rng(trap.seed)
        h, w = plan.height, plan.width
        self.strength = rng.uniform(0.5, 0.95)
        if trap.kind == "object":
            oh, ow = int(rng.uniform(0.6, 0.95) * h), int(rng.uniform(0.16, 0.3) * w)
            yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
            # a head-and-shoulders silhouette: an ellipse for the body, a circle on top, soft edges
            body = ((xx - ow / 2) / (ow / 2)) ** 2 + ((yy - 0.65 * oh) / (0.45 * oh)) ** 2
            head = ((xx - ow / 2) / (0.22 * ow)) ** 2 + ((yy - 0.18 * oh) / (0.15 * oh)) ** 2
            mask = np.clip(1.5 - np.minimum(body, head), 0, 1)
            src = photos[int(rng.integers(len(photos)))]
            y0 = int(rng.integers(0, max(1, src.shape[0] - oh)))
            x0 = int(rng.integers(0, max(1, src.shape[1] - ow)))
            patch = src[y0 : y0 + oh, x0 : x0 + ow].astype(np.float32)
            if patch.shape[:2] != (oh, ow):
                patch = np.resize(patch, (oh, ow, 3))
            self.patch = patch * rng.uniform(0.3, 0.8)  # in shadow: darker than the scene
            self.mask = mask[..., None]
            self.top = int(rng.integers(0, h - oh + 1))
            self.leftward = bool(rng.integers(2))
        elif trap.kind == "caption":
            from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

            bh, bw = int(rng.uniform(0.1, 0.18) * h), int(rng.uniform(0.4, 0.85) * w)
            box = Image.new("RGB", (bw, bh), tuple(int(v) for v in rng.choice([(20, 20, 20), (240, 240, 240), (200, 30, 40)])))
            draw = ImageDraw.Draw(box)
            words = ["SALE", "NEW", "Summer", "collection", "50% off", "Shop now", "Limited", "edition", "Free delivery"]
            text = " ".join(rng.choice(words, size=3))
            colour = (255, 255, 255) if np.asarray(box)[0, 0].mean() < 128 else (10, 10, 10)
            draw.text((bw * 0.05, bh * 0.2), text, fill=colour, font=ImageFont.load_default(size=max(8, int(bh * 0.55))))
            self.box = np.asarray(box).astype(np.float32)
            self.alpha = rng.uniform(0.75, 1.0)
            self.pos = (int(rng.uniform(0.05, 0.2) * h) if rng.uniform() < 0.3 else int(h - bh - rng.uniform(0.05, 0.15) * h),
                        int(rng.uniform(0.03, 1.0) * (w - bw)))

    def apply(self, frame: np.ndarray, t: float) -> np.ndarray:
        tr = self.trap
        if self.trap.kind == "flash":
            if tr.time_s - 1e-6 <= t < tr.time_s + tr.duration_s - 1e-6:
                f = frame.astype(np.float32)
                return np.clip(f + self.strength * (255 - f) + 0.5, 0, 255).astype(np.uint8)
            return frame
        if self.trap.kind == "object":
            q = (t - tr.time_s) / tr.duration_s
            if not 0 <= q <= 1:
                return frame
            oh, ow = self.mask.shape[:2]
            x = int(round(-ow + q * (self.plan.width + ow)))
            if self.leftward:
                x = self.plan.width - ow - x
            a, b = max(0, x), min(self.plan.width, x + ow)
            if a >= b:
                return frame
            out = frame.astype(np.float32)
            region = out[self.top : self.top + oh, a:b]
            m = self.mask[:, a - x : b - x]
            region[:] = region * (1 - m) + self.patch[:, a - x : b - x] * m
            return np.clip(out + 0.5, 0, 255).astype(np.uint8)
        if self.trap.kind == "caption":
            if t < tr.time_s - 1e-6:
                return frame
            bh, bw = self.box.shape[:2]
            y, x = self.pos
            out = frame.astype(np.float32)
            out[y : y + bh, x : x + bw] = out[y : y + bh, x : x + bw] * (1 - self.alpha) + self.box * self.alpha
            return np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return frame


def load_photo(source: str | bytes, max_width: int) -> np.ndarray:
    """A photo (a path or the file's bytes) as RGB uint8, scaled (Lanczos) to at most ``max_width`` wide."""
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        rgb = im.convert("RGB")
    if rgb.width > max_width:
        rgb = rgb.resize((max_width, round(rgb.height * max_width / rgb.width)), Image.Resampling.LANCZOS)
    return np.asarray(rgb)


#: photographs that Debian packages and Python packages ship (no illustrations; scikit-image's are
#: kept back to check results): mate-backgrounds' 12 nature photos, two of lomiri-wallpapers-20.04,
#: scikit-learn's two sample images and matplotlib's portrait of Grace Hopper
PACKAGED_PHOTOS = (
    "/usr/share/backgrounds/mate/nature/*.jpg",
    "/usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
    "/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
    "{sklearn}/datasets/images/*.jpg",
    "{matplotlib}/mpl-data/sample_data/grace_hopper.jpg",
)


def packaged_photos() -> list[str]:
    """Paths of the :data:`PACKAGED_PHOTOS` installed here (those of missing packages are left out)."""
    import glob  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415
    import os  # noqa: PLC0415

    packages = {}
    for name in ("sklearn", "matplotlib"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            packages[name] = os.path.dirname(spec.origin)
    found: list[str] = []
    for pattern in PACKAGED_PHOTOS:
        try:
            found += sorted(glob.glob(pattern.format(**packages)))
        except KeyError:  # a package that is not installed
            continue
    return found


def ground_truth_row(plan: FootagePlan, *, uri: str) -> dict[str, Any]:
    """One row of a footage set's ground-truth table (columns as :func:`vem.synthetic.ground_truth_row`
    where they mean the same; spans of gradual transitions and the traps besides)."""
    return {
        "id": plan.id, "uri": uri, "seed": plan.seed, "duration_s": plan.duration_s, "fps": float(plan.fps),
        "n_frames": plan.n_frames, "width": plan.width, "height": plan.height,
        "n_shots": len(plan.shots),
        "shot_start_s": [s.start_s for s in plan.shots], "shot_duration_s": [s.duration_s for s in plan.shots],
        "shot_photo": [s.photo for s in plan.shots], "shot_motion": [s.motion for s in plan.shots],
        "transitions": [t.time_s for t in plan.transitions],
        "transition_kind": [t.kind for t in plan.transitions],
        "transition_category": [t.category for t in plan.transitions],
        "transition_duration_s": [t.duration_s for t in plan.transitions],
        "transition_same_photo": [plan.shots[i].photo == plan.shots[i + 1].photo for i in range(len(plan.transitions))],
        "trap_kind": [t.kind for t in plan.traps], "trap_time_s": [t.time_s for t in plan.traps],
        "trap_duration_s": [t.duration_s for t in plan.traps],
    }
