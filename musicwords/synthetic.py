"""Planted motifs: random melodies with known motifs hidden in them, the known-answer test of discovery.

Each piece is a random background melody (pitches from a random walk, durations from a small
set) into which ``n_motifs`` motifs are planted ``occurrences`` times each, every time
transposed by a random interval; each piece has its own tempo (BPM), so a motif's durations in
seconds differ from piece to piece while staying the same in beats. The answer key lists,
for every planted occurrence, the indices of its notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicwords.notes import Notes

__all__ = ["PlantedCorpus", "planted_corpus"]

_DURATIONS = np.array([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0])  # beats


@dataclass(frozen=True)
class PlantedCorpus:
    pieces: list[Notes]
    motifs: list[tuple[np.ndarray, np.ndarray]]  # (pitch offsets from the first note, durations in beats)
    occurrences: list[list[tuple[int, np.ndarray]]]  # per motif: (piece, note indices)


def planted_corpus(
    *, seed: int, n_pieces: int = 8, n_motifs: int = 4, occurrences: int = 3, motif_notes: tuple[int, int] = (6, 10),
    background: tuple[int, int] = (4, 12),
) -> PlantedCorpus:
    """Build the corpus.

    Parameters
    ----------
    seed : int
    n_pieces : int
    n_motifs : int
    occurrences : int
        Times each motif is planted in each piece.
    motif_notes : (int, int)
        Range of motif lengths (notes).
    background : (int, int)
        Range of the number of random notes between two planted motifs.
    """
    rng = np.random.default_rng(seed)
    motifs = []
    for _ in range(n_motifs):
        n = int(rng.integers(motif_notes[0], motif_notes[1] + 1))
        steps = rng.choice([-7, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 7], size=n - 1)
        motifs.append((np.concatenate([[0], np.cumsum(steps)]), rng.choice(_DURATIONS, size=n)))
    pieces: list[Notes] = []
    answer: list[list[tuple[int, np.ndarray]]] = [[] for _ in motifs]
    for p in range(n_pieces):
        order = rng.permutation(np.repeat(np.arange(n_motifs), occurrences))
        pitch: list[int] = []
        dur: list[float] = []
        spans = []
        level = 62
        for m in order:
            for _ in range(int(rng.integers(background[0], background[1] + 1))):
                level = int(np.clip(level + rng.integers(-4, 5), 50, 78))
                pitch.append(level)
                dur.append(float(rng.choice(_DURATIONS)))
            offsets, durations = motifs[m]
            base = int(rng.integers(55, 70))
            spans.append((m, len(pitch), len(offsets)))
            pitch.extend((base + offsets).tolist())
            dur.extend(durations.tolist())
            level = pitch[-1]
        onset = np.concatenate([[0.0], np.cumsum(dur[:-1])])
        pieces.append(Notes.from_arrays(f"planted{p:02d}", onset=onset, pitch=pitch, duration=dur,
                                        tempo_bpm=float(rng.uniform(60, 160))))
        for m, start, length in spans:
            answer[m].append((p, np.arange(start, start + length)))
    return PlantedCorpus(pieces, motifs, answer)
