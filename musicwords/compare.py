"""Comparing the word usage of groups (composers): distinctive and shared words.

Counts come from one dictionary learned on the whole corpus, so every group is counted in the
same vocabulary: ``counts[g][w]`` = occurrences of word ``w`` in the pieces of group ``g``.

Distinctive words: the weighted log-odds ratio with an informative Dirichlet prior (Monroe,
Colaresi & Quinn 2008, "Fightin' words", section 3.5). For group ``i`` against the rest of
the corpus ``j``, with ``y`` the counts, ``n`` the totals and the prior ``a_w = a0 * y_w / n``
(the whole corpus's word shares; by default ``a0 = n``, so ``a_w`` is the word's corpus count:
the corpus is the informative prior)::

    d_w   = log((y_iw + a_w) / (n_i + a0 - y_iw - a_w)) - log((y_jw + a_w) / (n_j + a0 - y_jw - a_w))
    var_w ~ 1 / (y_iw + a_w) + 1 / (y_jw + a_w)
    z_w   = d_w / sqrt(var_w)

The prior shrinks the log-odds of rare words towards the corpus rate, so a word used twice by a
small group does not top the list.

A word is *distinctive* of group ``i`` (:func:`is_distinctive`) when both hold:

- its one-sided p-value ``1 - Phi(z_w)`` survives the Benjamini-Hochberg correction over all the
  words the group uses (false discovery rate :data:`FDR` = 5 %): with hundreds of words tested,
  ``z > 1.96`` one word at a time would let about one in twenty chance words through;
- it is used in at least :data:`MIN_PIECES` pieces of the group: counts are occurrences, and one
  piece that repeats a figure forty times is one composer's choice once, not a habit.

Shared words: words used by at least ``min_groups`` groups, ranked by how many groups use them,
then by the smallest share of a group's word occurrences they make (a word every composer uses
often ranks first).

Examples
--------
>>> counts = {"a": {"x": 40, "y": 5, "z": 10}, "b": {"x": 5, "y": 40, "z": 10}}
>>> pieces = {"a": {"x": 5, "y": 1, "z": 3}, "b": {"x": 1, "y": 5, "z": 3}}
>>> [r["word"] for r in distinctive_words(counts, "a", pieces=pieces) if is_distinctive(r)]
['x']
>>> [r["word"] for r in shared_words(counts)]
['z', 'x', 'y']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import erfc

__all__ = ["FDR", "MIN_PIECES", "benjamini_hochberg", "distinctive_words", "is_distinctive", "log_odds_z", "shared_words"]

FDR = 0.05  # false discovery rate of the distinctive words of a group
MIN_PIECES = 2  # a distinctive word is used in this many pieces of the group or more


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): reject ``q <= FDR`` to control the false
    discovery rate at ``FDR`` over all the tests in ``p``.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5])).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def is_distinctive(row: Mapping[str, Any], *, fdr: float = FDR, min_pieces: int = MIN_PIECES) -> bool:
    """Whether a row of :func:`distinctive_words` is a distinctive word (see the module docstring)."""
    return bool(row["q"] <= fdr and row["pieces"] >= min_pieces)


def log_odds_z(y_i: np.ndarray, y_j: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Weighted log-odds z-scores of each word for group ``i`` against ``j`` (see the module docstring).

    Parameters
    ----------
    y_i, y_j : np.ndarray
        (n_words,) occurrence counts in the two groups.
    prior : np.ndarray
        (n_words,) Dirichlet pseudo-counts ``a_w`` (> 0).
    """
    y_i = np.asarray(y_i, dtype=float)
    y_j = np.asarray(y_j, dtype=float)
    prior = np.asarray(prior, dtype=float)
    if not (y_i.shape == y_j.shape == prior.shape):
        raise ValueError(f"counts and prior must have one shape, got {y_i.shape}, {y_j.shape}, {prior.shape}")
    if np.any(prior <= 0):
        raise ValueError("every prior pseudo-count must be > 0 (did you pass raw counts with zeros?)")
    a0 = prior.sum()
    n_i, n_j = y_i.sum(), y_j.sum()
    delta = (np.log(y_i + prior) - np.log(n_i + a0 - y_i - prior)) - (np.log(y_j + prior) - np.log(n_j + a0 - y_j - prior))
    var = 1.0 / (y_i + prior) + 1.0 / (y_j + prior)
    return np.asarray(delta / np.sqrt(var))


