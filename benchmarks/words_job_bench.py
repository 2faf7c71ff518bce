"""The ``words`` job on the whole music21 corpus: wall time, notes/s, and scaling from 1 to 2 workers.

Run: ``.venv/bin/python benchmarks/words_job_bench.py [--limit N] [--workers 1,2] [--num-cpus 2]``.

Writes a Parquet manifest of every score file that ships in ``music21/corpus`` (MusicXML, kern,
abc, MIDI: about 3,100 files; an abc book counts once, as its first tune), grouped by the top
folder (``bach``, ``palestrina``, ``ryansMammoth``, ...), then runs, for each worker count, the
real job in a fresh process on a fresh local Ray cluster of ``--num-cpus`` CPUs::

    python -m jobs words --input <manifest> --output <tmp>/w<N> --workers N --num-cpus 2

(parse with Ray Data + per-composer EM + the whole-corpus dictionary + report) and prints wall
time, notes/s and the scaling efficiency ``T(1) / (N * T(N))`` (target: >= 0.8 at 2 workers,
and the whole corpus in under 10 minutes). ``--limit N`` takes at most N files per composer,
spread over its sorted list, for a quicker look.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid", ".midi")
ROOT = Path(__file__).resolve().parents[1]


def corpus_manifest(path: Path, limit: int | None) -> tuple[int, dict[str, int]]:
    """Write the manifest (id, uri, composer) of the music21 corpus; return its size and group sizes."""
    import music21
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(music21.__file__).parent / "corpus"
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    by_group: dict[str, list[Path]] = {}
    for p in files:
        by_group.setdefault(p.relative_to(root).parts[0], []).append(p)
    rows = []
    for group, paths in sorted(by_group.items()):
        if limit is not None and len(paths) > limit:
            picks = np.unique(np.linspace(0, len(paths) - 1, limit).round().astype(int))
            paths = [paths[i] for i in picks]
        for p in paths:
            rows.append({"id": p.relative_to(root).as_posix(), "uri": str(p), "composer": group})
    pq.write_table(pa.Table.from_pylist(rows), path)
    sizes: dict[str, int] = {}
    for r in rows:
        sizes[r["composer"]] = sizes.get(r["composer"], 0) + 1
    return len(rows), sizes


def run_job(manifest: Path, out: Path, workers: int, num_cpus: int, extra: list[str]) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "jobs", "words", "--input", str(manifest), "--output", str(out), "--workers", str(workers),
           "--num-cpus", str(num_cpus), "--workdir", str(out.parent / f"mlflow-{workers}"), *extra]
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "RAY_DEDUP_LOGS": "1"})
    wall = time.time() - t0
    summary = next((json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"inputs"')), None)
    if done.returncode != 0 or summary is None:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"the job failed (exit {done.returncode})")
    return wall, summary


def breakdown(out: Path, workers: int, s: dict) -> None:
    """Where the time went: parse seconds per format (and how busy the parsing workers were:
    seconds parsed / (wall time x workers)), and the groups that took longest."""
    import pyarrow.parquet as pq

    pieces = pq.read_table(out / "pieces", columns=["uri", "seconds", "status"]).to_pylist()
    by_ext: dict[str, list[float]] = {}
    for r in pieces:
        by_ext.setdefault(Path(r["uri"]).suffix.lower(), []).append(r["seconds"])
    parts = ", ".join(f"{ext} {len(v)} files {sum(v):.0f} s ({1000 * sum(v) / len(v):.0f} ms/file)"
                      for ext, v in sorted(by_ext.items(), key=lambda kv: -sum(kv[1])))
    busy = sum(r["seconds"] for r in pieces) / max(s["parse_seconds"] * workers, 1e-9)
    print(f"  parse: {parts}; workers busy {busy:.0%} of the parse wall time")
    groups = pq.read_table(out / "groups.parquet").to_pylist()
    top = sorted(groups, key=lambda g: -(g["seconds"] or 0))[:5]
    # (no busy share here: the sharded groups run beside the pool, so their wall times overlap)
    print("  learn, wall time per group: " + ", ".join(f"{g['group']} {g['n_tokens'] or 0:,} tokens {g['seconds'] or 0:.0f} s"
                                                    f"{' (sharded)' if g['sharded'] else ''}" for g in top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="at most this many files per composer (default: all)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default: %(default)s)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster (default: %(default)s)")
    parser.add_argument("--keep", default=None, help="write the outputs here (default: a temporary folder, removed)")
    args, extra = parser.parse_known_args()  # anything else goes to the job (e.g. --preset debug)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        base.mkdir(parents=True, exist_ok=True)
        manifest = base / "music21_corpus.parquet"
        n, sizes = corpus_manifest(manifest, args.limit)
        top = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
        print(f"music21 corpus: {n} files in {len(sizes)} groups (largest: {', '.join(f'{k} {v}' for k, v in top)})")
        results = {}
        for w in [int(x) for x in args.workers.split(",")]:
            wall, s = run_job(manifest, base / f"w{w}", w, args.num_cpus, extra)
            results[w] = wall
            print(f"workers={w}: {wall:.0f} s wall (parse {s['parse_seconds']:.0f} s, learn {s['learn_seconds']:.0f} s), "
                  f"{s['notes']:,} notes -> {s['notes'] / wall:,.0f} notes/s; {s['parsed']} rows, {s['parse_errors']} "
                  f"parse errors, {s['groups_ok']}/{s['groups']} groups, {s['groups_sharded']} sharded", flush=True)
            breakdown(base / f"w{w}", w, s)
        if 1 in results:
            for w, wall in results.items():
                if w > 1:
                    print(f"scaling efficiency 1 -> {w} workers: {results[1] / (w * wall):.2f} (target >= 0.8)")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
