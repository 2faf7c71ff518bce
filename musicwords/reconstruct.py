"""Stage 2: reconstructing every stream as a sequence of words, and the patterns this reveals.

- :func:`find_occurrences`: the Viterbi segmentation of every stream under the dictionary;
  each use of a multi-token word becomes an :class:`Occurrence`, mapped back to its notes, time
  span (beats) and pitch range; so do the words it is made of (its spelling in shorter words),
  recursively: a theme's occurrence is also an occurrence of its motifs.
- :func:`rank_words`: words ranked by the bits they save: ``count * (bits of their notes under
  the base token model - bits as one word) - bits of their dictionary entry``.
- :func:`patterns`: a word with all its occurrences, as point sets ``(onset, pitch)``: the
  word's translations in time and pitch. With ``extend="repeating"`` an occurrence also takes
  the notes of other streams that sound during it *and* recur, with the same translation, in
  at least ``min_share`` of the word's other occurrences (the accompaniment that repeats with a
  theme), which is how a melodic word becomes a polyphonic pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicwords.em import Dictionary
from musicwords.lattice import build_lattice, viterbi
from musicwords.notes import Notes
from musicwords.tokens import TokenStreams

__all__ = ["Occurrence", "Pattern", "find_occurrences", "patterns", "rank_words"]


@dataclass(frozen=True)
class Occurrence:
    piece: int  # index into TokenStreams.piece_ids
    word: int
    stream: int
    notes: np.ndarray  # note indices into the piece's Notes, in onset order
    start: float  # beats: onset of the first note
    end: float  # beats: latest note end
    pitch_lo: int
    pitch_hi: int


@dataclass(frozen=True)
class Pattern:
    """A word and its occurrences as note sets (indices into each piece's Notes)."""

    word: int
    bits_saved: float
    occurrences: tuple[tuple[int, np.ndarray], ...]  # (piece, note indices)


def find_occurrences(d: Dictionary, streams: TokenStreams, pieces: list[Notes]) -> list[Occurrence]:
    """Occurrences of multi-token words in the best segmentation of every stream."""
    lattice = build_lattice(streams.tokens, d.words, d.n_literals)
    path, _ = viterbi(lattice, d.logp)
    spellings: dict[int, list[tuple[int, int]]] = {}
    out: list[Occurrence] = []

    def emit(w: int, s: int) -> None:
        e = s + len(d.words[w])
        p = int(streams.piece[s])
        idx = np.concatenate([[streams.prev_note[s]], streams.note[s:e]]).astype(np.int64)
        notes = pieces[p]
        out.append(Occurrence(
            piece=p, word=w, stream=int(streams.stream[s]), notes=idx,
            start=float(notes.onset[idx].min()), end=float((notes.onset[idx] + notes.duration[idx]).max()),
            pitch_lo=int(notes.pitch[idx].min()), pitch_hi=int(notes.pitch[idx].max()),
        ))
        # a word made of words: its parts occur here too
        if w not in spellings:
            spellings[w] = d.spelling(w)
        for offset, part in spellings[w]:
            if part >= d.n_literals:
                emit(part, s + offset)

    for k in path.tolist():
        w = int(lattice.word[k])
        if w >= d.n_literals:
            emit(w, int(lattice.start[k]))
    return out


def rank_words(d: Dictionary, occurrences: list[Occurrence]) -> list[tuple[int, float, int]]:
    """``(word, bits_saved, count)`` for every used word, most saving first."""
    counts: dict[int, int] = {}
    for occ in occurrences:
        counts[occ.word] = counts.get(occ.word, 0) + 1
    ranked = []
    costs = d.word_costs()
    for w, c in counts.items():
        base = float(d.base_bits[list(d.words[w])].sum())
        saved = c * (base + d.logp[w] / np.log(2.0)) - costs[w]
        ranked.append((w, float(saved), c))
    ranked.sort(key=lambda r: (-r[1], r[0]))
    return ranked


def patterns(
    d: Dictionary,
    occurrences: list[Occurrence],
    pieces: list[Notes],
    *,
    top: int | None = None,
    min_notes: int = 4,
    extend: str = "repeating",
    min_share: float = 0.5,
    max_overlap: float = 0.8,
    coverage: float = 1.0,
) -> list[Pattern]:
    """The top words as patterns (see the module docstring), most saving first.

    Parameters
    ----------
    top : int, optional
        At most this many patterns; all by default.
    min_notes : int
        Shortest word (notes) reported: shorter ones are cells rather than patterns.
    extend : {"repeating", "none"}
        Whether occurrences take the recurring notes of other streams (see above).
    min_share : float
        For ``"repeating"``: share of the other occurrences a note must recur in.
    max_overlap : float
        A pattern whose notes lie, to this share or more, inside the notes of one pattern that
        saves more bits is a repetition of part of it and is left out.
    coverage : float
        Report the most saving patterns until they account for this share of the bits saved
        by all of them (1.0: every pattern that saves bits).
    """
    if extend not in ("repeating", "none"):
        raise ValueError(f"extend must be 'repeating' or 'none', got {extend!r}")
    by_word: dict[int, list[Occurrence]] = {}
    for occ in occurrences:
        by_word.setdefault(occ.word, []).append(occ)
    out = []
    kept_notes: list[set[tuple[int, int]]] = []
    ranked = [r for r in rank_words(d, occurrences) if len(d.words[r[0]]) + 1 >= min_notes and r[2] >= 2 and r[1] > 0]
    total = sum(r[1] for r in ranked)
    reported = 0.0
    for w, saved, _count in ranked:
        if reported >= coverage * total - 1e-9:
            break
        reported += saved
        occs = sorted(by_word[w], key=lambda o: (o.piece, o.start))
        sets = [(o.piece, o.notes) for o in occs]
        if extend == "repeating":
            sets = _extend(occs, pieces, min_share)
        covered = {(pc, int(i)) for pc, idx in sets for i in idx}
        if any(len(covered & seen) >= max_overlap * len(covered) for seen in kept_notes):
            continue  # (nearly) all of it is inside a pattern that saves more: its bits count as reported
        kept_notes.append(covered)
        out.append(Pattern(word=w, bits_saved=saved, occurrences=tuple(sets)))
        if top is not None and len(out) >= top:
            break
    return out


def _extend(occs: list[Occurrence], pieces: list[Notes], min_share: float) -> list[tuple[int, np.ndarray]]:
    """Add to each occurrence the co-sounding notes that recur under the same translation."""
    anchors = [(pieces[o.piece].onset[o.notes[0]], int(pieces[o.piece].pitch[o.notes[0]])) for o in occs]
    lookups = []
    for o in occs:
        n = pieces[o.piece]
        lookups.append({(round(float(t), 3), int(p)): i for i, (t, p) in enumerate(zip(n.onset, n.pitch, strict=True))})
    out = []
    for i, o in enumerate(occs):
        n = pieces[o.piece]
        span = np.flatnonzero((n.onset >= n.onset[o.notes].min()) & (n.onset <= n.onset[o.notes].max()))
        extra = np.setdiff1d(span, o.notes)
        keep = []
        others = [j for j in range(len(occs)) if j != i]
        for note in extra.tolist():
            dt = float(n.onset[note]) - anchors[i][0]
            dp = int(n.pitch[note]) - anchors[i][1]
            hits = sum(
                (round(anchors[j][0] + dt, 3), anchors[j][1] + dp) in lookups[j] for j in others
            )
            if others and hits >= min_share * len(others):
                keep.append(note)
        out.append((o.piece, np.sort(np.concatenate([o.notes, np.array(keep, dtype=np.int64)]))))
    return out
