"""Evaluation against human pattern annotations, with the MIREX metrics and the box IoU.

Two annotated sets, scored the same way:

- ``jkupdd``: the five pieces of JKUPDD (themes and repeated sections);
- ``bps``: first movements of Beethoven's piano sonatas with motif annotations (BPS-motif;
  ``csv_notes/NN-1.csv`` and ``motif_notes/NN/<type>-<k>.csv``): short motifs (3-10 notes)
  with many, often varied occurrences. Each motif type is one pattern; the staves are the voices.

Every set is cut into a *tuning* half and a *test* half by position in name order (even
positions tune, odd positions test), so settings chosen while watching one half are judged on
the other: ``split="test"`` is the figure to report.

Ground truth of JKUPDD, per its readme: polyphonic = ``barlowAndMorgensternRevised``, ``bruhn``,
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
  algorithm on the IoU matrix; the mean IoU of the matched pairs (the paper's figure);
- ``box_iou_penalised``: the same matching, but every reference box and every found box left
  without an overlapping partner counts as 0: the sum of the matched IoUs over
  ``n_reference + n_found - n_matched``. One right occurrence out of ten, or the right answer
  plus 200 junk boxes, scores 1.0 on the first and about 0.1 and 0.05 on this one.

Layers (``layer=``): ``patterns``, the words that save the most bits (themes, phrases,
sections: what JKUPDD annotates), or ``motifs``, the motif layer chosen by compression ratio
(short units heard many times: what BPS-motif annotates); see :mod:`musicwords.reconstruct`.

Methods, all run through the same reconstruction and pattern code (:mod:`musicwords.reconstruct`):
``words`` (EM + MDL), ``bpe`` (greedy most-frequent-pair merges, no MDL) and ``ngram``
(every repeated n-gram of a fixed length).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from musicwords.discover import DiscoverConfig, discover
from musicwords.em import Dictionary
from musicwords.io import read_note_csv
from musicwords.merges import counting_dictionary, frequent_merges
from musicwords.notes import Notes
from musicwords.reconstruct import LEVELS
from musicwords.tokens import SEPARATOR, Alphabet, TokenStreams

__all__ = ["ANNOTATORS", "DATASETS", "LAYERS", "SPLITS", "box_iou", "box_iou_penalised", "evaluate_dataset", "evaluate_jkupdd",
           "default_path", "evaluate_piece", "load_bps", "load_jkupdd", "pattern_matches", "pattern_points", "split_pieces"]

ANNOTATORS = {
    "polyphonic": ("barlowAndMorgensternRevised", "bruhn", "schoenberg", "sectionalRepetitions", "tomCollins"),
    "monophonic": ("barlowAndMorgenstern", "barlowAndMorgensternRevised", "bruhn", "schoenberg",
                   "sectionalRepetitions", "tomCollins"),
}
Points = list[tuple[float, float]]
DATASETS = ("jkupdd", "bps")
SPLITS = ("all", "tune", "test")
LAYERS = ("patterns", "motifs")
Piece = tuple[str, Notes, list[list[Points]]]


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


def load_bps(root: str | Path) -> list[Piece]:
    """``(movement, notes, annotated motifs)`` for the BPS-motif movements at ``root``.

    Notes come from ``csv_notes/NN-1.csv`` (header row; onset and duration in crotchet beats,
    MIDI and morphetic pitch, staff as the voice, the measure: a measure starts at the first
    onset of a run of notes with its number, :func:`_measure_starts`); each motif type of ``motif_notes/NN/`` is one pattern
    whose occurrences are its ``<type>-<k>.csv`` files (onset, MIDI pitch, ...).
    """
    import csv  # noqa: PLC0415

    root = Path(root)
    files = sorted((root / "csv_notes").glob("*.csv")) if root.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{root}: no BPS-motif movements (expected csv_notes/NN-1.csv and motif_notes/NN/)")
    out = []
    for f in files:
        with f.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise FileNotFoundError(f"{f}: no notes")
        staff = np.array([int(float(r["staff_number"])) for r in rows])
        notes = Notes.from_arrays(
            f.stem, onset=[round(float(r["onset"]), 3) for r in rows], pitch=[int(float(r["midi_number"])) for r in rows],
            duration=[round(float(r["duration"]), 3) for r in rows], voice=staff,
            voice_names=tuple(f"staff{s}" for s in range(int(staff.max()) + 1)), title=f.stem,
            morph=_fill_spelling([r["morphetic_number"] for r in rows], [int(float(r["midi_number"])) for r in rows]),
            bars=_measure_starts([float(r["onset"]) for r in rows], [r["measure"] for r in rows]))
        by_type: dict[str, list[tuple[int, Points]]] = {}
        folder = root / "motif_notes" / f.stem.split("-")[0]
        for occ in folder.glob("*.csv"):
            kind, _, k = occ.stem.rpartition("-")
            table = np.loadtxt(occ, delimiter=",", ndmin=2)
            points = [(round(float(t), 2), float(round(p))) for t, p in table[:, :2]]
            by_type.setdefault(kind, []).append((int(k), points))
        if not by_type:  # scored, it would count as a movement where nothing was found
            raise FileNotFoundError(f"{f.stem}: no annotated motifs (expected {folder}/<type>-<k>.csv); "
                                    "give --path a folder of annotated movements only")
        ref = [[pts for _, pts in sorted(occs, key=lambda o: o[0])] for _, occs in sorted(by_type.items())]
        out.append((f.stem, notes, ref))
    return out


def _measure_starts(onset: list[float], measure: list[str]) -> list[float] | None:
    """Where a BPS-motif movement's measures start: the first onset of each run of notes (in onset
    order) that share a measure number (the numbers start again where the movement repeats); a
    measure that opens with a rest starts late, at its first note. ``None`` without numbers.

    >>> _measure_starts([0, 1, 2, 2.5, 4, 0.5], ["1", "1", "2", "2", "1", "1"])
    [0.0, 2.0, 4.0]
    """
    runs: list[float] = []
    last = None
    for t, m in sorted(zip(onset, measure, strict=True), key=lambda x: x[0]):
        if m.strip() and m != last:
            runs.append(round(float(t), 3))
            last = m
    return runs or None


def _fill_spelling(morph: list[str], midi: list[int]) -> list[int] | None:
    """Morphetic pitches of a BPS-motif movement, a blank one (a few notes have none) taken from the
    commonest spelling of the same MIDI pitch in the movement; ``None`` (estimate them all) if none has one."""
    known: dict[int, list[int]] = {}
    for m, p in zip(morph, midi, strict=True):
        if m.strip():
            known.setdefault(p, []).append(int(float(m)))
    out = []
    for m, p in zip(morph, midi, strict=True):
        if m.strip():
            out.append(int(float(m)))
        elif p in known:
            out.append(max(set(known[p]), key=known[p].count))
        else:
            return None
    return out


def split_pieces(pieces: list[Piece], split: str) -> list[Piece]:
    """The tuning half (even positions in name order), the test half (odd positions) or all."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    ordered = sorted(pieces, key=lambda p: p[0])
    if split == "all":
        return ordered
    return ordered[split == "test" :: 2]


