"""The null model of idiom: an order-k Markov (n-gram) model of the rest of the same music.

Whether a word is a pattern or idiom is judged against this model (see
:func:`musicwords.reconstruct.patterns`): a scale run, a repeated note or an Alberti figure is
predictable from the few tokens before it *anywhere else* in the music, so recurring does not
make it a pattern; a motif is a recurring passage that the rest of the music does not predict.

The model is interpolated Witten-Bell smoothing (Witten and Bell 1991; SRILM's
``-wbdiscount -interpolate``) over orders 0..k:

    q_0(t) = (c(t) + 1) / (N + V)
    q_n(t | h) = (c(h t) + T(h) q_{n-1}(t | h')) / (c(h) + T(h))

where ``h`` is the ``n`` tokens before ``t`` in its stream, ``h'`` the last ``n - 1`` of them,
``T(h)`` the number of distinct tokens seen after ``h``, ``N`` the number of tokens and ``V`` the
alphabet's size. The first tokens of a stream use the longest history they have.

*Leave the word out.* A model fitted to all the music has seen the repeats under test: a motif
stated 40 times makes its own steps the commonest transitions, and the more a motif recurs the
better such a model predicts it. So :meth:`IdiomModel.word_bits` scores a word's occurrences
under the counts of the music *without those occurrences*: what the rest of the music does.

Order: :data:`ORDER` = 1 by default (a step given the step before it: three notes). Scale runs,
repeated notes, trills and broken-chord figures are predictable at that order. With the word's
own occurrences left out, what remains to learn from is the rest of one movement: a few
thousand tokens over an alphabet of a few hundred, where a one-token context recurs hundreds of
times and a two-token context a handful.

Status: an option (``DiscoverConfig(null="markov")``, ``evaluate --null markov``), not the
default. It was a little ahead of the unigram null on the tuning halves of both development sets
and behind it on both test halves (README, results), and on melodies drawn from a Markov chain of
Bach chorales neither null reports a pattern (``tests/test_motifs.py``).

Examples
--------
>>> import numpy as np
>>> model = IdiomModel(np.array([0, 0, 0, 0, 0, 0, 0, 0, -1, 1, 2, 3, -1]), 4)
>>> idiom = model.word_bits([2, 4], 2)  # two runs of the repeated step
>>> motif = model.word_bits([9], 2)  # a passage the rest of the music never plays
>>> bool(idiom < motif)
True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from musicwords.tokens import SEPARATOR

__all__ = ["ORDER", "IdiomModel"]

ORDER = 1


class IdiomModel:
    """Counts of every n-gram (n = 1 .. order + 1) of the streams, to score passages with them left out."""

    def __init__(self, tokens: np.ndarray, alphabet_size: int, order: int = ORDER) -> None:
        if order < 0:
            raise ValueError(f"order must be >= 0, got {order}")
        self.tokens = np.asarray(tokens, dtype=np.int64).tolist()
        self.order = order
        self.V = alphabet_size
        real = [t for t in self.tokens if t != SEPARATOR]
        if real and max(real) >= alphabet_size:
            raise ValueError(f"token id {max(real)} is outside an alphabet of {alphabet_size}")
        self.N = len(real)
        # history length of every position in its stream
        self.history = []
        h = 0
        for t in self.tokens:
            self.history.append(h if t != SEPARATOR else -1)
            h = 0 if t == SEPARATOR else h + 1
        self.joint: Counter[tuple[int, ...]] = Counter()  # (h..., t) for every order, h of length 0..order
        self.context: Counter[tuple[int, ...]] = Counter()  # h (length >= 1)
        self.types: Counter[tuple[int, ...]] = Counter()  # T(h)
        for j in range(len(self.tokens)):
            for gram, context in self._grams(j):
                self.joint[gram] += 1
                if context:
                    self.context[context] += 1
                    if self.joint[gram] == 1:
                        self.types[context] += 1

    def _grams(self, j: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """``(h + (t,), h)`` of position ``j`` for every history length it has (0 .. order)."""
        if self.history[j] < 0:
            return []
        top = min(self.order, self.history[j])
        return [(tuple(self.tokens[j - n : j + 1]), tuple(self.tokens[j - n : j])) for n in range(top + 1)]

    def _bits(self, j: int) -> float:
        grams = self._grams(j)
        t = self.tokens[j]
        q = (self.joint[(t,)] + 1.0) / (self.N + self.V)
        for g, h in grams[1:]:
            c_h, t_h = self.context[h], self.types[h]
            if c_h + t_h > 0:
                q = (self.joint[g] + t_h * q) / (c_h + t_h)
        return -math.log2(q)

    def word_bits(self, starts: Sequence[int], length: int) -> float:
        """Bits of the passages of ``length`` tokens at ``starts`` (token indices) under the model of
        the music without them (each passage's tokens in their own context)."""
        positions = sorted({s + i for s in starts for i in range(length)})
        removed = [(g, h) for j in positions for g, h in self._grams(j)]
        self._add(removed, -1)
        self.N -= len(positions)
        try:
            return float(sum(self._bits(j) for j in positions))
        finally:
            self._add(removed, +1)
            self.N += len(positions)

    def _add(self, grams: list[tuple[tuple[int, ...], tuple[int, ...]]], sign: int) -> None:
        for g, h in grams:
            before = self.joint[g]
            self.joint[g] = before + sign
            if h:
                self.context[h] += sign
                if (before == 0) != (before + sign == 0):
                    self.types[h] += sign
