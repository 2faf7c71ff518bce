"""The segmentation lattice: which words match where, forward-backward and Viterbi over it.

Positions ``0..T`` sit between the ``T`` entries of a concatenated token array (see
:class:`~musicwords.tokens.TokenStreams`). An *edge* ``(s, e, w)`` says that word ``w`` spells
tokens ``s..e-1``. Every token is also a one-token word (a *literal*), so every stream has at
least one segmentation. Separator entries are crossed by a free edge, so one pass handles all
streams and the total log-probability is the sum over streams.

Word matching walks a trie of the words' prefixes, stored as 64-bit polynomial hashes in a
hash table (:class:`WordIndex`); two different token strings share a hash with probability
~2^-64 per comparison.
The loops are compiled with numba.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from musicwords.tokens import SEPARATOR

__all__ = ["Lattice", "WordIndex", "build_lattice", "extend_lattice", "forward_backward", "viterbi", "window_hashes",
           "word_hash"]

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
    """Every prefix of every word in an open-addressing hash table, for :func:`build_lattice`:
    slot ``i`` holds a prefix's hash (``table[2i]``) and ``-1`` if it is only a prefix, or the id
    of the word it spells (``table[2i+1]``; ``-2``: an empty slot). Build it once and pass it to
    :func:`build_lattice` for every block."""

    def __init__(self, words: Sequence[tuple[int, ...]]) -> None:
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        flat = np.fromiter(itertools.chain.from_iterable(words), dtype=np.int64, count=int(lengths.sum()))
        self.bits = max(4, math.ceil(math.log2(max(2 * int(lengths.sum()), 2))))  # load factor <= 1/2
        self.table = _prefix_table(flat, lengths, self.bits)


_MIX = np.uint64(0xBF58476D1CE4E5B9)  # multiply-shift hashing of a prefix's hash into a slot


@numba.njit(cache=True)
def _prefix_table(flat, lengths, bits):  # pragma: no cover - compiled
    size = 1 << bits
    table = np.zeros(2 * size, dtype=np.int64)
    for i in range(size):
        table[2 * i + 1] = -2
    shift = np.uint64(64 - bits)
    o = 0
    for i in range(len(lengths)):
        n = lengths[i]
        h = np.uint64(0)
        for j in range(n):
            h = h * _BASE + np.uint64(flat[o + j] + 2)
            slot = _slot(table, h, shift, size)
            if table[2 * slot + 1] == -2:
                table[2 * slot] = np.int64(h)
                table[2 * slot + 1] = -1
            if j == n - 1 and n >= 2 and table[2 * slot + 1] == -1:  # a word (the first of duplicates)
                table[2 * slot + 1] = i
        o += n
    return table


@numba.njit(cache=True)
def _word_hashes(flat, lengths):  # pragma: no cover - compiled
    """Hash of every word (as :func:`word_hash`), the words laid end to end in ``flat``."""
    full = np.zeros(len(lengths), dtype=np.uint64)
    o = 0
    for i in range(len(lengths)):
        h = np.uint64(0)
        for j in range(lengths[i]):
            h = h * _BASE + np.uint64(flat[o + j] + 2)
        full[i] = h
        o += lengths[i]
    return full


@numba.njit(cache=True)
def _slot(table, h, shift, size):  # pragma: no cover - compiled
    """The slot of prefix hash ``h``: where it is stored, or else the empty slot where it would go
    (linear probing)."""
    key = np.int64(h)
    slot = np.int64((h * _MIX) >> shift)
    while table[2 * slot + 1] != -2 and table[2 * slot] != key:
        slot = (slot + 1) & (size - 1)
    return slot


@numba.njit(cache=True)
def _lookup(table, h, shift, size):  # pragma: no cover - compiled
    """The value of prefix hash ``h`` in the table (``-2``: no word begins so)."""
    return table[2 * _slot(table, h, shift, size) + 1]


@numba.njit(cache=True)
def _match(tokens, table, bits, literals):  # pragma: no cover - compiled
    """Every edge, in order of start then end: from each token its literal (if ``literals``),
    then the tokens that follow for as long as the tokens read so far begin some word."""
    T = len(tokens)
    size = len(table) // 2
    shift = np.uint64(64 - bits)
    cap = 2 * T + 16
    start = np.empty(cap, dtype=np.int64)
    end = np.empty(cap, dtype=np.int64)
    word = np.empty(cap, dtype=np.int64)
    m = 0
    for a in range(T):
        if tokens[a] == SEPARATOR:
            continue
        b = a
        w = tokens[a] if literals else -1  # the literal
        h = np.uint64(tokens[a] + 2)
        while True:
            b += 1
            if w >= 0:
                if m == cap:
                    cap *= 2
                    start = np.concatenate((start, np.empty(cap - m, dtype=np.int64)))
                    end = np.concatenate((end, np.empty(cap - m, dtype=np.int64)))
                    word = np.concatenate((word, np.empty(cap - m, dtype=np.int64)))
                start[m] = a
                end[m] = b
                word[m] = w
                m += 1
            if b == a + 1 and _lookup(table, h, shift, size) == -2:
                break  # no word begins with this token
            if b == T or tokens[b] == SEPARATOR:
                break
            h = h * _BASE + np.uint64(tokens[b] + 2)
            w = _lookup(table, h, shift, size)
            if w == -2:
                break  # no word begins with tokens a..b
    return start[:m], end[:m], word[:m]


@numba.njit(cache=True)
def _pointers(keys, n):  # pragma: no cover - compiled
    """``ptr[p]``: how many ``keys`` (integers in ``0..n-1``) are below ``p`` (``n + 1`` entries; for sorted
    ``keys``, ``keys[ptr[p]:ptr[p+1]] == p``)."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    for k in keys:
        ptr[k + 1] += 1
    for p in range(n):
        ptr[p + 1] += ptr[p]
    return ptr


