"""``python -m musicwords``: discover music-words in files, or evaluate against human annotations (JKUPDD, BPS-motif)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from musicwords.notes import NotesError


def main(argv: list[str] | None = None) -> int:
    from musicwords.discover import MOTIF_WORDS, DiscoverConfig, motif_bars_arg  # noqa: PLC0415
    from musicwords.evaluate import DATASETS, LAYERS, SPLITS  # noqa: PLC0415
    from musicwords.reconstruct import LEVELS  # noqa: PLC0415
    from musicwords.voices import METHODS  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m musicwords", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("discover", help="find the recurring patterns of each input file",
                       description="Writes, per input: <stem>.patterns.txt (MIREX format, ranked by bits saved; "
                                   "onsets in beats) and <stem>.patterns.<level>.txt per level (motif, phrase, section), "
                                   "<stem>.motifs.txt (the motif layer, MIREX format, best compression ratio first), "
                                   "<stem>.tree.txt (the words spelled in words), "
                                   "<stem>.words/w<id>.musicxml (each word as a score), "
                                   "<stem>.dictionary.parquet/.json, <stem>.occurrences.parquet, "
                                   "<stem>.words.mid (one track per word), <stem>.pianoroll.png and <stem>.words.png.")
    d.add_argument("files", nargs="+", help="MIDI, MusicXML/kern/abc, or JKUPDD-style note CSV files")
    d.add_argument("--out", default=".", help="output folder (default: current folder)")
    e = sub.add_parser("evaluate", help="score discovery against human pattern annotations (JKUPDD or BPS-motif)")
    e.add_argument("--dataset", choices=DATASETS, default="jkupdd", help="annotated set (default: %(default)s)")
    e.add_argument("--path", "--jkupdd", dest="path", default=None,
                   help="the set's folder (default: $JKUPDD or $BPS_MOTIF, else ../shared/data/jkupdd or bps-motif-dev)")
    e.add_argument("--split", choices=SPLITS, default="all",
                   help="pieces scored: the tuning half (even positions in name order), the test half (odd) or all "
                        "(default: %(default)s)")
    e.add_argument("--null", choices=("unigram", "markov"), default=DiscoverConfig.null,
                   help="null model of the savings: the unigram token model, or the idiom of the rest of the music "
                        "(musicwords.idiom) (default: %(default)s)")
    e.add_argument("--level", choices=("all", *LEVELS), default="all",
                   help="score the patterns of one level of the word grammar only (default: %(default)s)")
    e.add_argument("--layer", choices=LAYERS, default="patterns",
                   help="score the patterns that save the most bits (themes, sections) or the motif layer (short units "
                        "that recur many times, chosen by compression ratio) (default: %(default)s)")
    e.add_argument("--per-piece", action="store_true", help="also print each piece's figures (to stderr as they come)")
    e.add_argument("--per-pattern", action="store_true",
                   help="also print each found pattern with the annotated pattern it matches best and how closely "
                        "(0: it matches none; to stderr, with --per-piece's lines)")
    e.add_argument("--method", choices=("words", "bpe", "ngram"), default="words", help="method (default: %(default)s)")
    e.add_argument("--json", action="store_true", help="print one JSON object with the means")
    e.add_argument("--no-spelling", dest="spelled", action="store_false",
                   help="drop the annotated notes' spelling (morphetic pitch), as MIDI input has none: diatonic "
                        "tokens then spell the notes by musicwords.spelling's estimate")
    e.add_argument("--significance", type=_significance, default=DiscoverConfig.significance,
                   help="report a word only if its saving is this unlikely by chance, or 'none': every saving word "
                        "(default: %(default)s; for a sensitivity check, not per-piece tuning)")
    m = e.add_argument_group("the motif layer (for ablations; the defaults are the one configuration)")
    m.add_argument("--motif-voices", choices=(*METHODS, "none"), default=DiscoverConfig.motif_voices,
                   help="streams the motif dictionary is learnt on; none: the patterns' streams (default: %(default)s)")
    m.add_argument("--max-motif-notes", type=_max_notes, default=DiscoverConfig.max_motif_notes,
                   help="longest motif in notes, or 'none' (default: %(default)s)")
    m.add_argument("--motif-words", choices=MOTIF_WORDS, default=DiscoverConfig.motif_words,
                   help="candidate words: a dictionary learnt like the patterns' (mdl), frequency merges (heard 3 "
                        "times or more, then more often than the idiom predicts), or both: the MDL words' motifs "
                        "first, then the merges' in the notes left (default: %(default)s)")
    m.add_argument("--motif-bars", type=motif_bars_arg, default=DiscoverConfig.motif_bars,
                   help="a motif shorter than this many measures has its statements filled out to it along their "
                        "line, or 'none' (pieces without measures are left as found) (default: %(default)s)")
    m.add_argument("--no-texture", dest="texture", action="store_false",
                   help="keep figuration (a cell repeated in place, two lines in alternation) among the motifs")
    m.add_argument("--motifs-anywhere", dest="motif_in_melody", action="store_false",
                   help="keep motifs never heard as melody (only under the melody of a keyboard texture)")
    args = parser.parse_args(argv)
    try:
        if args.command == "discover":
            return _discover(args.files, Path(args.out))
        return _evaluate(args)
    except (NotesError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _discover(files: list[str], out: Path) -> int:
    """Discover patterns in each file on its own; write its outputs beside each other in ``out``."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    from musicwords.discover import discover  # noqa: PLC0415
    from musicwords.evaluate import pattern_points  # noqa: PLC0415
    from musicwords.io import read_notes  # noqa: PLC0415
    from musicwords.mirex import write_patterns  # noqa: PLC0415
    from musicwords.reconstruct import LEVELS  # noqa: PLC0415
    from musicwords.report import (  # noqa: PLC0415
        dictionary_table,
        occurrences_table,
        piece_table,
        plot_piano_roll,
        plot_words,
        word_musicxml,
        word_tree,
        words_midi,
    )

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
        stem = str(out / Path(name).stem)
        d = result.dictionary
        Path(f"{stem}.patterns.txt").write_text(write_patterns(pattern_points(notes, result.patterns)))
        for level in LEVELS:
            at_level = [p for p in result.patterns if p.level == level]
            Path(f"{stem}.patterns.{level}.txt").write_text(write_patterns(pattern_points(notes, at_level)))
        Path(f"{stem}.motifs.txt").write_text(write_patterns(pattern_points(notes, result.motifs)))
        tree = word_tree(result)
        Path(f"{stem}.tree.txt").write_text("\n".join(tree) + "\n")
        words = dictionary_table(result)
        folder = Path(f"{stem}.words")
        folder.mkdir(exist_ok=True)
        for row in words.to_pylist():
            (folder / f"w{row['word_id']}.musicxml").write_bytes(word_musicxml(row, f"word {row['word_id']}"))
        pq.write_table(words, f"{stem}.dictionary.parquet")
        pq.write_table(occurrences_table(result), f"{stem}.occurrences.parquet")
        piece = piece_table(result).to_pylist()[0]
        summary = {
            "piece_id": notes.piece_id, "source": name, "notes": len(notes), "voices": list(result.streams[0].names),
            "code_length_bits": d.code_length, "dictionary_bits": d.dict_bits, "data_bits": d.data_bits,
            "code_length_history": d.history, "piece": piece, "alphabet": d.alphabet.to_json(),
            "words": words.to_pylist(), "tree": tree,
            "motifs": dictionary_table(result, motifs=True).to_pylist(),
        }
        Path(f"{stem}.dictionary.json").write_text(json.dumps(summary, indent=1))
        Path(f"{stem}.words.mid").write_bytes(words_midi(result))
        plot_piano_roll(result, f"{stem}.pianoroll.png")
        plot_words(result, f"{stem}.words.png")
        print(f"{name}: {len(result.patterns)} patterns; {d.history[0]:,.0f} -> {d.code_length:,.0f} bits "
              f"(compression {piece['compression_ratio']:.2f}); wrote {stem}.*")
    return 1 if failed else 0