def pattern_points(notes: Notes, found: list[Any]) -> list[list[Points]]:
    """Found patterns as MIREX point sets ``(onset in beats, MIDI pitch)``."""
    return [
        [[(round(float(notes.onset[i]), 2), float(notes.pitch[i])) for i in idx] for _, idx in p.occurrences]
        for p in found
    ]


def box_iou(reference: list[list[Points]], estimated: list[list[Points]]) -> float:
    """Mean IoU of one-to-one (Hungarian) matched occurrence boxes; 0 if either side is empty."""
    iou = _matched_iou(reference, estimated)
    return float(iou.mean()) if len(iou) else 0.0


def box_iou_penalised(reference: list[list[Points]], estimated: list[list[Points]]) -> float:
    """Like :func:`box_iou`, but boxes of either side without an overlapping partner count as 0.

    Examples
    --------
    >>> ref = [[[(0.0, 60.0), (1.0, 62.0)], [(4.0, 60.0), (5.0, 62.0)]]]
    >>> box_iou_penalised(ref, ref), box_iou_penalised(ref, [ref[0][:1]])
    (1.0, 0.5)
    """
    n_ref = sum(len(p) for p in reference)
    n_est = sum(len(p) for p in estimated)
    iou = _matched_iou(reference, estimated)
    overlapping = int(np.sum(iou > 0))
    total = n_ref + n_est - overlapping
    return float(iou.sum() / total) if total else 0.0


