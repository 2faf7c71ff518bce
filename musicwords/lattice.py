"""The segmentation lattice: which words match where, forward-backward and Viterbi over it.

Positions ``0..T`` sit between the ``T`` entries of a concatenated token array (see
:class:`~musicwords.tokens.TokenStreams`). An *edge* ``(s, e, w)`` says that word ``w`` spells
tokens ``s..e-1``. Every token is also a one-token word (a *literal*), so every stream has at
least one segmentation. Separator entries are crossed by a free edge, so one pass handles all
streams and the total log-probability is the sum over streams.

Word matching uses a 64-bit polynomial hash of token windows (one vectorised pass per word
length, over the positions that pass a prefix test for long words); two different token strings
share a hash with probability ~2^-64 per comparison.
The loops are compiled with numba.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from musicwords.tokens import SEPARATOR

__all__ = ["Lattice", "WordIndex", "build_lattice", "forward_backward", "viterbi", "window_hashes", "word_hash"]

_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (golden ratio)
_PREFIX_LEVELS = (8, 32, 128)  # prefix tests of build_lattice (tokens)


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
    end_bs: np.ndarray  # (E,) end[by_start]: the backward pass reads edges in start order
    word_bs: np.ndarray  # (E,) word[by_start]

    def restricted(self, new_id: np.ndarray) -> Lattice:
        """The lattice of a smaller dictionary: edges of words with ``new_id[w] < 0`` dropped,
        the others renumbered (cheaper than matching again after pruning)."""
        parts = _restrict(self.start, self.end, self.word, self.by_start, new_id, self.n_positions)
        start, end, word, end_ptr, by_start, start_ptr, end_bs, word_bs = parts
        return Lattice(self.n_positions, start, end, word, end_ptr, by_start, start_ptr, self.is_sep, end_bs, word_bs)


@numba.njit(cache=True)
def _restrict(start, end, word, by_start, new_id, n):  # pragma: no cover - compiled
    """The arrays of :meth:`Lattice.restricted` in one pass each: the kept edges keep their order
    (by end, then start) and, renumbered, their order by start (ties by edge index, as a stable
    argsort of ``start`` would give), so nothing is sorted again."""
    n_edges = len(start)
    renumber = np.full(n_edges, -1, dtype=np.int64)
    m = 0
    for k in range(n_edges):
        if new_id[word[k]] >= 0:
            renumber[k] = m
            m += 1
    s2 = np.empty(m, dtype=np.int64)
    e2 = np.empty(m, dtype=np.int64)
    w2 = np.empty(m, dtype=np.int64)
    end_ptr = np.zeros(n + 1, dtype=np.int64)
    start_ptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(n_edges):
        j = renumber[k]
        if j >= 0:
            s2[j] = start[k]
            e2[j] = end[k]
            w2[j] = new_id[word[k]]
            if end[k] + 1 <= n:
                end_ptr[end[k] + 1] += 1
            if start[k] + 1 <= n:
                start_ptr[start[k] + 1] += 1
    for p in range(n):
        end_ptr[p + 1] += end_ptr[p]
        start_ptr[p + 1] += start_ptr[p]
    bs = np.empty(m, dtype=np.int64)
    end_bs = np.empty(m, dtype=np.int64)
    word_bs = np.empty(m, dtype=np.int64)
    i = 0
    for k in range(n_edges):
        j = renumber[by_start[k]]
        if j >= 0:
            bs[i] = j
            end_bs[i] = e2[j]
            word_bs[i] = w2[j]
            i += 1
    return s2, e2, w2, end_ptr, bs, start_ptr, end_bs, word_bs


class WordIndex:
    """Words grouped by length as sorted hash arrays, for vectorised matching, and the hashes
    of the first ``k`` tokens of the words longer than ``k`` (``heads``, for each ``k`` of
    :data:`_PREFIX_LEVELS`). Build it once and pass it to :func:`build_lattice` for every block."""

    def __init__(self, words: Sequence[tuple[int, ...]]) -> None:
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        flat = np.fromiter(itertools.chain.from_iterable(words), dtype=np.int64, count=int(lengths.sum()))
        levels = np.array(_PREFIX_LEVELS, dtype=np.int64)
        full, heads = _word_hashes(flat, lengths, levels)
        multi = np.flatnonzero(lengths >= 2)
        order = multi[np.lexsort((multi, full[multi], lengths[multi]))]  # by length, hash, id
        bounds = np.flatnonzero(np.diff(lengths[order])) + 1
        self.tables: dict[int, tuple[np.ndarray, np.ndarray]] = {
            int(lengths[g[0]]): (full[g], g.astype(np.int64)) for g in np.split(order, bounds) if len(g)
        }
        self.heads = {int(k): np.unique(heads[i][lengths > k]) for i, k in enumerate(levels.tolist())}


@numba.njit(cache=True)
def _word_hashes(flat, lengths, levels):  # pragma: no cover - compiled
    """Hash of every word (as :func:`word_hash`), and of its first ``levels[i]`` tokens."""
    full = np.zeros(len(lengths), dtype=np.uint64)
    heads = np.zeros((len(levels), len(lengths)), dtype=np.uint64)
    o = 0
    for i in range(len(lengths)):
        h = np.uint64(0)
        for j in range(lengths[i]):
            h = h * _BASE + np.uint64(flat[o + j] + 2)
            for q in range(len(levels)):
                if j + 1 == levels[q]:
                    heads[q, i] = h
        full[i] = h
        o += lengths[i]
    return full, heads


def build_lattice(
    tokens: np.ndarray, words: Sequence[tuple[int, ...]], n_literals: int, index: WordIndex | None = None
) -> Lattice:
    """All matches of ``words`` (ids ``0..n_literals-1`` are the literals) in ``tokens``
    (``index``: the :class:`WordIndex` of ``words``, if already built).

    Words of up to :data:`_PREFIX_LEVELS` ``[0]`` tokens are looked up at every position; a longer
    word can only match where its first ``k`` tokens match the first ``k`` of some word as long,
    so longer words are looked up only at the positions that pass such a prefix test (``k`` = 8,
    32, 128): the same matches, without a pass over the whole corpus per word length.
    """
    T = len(tokens)
    is_sep = tokens == SEPARATOR
    sep_prefix = np.concatenate([[0], np.cumsum(is_sep)])
    prefix = _prefix_hash(_values(tokens))
    lit = np.flatnonzero(~is_sep)
    starts = [lit]
    lengths = [np.ones(len(lit), dtype=np.int64)]
    ids = [tokens[lit]]
    index = index or WordIndex(words)
    by_length = sorted(length for length in index.tables if length <= T)
    positions = np.arange(T, dtype=np.int64)  # where words longer than the current level may start
    level = 0
    for k in (*_PREFIX_LEVELS, None):
        hi = k if k is not None else T
        for length in (x for x in by_length if level < x <= hi):
            hashes, word_ids = index.tables[length]
            a = positions[positions + length <= T]
            a = a[(sep_prefix[a + length] - sep_prefix[a]) == 0]
            windows = _hash_at(prefix, a, length)
            pos = np.minimum(np.searchsorted(hashes, windows), len(hashes) - 1)
            hit = hashes[pos] == windows
            starts.append(a[hit])
            lengths.append(np.full(int(hit.sum()), length, dtype=np.int64))
            ids.append(word_ids[pos[hit]])
        if k is None or not any(x > k for x in by_length):
            break
        # positions whose next k tokens begin some word longer than k
        heads = index.heads[k]
        a = positions[positions + k <= T]
        a = a[(sep_prefix[a + k] - sep_prefix[a]) == 0]
        windows = _hash_at(prefix, a, k)
        pos = np.minimum(np.searchsorted(heads, windows), len(heads) - 1)
        positions = a[heads[pos] == windows]
        level = k
    start = np.concatenate(starts).astype(np.int64)
    length_all = np.concatenate(lengths)
    word = np.concatenate(ids).astype(np.int64)
    end = start + length_all
    # edges by end, then start (= np.lexsort((start, end))), and by start with ties in that
    # order (= a stable argsort of start): counting sorts, both stable
    order = _stable_order(start, T + 1)
    order = order[_stable_order(end[order], T + 1)]
    start, end, word = start[order], end[order], word[order]
    end_ptr = np.searchsorted(end, np.arange(T + 2)).astype(np.int64)
    by_start = _stable_order(start, T + 1)
    start_ptr = np.searchsorted(start[by_start], np.arange(T + 2)).astype(np.int64)
    return Lattice(T + 1, start, end, word, end_ptr, by_start, start_ptr, is_sep, end[by_start], word[by_start])



def _hash_at(prefix: np.ndarray, a: np.ndarray, length: int) -> np.ndarray:
    """Hashes of the windows of ``length`` tokens starting at positions ``a``."""
    with np.errstate(over="ignore"):
        power = np.uint64(1)
        for _ in range(length):
            power = power * _BASE
        return prefix[a + length] - prefix[a] * power


@numba.njit(cache=True)
def _stable_order(keys, n_keys):  # pragma: no cover - compiled
    """The stable argsort of integer ``keys`` in ``0..n_keys-1`` (a counting sort)."""
    count = np.zeros(n_keys + 1, dtype=np.int64)
    for k in keys:
        count[k + 1] += 1
    for i in range(n_keys):
        count[i + 1] += count[i]
    out = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        k = keys[i]
        out[count[k]] = i
        count[k] += 1
    return out


# The forward and backward passes skip two things whose result is known exactly, so the numbers
# are the same as the plain log-sum-exp: a position reached by one edge only (most positions:
# a literal and no word) takes ``m + log(exp(0)) = m``; and the edge that gives the maximum
# ``m`` adds ``exp(0) = 1``.


@numba.njit(cache=True)
def _forward(n, start, word, end_ptr, is_sep, logp):  # pragma: no cover - compiled
    alpha = np.full(n, -np.inf)
    alpha[0] = 0.0
    for p in range(1, n):
        if is_sep[p - 1]:
            alpha[p] = alpha[p - 1]
            continue
        k0 = end_ptr[p]
        k1 = end_ptr[p + 1]
        if k1 - k0 == 1:
            alpha[p] = alpha[start[k0]] + logp[word[k0]]
            continue
        m = -np.inf
        top = -1
        for k in range(k0, k1):
            v = alpha[start[k]] + logp[word[k]]
            if v > m:
                m = v
                top = k
        if m == -np.inf:
            continue
        acc = 0.0
        for k in range(k0, k1):
            if k == top:
                acc += 1.0
            else:
                acc += np.exp(alpha[start[k]] + logp[word[k]] - m)
        alpha[p] = m + np.log(acc)
    return alpha


@numba.njit(cache=True)
def _backward(n, end_bs, word_bs, start_ptr, is_sep, logp):  # pragma: no cover - compiled
    beta = np.full(n, -np.inf)
    beta[n - 1] = 0.0
    for p in range(n - 2, -1, -1):
        if is_sep[p]:
            beta[p] = beta[p + 1]
            continue
        k0 = start_ptr[p]
        k1 = start_ptr[p + 1]
        if k1 - k0 == 1:
            beta[p] = beta[end_bs[k0]] + logp[word_bs[k0]]
            continue
        m = -np.inf
        top = -1
        for k in range(k0, k1):
            v = beta[end_bs[k]] + logp[word_bs[k]]
            if v > m:
                m = v
                top = k
        if m == -np.inf:
            continue
        acc = 0.0
        for k in range(k0, k1):
            if k == top:
                acc += 1.0
            else:
                acc += np.exp(beta[end_bs[k]] + logp[word_bs[k]] - m)
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
    beta = _backward(lat.n_positions, lat.end_bs, lat.word_bs, lat.start_ptr, lat.is_sep, logp)
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


@numba.njit(cache=True)
def _backtrack(n, start, is_sep, back):  # pragma: no cover - compiled
    path = np.empty(n, dtype=np.int64)
    m = 0
    p = n - 1
    while p > 0:
        if is_sep[p - 1]:
            p -= 1
            continue
        k = back[p]
        path[m] = k
        m += 1
        p = start[k]
    return path[:m][::-1].copy()


def viterbi(lattice: Lattice, logp: np.ndarray) -> tuple[np.ndarray, float]:
    """Edge indices of the most probable segmentation (in position order) and its log-probability."""
    lat = lattice
    best, back = _viterbi(lat.n_positions, lat.start, lat.word, lat.end_ptr, lat.is_sep, logp)
    return _backtrack(lat.n_positions, lat.start, lat.is_sep, back), float(best[-1])