def _significance(text: str) -> float | None:
    from musicwords.reconstruct import check_significance  # noqa: PLC0415

    value = None if text.lower() == "none" else float(text)
    try:
        check_significance(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def _max_notes(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of notes or 'none', got {text!r}") from None
    from musicwords.discover import DiscoverConfig  # noqa: PLC0415

    if value < DiscoverConfig.min_motif_notes:
        raise argparse.ArgumentTypeError(f"must be >= the shortest motif ({DiscoverConfig.min_motif_notes}), got {value}")
    return value


def _evaluate(args: argparse.Namespace) -> int:
    from musicwords.discover import DiscoverConfig  # noqa: PLC0415
    from musicwords.evaluate import default_path, evaluate_dataset  # noqa: PLC0415

    path = args.path or default_path(args.dataset)
    if not path:
        raise FileNotFoundError(f"no {args.dataset} folder: pass --path DIR or set "
                                f"{'JKUPDD' if args.dataset == 'jkupdd' else 'BPS_MOTIF'}")
    progress = (lambda line: print(line, file=sys.stderr, flush=True)) if args.per_piece or args.per_pattern else None
    result = evaluate_dataset(args.dataset, path, method=args.method, split=args.split, level=args.level,
                              progress=progress, layer=args.layer, per_pattern=args.per_pattern, spelled=args.spelled,
                              config=DiscoverConfig(significance=args.significance, null=args.null,
                                                    motif_voices=None if args.motif_voices == "none" else args.motif_voices,
                                                    max_motif_notes=args.max_motif_notes, texture=args.texture,
                                                    motif_words=args.motif_words, motif_in_melody=args.motif_in_melody,
                                                    motif_bars=args.motif_bars))
    means = {v: {k: round(x, 4) for k, x in r.items() if k != "pieces"} for v, r in result.items()}
    if args.json:
        print(json.dumps(means))
        return 0
    for version, row in means.items():
        print(f"{version:<11} " + "  ".join(f"{k}={x:.3f}" for k, x in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
