"""Frequency merges (musicwords.merges): the incremental run equals merging from scratch each time."""

from __future__ import annotations

import numpy as np
import pytest

from musicwords.merges import frequent_merges


def _from_scratch(tokens: np.ndarray, min_count: int, max_merges: int | None = None,
                  max_length: int | None = None) -> list[tuple[int, ...]]:
    """Recount every pair after every merge (the definition; the same tie-break: count, length, symbol ids)."""
    seqs: list[list[tuple[int, ...]]] = [[]]
    for t in tokens.tolist():
        if t == -1:
            seqs.append([])
        else:
            seqs[-1].append((t,))
    ident = {(t,): t for t in set(tokens.tolist()) if t != -1}
    next_id = max(ident.values(), default=-1) + 1
    words: list[tuple[int, ...]] = []
    while max_merges is None or len(words) < max_merges:
        pairs: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        for s in seqs:
            for a, b in zip(s, s[1:], strict=False):
                if max_length is None or len(a) + len(b) <= max_length:
                    pairs[(a, b)] = pairs.get((a, b), 0) + 1
        if not pairs:
            break
        (a, b), count = min(pairs.items(), key=lambda kv: (-kv[1], -len(kv[0][0]) - len(kv[0][1]),
                                                            ident[kv[0][0]], ident[kv[0][1]]))
        if count < min_count:
            break
        words.append(a + b)
        ident[a + b], next_id = next_id, next_id + 1
        for k, s in enumerate(seqs):
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[k] = out
    return words


@pytest.mark.parametrize("seed", range(60))
def test_incremental_merges_equal_merging_from_scratch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, int(rng.integers(2, 6)), int(rng.integers(5, 300)))
    tokens[rng.random(len(tokens)) < 0.03] = -1  # stream separators: no pair spans one
    for min_count in (2, 3):
        assert frequent_merges(tokens, min_count=min_count) == _from_scratch(tokens, min_count)
    assert frequent_merges(tokens, min_count=2, max_merges=5) == _from_scratch(tokens, 2, 5)
    for longest in (2, 3, 5):
        merged = frequent_merges(tokens, min_count=2, max_length=longest)
        assert merged == _from_scratch(tokens, 2, max_length=longest)
        assert all(len(w) <= longest for w in merged)


def test_merging_stops_below_the_count_and_never_spans_streams() -> None:
    tokens = np.array([0, 1, 0, 1, -1, 0, 1, -1, 2, 3, 2, 3])
    assert frequent_merges(tokens, min_count=3) == [(0, 1)]  # (2, 3) occurs twice: not merged
    assert frequent_merges(tokens, min_count=2) == [(0, 1), (2, 3)]
    assert frequent_merges(np.array([0, -1, 0, -1, 0]), min_count=2) == []
    with pytest.raises(ValueError, match="min_count"):
        frequent_merges(tokens, min_count=1)
    with pytest.raises(ValueError, match="max_length"):
        frequent_merges(tokens, max_length=1)