def _matched_iou(reference: list[list[Points]], estimated: list[list[Points]]) -> np.ndarray:
    """IoUs of the one-to-one (Hungarian) matching of reference and found occurrence boxes."""
    ref = [_box(o) for p in reference for o in p]
    est = [_box(o) for p in estimated for o in p]
    if not ref or not est:
        return np.zeros(0)
    r, e = np.array(ref), np.array(est)
    t0, t1 = np.maximum(r[:, None, 0], e[None, :, 0]), np.minimum(r[:, None, 1], e[None, :, 1])
    p0, p1 = np.maximum(r[:, None, 2], e[None, :, 2]), np.minimum(r[:, None, 3], e[None, :, 3])
    inter = np.clip(t1 - t0, 0, None) * np.clip(p1 - p0, 0, None)
    area = lambda b: (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])  # noqa: E731
    union = area(r)[:, None] + area(e)[None, :] - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    rows, cols = linear_sum_assignment(-iou)
    return iou[rows, cols]


def _box(occ: Points) -> tuple[float, float, float, float]:
    """A box with a floor of one beat and one semitone, so a single line still has an area."""
    t = [x for x, _ in occ]
    p = [y for _, y in occ]
    return (min(t), max(max(t), min(t) + 1.0), min(p) - 0.5, max(p) + 0.5)


def pattern_matches(reference: list[list[Points]], estimated: list[list[Points]]) -> np.ndarray:
    """The establishment matrix: ``S[i, j]``, how well found pattern ``j`` matches annotated
    pattern ``i`` (its best pair of occurrences: the notes they share over the larger one's size).

    As ``mir_eval.pattern.establishment_FPR`` computes it: the mean over ``j`` of ``S[:, j].max()``
    is the establishment precision, the mean over ``i`` of ``S[i].max()`` the recall. Per found
    pattern it says which annotated pattern it is and how closely, or that it matches none (0).

    Examples
    --------
    >>> ref = [[[(0.0, 60.0), (1.0, 62.0), (2.0, 64.0), (3.0, 65.0)]]]
    >>> pattern_matches(ref, [[[(1.0, 62.0), (2.0, 64.0)]], [[(9.0, 40.0)]]]).tolist()
    [[0.5, 0.0]]
    """
    ref = [[(set(o), len(o)) for o in p] for p in reference]  # a point twice in an occurrence counts twice in its size
    est = [[(set(o), len(o)) for o in p] for p in estimated]
    out = np.zeros((len(ref), len(est)))
    for i, r in enumerate(ref):
        for j, e in enumerate(est):
            out[i, j] = max((len(a & b) / max(m, n) for a, m in r for b, n in e if m or n), default=0.0)
    return out


def evaluate_piece(reference: list[list[Points]], estimated: list[list[Points]]) -> dict[str, float]:
    """All metrics for one piece (0 for every metric when nothing was found)."""
    import mir_eval  # noqa: PLC0415

    if not estimated:
        return {k: 0.0 for k in ("F_est", "P_est", "R_est", "F_occ_75", "F_occ_50", "F_3", "box_iou",
                                 "box_iou_penalised", "n_patterns")}
    f_est, p_est, r_est = mir_eval.pattern.establishment_FPR(reference, estimated)
    f_75, _, _ = mir_eval.pattern.occurrence_FPR(reference, estimated, thres=0.75)
    f_50, _, _ = mir_eval.pattern.occurrence_FPR(reference, estimated, thres=0.5)
    f_3, _, _ = mir_eval.pattern.three_layer_FPR(reference, estimated)
    return {
        "F_est": f_est, "P_est": p_est, "R_est": r_est, "F_occ_75": f_75, "F_occ_50": f_50, "F_3": f_3,
        "box_iou": box_iou(reference, estimated), "box_iou_penalised": box_iou_penalised(reference, estimated),
        "n_patterns": float(len(estimated)),
    }