def distinctive_words(
    counts: Mapping[str, Mapping[Any, int]], group: str, *, pieces: Mapping[str, Mapping[Any, int]] | None = None,
    prior_total: float | None = None, top: int | None = None,
) -> list[dict[str, Any]]:
    """Words of ``group`` ranked by their log-odds z-score against all other groups, highest first.

    Parameters
    ----------
    counts : mapping
        ``counts[g][w]``: occurrences of word ``w`` in group ``g`` (one shared vocabulary).
    group : str
        The group to describe; it must be in ``counts``.
    pieces : mapping, optional
        ``pieces[g][w]``: how many pieces of group ``g`` use word ``w``; without it every word
        counts as used in one piece (so none is distinctive by :func:`is_distinctive`).
    prior_total : float, optional
        ``a0``, the pseudo-occurrences of the prior, spread over words by their corpus shares;
        by default the number of word occurrences in the corpus (``a_w`` = corpus count of ``w``).
    top : int, optional
        At most this many rows.

    Returns
    -------
    list of dict
        ``word``, ``z``, ``p`` (one-sided), ``q`` (Benjamini-Hochberg over the words the group
        uses), ``count`` (in the group), ``pieces`` (of the group using it), ``rest`` (in the
        others), ``rate`` and ``rest_rate`` (per 1,000 word occurrences), for the words the
        group uses.
    """
    if group not in counts:
        raise ValueError(f"unknown group {group!r}; groups are {sorted(counts)}")
    words = sorted({w for c in counts.values() for w in c}, key=str)
    if not words:
        return []
    index = {w: k for k, w in enumerate(words)}
    y = np.zeros((len(counts), len(words)))
    names = list(counts)
    for g, c in enumerate(names):
        for w, v in counts[c].items():
            y[g, index[w]] += v
    total = y.sum(axis=0)
    a0 = total.sum() if prior_total is None else prior_total
    prior = a0 * total / max(total.sum(), 1.0)
    prior = np.maximum(prior, 1e-9)
    gi = names.index(group)
    y_i = y[gi]
    y_j = total - y_i
    z = log_odds_z(y_i, y_j, prior)
    n_i, n_j = max(y_i.sum(), 1.0), max(y_j.sum(), 1.0)
    used = np.flatnonzero(y_i > 0)
    p = 0.5 * erfc(z[used] / np.sqrt(2.0))  # one-sided: used more by the group than by the others
    q = benjamini_hochberg(p)
    in_pieces = (pieces or {}).get(group, {})
    rows = [
        {"word": words[k], "z": float(z[k]), "p": float(pk), "q": float(qk), "count": int(y_i[k]),
         "pieces": int(in_pieces.get(words[k], 1)), "rest": int(y_j[k]),
         "rate": 1000.0 * y_i[k] / n_i, "rest_rate": 1000.0 * y_j[k] / n_j}
        for k, pk, qk in zip(used.tolist(), p.tolist(), q.tolist(), strict=True)
    ]
    rows.sort(key=lambda r: (-r["z"], str(r["word"])))
    return rows[:top] if top is not None else rows


def shared_words(
    counts: Mapping[str, Mapping[Any, int]], *, min_groups: int = 2, top: int | None = None
) -> list[dict[str, Any]]:
    """Words used by at least ``min_groups`` groups (see the module docstring), most shared first.

    Returns rows with ``word``, ``groups`` (how many use it), ``min_rate`` (its smallest rate
    per 1,000 word occurrences among those groups), ``count`` (in all) and ``rates`` per group.
    """
    totals = {g: max(sum(c.values()), 1) for g, c in counts.items()}
    words = {w for c in counts.values() for w in c}
    rows: list[dict[str, Any]] = []
    for w in words:
        rates = {g: 1000.0 * c.get(w, 0) / totals[g] for g, c in counts.items() if c.get(w, 0) > 0}
        if len(rates) < min_groups:
            continue
        rows.append({"word": w, "groups": len(rates), "min_rate": min(rates.values()),
                     "count": int(sum(c.get(w, 0) for c in counts.values())), "rates": rates})
    rows.sort(key=lambda r: (-r["groups"], -r["min_rate"], str(r["word"])))
    return rows[:top] if top is not None else rows
