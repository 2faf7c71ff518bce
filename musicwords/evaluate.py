"""Evaluation against human pattern annotations (JKUPDD), with the MIREX metrics and the box IoU.

Ground truth, per the JKUPDD readme: polyphonic = ``barlowAndMorgensternRevised``, ``bruhn``,
``schoenberg``, ``sectionalRepetitions``, ``tomCollins``; monophonic = the same plus
``barlowAndMorgenstern``. Onsets are rounded to 1/100 beat before matching (the CSVs carry
rounding errors in the 10th decimal).

Metrics per piece, then the mean over pieces:

- ``mir_eval.pattern``: establishment P/R/F, occurrence P/R/F at c = 0.75 (``F_occ_75``) and
  at c = 0.5 (``F_occ_50``, computed by calling ``occurrence_FPR(thres=0.5)`` directly:
  ``mir_eval.pattern.evaluate`` passes the threshold under a wrong keyword and silently
  computes 0.75), three-layer F (``F_3``);
- ``box_iou``: every annotated and every found occurrence as a time × pitch box
  ``[first onset, last onset] × [lowest, highest pitch]``, matched one-to-one by the Hungarian
  algorithm on the IoU matrix; the mean IoU of the matched pairs.

Methods, all run through the same reconstruction and pattern code (:mod:`musicwords.reconstruct`):
``words`` (EM + MDL), ``bpe`` (greedy most-frequent-pair merges, no MDL) and ``ngram``
(every repeated n-gram of a fixed length).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from musicwords.discover import DiscoverConfig, discover
from musicwords.em import Dictionary
from musicwords.io import read_note_csv
from musicwords.notes import Notes
from musicwords.tokens import SEPARATOR, Alphabet, TokenStreams

__all__ = ["ANNOTATORS", "box_iou", "evaluate_jkupdd", "evaluate_piece", "load_jkupdd", "pattern_points"]

ANNOTATORS = {
    "polyphonic": ("barlowAndMorgensternRevised", "bruhn", "schoenberg", "sectionalRepetitions", "tomCollins"),
    "monophonic": ("barlowAndMorgenstern", "barlowAndMorgensternRevised", "bruhn", "schoenberg",
                   "sectionalRepetitions", "tomCollins"),
}
Points = list[tuple[float, float]]


def load_jkupdd(root: str | Path, version: str) -> list[tuple[str, Notes, list[list[Points]]]]:
    """``(piece name, notes, annotated patterns)`` for the five pieces of JKUPDD at ``root``."""
    root = Path(root)
    if (root / "groundTruth").is_dir():
        root = root / "groundTruth"
    if version not in ANNOTATORS:
        raise ValueError(f"version must be 'polyphonic' or 'monophonic', got {version!r}")
    pieces = sorted(p for p in root.iterdir() if (p / version / "csv").is_dir()) if root.is_dir() else []
    if not pieces:
        raise FileNotFoundError(f"{root}: no JKUPDD pieces (expected <piece>/{version}/csv/*.csv)")
    out = []
    for piece in pieces:
        csv = sorted((piece / version / "csv").glob("*.csv"))[0]
        notes = read_note_csv(csv, piece_id=piece.name)
        ref = []
        for annotator in ANNOTATORS[version]:
            for pattern in sorted((piece / version / "repeatedPatterns" / annotator).glob("*/")):
                files = sorted((pattern / "occurrences" / "csv").glob("occ*.csv"), key=lambda f: int(f.stem[3:]))
                occs = [
                    [(round(float(t), 2), float(round(p))) for t, p in np.loadtxt(f, delimiter=",", ndmin=2)[:, :2]]
                    for f in files
                ]
                if occs:
                    ref.append(occs)
        out.append((piece.name, notes, ref))
    return out


def pattern_points(notes: Notes, found: list[Any]) -> list[list[Points]]:
    """Found patterns as MIREX point sets ``(onset in beats, MIDI pitch)``."""
    return [
        [[(round(float(notes.onset[i]), 2), float(notes.pitch[i])) for i in idx] for _, idx in p.occurrences]
        for p in found
    ]


def box_iou(reference: list[list[Points]], estimated: list[list[Points]]) -> float:
    """Mean IoU of one-to-one (Hungarian) matched occurrence boxes; 0 if either side is empty."""
    ref = [_box(o) for p in reference for o in p]
    est = [_box(o) for p in estimated for o in p]
    if not ref or not est:
        return 0.0
    r, e = np.array(ref), np.array(est)
    t0, t1 = np.maximum(r[:, None, 0], e[None, :, 0]), np.minimum(r[:, None, 1], e[None, :, 1])
    p0, p1 = np.maximum(r[:, None, 2], e[None, :, 2]), np.minimum(r[:, None, 3], e[None, :, 3])
    inter = np.clip(t1 - t0, 0, None) * np.clip(p1 - p0, 0, None)
    area = lambda b: (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])  # noqa: E731
    union = area(r)[:, None] + area(e)[None, :] - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    rows, cols = linear_sum_assignment(-iou)
    return float(iou[rows, cols].mean())


def _box(occ: Points) -> tuple[float, float, float, float]:
    """A box with a floor of one beat and one semitone, so a single line still has an area."""
    t = [x for x, _ in occ]
    p = [y for _, y in occ]
    return (min(t), max(max(t), min(t) + 1.0), min(p) - 0.5, max(p) + 0.5)


def evaluate_piece(reference: list[list[Points]], estimated: list[list[Points]]) -> dict[str, float]:
    """All metrics for one piece (0 for every metric when nothing was found)."""
    import mir_eval  # noqa: PLC0415

    if not estimated:
        return {k: 0.0 for k in ("F_est", "P_est", "R_est", "F_occ_75", "F_occ_50", "F_3", "box_iou", "n_patterns")}
    f_est, p_est, r_est = mir_eval.pattern.establishment_FPR(reference, estimated)
    f_75, _, _ = mir_eval.pattern.occurrence_FPR(reference, estimated, thres=0.75)
    f_50, _, _ = mir_eval.pattern.occurrence_FPR(reference, estimated, thres=0.5)
    f_3, _, _ = mir_eval.pattern.three_layer_FPR(reference, estimated)
    return {
        "F_est": f_est, "P_est": p_est, "R_est": r_est, "F_occ_75": f_75, "F_occ_50": f_50, "F_3": f_3,
        "box_iou": box_iou(reference, estimated), "n_patterns": float(len(estimated)),
    }


def find_patterns(notes: Notes, method: str, config: DiscoverConfig | None = None) -> list[Any]:
    """Patterns of one piece by ``method`` (``words``, ``bpe`` or ``ngram``)."""
    if method not in ("words", "bpe", "ngram"):
        raise ValueError(f"method must be 'words', 'bpe' or 'ngram', got {method!r}")
    learn = None
    if method != "words":
        def learn(tokens: TokenStreams, alphabet: Alphabet) -> Dictionary:
            t = tokens.tokens
            words = _bpe_words(t, merges=200) if method == "bpe" else _ngram_words(t, n=7)
            return _counting_dictionary(t, alphabet, words)
    return discover([notes], config, learn=learn).patterns


def evaluate_jkupdd(root: str | Path, *, method: str = "words", config: DiscoverConfig | None = None) -> dict[str, Any]:
    """Mean metrics over the five pieces, per version: ``{"polyphonic": {...}, "monophonic": {...}}``."""
    out: dict[str, Any] = {}
    for version in ("polyphonic", "monophonic"):
        rows = {}
        for name, notes, ref in load_jkupdd(root, version):
            est = pattern_points(notes, find_patterns(notes, method, config))
            rows[name] = evaluate_piece(ref, est)
        keys = next(iter(rows.values())).keys()
        out[version] = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
        out[version]["pieces"] = rows
    return out


# --------------------------------------------------------------------------------------------
# baselines


def _counting_dictionary(tokens: np.ndarray, alphabet: Alphabet, words: list[tuple[int, ...]]) -> Dictionary:
    """A dictionary whose word probabilities are plain (non-overlapping) counts: no EM, no MDL."""
    from musicwords.lattice import build_lattice, viterbi  # noqa: PLC0415

    A = len(alphabet)
    real = tokens[tokens != SEPARATOR]
    freq = np.bincount(real, minlength=A).astype(float) + 1.0
    all_words = [(t,) for t in range(A)] + [w for w in words if len(w) >= 2]
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


def _bpe_words(tokens: np.ndarray, merges: int) -> list[tuple[int, ...]]:
    """Greedy byte-pair merges of the most frequent adjacent pair, ``merges`` times (no MDL)."""
    seqs: list[list[tuple[int, ...]]] = [[(int(t),) for t in s] for s in _split(tokens)]
    words: list[tuple[int, ...]] = []
    for _ in range(merges):
        pairs: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        for s in seqs:
            for a, b in zip(s, s[1:], strict=False):
                pairs[(a, b)] = pairs.get((a, b), 0) + 1
        if not pairs:
            break
        (a, b), count = max(pairs.items(), key=lambda kv: (kv[1], len(kv[0][0]) + len(kv[0][1])))
        if count < 2:
            break
        merged = a + b
        words.append(merged)
        for k, s in enumerate(seqs):
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[k] = out
    return words


def _ngram_words(tokens: np.ndarray, n: int) -> list[tuple[int, ...]]:
    """Every n-gram of ``n`` tokens that occurs at least twice."""
    counts: dict[tuple[int, ...], int] = {}
    for s in _split(tokens):
        for i in range(len(s) - n + 1):
            key = tuple(int(t) for t in s[i : i + n])
            counts[key] = counts.get(key, 0) + 1
    return sorted(w for w, c in counts.items() if c >= 2)


def _split(tokens: np.ndarray) -> list[np.ndarray]:
    parts = (part[part != SEPARATOR] for part in np.split(tokens, np.flatnonzero(tokens == SEPARATOR)))
    return [part for part in parts if len(part)]


def _jkupdd_default() -> str | None:
    """``JKUPDD`` env var, else ``../shared/data/jkupdd`` beside the repository, if present."""
    env = os.environ.get("JKUPDD")
    if env:
        return env
    here = Path(__file__).resolve().parents[2] / "shared" / "data" / "jkupdd"
    return str(here) if here.is_dir() else None
