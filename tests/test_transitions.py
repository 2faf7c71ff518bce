"""The frame distance behind transition detection (vem.transitions), on frames with known answers."""

from __future__ import annotations

import numpy as np

from vem.transitions import _Distances, detect_transitions


def _texture(seed: int, h: int = 120, w: int = 200) -> np.ndarray:
    """A smooth random colour texture (h, w, 3) uint8: soft blobs about 16 pixels across (a fifth of
    the analysis frame's height: the scale of a photo's objects, not of its grain)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 16 + 2, w // 16 + 2, 3))
    big = np.kron(small, np.ones((16, 16, 1)))[:h, :w]
    kernel = np.ones(9) / 9
    for axis in (0, 1):
        big = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, big)
    return np.clip(big, 0, 255).astype(np.uint8)


def _views(scene: np.ndarray, offsets: list[tuple[int, int]], h: int = 72, w: int = 128) -> np.ndarray:
    return np.stack([scene[y : y + h, x : x + w] for y, x in offsets])


def test_a_camera_move_is_explained_and_a_different_scene_is_not() -> None:
    scene, other = _texture(1), _texture(2)
    # frame 0 and frame 1 of one scene 20 px apart (a pan of 16 % of the width), frame 2 another scene,
    # frame 3 the first scene 3 px and 1 px away from frame 0 (shake)
    frames = np.concatenate([_views(scene, [(10, 10), (10, 30)]), _views(other, [(10, 10)]), _views(scene, [(11, 13)])])
    d = _Distances(frames, 40.0, None, None)
    near = d.step(-1, 0)  # frame k against frame k - 1
    assert near[1] < 0.15  # the pan: its shift found, nothing left
    assert near[2] > 0.6 and near[3] > 0.6  # a cut to another scene and back
    assert d.step(-3, 0, np.array([3]))[0] < 0.4  # frame 3 against frame 0: shake, under a pixel of the thumbnail
    assert d.path[1, 1] in (-5, -6, -4)  # 20 px at 128 wide is 5 px of the 32-wide thumbnail, to the left


def test_a_caption_or_a_person_covering_a_fifth_of_the_frame_changes_little() -> None:
    scene = _texture(3)
    plain = _views(scene, [(10, 10)])[0]
    captioned = plain.copy()
    captioned[50:66, 20:100] = 240  # a caption box, 14 % of the frame
    crossed = plain.copy()
    crossed[5:72, 60:85] = 30  # a dark person-sized shape, 18 % of the frame
    d = _Distances(np.stack([plain, captioned, crossed]), 40.0, None, None)
    assert d.step(-1, 0, np.array([1]))[0] < 0.35
    assert d.step(-2, 0, np.array([2]))[0] < 0.35


def test_cuts_in_a_moving_shot_are_found_and_a_flash_is_not() -> None:
    # 5 s at 16 frames/s: a slow pan over one scene, a cut at 2 s to another panning scene, a flash frame at 3.5 s
    a, b = _texture(4, 120, 400), _texture(5, 120, 400)
    frames = np.concatenate([_views(a, [(20, 2 * k) for k in range(32)]), _views(b, [(20, 2 * k) for k in range(48)])])
    frames[56] = np.clip(frames[56].astype(int) + 180, 0, 255).astype(np.uint8)
    found = detect_transitions(frames, 16.0)
    assert [(e.kind, round(e.time, 3)) for e in found] == [("hard", 1.969)]  # between frames 31 and 32
