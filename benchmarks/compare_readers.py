"""The direct MusicXML and kern readers against music21, file by file, over the whole music21 corpus.

Run: ``.venv/bin/python benchmarks/compare_readers.py [--jobs 2] [--only krn,mxl] [--limit N] [--results F.jsonl]``
(the whole corpus: about 30 min of one core, nearly all of it music21).

For every ``.krn .xml .mxl .musicxml`` file that ships in ``music21/corpus`` it reads the notes
twice, in the same process: ``read_score(reader="music21")`` (the reference) and
``read_score(reader="fast")`` (the direct reader alone), and prints per format how many files

* agree exactly: the same onsets, durations, pitches, spellings (morphetic pitch) and voices,
  note for note (and how many
  of those also have the same voice names, title, tempo, measures (where each starts, and the
  number of the first) and key signatures (where each is written, and its sharps or flats));
* the direct reader leaves to music21 (its ``Unsupported``, with the reasons counted): these
  files are read by music21 in the job, so they agree by construction;
* differ, with the first difference of each (the script exits 1 if any does);
* fail in one reader or both (the error texts);

and the parse time per file of each reader, with their ratio (same process, same files).
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import sys
import time
import warnings
from pathlib import Path
from typing import Any

SUFFIXES = (".krn", ".xml", ".mxl", ".musicxml")


def _compare(path: str) -> dict[str, Any]:
    import numpy as np

    from musicwords.io import read_score
    from musicwords.kern import Unsupported as KernUnsupported
    from musicwords.musicxml import Unsupported as XmlUnsupported
    from musicwords.notes import NotesError

    warnings.simplefilter("ignore")
    p = Path(path)
    out: dict[str, Any] = {"path": path, "format": p.suffix.lower().lstrip(".")}
    t0 = time.perf_counter()
    try:
        ref = read_score(p, reader="music21")
        out["ref_error"] = None
    except NotesError as e:
        ref, out["ref_error"] = None, str(e)
    t1 = time.perf_counter()
    try:
        fast = read_score(p, reader="fast")
        out["fast_error"] = None
    except (KernUnsupported, XmlUnsupported) as e:
        fast, out["fast_error"] = None, None
        out["unsupported"] = str(e)
    except NotesError as e:
        fast, out["fast_error"] = None, str(e)
    t2 = time.perf_counter()
    out["t_ref"], out["t_fast"] = t1 - t0, t2 - t1
    if ref is not None and fast is not None:
        diffs = []
        if len(ref) != len(fast):
            diffs.append(f"{len(ref)} notes vs {len(fast)}")
        for k in ("voice", "onset", "pitch", "duration", "morph"):
            a, b = getattr(ref, k), getattr(fast, k)
            if len(a) == len(b) and not np.array_equal(a, b):
                i = int(np.flatnonzero(a != b)[0])
                diffs.append(f"{k} differs at note {i} (voice {ref.voice[i]}, onset {ref.onset[i]}): {a[i]} vs {b[i]}")
                break
        if len(ref) != len(fast):  # where the first note differs
            n = min(len(ref), len(fast))
            for i in range(n):
                if (ref.voice[i], ref.onset[i], ref.pitch[i]) != (fast.voice[i], fast.onset[i], fast.pitch[i]):
                    diffs.append(f"first difference at note {i}: voice/onset/pitch {ref.voice[i]}/{ref.onset[i]}/"
                                 f"{ref.pitch[i]} vs {fast.voice[i]}/{fast.onset[i]}/{fast.pitch[i]}")
                    break
        out["diffs"] = diffs
        meta = []
        if ref.voice_names != fast.voice_names:
            meta.append(f"names {ref.voice_names} vs {fast.voice_names}")
        if ref.title != fast.title:
            meta.append(f"title {ref.title!r} vs {fast.title!r}")
        if ref.tempo_bpm != fast.tempo_bpm:
            meta.append(f"tempo {ref.tempo_bpm} vs {fast.tempo_bpm}")
        ref_bars, fast_bars = ([] if b is None else b.tolist() for b in (ref.bars, fast.bars))
        if ref_bars != fast_bars:
            shorter = min(len(ref_bars), len(fast_bars))
            at = next((i for i in range(shorter) if ref_bars[i] != fast_bars[i]), shorter)
            meta.append(f"measures {len(ref_bars)} vs {len(fast_bars)}, the first other at measure {at}: "
                        f"{ref_bars[at:at + 2]} vs {fast_bars[at:at + 2]}")
        elif ref.first_bar != fast.first_bar:
            meta.append(f"first-bar-number {ref.first_bar} vs {fast.first_bar}")
        ref_keys, fast_keys = ([] if k is None else k.tolist() for k in (ref.keys, fast.keys))
        if ref_keys != fast_keys:
            meta.append(f"key-signatures {ref_keys[:3]} vs {fast_keys[:3]}")
        out["meta"] = meta
    return out


def main() -> None:
    import music21

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="processes (default: %(default)s)")
    parser.add_argument("--only", default=",".join(s.lstrip(".") for s in SUFFIXES), help="formats (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files per format, spread over the list")
    parser.add_argument("--results", default=None,
                        help="append each file's result to this JSON-lines file as it comes (a long run can be "
                             "stopped and summarised; files already in it are not read again)")
    parser.add_argument("--summarize", action="store_true", help="only print the summary of --results")
    args = parser.parse_args()
    root = Path(music21.__file__).parent / "corpus"
    formats = {"." + f.strip().lstrip(".") for f in args.only.split(",")}
    by: dict[str, list[str]] = collections.defaultdict(list)
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in formats:
            by[p.suffix.lower()].append(str(p))
    if args.limit:
        by = {k: fs[:: max(1, len(fs) // args.limit)][: args.limit] for k, fs in by.items()}
    # formats interleaved, each spread over its list: a run stopped early has seen some of everything
    order = {f: (i / len(fs), k) for k, fs in by.items() for i, f in enumerate(fs[::2] + fs[1::2])}
    files = sorted(order, key=order.__getitem__)
    results: list[dict[str, Any]] = []
    if args.results and Path(args.results).exists():
        results = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
        seen = {r["path"] for r in results}
        results = [r for r in results if r["path"] in order]
        files = [f for f in files if f not in seen]
    if not args.summarize:
        print(f"{len(files)} files to compare under {root}", flush=True)
        sink = open(args.results, "a") if args.results else None  # noqa: SIM115
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for r in pool.imap_unordered(_compare, files, chunksize=1):
                results.append(r)
                if sink:
                    sink.write(json.dumps(r) + "\n")
                    sink.flush()
        if sink:
            sink.close()
    total = sum(len(fs) for fs in by.values())
    print(f"{len(results)} of the {total} files compared", flush=True)
    bad = 0
    for fmt in sorted({r["format"] for r in results}):
        rs = [r for r in results if r["format"] == fmt]
        same = [r for r in rs if r.get("diffs") == []]
        exact = [r for r in same if not r["meta"]]
        unsupported = collections.Counter(r["unsupported"] for r in rs if "unsupported" in r)
        differ = [r for r in rs if r.get("diffs")]
        both_err = [r for r in rs if r["ref_error"] and r["fast_error"]]
        one_err = [r for r in rs if bool(r["ref_error"]) != bool(r["fast_error"]) and "unsupported" not in r]
        bad += len(differ) + len(one_err)
        t_ref, t_fast = sum(r["t_ref"] for r in rs), sum(r["t_fast"] for r in rs if "unsupported" not in r)
        n_fast = sum("unsupported" not in r for r in rs)
        t_ref_fast = sum(r["t_ref"] for r in rs if "unsupported" not in r)
        print(f"\n.{fmt}: {len(rs)} files: {len(same)} agree note for note "
              f"({len(exact)} also in names, title, tempo, measures, key signatures); "
              f"{sum(unsupported.values())} left to music21; {len(differ)} differ; {len(one_err)} fail in one reader only; "
              f"{len(both_err)} fail in both")
        if n_fast:
            print(f"  parse time per file, files the direct reader reads: music21 {1000 * t_ref_fast / n_fast:.1f} ms, "
                  f"direct {1000 * t_fast / n_fast:.2f} ms: {t_ref_fast / max(t_fast, 1e-9):.0f}x; all {len(rs)} files "
                  f"as the job reads them: {t_ref:.0f} s -> {t_fast + t_ref - t_ref_fast:.0f} s")
        for reason, k in unsupported.most_common():
            print(f"  left to music21 ({k}): {reason}")
        meta = collections.Counter(m.split(" ", 1)[0] for r in same for m in r["meta"])
        for kind, k in meta.most_common():
            example = next(m for r in same for m in r["meta"] if m.startswith(kind))
            print(f"  same notes, other {kind} ({k}), e.g. {example[:160]}")
        for r in differ:
            print(f"  DIFFER {Path(r['path']).relative_to(root)}: {'; '.join(r['diffs'])[:300]}")
        for r in one_err:
            print(f"  ONE FAILS {Path(r['path']).relative_to(root)}: music21: {r['ref_error']} | direct: {r['fast_error']}")
        for r in both_err:
            print(f"  both fail {Path(r['path']).relative_to(root)}: {str(r['ref_error'])[:120]}")
    print(f"\n{bad} file(s) where the direct reader disagrees with music21")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
