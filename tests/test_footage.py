"""Transition detection on footage of real photographs (vem.footage): cuts, dissolves, fades and
the traps that are not transitions, on small videos the tests render and encode themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vem.footage import FootageConfig, FootagePlan, FootageShot, FootageTransition, Trap, plan_footage, render_footage
from vem.media import write_mp4
from vem.storyboard import ParseConfig, parse_video

SIZE = (320, 180)
FPS = 25


def _photos() -> list[np.ndarray]:
    """Real photographs that Python packages ship: matplotlib's Grace Hopper, scikit-learn's
    Summer Palace and dahlia; scaled to twice the video's width."""
    import matplotlib
    import sklearn
    from PIL import Image

    paths = [os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")]
    paths += [os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", n) for n in ("china.jpg", "flower.jpg")]
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        im = im.resize((2 * SIZE[0], round(im.height * 2 * SIZE[0] / im.width)), Image.Resampling.LANCZOS)
        out.append(np.asarray(im))
    return out


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return _photos()


def _encode(plan: FootagePlan, photos: list[np.ndarray], path: Path) -> str:
    write_mp4(str(path), render_footage(plan, photos), width=plan.width, height=plan.height, fps=plan.fps, crf=plan.crf)
    return str(path)


def _shot(photo: int, start: float, duration: float, shape: tuple[int, ...], *, motion: str = "still",
          pan: float = 0.0, shake: float = 1.0, seed: int = 0) -> FootageShot:
    """A crop of 60 % of the photo's width from its middle; ``pan`` moves it by that share of the crop."""
    h, w = shape[:2]
    width = 0.6 * w
    cx, cy = w / 2, h / 2
    return FootageShot(photo, start, duration, motion, (cx - pan * width / 2, cy), (cx + pan * width / 2, cy), width, width,
                       shake, seed)


def _plan(shots: list[FootageShot], transitions: list[FootageTransition], traps: list[Trap], duration: float) -> FootagePlan:
    return FootagePlan(id="t", seed=0, index=0, width=SIZE[0], height=SIZE[1], fps=FPS, n_frames=int(duration * FPS), crf=20,
                       shots=tuple(shots), transitions=tuple(transitions), traps=tuple(traps))


def test_every_cut_between_photos_is_found_within_a_tenth_of_a_second(photos: list[np.ndarray], tmp_path: Path) -> None:
    # shots of 1.2-2 s, each a moving crop (pan, zoom, hand-held shake) of another photo; cuts only, no traps
    config = FootageConfig(width=SIZE[0], height=SIZE[1], fps=FPS, duration_s=12.0, min_shot_s=1.2, max_shot_s=2.0, p_cut=1.0,
                           p_same_photo=0.0, p_trap=0.0)
    plan = plan_footage([p.shape[:2] for p in photos], seed=4, index=0, config=config)
    assert len(plan.transitions) >= 5 and {s.motion for s in plan.shots} - {"still"}
    board = parse_video(_encode(plan, photos, tmp_path / "cuts.mp4"), ParseConfig(embedding="none"))
    truth = np.array([t.time_s for t in plan.transitions])
    assert len(board.transitions) == len(truth), (board.transitions, truth)
    assert np.abs(board.transitions - truth).max() < 0.1
    assert board.transition_kinds == ["hard"] * len(truth)
    assert np.array_equal(board.transition_spans[:, 0], board.transitions)  # a cut's span has no length


def test_a_flash_frame_and_a_fast_pan_give_no_transition(photos: list[np.ndarray], tmp_path: Path) -> None:
    shape = photos[1].shape
    # a pan across 0.6 of the photo's width in 5 s: a crop width a second, 0.4 of a frame's width between analysis frames
    shot = FootageShot(1, 0.0, 5.0, "pan", (0.2 * shape[1], shape[0] / 2), (0.8 * shape[1], shape[0] / 2), 0.3 * shape[1],
                       0.3 * shape[1], 2.0, 0)
    flash = Trap("flash", 0, 1.52, 2 / FPS, seed=1)  # two frames washed out towards white
    plan = _plan([shot], [], [flash], 5.0)
    frames = list(render_footage(plan, photos))
    before, during = frames[int(1.4 * FPS)].astype(float), frames[int(1.52 * FPS)].astype(float)
    assert during.mean() > before.mean() + 40  # the flash is there
    board = parse_video(_encode(plan, photos, tmp_path / "traps.mp4"), ParseConfig(embedding="none"))
    assert len(board.transitions) == 0, (board.transitions, board.transition_kinds)


def test_a_dissolve_gives_one_gradual_transition_spanning_it(photos: list[np.ndarray], tmp_path: Path) -> None:
    a = _shot(0, 0.0, 3.0, photos[0].shape, motion="pan", pan=0.15)
    b = _shot(2, 3.0, 3.0, photos[2].shape, motion="handheld", shake=4.0, seed=3)
    dissolve = FootageTransition(3.0, "dissolve", 1.0)
    board = parse_video(_encode(_plan([a, b], [dissolve], [], 6.0), photos, tmp_path / "dissolve.mp4"),
                        ParseConfig(embedding="none"))
    assert board.transition_kinds == ["gradual"], (board.transitions, board.transition_kinds)
    assert abs(board.transitions[0] - 3.0) < 0.15
    start, end = board.transition_spans[0]
    covered = min(end, 3.5) - max(start, 2.5)
    assert covered >= 0.5 and start >= 2.3 and end <= 3.7, (start, end)  # most of the blend, not far past it


def test_a_fade_through_black_is_one_gradual_transition_at_its_darkest(photos: list[np.ndarray], tmp_path: Path) -> None:
    a = _shot(1, 0.0, 3.0, photos[1].shape, motion="pan", pan=0.1)
    b = _shot(1, 3.0, 3.0, photos[1].shape, motion="still", pan=-0.3)  # the same photo: only the fade tells the shots apart
    fade = FootageTransition(3.0, "fade", 0.8)
    board = parse_video(_encode(_plan([a, b], [fade], [], 6.0), photos, tmp_path / "fade.mp4"), ParseConfig(embedding="none"))
    assert board.transition_kinds == ["gradual"], (board.transitions, board.transition_kinds)
    assert abs(board.transitions[0] - 3.0) < 0.1