def build_lattice(
    tokens: np.ndarray, words: Sequence[tuple[int, ...]], n_literals: int, index: WordIndex | None = None
) -> Lattice:
    """All matches of ``words`` (ids ``0..n_literals-1`` are the literals) in ``tokens``
    (``index``: the :class:`WordIndex` of ``words``, if already built).

    From each position the tokens are read forward, one hash-table lookup per token, for as long
    as they begin some word (a trie walk, the trie's nodes stored as hashes of prefixes): the cost
    is the number of matches plus one lookup per position, however many word lengths there are.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    index = index or WordIndex(words)
    start, end, word = _match(tokens, index.table, index.bits, True)
    return _assemble(tokens == SEPARATOR, start, end, word)


def extend_lattice(lattice: Lattice, tokens: np.ndarray, new_words: Sequence[tuple[int, ...]], first_id: int,
                   index: WordIndex | None = None) -> Lattice:
    """``lattice`` (of ``tokens``) with the matches of ``new_words`` added as words ``first_id``,
    ``first_id + 1``, ...: the lattice :func:`build_lattice` gives for the words of ``lattice``
    followed by ``new_words`` (none of them one of its words), without matching those again.
    ``index``: the :class:`WordIndex` of ``new_words``, if already built."""
    tokens = np.asarray(tokens, dtype=np.int64)
    index = index or WordIndex(new_words)
    start, end, word = _match(tokens, index.table, index.bits, False)
    # the lattice's edges in the order _match finds them (by start, then end), merged with the new ones
    old_start = lattice.start[lattice.by_start]
    start, end, word = _merge_edges(old_start, lattice.end_bs, lattice.word_bs, start, end, word + first_id)
    return _assemble(lattice.is_sep, start, end, word)


@numba.njit(cache=True)
def _merge_edges(s1, e1, w1, s2, e2, w2):  # pragma: no cover - compiled
    """Two edge lists sorted by (start, end), merged into one (no edge is in both)."""
    n1 = len(s1)
    n2 = len(s2)
    start = np.empty(n1 + n2, dtype=np.int64)
    end = np.empty(n1 + n2, dtype=np.int64)
    word = np.empty(n1 + n2, dtype=np.int64)
    i = 0
    j = 0
    for k in range(n1 + n2):
        if j == n2 or (i < n1 and (s1[i] < s2[j] or (s1[i] == s2[j] and e1[i] < e2[j]))):
            start[k], end[k], word[k] = s1[i], e1[i], w1[i]
            i += 1
        else:
            start[k], end[k], word[k] = s2[j], e2[j], w2[j]
            j += 1
    return start, end, word


def _assemble(is_sep: np.ndarray, start: np.ndarray, end: np.ndarray, word: np.ndarray) -> Lattice:
    """The lattice of edges given in order of start, then end."""
    T = len(is_sep)
    # wanted by end, then start (a stable counting sort), and by start with ties by end (the
    # order given: the inverse permutation)
    order = _stable_order(end, T + 1)
    by_start = np.empty_like(order)
    by_start[order] = np.arange(len(order), dtype=np.int64)
    start_ptr = _pointers(start, T + 1)
    end_bs, word_bs = end, word
    start, end, word = start[order], end[order], word[order]
    end_ptr = _pointers(end, T + 1)
    return Lattice(T + 1, start, end, word, end_ptr, by_start, start_ptr, is_sep, end_bs, word_bs)


@numba.njit(cache=True)
def _stable_order(keys, n_keys):  # pragma: no cover - compiled
    """The stable argsort of integer ``keys`` in ``0..n_keys-1`` (a counting sort)."""
    count = _pointers(keys, n_keys)
    out = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        k = keys[i]
        out[count[k]] = i
        count[k] += 1
    return out


# The forward and backward passes work with ratios instead of an exponential per edge.
# Forward: with ``alpha[p]`` the log-probability of all segmentations of positions ``0..p``,
# ``alpha[p] = alpha[p-1] + log c_p`` where ``c_p = sum over edges (s, p, w) of p(w) *
# exp(alpha[s] - alpha[p-1])``; the ratio ``exp(alpha[s] - alpha[p-1])`` is the product of
# ``1 / c_i`` over ``i = s+1..p-1``, built up one factor at a time while the edges ending at ``p``
# are read shortest first. So a position costs one logarithm and a few multiplications. Where a
# running product leaves ``[_RATIO_LO, _RATIO_HI]`` (a long word over rare tokens, a word far
# likelier than its notes), that position is done exactly, as a log-sum-exp with its maximum.
# The backward pass is the mirror image, and adds the expected counts on the way: edge
# ``(p, e, w)`` is used with probability ``exp(alpha[p] + beta[p+1] - log Z)`` times its share of
# ``c'_p``: one exponential per position. The results equal the plain log-sum-exp to ~1e-13
# relative (products of at most a few hundred factors, none of them rounded below normal range).

_RATIO_LO = 1e-250
_RATIO_HI = 1e250


@numba.njit(cache=True)
def _max_degree(ptr):  # pragma: no cover - compiled
    m = 0
    for i in range(len(ptr) - 1):
        m = max(m, ptr[i + 1] - ptr[i])
    return m


@numba.njit(cache=True)
def _forward(n, start, word, end_ptr, is_sep, logp, prob, inv_prob):  # pragma: no cover - compiled
    alpha = np.full(n, -np.inf)
    alpha[0] = 0.0
    inv = np.ones(n)  # exp(alpha[p-1] - alpha[p])
    for p in range(1, n):
        prev = alpha[p - 1]
        if is_sep[p - 1]:
            alpha[p] = prev
            continue
        k0 = end_ptr[p]
        k1 = end_ptr[p + 1]
        if k1 - k0 == 1 and start[k0] == p - 1:  # a literal alone
            w = word[k0]
            alpha[p] = prev + logp[w]
            inv[p] = inv_prob[w]
            continue
        # edges ending at p are sorted by start: read them from the last (the shortest)
        c = 0.0
        ratio = 1.0  # exp(alpha[q] - alpha[p-1])
        q = p - 1
        exact = False
        for k in range(k1 - 1, k0 - 1, -1):
            s = start[k]
            while q > s:
                ratio *= inv[q]
                q -= 1
                if not (_RATIO_LO < ratio < _RATIO_HI):
                    exact = True
                    break
            if exact:
                break
            c += prob[word[k]] * ratio
        if not exact:
            alpha[p] = prev + np.log(c)
            inv[p] = 1.0 / c
            continue
        m = -np.inf
        for k in range(k0, k1):
            m = max(m, alpha[start[k]] + logp[word[k]])
        acc = 0.0
        for k in range(k0, k1):
            acc += np.exp(alpha[start[k]] + logp[word[k]] - m)
        alpha[p] = m + np.log(acc)
        inv[p] = np.exp(prev - alpha[p])
    return alpha


@numba.njit(cache=True)
def _backward_counts(n, end_bs, word_bs, start_ptr, is_sep, logp, prob, inv_prob, alpha, n_words):  # pragma: no cover - compiled
    beta = np.full(n, -np.inf)
    beta[n - 1] = 0.0
    inv = np.ones(n)  # exp(beta[p+1] - beta[p])
    counts = np.zeros(n_words)
    shares = np.empty(_max_degree(start_ptr))
    log_z = alpha[n - 1]
    for p in range(n - 2, -1, -1):
        nxt = beta[p + 1]
        if is_sep[p]:
            beta[p] = nxt
            continue
        k0 = start_ptr[p]
        k1 = start_ptr[p + 1]
        used = np.exp(alpha[p] + nxt - log_z)  # times an edge's share: its expected use
        if k1 - k0 == 1 and end_bs[k0] == p + 1:  # a literal alone
            w = word_bs[k0]
            beta[p] = nxt + logp[w]
            inv[p] = inv_prob[w]
            counts[w] += used * prob[w]
            continue
        # edges starting at p are sorted by end: the shortest first
        c = 0.0
        ratio = 1.0  # exp(beta[q] - beta[p+1])
        q = p + 1
        exact = False
        for k in range(k0, k1):
            e = end_bs[k]
            while q < e:
                ratio *= inv[q]
                q += 1
                if not (_RATIO_LO < ratio < _RATIO_HI):
                    exact = True
                    break
            if exact:
                break
            shares[k - k0] = prob[word_bs[k]] * ratio
            c += shares[k - k0]
        if not exact:
            beta[p] = nxt + np.log(c)
            inv[p] = 1.0 / c
            for k in range(k0, k1):
                counts[word_bs[k]] += used * shares[k - k0]
            continue
        m = -np.inf
        for k in range(k0, k1):
            m = max(m, beta[end_bs[k]] + logp[word_bs[k]])
        acc = 0.0
        for k in range(k0, k1):
            acc += np.exp(beta[end_bs[k]] + logp[word_bs[k]] - m)
        beta[p] = m + np.log(acc)
        inv[p] = np.exp(nxt - beta[p])
        for k in range(k0, k1):
            counts[word_bs[k]] += np.exp(alpha[p] + beta[end_bs[k]] + logp[word_bs[k]] - log_z)
    return beta, counts


def forward_backward(lattice: Lattice, logp: np.ndarray) -> tuple[np.ndarray, float]:
    """Expected word counts over all segmentations, and the log-probability (nats) of all streams.

    Parameters
    ----------
    lattice : Lattice
    logp : np.ndarray
        (n_words,) natural-log word probabilities; a word at ``-inf`` is never used (its edges
        stay in the lattice and count zero), but every token needs some edge of positive
        probability (the literals).
    """
    lat = lattice
    prob = np.exp(logp)
    with np.errstate(divide="ignore"):
        inv_prob = 1.0 / prob
    alpha = _forward(lat.n_positions, lat.start, lat.word, lat.end_ptr, lat.is_sep, logp, prob, inv_prob)
    log_z = float(alpha[-1])
    if not np.isfinite(log_z):
        raise ValueError("a token has no word of positive probability: the literals must keep p > 0")
    _, counts = _backward_counts(lat.n_positions, lat.end_bs, lat.word_bs, lat.start_ptr, lat.is_sep, logp, prob,
                                 inv_prob, alpha, len(logp))
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
