"""The segmentation lattice: which words match where, forward-backward and Viterbi over it.

Positions ``0..T`` sit between the ``T`` entries of a concatenated token array (see
:class:`~musicwords.tokens.TokenStreams`). An *edge* ``(s, e, w)`` says that word ``w`` spells
tokens ``s..e-1``. Every token is also a one-token word (a *literal*), so every stream has at
least one segmentation. Separator entries are crossed by a free edge, so one pass handles all
streams and the total log-probability is the sum over streams.

Word matching uses a 64-bit polynomial hash of token windows (one vectorised pass per word
length); two different token strings share a hash with probability ~2^-64 per comparison.
The loops are compiled with numba.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from musicwords.tokens import SEPARATOR

__all__ = ["Lattice", "build_lattice", "forward_backward", "viterbi", "window_hashes", "word_hash"]

_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (golden ratio)


def _values(tokens: np.ndarray) -> np.ndarray:
    """Hash alphabet: separator → 1, token id k → k + 2 (0 never occurs)."""
    return np.where(tokens == SEPARATOR, 1, tokens + 2).astype(np.uint64)


@numba.njit(cache=True)
def _prefix_hash(values: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    h = np.zeros(len(values) + 1, dtype=np.uint64)
    for i in range(len(values)):
        h[i + 1] = h[i] * _BASE + values[i]
    return h


@functools.lru_cache(maxsize=1 << 18)
def word_hash(word: tuple[int, ...]) -> int:
    """Hash of one word's token string (the same as :func:`window_hashes` of its window)."""
    h = np.uint64(0)
    with np.errstate(over="ignore"):
        for t in word:
            h = h * _BASE + np.uint64(t + 2)
    return int(h)


def window_hashes(prefix: np.ndarray, length: int) -> np.ndarray:
    """Hashes of all windows of ``length`` tokens: entry ``a`` = window ``a..a+length-1``."""
    with np.errstate(over="ignore"):
        power = np.uint64(1)
        for _ in range(length):
            power = power * _BASE
        return prefix[length:] - prefix[:-length] * power


@dataclass(frozen=True)
class Lattice:
    """Edges of all word matches, sorted by end position, plus the index by start."""

    n_positions: int  # T + 1
    start: np.ndarray  # (E,) int64
    end: np.ndarray  # (E,) int64
    word: np.ndarray  # (E,) int64
    end_ptr: np.ndarray  # (T + 2,) edges ending at p: end_ptr[p]..end_ptr[p+1]
    by_start: np.ndarray  # (E,) edge indices sorted by start
    start_ptr: np.ndarray  # (T + 2,)
    is_sep: np.ndarray  # (T,) bool

    def restricted(self, new_id: np.ndarray) -> Lattice:
        """The lattice of a smaller dictionary: edges of words with ``new_id[w] < 0`` dropped,
        the others renumbered (cheaper than matching again after pruning)."""
        keep = new_id[self.word] >= 0
        start, end, word = self.start[keep], self.end[keep], new_id[self.word[keep]]
        n = self.n_positions
        end_ptr = np.searchsorted(end, np.arange(n + 1)).astype(np.int64)
        by_start = np.argsort(start, kind="stable").astype(np.int64)
        start_ptr = np.searchsorted(start[by_start], np.arange(n + 1)).astype(np.int64)
        return Lattice(n, start, end, word, end_ptr, by_start, start_ptr, self.is_sep)


class WordIndex:
    """Words grouped by length as sorted hash arrays, for vectorised matching."""

    def __init__(self, words: Sequence[tuple[int, ...]]) -> None:
        by_len: dict[int, list[tuple[int, int]]] = {}
        for w, word in enumerate(words):
            if len(word) >= 2:
                by_len.setdefault(len(word), []).append((word_hash(word), w))
        self.tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for length, pairs in by_len.items():
            pairs.sort()
            hashes = np.array([h for h, _ in pairs], dtype=np.uint64)
            ids = np.array([w for _, w in pairs], dtype=np.int64)
            self.tables[length] = (hashes, ids)


