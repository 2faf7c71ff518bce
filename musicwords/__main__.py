"""``python -m musicwords``: discover music-words in files, or evaluate against JKUPDD."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from musicwords.notes import NotesError


def main(argv: list[str] | None = None) -> int:
    from musicwords.evaluate import _jkupdd_default  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m musicwords", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("discover", help="find the recurring patterns of each input file",
                       description="Writes, per input, <stem>.patterns.txt (MIREX format, ranked by bits saved), "
                                   "<stem>.dictionary.json and <stem>.occurrences.csv.")
    d.add_argument("files", nargs="+", help="MIDI, MusicXML/kern/abc, or JKUPDD-style note CSV files")
    d.add_argument("--out", default=".", help="output folder (default: current folder)")
    e = sub.add_parser("evaluate", help="score discovery against JKUPDD's human annotations")
    e.add_argument("--jkupdd", default=_jkupdd_default(), help="JKUPDD folder (default: $JKUPDD or ../shared/data/jkupdd)")
    e.add_argument("--method", choices=("words", "bpe", "ngram"), default="words", help="method (default: %(default)s)")
    e.add_argument("--json", action="store_true", help="print one JSON object with the means")
    args = parser.parse_args(argv)
    try:
        if args.command == "discover":
            return _discover(args.files, Path(args.out))
        return _evaluate(args)
    except (NotesError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _discover(files: list[str], out: Path) -> int:
    from musicwords.discover import discover  # noqa: PLC0415
    from musicwords.evaluate import pattern_points  # noqa: PLC0415
    from musicwords.io import read_notes  # noqa: PLC0415
    from musicwords.mirex import write_patterns  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in files:
        try:
            notes = read_notes(name)
            result = discover([notes])
        except NotesError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        stem = out / Path(name).stem
        d = result.dictionary
        (stem.parent / f"{stem.name}.patterns.txt").write_text(write_patterns(pattern_points(notes, result.patterns)))
        words = [
            {"word_id": int(p.word), "tokens": d.describe(p.word), "notes": len(d.words[p.word]) + 1,
             "occurrences": len(p.occurrences), "bits_saved": round(p.bits_saved, 2), "prob": float(np.exp(d.logp[p.word]))}
            for p in result.patterns
        ]
        summary = {"piece": notes.piece_id, "notes": len(notes), "code_length_bits": d.code_length,
                   "code_length_history": d.history, "compression_ratio": d.history[0] / d.code_length,
                   "alphabet": d.alphabet.to_json(), "patterns": words}
        (stem.parent / f"{stem.name}.dictionary.json").write_text(json.dumps(summary, indent=1))
        lines = ["piece_id,word_id,start,end,pitch_lo,pitch_hi,notes"]
        for o in result.occurrences:
            members = " ".join(map(str, o.notes.tolist()))
            lines.append(f"{notes.piece_id},{o.word},{o.start:g},{o.end:g},{o.pitch_lo},{o.pitch_hi},{members}")
        (stem.parent / f"{stem.name}.occurrences.csv").write_text("\n".join(lines) + "\n")
        print(f"{name}: {len(result.patterns)} patterns, {d.history[0]:,.0f} → {d.code_length:,.0f} bits -> {stem}.patterns.txt")
    return 1 if failed else 0


def _evaluate(args: argparse.Namespace) -> int:
    from musicwords.evaluate import evaluate_jkupdd  # noqa: PLC0415

    if not args.jkupdd:
        raise FileNotFoundError("no JKUPDD folder: pass --jkupdd PATH or set JKUPDD")
    result = evaluate_jkupdd(args.jkupdd, method=args.method)
    means = {v: {k: round(x, 4) for k, x in r.items() if k != "pieces"} for v, r in result.items()}
    if args.json:
        print(json.dumps(means))
        return 0
    for version, row in means.items():
        print(f"{version:<11} " + "  ".join(f"{k}={x:.3f}" for k, x in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