def find_patterns(notes: Notes, method: str, config: DiscoverConfig | None = None, level: str = "all",
                  layer: str = "patterns") -> list[Any]:
    """Patterns of one piece by ``method`` (``words``, ``bpe`` or ``ngram``), all or one level's, of one
    layer: ``patterns`` (what saves the most bits) or ``motifs`` (the motif layer, by compression ratio)."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    if method not in ("words", "bpe", "ngram"):
        raise ValueError(f"method must be 'words', 'bpe' or 'ngram', got {method!r}")
    if level != "all" and level not in LEVELS:
        raise ValueError(f"level must be 'all' or one of {LEVELS}, got {level!r}")
    learn = None
    if method != "words":
        def learn(tokens: TokenStreams, alphabet: Alphabet) -> Dictionary:
            t = tokens.tokens
            words = frequent_merges(t, min_count=2, max_merges=200) if method == "bpe" else _ngram_words(t, n=7)
            return counting_dictionary(t, alphabet, words)
        # the baseline's words are the motif layer's candidates too (the layer's own learner set aside)
        config = dataclasses.replace(config or DiscoverConfig(), motif_words="mdl")
    if layer == "patterns":  # the motif layer (its own dictionary) is not scored
        config = dataclasses.replace(config or DiscoverConfig(), motif_ratio=None)
    result = discover([notes], config, learn=learn)
    found = result.motifs if layer == "motifs" else result.patterns
    return [p for p in found if level in ("all", p.level)]


def evaluate_jkupdd(root: str | Path, *, method: str = "words", config: DiscoverConfig | None = None,
                    split: str = "all") -> dict[str, Any]:
    """Mean metrics over the five pieces, per version: ``{"polyphonic": {...}, "monophonic": {...}}``."""
    return {version: _score(split_pieces(load_jkupdd(root, version), split), method, config)
            for version in ("polyphonic", "monophonic")}


def evaluate_dataset(dataset: str, root: str | Path, *, method: str = "words", config: DiscoverConfig | None = None,
                     split: str = "all", level: str = "all", progress: Any = None,
                     layer: str = "patterns", per_pattern: bool = False, spelled: bool = True) -> dict[str, Any]:
    """Mean metrics of ``method`` on an annotated set, per version of it (``jkupdd``: polyphonic
    and monophonic; ``bps``: polyphonic), each with its per-piece rows under ``"pieces"``. With
    ``per_pattern``, ``progress`` also gets a line per found pattern: its statements, where it is
    first heard, and the annotated pattern it matches best (:func:`pattern_matches`). Without
    ``spelled``, the notes' spelling is dropped, as MIDI has none (:mod:`musicwords.spelling`
    estimates it)."""
    if dataset == "jkupdd":
        sets = {version: load_jkupdd(root, version) for version in ("polyphonic", "monophonic")}
    elif dataset == "bps":
        sets = {"polyphonic": load_bps(root)}
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if not spelled:
        sets = {v: [(name, dataclasses.replace(notes, morph=None), ref) for name, notes, ref in pieces]
                for v, pieces in sets.items()}
    return {version: _score(split_pieces(pieces, split), method, config, level, progress, layer, per_pattern,
                            tag=f"{version} " if len(sets) > 1 else "")  # several versions: each line names its own
            for version, pieces in sets.items()}


def _score(pieces: list[Piece], method: str, config: DiscoverConfig | None, level: str = "all",
           progress: Any = None, layer: str = "patterns", per_pattern: bool = False, tag: str = "") -> dict[str, Any]:
    rows = {}
    for name, notes, ref in pieces:
        found = find_patterns(notes, method, config, level, layer)
        est = pattern_points(notes, found)
        rows[name] = evaluate_piece(ref, est)
        if progress is not None:
            progress(f"{tag}{name}: " + " ".join(f"{k}={v:.3f}" for k, v in rows[name].items()))
            if per_pattern:
                _say_matches(tag + name, notes, found, pattern_matches(ref, est), progress)
    keys = next(iter(rows.values())).keys()
    out: dict[str, Any] = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    out["pieces"] = rows
    return out


def _say_matches(name: str, notes: Notes, found: list[Any], matches: np.ndarray, progress: Any) -> None:
    """A line per found pattern: what it is and the annotated pattern (1-based) it matches best."""
    for j, p in enumerate(found):
        sizes = [len(idx) for _, idx in p.occurrences]
        first = min(float(notes.onset[idx].min()) for _, idx in p.occurrences)
        best = int(matches[:, j].argmax()) if len(matches) else 0
        match = (f"best match: annotated pattern {best + 1} of {len(matches)}, {matches[best, j]:.2f}"
                 if len(matches) and matches[best, j] > 0 else "matches no annotated pattern")
        length = f"{min(sizes)}" if min(sizes) == max(sizes) else f"{min(sizes)}-{max(sizes)}"
        progress(f"  {name} #{j + 1} {p.level} w{p.word}: {len(sizes)} statements of {length} notes, "
                 f"first at beat {first:g}; {match}")


# --------------------------------------------------------------------------------------------
# baselines


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


def default_path(dataset: str) -> str | None:
    """The set's env var (``JKUPDD``, ``BPS_MOTIF``), else its folder under ``../shared/data``, if present."""
    env = os.environ.get({"jkupdd": "JKUPDD", "bps": "BPS_MOTIF"}[dataset])
    if env:
        return env
    folder = {"jkupdd": "jkupdd", "bps": "bps-motif-dev"}[dataset]
    here = Path(__file__).resolve().parents[2] / "shared" / "data" / folder
    return str(here) if here.is_dir() else None