def build_lattice(tokens: np.ndarray, words: Sequence[tuple[int, ...]], n_literals: int) -> Lattice:
    """All matches of ``words`` (ids ``0..n_literals-1`` are the literals) in ``tokens``."""
    T = len(tokens)
    is_sep = tokens == SEPARATOR
    sep_prefix = np.concatenate([[0], np.cumsum(is_sep)])
    prefix = _prefix_hash(_values(tokens))
    starts = [np.flatnonzero(~is_sep)]
    ends = [starts[0] + 1]
    ids = [tokens[starts[0]]]
    index = WordIndex(words)
    for length, (hashes, word_ids) in index.tables.items():
        if length > T:
            continue
        windows = window_hashes(prefix, length)
        valid = (sep_prefix[length:] - sep_prefix[:-length]) == 0
        pos = np.searchsorted(hashes, windows)
        pos_clipped = np.minimum(pos, len(hashes) - 1)
        hit = valid & (hashes[pos_clipped] == windows)
        a = np.flatnonzero(hit)
        starts.append(a)
        ends.append(a + length)
        ids.append(word_ids[pos_clipped[a]])
    start = np.concatenate(starts).astype(np.int64)
    end = np.concatenate(ends).astype(np.int64)
    word = np.concatenate(ids).astype(np.int64)
    order = np.lexsort((start, end))
    start, end, word = start[order], end[order], word[order]
    end_ptr = np.searchsorted(end, np.arange(T + 2)).astype(np.int64)
    by_start = np.argsort(start, kind="stable").astype(np.int64)
    start_ptr = np.searchsorted(start[by_start], np.arange(T + 2)).astype(np.int64)
    return Lattice(T + 1, start, end, word, end_ptr, by_start, start_ptr, is_sep)


@numba.njit(cache=True)
def _forward(n, start, word, end_ptr, is_sep, logp):  # pragma: no cover - compiled
    alpha = np.full(n, -np.inf)
    alpha[0] = 0.0
    for p in range(1, n):
        if is_sep[p - 1]:
            alpha[p] = alpha[p - 1]
            continue
        m = -np.inf
        for k in range(end_ptr[p], end_ptr[p + 1]):
            v = alpha[start[k]] + logp[word[k]]
            if v > m:
                m = v
        if m == -np.inf:
            continue
        acc = 0.0
        for k in range(end_ptr[p], end_ptr[p + 1]):
            acc += np.exp(alpha[start[k]] + logp[word[k]] - m)
        alpha[p] = m + np.log(acc)
    return alpha


@numba.njit(cache=True)
def _backward(n, end, word, by_start, start_ptr, is_sep, logp):  # pragma: no cover - compiled
    beta = np.full(n, -np.inf)
    beta[n - 1] = 0.0
    for p in range(n - 2, -1, -1):
        if is_sep[p]:
            beta[p] = beta[p + 1]
            continue
        m = -np.inf
        for k in range(start_ptr[p], start_ptr[p + 1]):
            e = by_start[k]
            v = beta[end[e]] + logp[word[e]]
            if v > m:
                m = v
        if m == -np.inf:
            continue
        acc = 0.0
        for k in range(start_ptr[p], start_ptr[p + 1]):
            e = by_start[k]
            acc += np.exp(beta[end[e]] + logp[word[e]] - m)
        beta[p] = m + np.log(acc)
    return beta


@numba.njit(cache=True)
def _expected_counts(start, end, word, alpha, beta, logp, log_z, n_words):  # pragma: no cover - compiled
    counts = np.zeros(n_words)
    for k in range(len(start)):
        counts[word[k]] += np.exp(alpha[start[k]] + logp[word[k]] + beta[end[k]] - log_z)
    return counts


def forward_backward(lattice: Lattice, logp: np.ndarray) -> tuple[np.ndarray, float]:
    """Expected word counts over all segmentations, and the log-probability (nats) of all streams.

    Parameters
    ----------
    lattice : Lattice
    logp : np.ndarray
        (n_words,) natural-log word probabilities.
    """
    lat = lattice
    alpha = _forward(lat.n_positions, lat.start, lat.word, lat.end_ptr, lat.is_sep, logp)
    beta = _backward(lat.n_positions, lat.end, lat.word, lat.by_start, lat.start_ptr, lat.is_sep, logp)
    log_z = float(alpha[-1])
    counts = _expected_counts(lat.start, lat.end, lat.word, alpha, beta, logp, log_z, len(logp))
    return counts, log_z


@numba.njit(cache=True)
def _viterbi(n, start, word, end_ptr, is_sep, logp):  # pragma: no cover - compiled
    best = np.full(n, -np.inf)
    back = np.full(n, -1, dtype=np.int64)
    best[0] = 0.0
    for p in range(1, n):
        if is_sep[p - 1]:
            best[p] = best[p - 1]
            continue
        for k in range(end_ptr[p], end_ptr[p + 1]):
            v = best[start[k]] + logp[word[k]]
            if v > best[p]:
                best[p] = v
                back[p] = k
    return best, back


def viterbi(lattice: Lattice, logp: np.ndarray) -> tuple[np.ndarray, float]:
    """Edge indices of the most probable segmentation (in position order) and its log-probability."""
    lat = lattice
    best, back = _viterbi(lat.n_positions, lat.start, lat.word, lat.end_ptr, lat.is_sep, logp)
    path = []
    p = lat.n_positions - 1
    while p > 0:
        if lat.is_sep[p - 1]:
            p -= 1
            continue
        k = int(back[p])
        path.append(k)
        p = int(lat.start[k])
    return np.array(path[::-1], dtype=np.int64), float(best[-1])
