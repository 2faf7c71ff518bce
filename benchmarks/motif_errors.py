"""Where the motif layer loses establishment F on BPS-motif: an error analysis of one half.

Establishment P is the mean, over found motifs, of how well each matches its best annotated
motif (mir_eval's cardinality score of the best pair of occurrences); R the mean, over annotated
motifs, of how well the best found one matches. This prints, for the half given:

- the found motifs that match nothing (best score under 0.2) and what P and F would be with them
  dropped by an oracle that knows the annotations: a ceiling for any filter of found motifs;
- the annotated motifs by the median length of their occurrences, with how well they are found;
- for found motifs that do match, where their best occurrence differs from the annotated one:
  notes missing or extra before the annotated start, after its end, inside, or sounding with it.

It tunes nothing; it says which part of the gap a rule could close. Use the tuning half
(the default): the test half is for the figures of the README.

    python benchmarks/motif_errors.py [--split tune|test] [--path DIR]
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

import numpy as np

from musicwords.evaluate import (
    default_path,
    evaluate_piece,
    find_patterns,
    load_bps,
    pattern_matches,
    pattern_points,
    split_pieces,
)

JUNK = 0.2  # a found motif whose best match is under this matches nothing


def _where(missing: set[tuple[float, float]], other: set[tuple[float, float]]) -> Counter[str]:
    """Each note of ``missing`` placed against the notes of ``other``: before, after, inside, or with one."""
    onsets = {t for t, _ in other}
    lo, hi = min(onsets), max(onsets)
    return Counter("sounding with" if t in onsets else "before" if t < lo else "after" if t > hi else "inside"
                   for t, _ in missing)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tune", "test"), default="tune")
    ap.add_argument("--path", default=default_path("bps"))
    args = ap.parse_args()
    pieces = split_pieces(load_bps(args.path), args.split)
    scores, oracle = [], []
    found_best: list[float] = []
    by_length: dict[int, list[float]] = defaultdict(list)
    missing, extra = Counter[str](), Counter[str]()
    for name, notes, ref in pieces:
        est = pattern_points(notes, find_patterns(notes, "words", layer="motifs"))
        scores.append(evaluate_piece(ref, est))
        matches = pattern_matches(ref, est)  # (annotated, found)
        best_found = matches.max(axis=0) if matches.size else np.zeros(len(est))
        found_best += best_found.tolist()
        oracle.append(evaluate_piece(ref, [p for p, b in zip(est, best_found, strict=True) if b >= JUNK]))
        best_ref = matches.max(axis=1) if matches.size else np.zeros(len(ref))
        for pattern, b in zip(ref, best_ref, strict=True):
            by_length[min(int(np.median([len(o) for o in pattern])), 12)].append(float(b))
        for j, found in enumerate(est):
            i = int(matches[:, j].argmax()) if matches.size else 0
            if not matches.size or matches[i, j] < JUNK:
                continue
            pairs = [({tuple(x) for x in a}, {tuple(x) for x in b}) for a in ref[i] for b in found]
            a, b = max(pairs, key=lambda ab: len(ab[0] & ab[1]) / max(len(ab[0]), len(ab[1])))
            missing += _where(a - b, b)
            extra += _where(b - a, a)
        print(f"{name}: F_est {scores[-1]['F_est']:.3f}, {len(est)} motifs, {int((best_found < JUNK).sum())} match nothing",
              flush=True)

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    print(f"\n{args.split} half, {len(pieces)} movements: F_est {mean(scores, 'F_est'):.3f} "
          f"(P {mean(scores, 'P_est'):.3f}, R {mean(scores, 'R_est'):.3f})")
    junk = float(np.mean(np.array(found_best) < JUNK))
    print(f"found motifs matching nothing (best < {JUNK}): {junk:.0%} of {len(found_best)}; "
          f"dropped by an oracle: F_est {mean(oracle, 'F_est'):.3f} (P {mean(oracle, 'P_est'):.3f}, "
          f"R {mean(oracle, 'R_est'):.3f})")
    print("annotated motifs by median notes per occurrence (12: 12 or more): count, mean best match")
    for length in sorted(by_length):
        print(f"  {length:>2}: {len(by_length[length]):>3}  {np.mean(by_length[length]):.3f}")
    print("matched motifs, best pair of occurrences: annotated notes missing / found notes extra, "
          "placed against the other occurrence")
    for place in ("before", "after", "inside", "sounding with"):
        print(f"  {place:>13}: {missing[place]:>4} / {extra[place]:>4}")


if __name__ == "__main__":
    main()
