"""Variant statements of a word: the same motif with another rhythm, other notes, or a note more or less.

A word of the dictionary is an exact token string: every one of its occurrences has the same
intervals (semitones, or scale steps with diatonic tokens) and the same inter-onset intervals.
A composer restates a motif with changes, and a listener still hears the motif. This module
finds, in the token streams, the statements of a word that differ from it in one of these ways
(the notes of a statement are a run of consecutive notes of one stream):

- ``"rhythm"``: the same notes (every interval equal), with at most a quarter of the onsets
  moved (onsets measured from the statement's first note): a dotted figure evened out, a
  syncopation, a note held longer.
- ``"pitch"``: the same rhythm (every inter-onset interval equal), with at most a quarter of
  the notes at another pitch (pitches measured from the statement's first note, after the
  transposition that matches the most notes): an altered note, a changed leap, a tonal answer
  in semitones. The contour may change with the notes.
- ``"insertion"``: one note more inside the statement (an ornament, a passing note): taking
  it out leaves the word's intervals and inter-onset intervals exactly.
- ``"deletion"``: one inner note fewer: the word with one inner note taken out.

"At most a quarter" is ``max(1, notes // 4)`` notes, so a five-note word allows one changed
note or onset; statements that change both rhythm and notes are not variants (they would make
any two runs of the same length a family). Words shorter than ``min_tokens`` tokens get no
variants: in a three-note word one changed note is a third of it.

Examples
--------
>>> import numpy as np
>>> from musicwords.tokens import Alphabet
>>> a = Alphabet(symbols=[(2, 12), (2, 6), (-1, 12), (1, 6), (2, 18)])
>>> word = (0, 0, 2, 0)  # +2 +2 -1 +2, every onset one beat apart
>>> stream = np.array([0, 0, 2, 0, -1, 1, 4, 2, 0, -1, 3, 3, 0, 2, 0])  # the word; its second note early; a note more
>>> [(int(s), n, k) for s, n, k in find_variants(word, stream, a)]
[(5, 4, 'rhythm'), (10, 5, 'insertion')]
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from musicwords.tokens import SEPARATOR, Alphabet

__all__ = ["KINDS", "find_variants"]

KINDS = ("rhythm", "pitch", "insertion", "deletion")


def find_variants(word: tuple[int, ...], tokens: np.ndarray, alphabet: Alphabet, *,
                  min_tokens: int = 4) -> list[tuple[int, int, str]]:
    """``(first token, n tokens, kind)`` of every variant statement of ``word`` in ``tokens``.

    ``tokens`` is a token array with streams separated by ``SEPARATOR`` (a
    :class:`~musicwords.tokens.TokenStreams`' ``tokens``); exact statements of the word are not
    returned, and statements may overlap each other (the caller keeps the ones it wants).
    Time and memory are linear in ``len(tokens) * len(word)`` (the array is read in blocks).
    """
    n = len(word)
    if n < min_tokens or len(tokens) < n - 1:
        return []
    sym = np.array(alphabet.symbols, dtype=np.int64).reshape(-1, 2)
    w_iv, w_io = sym[list(word), 0], sym[list(word), 1]
    block = max(1, (1 << 22) // (n + 1))
    out: list[tuple[int, int, str]] = []
    for lo in range(0, len(tokens), block):
        part = tokens[lo : lo + block + n]
        out += [(lo + s, m, kind) for s, m, kind in _variants_in(part, sym, w_iv, w_io) if s < block]
    return sorted(set(out))


def _variants_in(tokens: np.ndarray, sym: np.ndarray, w_iv: np.ndarray, w_io: np.ndarray) -> list[tuple[int, int, str]]:
    n = len(w_iv)
    real = tokens != SEPARATOR
    safe = np.where(real, tokens, 0)
    iv, io = np.where(real, sym[safe, 0], 0), np.where(real, sym[safe, 1], 0)
    gaps = np.concatenate([[0], np.cumsum(~real)])  # separators before each position
    allowed = max(1, (n + 1) // 4)
    out: list[tuple[int, int, str]] = []

    def windows(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(tokens) < m:
            return np.zeros(0, dtype=bool), np.zeros((0, m), dtype=np.int64), np.zeros((0, m), dtype=np.int64)
        starts = np.arange(len(tokens) - m + 1)
        return gaps[starts + m] == gaps[starts], sliding_window_view(iv, m), sliding_window_view(io, m)

    def lead(eq: np.ndarray) -> np.ndarray:  # leading run of True per row
        return np.argmin(np.pad(eq, ((0, 0), (0, 1))), axis=1)

    # same length: one dimension equal, the other's profile from the first note changed at a few notes
    inside, win_iv, win_io = windows(n)
    same_iv, same_io = (win_iv == w_iv).all(axis=1), (win_io == w_io).all(axis=1)
    rows = np.flatnonzero(inside & same_iv & ~same_io)
    moved = (np.cumsum(win_io[rows], axis=1) != np.cumsum(w_io)).sum(axis=1)  # onsets after the first
    out += [(int(s), n, "rhythm") for s in rows[moved <= allowed]]
    rows = np.flatnonzero(inside & same_io & ~same_iv)
    diff = np.cumsum(np.pad(win_iv[rows], ((0, 0), (1, 0))), axis=1) - np.cumsum(np.concatenate([[0], w_iv]))
    kept = (diff[:, :, None] == diff[:, None, :]).sum(axis=1).max(axis=1)  # notes at the commonest transposition
    out += [(int(s), n, "pitch") for s in rows[n + 1 - kept <= allowed]]
    # one inner note more: tokens j and j + 1 of the statement, merged, are the word's token j
    inside, win_iv, win_io = windows(n + 1)
    head = lead((win_iv[:, :n] == w_iv) & (win_io[:, :n] == w_io))
    tail = lead(((win_iv[:, 1:] == w_iv) & (win_io[:, 1:] == w_io))[:, ::-1])
    for s in np.flatnonzero(inside & (head + tail >= n - 1)):
        for j in range(max(0, n - 1 - int(tail[s])), min(int(head[s]), n - 1) + 1):
            if win_iv[s, j] + win_iv[s, j + 1] == w_iv[j] and win_io[s, j] + win_io[s, j + 1] == w_io[j]:
                out.append((int(s), n + 1, "insertion"))
    # one inner note fewer: the word's tokens j and j + 1, merged, are the statement's token j
    inside, win_iv, win_io = windows(n - 1)
    head = lead((win_iv == w_iv[: n - 1]) & (win_io == w_io[: n - 1]))
    tail = lead(((win_iv[:, 1:] == w_iv[2:]) & (win_io[:, 1:] == w_io[2:]))[:, ::-1])
    for s in np.flatnonzero(inside & (head + tail >= n - 3)):
        for j in range(max(0, n - 2 - int(tail[s])), min(int(head[s]), n - 2) + 1):
            if win_iv[s, j] == w_iv[j] + w_iv[j + 1] and win_io[s, j] == w_io[j] + w_io[j + 1]:
                out.append((int(s), n - 1, "deletion"))
    return out
