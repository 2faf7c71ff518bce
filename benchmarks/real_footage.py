"""A real-footage development set: videos of real photographs with camera motion, cut at known
times, with real music (scores of the music21 corpus rendered with a General MIDI soundfont).

Run::

    apt-get install mate-backgrounds lomiri-wallpapers-20.04    # the photographs (see PHOTOS)
    .venv/bin/pip install --no-deps tinysoundfont               # the soundfont renderer
    .venv/bin/python benchmarks/real_footage.py --out work/realfootage          # both halves, 2 processes

It writes ``<out>/{tune,test}/videos/realNNNNN.mp4`` and ``<out>/{tune,test}/ground_truth.parquet``
(columns of :func:`vem.footage.ground_truth_row`, plus ``beats``, ``tempo_bpm``, ``piece`` and
``music_kind``). The halves share nothing: photos, pieces and seeds are split by a hash of the
photo's file name, the piece's id and the half's seed (``tune`` seed 1, ``test`` seed 2); choose
detectors on ``tune`` and report ``test``. scikit-image's bundled images are left out on purpose:
they are kept back to check the result.

What a video holds (:mod:`vem.footage`): 20-30 s at 1280x720, 854x480 or 640x360 and 24, 25 or
30 frames/s; shots of 1.2-4.5 s, each a moving crop (pan, zoom, hand-held shake, still) of one
photo, or of another crop of the previous shot's photo; 60 % hard cuts, the rest dissolves and
fades of 0.4-1.2 s; traps that are not transitions in 45 % of the shots (flash frames, whip pans
with motion blur, a person-sized shape crossing the frame, a caption appearing). Two thirds of
the videos put their cuts on the music's beats. The music: the piece's first 30 s at a steady
tempo (its metronome mark, else one drawn from 80-140 beats/min), chorales on an organ, quartets
on strings, piano pieces on a piano, folk tunes on a fiddle; the beats come from the score
(``beat_real.score_beats``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

SR = 16_000
SEEDS = {"tune": 1, "test": 2}
SIZES = ((1280, 720), (854, 480), (640, 360))
def half_of(name: str) -> str:
    return "tune" if zlib.crc32(os.path.basename(name).encode()) % 2 == 0 else "test"


def render_music(kind: str, path: str, number: int | None, rng: np.random.Generator, seconds: float) -> dict[str, Any] | None:
    """A piece's first ``seconds`` at a steady tempo: audio, beats (s) and tempo; None if unusable."""
    from vem.realmusic import PROGRAMS, load_piece, piece_id
    from vem.soundfont import render_notes

    notes, beats_q = load_piece(path, number)
    if len(beats_q) < 8:
        return None
    beat_q = float(np.median(np.diff(beats_q)))
    has_mark = abs(notes.tempo_bpm - 100.0) > 1e-6  # 100 = no metronome mark
    bpm = float(np.clip(notes.tempo_bpm / beat_q if has_mark else rng.uniform(80, 140), 60, 160))
    to_s = 60.0 / (bpm * beat_q)  # seconds per crotchet
    onset, end = notes.onset * to_s, (notes.onset + notes.duration) * to_s
    keep = onset < seconds - 0.3
    if keep.sum() < 16 or end[keep].max() < 0.7 * seconds:
        return None
    programs = PROGRAMS[kind]
    program = np.array([programs[min(int(v), len(programs) - 1)] for v in notes.voice])
    audio = render_notes(onset[keep], end[keep], notes.pitch[keep], notes.velocity[keep], program[keep], duration_s=seconds,
                         sample_rate=SR)
    beats = beats_q * to_s
    beats = beats[beats < min(seconds, float(end[keep].max()))]
    return {"audio": audio, "beats": beats, "tempo_bpm": bpm, "piece": piece_id(path, number), "music_kind": kind}


def make_video(job: tuple[str, int, str, list[str], tuple[str, str, int | None]]) -> dict[str, Any] | None:
    from vem.footage import FootageConfig, ground_truth_row, load_photo, plan_footage, render_footage
    from vem.media import write_mp4

    half, index, out, photos, piece = job
    seed = SEEDS[half]
    rng = np.random.default_rng([seed, index])
    width, height = SIZES[int(rng.integers(len(SIZES)))]
    fps = int(rng.choice([24, 25, 30]))
    duration = float(round(rng.uniform(20, 30) * fps) / fps)
    music = render_music(*piece, rng, duration)
    if music is None:
        return None
    pictures = [load_photo(p, 2 * width) for p in photos]
    cfg = FootageConfig(width=width, height=height, fps=fps, duration_s=duration, crf=int(rng.integers(20, 27)))
    grid = music["beats"] if rng.uniform() < 2 / 3 else None
    plan = plan_footage([p.shape[:2] for p in pictures], seed=seed, index=index, config=cfg, cut_grid_s=grid)
    path = os.path.join(out, "videos", f"{plan.id}.mp4")
    with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), suffix=".mp4", delete=False) as tmp:
        write_mp4(tmp.name, render_footage(plan, pictures), width=width, height=height, fps=fps, crf=plan.crf,
                  audio=music["audio"], sample_rate=SR)
        os.replace(tmp.name, path)
    row = ground_truth_row(plan, uri=os.path.abspath(path))
    row.update(beats=[float(b) for b in music["beats"]], tempo_bpm=music["tempo_bpm"], piece=music["piece"],
               music_kind=music["music_kind"], photos=[os.path.basename(p) for p in photos], cuts_on_beats=grid is not None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="work/realfootage")
    parser.add_argument("--videos", type=int, default=24, help="videos per half")
    parser.add_argument("--halves", default="tune,test")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    import pyarrow as pa
    import pyarrow.parquet as pq
    from beat_real import split_of

    from vem.footage import packaged_photos
    from vem.realmusic import piece_id, select_pieces

    photos = packaged_photos()
    if len(photos) < 8:
        sys.exit(f"found {len(photos)} photos; install them: apt-get install mate-backgrounds lomiri-wallpapers-20.04 "
                 "(and pip install scikit-learn for its two sample images)")
    pieces = select_pieces(8)
    for half in args.halves.split(","):
        mine = [p for p in photos if half_of(p) == half]
        music = [p for p in pieces if {"dev": "tune", "test": "test"}[split_of(piece_id(p[1], p[2]))] == half]
        folder = os.path.join(args.out, half)
        Path(folder, "videos").mkdir(parents=True, exist_ok=True)
        print(f"{half}: {len(mine)} photos ({', '.join(os.path.basename(p) for p in mine)}), {len(music)} pieces",
              file=sys.stderr)
        jobs = [(half, i, folder, mine, music[i % len(music)]) for i in range(args.videos)]
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = [r for r in pool.map(make_video, jobs) if r is not None]
        pq.write_table(pa.Table.from_pylist(rows), os.path.join(folder, "ground_truth.parquet"))
        n = sum(len(r["transitions"]) for r in rows)
        hard = sum(c == "hard" for r in rows for c in r["transition_category"])
        print(f"{half}: {len(rows)} videos, {n} transitions ({hard} hard), "
              f"{sum(len(r['trap_kind']) for r in rows)} traps -> {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
