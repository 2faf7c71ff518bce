"""Real compositions as ad music, paired with footage cut on their beats: VeM's real-music clips.

The sample catalog's soundtracks (:mod:`vem.synthetic`) are loops of drums, bass and pads, and a
model trained on them learns that texture. Here a *piece* (a score of the music21 corpus, or any
MIDI file) becomes a *clip*: an excerpt of 8-30 s starting on a bar line, played by a General
MIDI ensemble that suits its mood at a tempo that suits an ad, rendered with a soundfont
(:mod:`vem.soundfont`); its *video* is footage of photographs with camera motion
(:mod:`vem.footage`), graded to the mood, with its cuts on the excerpt's beats or bar lines.

Labels come from the score, never from the audio:

- **mode and key**: Krumhansl-Kessler key profiles (Krumhansl 1990) correlated with the
  excerpt's duration-weighted pitch classes, so a modulating piece is labelled by what is heard;
- **mood**: ``bright`` for a major excerpt, ``dark`` for a minor one (the convention of
  :mod:`vem.synthetic`, where the picture carries the mood too: here the grade does);
- **tempo**: the score's metronome mark in beats per minute when it lies in the mood's range
  (:data:`TEMPO_RANGE`: bright 100-140, dark 66-100, tempos of ad music), else one drawn from
  that range; the beat unit is the time signature's (a crotchet in 4/4, a dotted crotchet in 6/8);
- **beats and downbeats**: from the score's bars and time signatures (:func:`score_grid`), or
  from a MIDI file's tempo map and time signatures.

Everything is a pure function of ``(seed, index)``, the piece and the photos.

Examples
--------
>>> import numpy as np
>>> notes_key(np.array([60, 64, 67, 72]), np.ones(4))[:2]
('C', 'major')
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["ENSEMBLES", "KINDS", "TEMPO_RANGE", "MusicClip", "PairedConfig", "Piece", "corpus_piece", "grade_picture",
           "load_piece", "midi_piece", "notes_key", "pair_clip", "piece_id", "render_clip", "score_grid", "select_pieces"]

KINDS = ("chorale", "quartet", "piano", "folk")
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
PIANO = ("joplin/maple_leaf_rag.mxl", "mozart/k545/movement1_exposition.mxl", "schumann_clara/polonaise_op1n1.mxl",
         "schumann_clara/polonaise_op1n2.mxl", "schumann_clara/polonaise_op1n3.mxl", "schumann_clara/polonaise_op1n4.mxl",
         "chopin/mazurka06-2.krn", "schubert/Lindenbaum.xml", "schumann_robert/dichterliebe_no2.xml",
         "beach/prayer_of_a_tired_child.musicxml", "cpebach/h186.mxl", "schumann_robert/opus48no2.mxl")
#: the sound each kind of piece has in the beat benchmarks (GM programs per part)
PROGRAMS = {"chorale": [19], "quartet": [40, 40, 41, 42], "piano": [0], "folk": [40]}
#: General MIDI ensembles per mood: (name, programs of the parts from the top voice down; the
#: last repeats for further parts). Piano belongs to both: ads use it for either.
ENSEMBLES: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "bright": (("piano", (0,)), ("guitars", (25, 24, 24, 32)), ("pizzicato", (45,)),
               ("woodwinds", (73, 71, 71, 70)), ("mallets", (12, 11, 11, 33)), ("brass", (56, 56, 57, 58))),
    "dark": (("piano", (0,)), ("strings", (48,)), ("quartet", (40, 40, 41, 42)), ("organ", (19,)),
             ("choir", (52,)), ("horns", (60, 60, 61, 58))),
}
TEMPO_RANGE = {"bright": (100.0, 140.0), "dark": (66.0, 100.0)}  # beats per minute
MOOD_OF_MODE = {"major": "bright", "minor": "dark"}
# Krumhansl-Kessler probe-tone profiles, tonic first
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Piece:
    """A piece's notes on its score time axis (crotchets for scores, beats for MIDI files)."""

    id: str
    kind: str  # chorale, quartet, piano, folk, or midi
    onset_q: np.ndarray  # (n,) float64
    duration_q: np.ndarray  # (n,) float64
    pitch: np.ndarray  # (n,) int, MIDI
    voice: np.ndarray  # (n,) int, 0 = top part
    velocity: np.ndarray  # (n,) int, 1-127
    beats_q: np.ndarray  # beat positions, increasing
    downbeats_q: np.ndarray  # bar starts (a subset of the beats)
    tempo_mark: float | None = None  # the score's tempo, crotchets (score units) per minute; None: no mark

    @property
    def beat_q(self) -> float:
        """Score units per beat (1 in 4/4, 1.5 in 6/8, 2 in 2/2)."""
        return float(np.median(np.diff(self.beats_q))) if len(self.beats_q) > 1 else 1.0

    @property
    def n_voices(self) -> int:
        return int(self.voice.max()) + 1 if len(self.voice) else 0

    def to_row(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "onset_q": self.onset_q.tolist(), "duration_q": self.duration_q.tolist(),
                "pitch": self.pitch.tolist(), "voice": self.voice.tolist(), "velocity": self.velocity.tolist(),
                "beats_q": self.beats_q.tolist(), "downbeats_q": self.downbeats_q.tolist(), "tempo_mark": self.tempo_mark}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Piece:
        f = lambda k, t: np.asarray(row[k], dtype=t)  # noqa: E731
        return cls(id=row["id"], kind=row["kind"], onset_q=f("onset_q", np.float64), duration_q=f("duration_q", np.float64),
                   pitch=f("pitch", np.int64), voice=f("voice", np.int64), velocity=f("velocity", np.int64),
                   beats_q=f("beats_q", np.float64), downbeats_q=f("downbeats_q", np.float64), tempo_mark=row["tempo_mark"])


