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

from musicwords.tokens import SEPARATOR, Alphabet, TokenStreams

__all__ = ["KINDS", "VariantFinder", "find_variants"]

KINDS = ("rhythm", "pitch", "insertion", "deletion")


def find_variants(word: tuple[int, ...], tokens: np.ndarray, alphabet: Alphabet, *,
                  min_tokens: int = 4) -> list[tuple[int, int, str]]:
    """``(first token, n tokens, kind)`` of every variant statement of ``word`` in ``tokens``.

    ``tokens`` is a token array with streams separated by ``SEPARATOR`` (a
    :class:`~musicwords.tokens.TokenStreams`' ``tokens``); exact statements of the word are not
    returned, and statements may overlap each other (the caller keeps the ones it wants). For
    many words over the same tokens, build one :class:`VariantFinder` and call it per word.
    """
    return VariantFinder(tokens, alphabet).find(word, min_tokens=min_tokens)


class VariantFinder:
    """The variant statements of any word in one token array (see the module docstring).

    Built once per token array (a few arrays of its length); each :meth:`find` then costs a
    few passes over the array, the exact checks running only at the positions that pass a
    necessary condition: a same-length variant keeps one dimension exactly (a rolling hash of
    the window's intervals, or of its inter-onset intervals, equals the word's), and a statement
    with a note more or fewer spans the same interval and the same time as the word.
    """

    _BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible modulo 2**64

    @classmethod
    def of(cls, streams: TokenStreams, alphabet: Alphabet) -> VariantFinder:
        """A finder over a corpus's token streams that also says which notes a statement is (:meth:`statements`)."""
        finder = cls(streams.tokens, alphabet)
        finder.streams = streams
        return finder

    def __init__(self, tokens: np.ndarray, alphabet: Alphabet) -> None:
        self.streams: TokenStreams | None = None
        sym = np.array(alphabet.symbols, dtype=np.int64).reshape(-1, 2)
        real = tokens != SEPARATOR
        safe = np.where(real, tokens, 0)
        self.iv = np.where(real, sym[safe, 0], 0)
        self.io = np.where(real, sym[safe, 1], 0)
        self.sym = sym
        self._cache: dict[int, tuple[np.ndarray, ...]] = {}
        self.gaps = np.concatenate([[0], np.cumsum(~real)])  # separators before each position
        self.sum_iv = np.concatenate([[0], np.cumsum(self.iv)])
        self.sum_io = np.concatenate([[0], np.cumsum(self.io)])
        with np.errstate(over="ignore"):
            powers = np.full(len(tokens) + 1, self._BASE, dtype=np.uint64)
            powers[0] = 1
            powers = np.cumprod(powers, dtype=np.uint64)  # B**k
            self.unpow = np.full(len(tokens) + 1, pow(int(self._BASE), -1, 1 << 64), dtype=np.uint64)
            self.unpow[0] = 1
            self.unpow = np.cumprod(self.unpow, dtype=np.uint64)  # B**-k
            self.hash_iv = np.zeros(len(tokens) + 1, dtype=np.uint64)
            self.hash_io = np.zeros(len(tokens) + 1, dtype=np.uint64)
            np.cumsum(self.iv.astype(np.uint64) * powers[:-1], dtype=np.uint64, out=self.hash_iv[1:])
            np.cumsum(self.io.astype(np.uint64) * powers[:-1], dtype=np.uint64, out=self.hash_io[1:])

    def _windows(self, m: int) -> tuple[np.ndarray, ...]:
        """Per window of ``m`` tokens: no separator inside; the hashes ``sum x[s + k] * B**k``
        (modulo 2**64) of its intervals and of its inter-onset intervals; its span in pitch and in
        time. The last three lengths asked for are kept (a word of n tokens asks for n - 1, n and
        n + 1), at 40 bytes a token each."""
        if m not in self._cache:
            if len(self._cache) >= 3:
                self._cache.pop(next(iter(self._cache)))
            with np.errstate(over="ignore"):
                self._cache[m] = (
                    self.gaps[m:] == self.gaps[:-m],
                    (self.hash_iv[m:] - self.hash_iv[:-m]) * self.unpow[: len(self.unpow) - m],
                    (self.hash_io[m:] - self.hash_io[:-m]) * self.unpow[: len(self.unpow) - m],
                    self.sum_iv[m:] - self.sum_iv[:-m],
                    self.sum_io[m:] - self.sum_io[:-m],
                )
        return self._cache[m]

    @staticmethod
    def _word_hash(values: np.ndarray) -> np.uint64:
        with np.errstate(over="ignore"):
            h = np.uint64(0)
            for v in values[::-1]:
                h = h * VariantFinder._BASE + np.uint64(int(v) % (1 << 64))
        return h

    def _rows(self, starts: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        at = starts[:, None] + np.arange(m)
        return self.iv[at], self.io[at]

    def statements(self, word: tuple[int, ...]) -> list[tuple[int, np.ndarray, str]]:
        """``(piece, note indices, kind)`` of every variant statement of ``word`` (a finder built by :meth:`of`)."""
        ts = self._token_streams()
        return [(*_notes(ts, s, m), kind) for s, m, kind in self.find(word)]

    def exact(self, word: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
        """``(piece, note indices)`` of every exact statement of ``word`` (a finder built by :meth:`of`)."""
        ts = self._token_streams()
        return [_notes(ts, s, len(word)) for s in self.find_exact(word).tolist()]

    def _token_streams(self) -> TokenStreams:
        if self.streams is None:
            raise ValueError("statements need the token streams: build the finder with VariantFinder.of")
        return self.streams

    def find_exact(self, word: tuple[int, ...]) -> np.ndarray:
        """First tokens of every exact statement of ``word``, overlapping ones included, in order."""
        if len(word) < 1 or len(self.iv) < len(word):
            return np.zeros(0, dtype=np.int64)
        starts, _, _, exact_iv, exact_io = self._same_length(word)
        return starts[exact_iv & exact_io]

    def _same_length(self, word: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """The windows of ``word``'s length that keep its intervals or its inter-onset intervals
        (by hash): their first tokens, their intervals and inter-onset intervals, and whether each
        dimension equals the word's exactly (the hashes' collisions out)."""
        n = len(word)
        w_iv, w_io = self.sym[list(word), 0], self.sym[list(word), 1]
        inside, hash_iv, hash_io, _, _ = self._windows(n)
        starts = np.flatnonzero(inside & ((hash_iv == self._word_hash(w_iv)) | (hash_io == self._word_hash(w_io))))
        win_iv, win_io = self._rows(starts, n)
        return starts, win_iv, win_io, (win_iv == w_iv).all(axis=1), (win_io == w_io).all(axis=1)

    def find(self, word: tuple[int, ...], *, min_tokens: int = 4) -> list[tuple[int, int, str]]:
        """``(first token, n tokens, kind)`` of every variant statement of ``word``."""
        n = len(word)
        if n < min_tokens or len(self.iv) < n + 1:
            return []
        w_iv, w_io = self.sym[list(word), 0], self.sym[list(word), 1]
        allowed = max(1, (n + 1) // 4)
        out: list[tuple[int, int, str]] = []

        def lead(eq: np.ndarray) -> np.ndarray:  # leading run of True per row
            return np.argmin(np.pad(eq, ((0, 0), (0, 1))), axis=1)

        # same length: one dimension equal, the other's profile from the first note changed at a few notes
        starts, win_iv, win_io, exact_iv, exact_io = self._same_length(word)
        rows = np.flatnonzero(exact_iv & ~exact_io)
        moved = (np.cumsum(win_io[rows], axis=1) != np.cumsum(w_io)).sum(axis=1)  # onsets after the first
        out += [(int(s), n, "rhythm") for s in starts[rows[moved <= allowed]]]
        rows = np.flatnonzero(exact_io & ~exact_iv)
        diff = np.cumsum(np.pad(win_iv[rows], ((0, 0), (1, 0))), axis=1) - np.cumsum(np.concatenate([[0], w_iv]))
        kept = (diff[:, :, None] == diff[:, None, :]).sum(axis=1).max(axis=1)  # notes at the commonest transposition
        out += [(int(s), n, "pitch") for s in starts[rows[n + 1 - kept <= allowed]]]
        # a note more or fewer: the same span in pitch and time as the word
        for m, kind in ((n + 1, "insertion"), (n - 1, "deletion")):
            inside, _, _, span_iv, span_io = self._windows(m)
            starts = np.flatnonzero(inside & (span_iv == w_iv.sum()) & (span_io == w_io.sum()))
            win_iv, win_io = self._rows(starts, m)
            if kind == "insertion":  # tokens j and j + 1 of the statement, merged, are the word's token j
                head = lead((win_iv[:, :n] == w_iv) & (win_io[:, :n] == w_io))
                tail = lead(((win_iv[:, 1:] == w_iv) & (win_io[:, 1:] == w_io))[:, ::-1])
                for r in np.flatnonzero(head + tail >= n - 1):
                    for j in range(max(0, n - 1 - int(tail[r])), min(int(head[r]), n - 1) + 1):
                        if win_iv[r, j] + win_iv[r, j + 1] == w_iv[j] and win_io[r, j] + win_io[r, j + 1] == w_io[j]:
                            out.append((int(starts[r]), m, kind))
            else:  # the word's tokens j and j + 1, merged, are the statement's token j
                head = lead((win_iv == w_iv[: n - 1]) & (win_io == w_io[: n - 1]))
                tail = lead(((win_iv[:, 1:] == w_iv[2:]) & (win_io[:, 1:] == w_io[2:]))[:, ::-1])
                for r in np.flatnonzero(head + tail >= n - 2):
                    for j in range(max(0, n - 2 - int(tail[r])), min(int(head[r]), n - 2) + 1):
                        if win_iv[r, j] == w_iv[j] + w_iv[j + 1] and win_io[r, j] == w_io[j] + w_io[j + 1]:
                            out.append((int(starts[r]), m, kind))
        return sorted(set(out))


def _notes(ts: TokenStreams, start: int, m: int) -> tuple[int, np.ndarray]:
    """``(piece, note indices)`` of the ``m`` tokens from ``start``: the note the first leaves, then each one's."""
    return int(ts.piece[start]), np.concatenate([[ts.prev_note[start]], ts.note[start : start + m]]).astype(np.int64)
