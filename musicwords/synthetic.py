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


def markov_melodies(
    sources: list[Notes], *, seed: int, n_pieces: int = 1, n_notes: int = 400, order: int = 2, n_motifs: int = 0,
    occurrences: int = 4, motif_notes: int = 8,
) -> PlantedCorpus:
    """Melodies drawn from an order-``order`` Markov chain of the steps (pitch interval, inter-onset
    interval) of the top voice of ``sources`` (e.g. Bach chorales): music that is idiom only, with
    no passage repeated on purpose. With ``n_motifs``, that many passages of ``motif_notes`` notes
    are each planted ``occurrences`` times per piece (transposed): steps the sources use, drawn one
    by one (order 0), so a motif is made of the music's own steps but is not its idiom.

    Examples
    --------
    >>> src = Notes.from_arrays("s", onset=np.arange(12.0), pitch=[60, 62, 64, 65, 67, 65, 64, 62] + [60] * 4,
    ...                         duration=np.ones(12))
    >>> m = markov_melodies([src], seed=0, n_notes=30)
    >>> len(m.pieces[0]), m.motifs
    (30, [])
    """
    rng = np.random.default_rng(seed)
    steps: list[list[tuple[int, float]]] = []
    for notes in sources:
        top = notes.voice == 0
        onset, pitch = notes.onset[top], notes.pitch[top].astype(int)
        order_idx = np.lexsort((-pitch, onset))
        onset, pitch = onset[order_idx], pitch[order_idx]
        first = np.concatenate([[True], onset[1:] != onset[:-1]])  # the top note of each onset
        onset, pitch = onset[first], pitch[first]
        steps.append(list(zip(np.diff(pitch).tolist(), np.round(np.diff(onset), 3).tolist(), strict=True)))
    table: dict[tuple[tuple[int, float], ...], list[tuple[int, float]]] = {}
    for line in steps:
        for j in range(len(line)):
            for k in range(order + 1):
                if j - k >= 0:
                    table.setdefault(tuple(line[j - k : j]), []).append(line[j])
    if () not in table:
        raise ValueError("sources: no top voice with two notes or more")

    def walk(n: int, history: list[tuple[int, float]], k: int = order) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        for _ in range(n):
            h = (history + out)[-k:] if k else []
            while tuple(h) not in table:
                h = h[1:]
            nxt = table[tuple(h)]
            out.append(nxt[int(rng.integers(len(nxt)))])
        return out

    motifs = [walk(motif_notes - 1, [], 0) for _ in range(n_motifs)]
    pieces: list[Notes] = []
    answer: list[list[tuple[int, np.ndarray]]] = [[] for _ in motifs]
    for p in range(n_pieces):
        plan = rng.permutation(np.repeat(np.arange(n_motifs), occurrences)).tolist()
        gap = (n_notes - len(plan) * motif_notes) // (len(plan) + 1)
        if gap < 1:
            raise ValueError("n_notes is too small for the motifs planted")
        seq: list[tuple[int, float]] = walk(gap, [])
        spans = []
        for m in plan:
            spans.append((m, len(seq) + 1))  # the motif's first note follows step len(seq)
            seq += [(int(rng.integers(-5, 6)), 1.0)] + motifs[m] + walk(gap, seq)
        seq = (seq + walk(n_notes, seq))[: n_notes - 1]
        pitch = 64 + np.concatenate([[0], np.cumsum([s for s, _ in seq])])
        pitch = np.clip(pitch - int(round(float(np.mean(pitch)))) + 64, 0, 127)
        onset = np.concatenate([[0.0], np.cumsum([max(d, 0.125) for _, d in seq])])
        pieces.append(Notes.from_arrays(f"markov{p:02d}", onset=onset, pitch=pitch, duration=np.full(len(onset), 0.5)))
        for m, start in spans:
            answer[m].append((p, np.arange(start, start + motif_notes)))
    motif_arrays = [(np.concatenate([[0], np.cumsum([s for s, _ in mo])]), np.array([d for _, d in mo] + [1.0]))
                    for mo in motifs]
    return PlantedCorpus(pieces, motif_arrays, answer)
