"""Load: the ``score`` job over thousands of small videos on 2 CPUs, with its memory watched.

    python benchmarks/score_load.py --videos 2000 [--folder /tmp/load]

Writes ``--videos`` short clips (eight distinct 2 s ads, 64x48, with sound, copied under new
names), scores a quarter of them, then the rest (the rerun skips what is done), and samples every
0.5 s: the driver's RSS, the RSS of every Ray worker process of this node (scoring actors and their
sandbox parsers included) and the object store's usage. Prints one JSON report: per run the wall
time, videos/s, the driver's RSS at start and peak, each worker's peak, the object store's peak;
and whether every input has exactly one row. Memory is bounded when the second run, three times
as long, peaks no higher than the first. tests/test_load.py asserts this with 2,000 videos.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

MIB = 1 << 20


def make_videos(folder: Path, n: int, *, distinct: int = 8) -> list[str]:
    """``n`` clips ``clip00000.mp4``... under ``folder`` (``distinct`` rendered ads, copied); their ids."""
    from vem.synthetic import SyntheticAdConfig, encode_mp4, plan_ad

    cfg = SyntheticAdConfig(width=64, height=48, min_duration_s=2.0, max_duration_s=2.0, min_shots=2, max_shots=2,
                            min_gap_s=0.8, sample_rate=16000)
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for i in range(distinct):
        path = folder.parent / f"source{i}.mp4"
        if not path.exists():
            encode_mp4(plan_ad(seed=11, index=i, config=cfg), str(path))
        sources.append(path)
    ids = [f"clip{i:05d}" for i in range(n)]
    for i, id_ in enumerate(ids):
        target = folder / f"{id_}.mp4"
        if not target.exists():
            shutil.copyfile(sources[i % distinct], target)
    return ids


def _rss_mb(pid: int | str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None  # the process ended between listing and reading
    return None


def _descendants(root: int) -> dict[int, str]:
    """``{pid: title}`` of every process below ``root`` (Linux /proc)."""
    parent: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in found:
                try:
                    found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:80]
                except OSError:
                    continue
                frontier.append(child)
    return found


class MemoryWatch:
    """Samples the driver, the node's Ray workers and the object store every ``every`` seconds."""

    def __init__(self, every: float = 0.5) -> None:
        import ray

        self.every = every
        self.raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
        self.driver: list[float] = []
        self.workers: dict[int, dict[str, Any]] = {}
        self.store_mb: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from ray._private.internal_api import memory_summary

        while not self._stop.is_set():
            self.driver.append(_rss_mb("self") or 0.0)
            for pid, title in _descendants(self.raylet).items():
                rss = _rss_mb(pid)
                if rss is not None:
                    entry = self.workers.setdefault(pid, {"title": title, "peak_mb": 0.0})
                    entry["title"] = title if "ray::" in title or "sandbox" in title else entry["title"]
                    entry["peak_mb"] = max(entry["peak_mb"], rss)
            try:
                match = re.search(r"Plasma memory usage (\d+) MiB", memory_summary(stats_only=True))
                self.store_mb.append(float(match.group(1)) if match else 0.0)
            except Exception:  # the GCS is busy: skip this sample
                pass
            self._stop.wait(self.every)

    def report(self) -> dict[str, Any]:
        busy = {pid: w for pid, w in self.workers.items() if "Scorer" in w["title"] or "MapWorker" in w["title"]
                or "jobs.sandbox" in w["title"]}
        return {
            "driver_start_mb": round(self.driver[0], 1) if self.driver else None,
            "driver_peak_mb": round(max(self.driver), 1) if self.driver else None,
            "workers": sorted(({"pid": pid, "title": w["title"].strip(), "peak_mb": round(w["peak_mb"], 1)}
                               for pid, w in busy.items()), key=lambda w: -w["peak_mb"]),
            "worker_peak_mb": round(max((w["peak_mb"] for w in busy.values()), default=0.0), 1),
            "object_store_peak_mb": max(self.store_mb, default=0.0),
            "samples": len(self.driver),
        }


def score_run(videos: Path, out: Path, workdir: str, *, limit: int | None = None, workers: int = 2) -> dict[str, Any]:
    """One ``score`` run over ``videos`` with the memory watched; its report."""
    from jobs.__main__ import main

    argv = ["score", "--input", str(videos), "--output", str(out), "--workers", str(workers), "--workdir", workdir]
    if limit:
        argv += ["--limit", str(limit)]
    t0 = time.time()
    with MemoryWatch() as watch:
        code = main(argv)
    seconds = time.time() - t0
    return {"exit_code": code, "seconds": round(seconds, 1), **watch.report()}


def load_test(folder: Path, n: int, workdir: str) -> dict[str, Any]:
    """Score ``n`` clips in two runs (a quarter, then the rest); the report of both and the row check."""
    import pyarrow.parquet as pq

    ids = make_videos(folder / "videos", n)
    out = folder / "scores"
    first = score_run(folder / "videos", out, workdir, limit=n // 4)
    rest = score_run(folder / "videos", out, workdir)
    for run, count in ((first, n // 4), (rest, n - n // 4)):
        run["videos"] = count
        run["videos_per_s"] = round(count / run["seconds"], 2)
    rows = pq.read_table(out / "scores", columns=["id", "status"]).to_pylist()
    seen = [r["id"] for r in rows]
    return {"videos": n, "first": first, "rest": rest, "rows": len(rows), "every_input_once": sorted(seen) == ids,
            "ok": sum(r["status"] == "ok" for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--folder", default=None, help="where the clips and scores go (default: a temporary folder)")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    import ray

    from jobs.runtime import quiet_logs

    quiet_logs()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp)
        report = load_test(folder, args.videos, str(folder / "work"))
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
