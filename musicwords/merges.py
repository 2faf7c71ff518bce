"""Frequency merges: the commonest adjacent pair of symbols becomes one symbol, again and again.

The candidates of the motif layer (:func:`musicwords.reconstruct.motifs`). A motif is a short
unit heard many times; merging the commonest pair first enumerates exactly those units, at every
length, in order of how often they are heard. The dictionary that minimises the whole code
length (:mod:`musicwords.em`) instead folds them into the long words that shorten the code most:
in a movement whose exposition is repeated, the repeat is one word and the motifs inside it are
no words of their own. Merging stops when the commonest pair is heard fewer than ``min_count``
times: the motif layer needs a compression ratio ``k L / (L + k)`` of 2, which no unit heard
fewer than 3 times reaches, whatever its length. The motif layer also bounds the words'
length (``max_length``, its longest motif): a longer merge could never be a motif, and
merging on would fold the motifs of a repeated section into pieces of the section, as the
code-length dictionary does.

It is byte-pair encoding (as in BPE tokenisers), run incrementally: the pair counts are updated
where a merge changes the sequence, so the whole run costs about one pass over the tokens per
merged occurrence instead of one pass per merge.

Examples
--------
>>> import numpy as np
>>> frequent_merges(np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, -1, 0, 1]), min_count=3)
[(0, 1), (0, 1, 2)]
"""

from __future__ import annotations

import heapq

import numpy as np

from musicwords.em import Dictionary
from musicwords.tokens import SEPARATOR, Alphabet

__all__ = ["counting_dictionary", "frequent_merges"]


def frequent_merges(tokens: np.ndarray, *, min_count: int = 3, max_merges: int | None = None,
                    max_length: int | None = None) -> list[tuple[int, ...]]:
    """The words made by merging the commonest adjacent pair while it occurs ``min_count`` times or more.

    ``tokens`` holds streams separated by ``SEPARATOR``; pairs never span a separator. A pair's
    count is the number of places it occurs (two overlapping in a run of one symbol count
    twice); its occurrences are then merged left to right, so an overlapping one is skipped.
    The commonest pair wins, then the longer one, then the first in symbol order. At most
    ``max_merges`` merges, and words of at most ``max_length`` tokens: a pair that would be
    longer is never merged (None: no bound). Returns the merged words in merge order, each as
    its token tuple.
    """
    if min_count < 2:
        raise ValueError(f"min_count must be >= 2 (a pair heard once is no unit), got {min_count}")
    if max_length is not None and max_length < 2:
        raise ValueError(f"max_length must be >= 2 (a merge joins two tokens) or None, got {max_length}")
    longest = max_length if max_length is not None else len(tokens)
    t = np.asarray(tokens, dtype=np.int64)
    n = len(t)
    sym = t.tolist()
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    for i in np.flatnonzero(t == SEPARATOR).tolist():  # cut the links at the separators
        if i > 0:
            nxt[i - 1] = n
        if i + 1 < n:
            prv[i + 1] = -1
    if n:
        nxt[n - 1] = n
    alive = [s != SEPARATOR for s in sym]
    spelled: dict[int, tuple[int, ...]] = {s: (s,) for s in set(sym) if s != SEPARATOR}
    next_id = max(spelled, default=-1) + 1
    where: dict[tuple[int, int], set[int]] = {}
    for i in range(n):
        j = nxt[i]
        if alive[i] and j < n and alive[j]:
            where.setdefault((sym[i], sym[j]), set()).add(i)
    heap = [(-len(at), -2, pair) for pair, at in where.items() if len(at) >= min_count]
    heapq.heapify(heap)

    def push(pair: tuple[int, int], at: set[int]) -> None:  # the pair at its new count (older entries go stale)
        length = len(spelled[pair[0]]) + len(spelled[pair[1]])
        if len(at) >= min_count and length <= longest:
            heapq.heappush(heap, (-len(at), -length, pair))

    def drop(pair: tuple[int, int], i: int) -> None:
        at = where.get(pair)
        if at is not None and i in at:
            at.discard(i)
            push(pair, at)

    def add(pair: tuple[int, int], i: int) -> None:
        at = where.setdefault(pair, set())
        at.add(i)
        push(pair, at)

    words: list[tuple[int, ...]] = []
    while heap and (max_merges is None or len(words) < max_merges):
        count, length, pair = heapq.heappop(heap)
        at = where.get(pair)
        if at is None or len(at) != -count:  # a stale entry: the pair's count has changed since
            continue
        a, b = pair
        new, next_id = next_id, next_id + 1
        spelled[new] = spelled[a] + spelled[b]
        words.append(spelled[new])
        del where[pair]
        for i in sorted(at):
            j = nxt[i] if alive[i] else n
            if j >= n or sym[i] != a or sym[j] != b:  # taken by the merge just before it (a run of a == b)
                continue
            h, k = prv[i], nxt[j]
            if h >= 0:
                drop((sym[h], a), h)
            if k < n:
                drop((b, sym[k]), j)
            sym[i] = new
            alive[j] = False
            nxt[i] = k
            if k < n:
                prv[k] = i
            if h >= 0:
                add((sym[h], new), h)
            if k < n:
                add((new, sym[k]), i)
    return words


def counting_dictionary(tokens: np.ndarray, alphabet: Alphabet, words: list[tuple[int, ...]]) -> Dictionary:
    """A dictionary of ``words`` whose probabilities are plain counts (no EM, no MDL): the uses of
    each word in the most probable segmentation of ``tokens`` under a first guess, plus one half."""
    from musicwords.lattice import build_lattice, viterbi  # noqa: PLC0415

    A = len(alphabet)
    real = tokens[tokens != SEPARATOR]
    freq = np.bincount(real, minlength=A).astype(float) + 1.0
    all_words = [(t,) for t in range(A)] + [w for w in dict.fromkeys(words) if len(w) >= 2]
    logp = np.log(np.concatenate([freq, np.full(len(all_words) - A, 2.0)]))
    logp -= np.log(np.exp(logp).sum())
    d = Dictionary(alphabet=alphabet, words=all_words, logp=logp, counts=np.zeros(len(all_words)), n_literals=A,
                   base_bits=-np.log2(freq / freq.sum()), n_tokens=len(real))
    lattice = build_lattice(tokens, all_words, A)
    path, _ = viterbi(lattice, logp)
    counts = np.bincount(lattice.word[path], minlength=len(all_words)).astype(float) + 0.5
    d.counts = counts
    d.logp = np.log(counts / counts.sum())
    return d