# ---------------------------------------------------------------------------------------- pieces

def select_pieces(per_kind: int, kinds: Sequence[str] = KINDS) -> list[tuple[str, str, int | None]]:
    """(kind, corpus path, abc tune number) for up to ``per_kind`` pieces of each kind, stable.

    ``chorale``: Bach's four-part chorales; ``quartet``: string quartets of Haydn, Mozart and
    Beethoven; ``piano``: Joplin, Mozart K. 545, Clara Schumann, Chopin, C. P. E. Bach and songs
    of Schubert, Schumann and Beach; ``folk``: Essen and O'Neill tunes (one melody).
    """
    from musicwords.corpus import _corpus_root, list_pieces  # noqa: PLC0415

    root = _corpus_root()
    out: list[tuple[str, str, int | None]] = []
    if "chorale" in kinds:
        out += [("chorale", r.path, None) for r in list_pieces(["bach"], limit=per_kind)]
    if "quartet" in kinds:
        quartets = [r.path for r in list_pieces(["beethoven", "mozart"])]
        quartets += sorted(p.relative_to(root).as_posix() for p in (root / "haydn").rglob("*.mxl"))
        picks = np.unique(np.linspace(0, len(quartets) - 1, per_kind).round().astype(int))
        out += [("quartet", quartets[i], None) for i in picks]
    if "piano" in kinds:
        out += [("piano", p, None) for p in PIANO[:per_kind] if (root / p).exists()]
    if "folk" in kinds:
        folk = [(r.path, r.number) for r in list_pieces(["essen"], limit=per_kind // 2)]
        folk += [("oneills1850/0001-0050.abc", n) for n in range(1, 50, max(1, 100 // per_kind))][: per_kind - len(folk)]
        out += [("folk", p, n) for p, n in folk]
    return out


def piece_id(path: str, number: int | None) -> str:
    return path.rsplit(".", 1)[0].replace("/", "_") + ("" if number is None else f"_{number:04d}")


def score_grid(score: Any) -> tuple[np.ndarray, np.ndarray]:
    """(beats, downbeats) in crotchets from the score's start, from the first part's bars and time
    signatures (music21's ``beatDuration``: a crotchet in 4/4 and 3/4, a minim in 2/2, a dotted
    crotchet in 6/8). A short first bar is a pickup: its beats are counted back from its end and
    it has no downbeat; a short bar later on keeps its beats from its start."""
    from music21 import meter  # noqa: PLC0415

    part = score.parts[0] if score.parts else score
    measures = list(part.getElementsByClass("Measure"))
    beats: list[float] = []
    downbeats: list[float] = []
    ts = None
    for i, m in enumerate(measures):
        ts = m.timeSignature or ts or m.getContextByClass(meter.TimeSignature) or meter.TimeSignature("4/4")
        bar = float(ts.barDuration.quarterLength)
        step = float(ts.beatDuration.quarterLength)
        start = float(m.offset)
        length = float(m.highestTime) or bar
        pickup = i == 0 and length < bar - 1e-6
        first = start + length - bar if pickup else start
        if not pickup:
            downbeats.append(start)
        k = np.arange(int(np.ceil((bar + 1e-6) / step)))
        b = first + k * step
        beats += [float(x) for x in b if start - 1e-6 <= x < start + length - 1e-6]
    return np.unique(np.round(beats, 6)), np.unique(np.round(downbeats, 6))


def _parse_corpus(path: str, number: int | None) -> Any:
    from music21 import converter  # noqa: PLC0415

    from musicwords.corpus import _corpus_root  # noqa: PLC0415

    with warnings.catch_warnings():  # music21 warns about every overfull bar it repairs
        warnings.filterwarnings("ignore")
        file = _corpus_root() / path
        parsed = converter.parse(file, number=number) if number is not None else converter.parse(file)
    return parsed.scores[0] if hasattr(parsed, "scores") else parsed


def load_piece(path: str, number: int | None) -> tuple[Any, np.ndarray]:
    """A corpus piece's playable notes (:class:`musicwords.notes.Notes`) and its beats in crotchets."""
    notes, beats, _ = _corpus_notes(path, number)
    return notes, beats


def _corpus_notes(path: str, number: int | None) -> tuple[Any, np.ndarray, np.ndarray]:
    from musicwords.corpus import score_to_notes  # noqa: PLC0415
    from musicwords.midi import playable_notes  # noqa: PLC0415

    score = _parse_corpus(path, number)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        notes = playable_notes(score_to_notes(score, piece_id=piece_id(path, number), source=path))
    beats, downbeats = score_grid(score)
    return notes, beats, downbeats


def corpus_piece(kind: str, path: str, number: int | None = None) -> Piece:
    """A piece of the music21 corpus (see :func:`select_pieces`)."""
    notes, beats, downbeats = _corpus_notes(path, number)
    has_mark = abs(notes.tempo_bpm - 100.0) > 1e-6  # musicwords reads 100 when the score has no metronome mark
    return Piece(id=piece_id(path, number), kind=kind, onset_q=notes.onset, duration_q=notes.duration, pitch=notes.pitch,
                 voice=notes.voice, velocity=notes.velocity, beats_q=beats, downbeats_q=downbeats,
                 tempo_mark=float(notes.tempo_bpm) if has_mark else None)


def midi_piece(data: bytes, id_: str) -> Piece:
    """A MIDI file's pitched notes, on its beat axis (1 unit = 1 beat of its tempo map).

    Parts are the file's non-drum instruments ordered from the highest mean pitch down; beats and
    downbeats come from the file's tempo changes and time signatures (``pretty_midi``)."""
    import io  # noqa: PLC0415

    import pretty_midi  # noqa: PLC0415

    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as e:  # mido and pretty_midi raise many types for broken files
        raise ValueError(f"{id_}: not a readable MIDI file: {type(e).__name__}: {e}") from e
    parts = sorted((i for i in pm.instruments if not i.is_drum and i.notes), key=lambda i: -np.mean([n.pitch for n in i.notes]))
    if not parts:
        raise ValueError(f"{id_}: no pitched notes")
    beats_s = np.asarray(pm.get_beats(), np.float64)
    end = pm.get_end_time()
    if len(beats_s) < 2:
        raise ValueError(f"{id_}: fewer than two beats")
    idx = np.arange(len(beats_s), dtype=np.float64)
    period = beats_s[-1] - beats_s[-2]

    def to_q(t: np.ndarray) -> np.ndarray:
        inside = np.interp(t, beats_s, idx)
        return np.where(t > beats_s[-1], idx[-1] + (t - beats_s[-1]) / period, inside)

    onset, dur, pitch, voice, vel = [], [], [], [], []
    for v, inst in enumerate(parts):
        for n in inst.notes:
            onset.append(n.start)
            dur.append(n.end)
            pitch.append(n.pitch)
            voice.append(v)
            vel.append(n.velocity)
    on_q = to_q(np.asarray(onset))
    end_q = to_q(np.asarray(dur))
    order = np.lexsort((np.asarray(voice), on_q))
    downbeats = to_q(np.asarray([d for d in pm.get_downbeats() if d <= end]))
    tempo = 60.0 / float(np.median(np.diff(beats_s)))
    return Piece(id=id_, kind="midi", onset_q=on_q[order], duration_q=np.maximum(end_q - on_q, 1e-3)[order],
                 pitch=np.asarray(pitch)[order], voice=np.asarray(voice)[order], velocity=np.asarray(vel)[order],
                 beats_q=idx, downbeats_q=np.round(downbeats, 6), tempo_mark=tempo)


def notes_key(pitch: np.ndarray, weight: np.ndarray) -> tuple[str, str, float]:
    """(tonic, ``major``/``minor``, best major correlation - best minor) of notes weighted by duration."""
    hist = np.bincount(np.asarray(pitch) % 12, weights=np.asarray(weight, np.float64), minlength=12)
    if hist.std() == 0:
        return "C", "major", 0.0
    best: dict[str, tuple[float, int]] = {}
    for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
        r = [float(np.corrcoef(hist, np.roll(profile, k))[0, 1]) for k in range(12)]
        best[mode] = (max(r), int(np.argmax(r)))
    mode = "major" if best["major"][0] >= best["minor"][0] else "minor"
    return PITCH_NAMES[best[mode][1]], mode, best["major"][0] - best["minor"][0]


# ---------------------------------------------------------------------------------------- music

@dataclass(frozen=True)
class MusicClip:
    """A rendered excerpt and its labels; times in seconds from the clip's start."""

    audio: np.ndarray  # (round(duration_s * sample_rate),) float32 mono
    sample_rate: int
    duration_s: float
    beats: np.ndarray
    downbeats: np.ndarray
    tempo_bpm: float  # beats per minute as rendered
    key: str
    mode: str
    mood: str
    ensemble: str
    piece: str
    start_q: float  # where the excerpt starts in the piece


def render_clip(piece: Piece, *, rng: np.random.Generator, duration_s: float, min_duration_s: float = 8.0,
                sample_rate: int = 16_000, soundfont: str | None = None) -> MusicClip | None:
    """An excerpt of at most ``duration_s`` from a bar line of ``piece``, rendered; None when the
    piece has less than ``min_duration_s`` of music after every candidate bar line."""
    from vem.soundfont import render_notes  # noqa: PLC0415

    if len(piece.onset_q) < 8 or len(piece.beats_q) < 8:
        return None
    end_q = float((piece.onset_q + piece.duration_q).max())
    bars = piece.downbeats_q if len(piece.downbeats_q) else piece.beats_q[:1]
    beat_q = piece.beat_q
    # an excerpt needs 8 s even at the fastest tempo; the first bar is the likeliest start (a theme's opening)
    candidates = bars[end_q - bars >= min_duration_s * TEMPO_RANGE["bright"][1] / 60 * beat_q]
    if not len(candidates):
        return None
    start = float(candidates[0] if rng.uniform() < 0.3 else rng.choice(candidates))
    # the mode of what is heard: the next 40 beats (about 20 s)
    window = (piece.onset_q >= start) & (piece.onset_q < start + 40 * beat_q)
    key, mode, _ = notes_key(piece.pitch[window], piece.duration_q[window])
    mood = MOOD_OF_MODE[mode]
    lo, hi = TEMPO_RANGE[mood]
    marked = piece.tempo_mark / beat_q if piece.tempo_mark else None
    bpm = float(marked) if marked is not None and lo <= marked <= hi else float(rng.uniform(lo, hi))
    spq = 60.0 / (bpm * beat_q)  # seconds per score unit
    duration = min(duration_s, (end_q - start) * spq)
    if duration < min_duration_s:
        return None
    name, programs = ENSEMBLES[mood][int(rng.integers(len(ENSEMBLES[mood])))]
    onset = (piece.onset_q - start) * spq
    end = (piece.onset_q + piece.duration_q - start) * spq
    keep = (onset >= -1e-6) & (onset < duration - 0.05)
    program = np.array([programs[min(int(v), len(programs) - 1)] for v in piece.voice[keep]], dtype=np.int64)
    velocity = np.clip(piece.velocity[keep] * rng.uniform(0.85, 1.15), 30, 120).astype(np.int64)
    audio = render_notes(np.maximum(onset[keep], 0.0), np.minimum(end[keep], duration), piece.pitch[keep], velocity, program,
                         duration_s=duration, sample_rate=sample_rate, soundfont=soundfont)
    on_clip = lambda q: (q - start) * spq  # noqa: E731
    beats = on_clip(piece.beats_q)
    downbeats = on_clip(piece.downbeats_q)
    inside = lambda t: t[(t >= -1e-6) & (t < duration)]  # noqa: E731
    return MusicClip(audio=audio, sample_rate=sample_rate, duration_s=len(audio) / sample_rate,
                     beats=inside(beats), downbeats=inside(downbeats), tempo_bpm=bpm, key=key, mode=mode, mood=mood,
                     ensemble=name, piece=piece.id, start_q=start)


# ---------------------------------------------------------------------------------------- pictures

def grade_picture(rgb: np.ndarray, mood: str, rng: np.random.Generator) -> np.ndarray:
    """A colour grade that carries the mood, as an ad's colourist would: ``bright`` lifts the
    exposure, the saturation and the warmth; ``dark`` lowers them and cools the picture."""
    x = rgb.astype(np.float32) / 255.0
    if mood == "bright":
        gamma, sat, tint, gain = rng.uniform(0.55, 0.8), rng.uniform(1.15, 1.4), (1.06, 1.0, 0.9), 1.0
    else:
        gamma, sat, tint, gain = rng.uniform(1.5, 2.0), rng.uniform(0.45, 0.7), (0.85, 0.95, 1.12), rng.uniform(0.6, 0.8)
    x = x**gamma
    lum = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = lum[..., None] + (x - lum[..., None]) * sat
    x = x * np.asarray(tint, np.float32) * gain
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------- pairs

@dataclass(frozen=True)
class PairedConfig:
    """One paired clip's size and editing; defaults match the sample catalog's videos (320x180, 24 fps, 8-30 s)."""

    width: int = 320
    height: int = 180
    fps: int = 24
    sample_rate: int = 16_000
    min_duration_s: float = 8.0
    max_duration_s: float = 30.0
    cut_grid_share: tuple[float, float] = (0.5, 0.35)  # cuts on the beats, on the bar lines; the rest where they fall
    p_trap: float = 0.3  # a shot's chance of a flash, whip pan, crossing object or caption (vem.footage)
    crf: int = 23

    @classmethod
    def debug(cls) -> PairedConfig:
        return cls(width=160, height=96, min_duration_s=8.0, max_duration_s=10.0)


def pair_clip(piece: Piece, pictures: Sequence[np.ndarray], *, seed: int, index: int, config: PairedConfig | None = None,
              soundfont: str | None = None) -> tuple[Any, MusicClip, Iterator[np.ndarray], dict[str, Any]] | None:
    """Render one clip of ``piece`` and plan its footage of ``pictures`` (RGB, at least two).

    Returns ``(footage plan, music, frames, ground-truth row)`` (the frames are rendered lazily),
    or None when the piece is too short for a clip.
    """
    from vem.footage import FootageConfig, plan_footage, render_footage  # noqa: PLC0415
    from vem.footage import ground_truth_row as footage_row  # noqa: PLC0415

    cfg = config or PairedConfig()
    rng = np.random.default_rng([seed, index, 0xA11])
    wanted = rng.uniform(cfg.min_duration_s, cfg.max_duration_s)
    music = render_clip(piece, rng=rng, duration_s=wanted, min_duration_s=cfg.min_duration_s,
                        sample_rate=cfg.sample_rate, soundfont=soundfont)
    if music is None:
        return None
    n_frames = int(np.floor(music.duration_s * cfg.fps))
    duration = n_frames / cfg.fps
    u = rng.uniform()
    on_beats, on_bars = cfg.cut_grid_share
    grid_kind = "beats" if u < on_beats else "bars" if u < on_beats + on_bars else "free"
    grid = {"beats": music.beats, "bars": music.downbeats, "free": None}[grid_kind]
    footage_cfg = FootageConfig(width=cfg.width, height=cfg.height, fps=cfg.fps, duration_s=duration, min_shot_s=1.2,
                                max_shot_s=4.5, p_trap=cfg.p_trap, crf=cfg.crf)
    plan = plan_footage([p.shape[:2] for p in pictures], seed=seed, index=index, config=footage_cfg, cut_grid_s=grid)
    plan = replace(plan, id=f"clip{index:05d}")
    graded = [grade_picture(p, music.mood, rng) for p in pictures]
    audio = music.audio[: int(round(duration * cfg.sample_rate))]
    music = replace(music, audio=audio, duration_s=duration, beats=music.beats[music.beats < duration],
                    downbeats=music.downbeats[music.downbeats < duration])
    row = footage_row(plan, uri="")
    beats = music.beats
    on_beat = [bool(len(beats) and np.min(np.abs(beats - t)) <= 0.5 / cfg.fps + 1e-9) for t in row["transitions"]]
    row.update(sample_rate=cfg.sample_rate, mood=music.mood, key=music.key, mode=music.mode, tempo_bpm=music.tempo_bpm,
               beats=[round(float(b), 6) for b in beats], downbeats=[round(float(b), 6) for b in music.downbeats],
               transition_on_beat=on_beat, cut_grid=grid_kind, piece=music.piece, piece_kind=piece.kind,
               ensemble=music.ensemble, start_q=music.start_q)
    return plan, music, render_footage(plan, graded), row

