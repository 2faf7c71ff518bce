"""Many tiny inputs through the row machinery every batch job runs on (jobs.incremental + jobs.rows).

    python benchmarks/scale.py                                   # 10,000 and 100,000 inputs, local files
    python benchmarks/scale.py --sizes 10000 100000 --s3 100000  # and the planning of 100,000 objects on a local S3 server

Per size, in a fresh process each (so one size's memory does not count for the next): N files of
a few bytes under a folder, planned as a job plans them (a listing of the prefix and a version per
file, jobs.incremental.list_table/plan) and mapped by a cheap but real worker (it reads the bytes,
checks them and gives their CRC-32 and length) through jobs.rows.map_rows on the local Ray
cluster, blocks of ``--block-inputs``. Reported:

- the driver's peak RSS while planning and mapping (sampled every 50 ms), and its ratio between
  the largest and the smallest size (the driver writes the plan to storage and keeps counts: flat);
- seconds to the first part written, and inputs per second;
- with ``--kill``: a worker killed mid-run (SIGKILL of the actor's process): Ray retries its block,
  whose part is written under the same name, so no id has a row in two parts of the run;
- with ``--s3 N``: N objects on a local moto S3 server, planned as a job plans them, counting the
  HTTP requests the server answered while planning (listings, not a request per input), and the
  time of the same listing by boto3's paginator alone (what the server costs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.rows import RowWorker  # noqa: E402


class Checksum(RowWorker):
    """One input's bytes: their length and CRC-32 (bytes that do not start with ``input`` are refused)."""

    def one(self, id_: str, uri: str) -> dict[str, Any]:
        from jobs import storage  # noqa: PLC0415

        data = storage.read_bytes(uri)
        if not data.startswith(b"input"):
            raise ValueError("not an input file")
        return {"id": id_, "uri": uri, "status": "ok", "error": None, "n_bytes": len(data), "crc": zlib.crc32(data)}

    def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
        return error_row(id_, uri, reason)


def error_row(id_: str, uri: str, reason: str) -> dict[str, Any]:
    return {"id": id_, "uri": uri, "status": "error", "error": reason, "n_bytes": None, "crc": None}


def schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema([("id", pa.string()), ("uri", pa.string()), ("status", pa.string()), ("error", pa.string()),
                      ("n_bytes", pa.int64()), ("crc", pa.int64()), ("version", pa.string())])


def make_inputs(folder: Path, n: int) -> None:
    """``n`` files of a few bytes in 100 subfolders (once: an existing complete folder is reused)."""
    marker = folder / ".complete"
    if marker.exists():
        return
    for k in range(n):
        sub = folder / f"d{k % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"in{k:07d}.bin").write_bytes(b"input %d" % k)
    marker.write_text(str(n))


class PeakRss:
    """The process's peak resident memory, sampled every ``every`` seconds in a thread."""

    def __init__(self, every: float = 0.05) -> None:
        import psutil  # noqa: PLC0415

        self.process, self.every, self.peak, self._stop = psutil.Process(), every, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.every)

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _first_part(folder: Path, started: float, out: dict[str, float], done: threading.Event) -> None:
    while not done.is_set():
        if folder.is_dir() and any(folder.glob("part-*.parquet")):
            out["first_part_s"] = time.monotonic() - started
            return
        time.sleep(0.05)


def _killer(title: str, after_parts: int, folder: Path, done: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first actor process named ``title`` once ``after_parts`` parts are written."""
    import psutil  # noqa: PLC0415

    while not done.is_set():
        if folder.is_dir() and len(list(folder.glob("part-*.parquet"))) >= after_parts:
            for p in psutil.process_iter(["cmdline"]):
                if title in " ".join(p.info["cmdline"] or []):
                    os.kill(p.pid, signal.SIGKILL)
                    killed.append(p.pid)
                    return
        time.sleep(0.05)


def one_size(n: int, work: Path, block_inputs: int, workers: int, kill: bool) -> dict[str, Any]:
    import pyarrow.parquet as pq  # noqa: PLC0415
    import ray  # noqa: PLC0415

    from jobs import incremental  # noqa: PLC0415
    from jobs.rows import map_rows  # noqa: PLC0415

    inputs = work / f"inputs-{n}"
    make_inputs(inputs, n)
    out = work / f"out-{n}-{time.time_ns()}"
    ray.init(num_cpus=workers + 1, include_dashboard=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    result: dict[str, Any] = {"inputs": n, "block_inputs": block_inputs, "workers": workers}
    done, killed, marks = threading.Event(), [], {}
    with PeakRss() as rss:
        t0 = time.monotonic()
        listed = incremental.list_table(str(inputs), (".bin",))
        work_plan = incremental.plan(listed, incremental.done_table(str(out)), incremental=False, limit=None)
        del listed
        result["planning_s"] = round(time.monotonic() - t0, 2)
        threads = [threading.Thread(target=_first_part, args=(out, time.monotonic(), marks, done), daemon=True)]
        if kill:
            threads.append(threading.Thread(target=_killer, args=("MapBatches(Checksum)", max(2, n // block_inputs // 3),
                                                                  out, done, killed), daemon=True))
        for t in threads:
            t.start()
        t1 = time.monotonic()
        tally = map_rows(work_plan.take_todo(), Checksum, folder=str(out), schema=schema(), workers=workers,
                        lost_row=lambda r, why: error_row(r["id"], r["uri"], why),
                        block_inputs=block_inputs, label="scale")
        result["mapping_s"] = round(time.monotonic() - t1, 2)
        done.set()
    ray.shutdown()
    result["driver_peak_rss_mb"] = round(rss.peak / 2**20, 1)
    result["first_part_s"] = round(marks.get("first_part_s", float("nan")), 2)
    result["inputs_per_s"] = round(n / result["mapping_s"], 1)
    result["killed_worker"] = bool(killed)
    ids_per_part = [pq.read_table(p, columns=["id"]).column("id").to_pylist() for p in sorted(out.glob("part-*.parquet"))]
    all_ids = [i for part in ids_per_part for i in part]
    result["parts"] = len(ids_per_part)
    result["rows_in_parts"] = len(all_ids)
    result["ids_with_two_rows"] = len(all_ids) - len(set(all_ids))
    latest = incremental.read_latest(str(out))
    statuses = latest.column("status").to_pylist() if latest is not None else []
    result["ids_out"] = len(statuses)
    result["errors"] = sum(s != "ok" for s in statuses)
    result["counted_in_driver"] = tally.rows
    return result


def plan_on_s3(n: int, work: Path) -> dict[str, Any]:
    """``n`` objects on a local moto server, planned as a job plans them; the requests it answered
    while planning, counted by moto's own recorder (one line per request)."""
    import boto3  # noqa: PLC0415
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    recording = work / "moto-recording.jsonl"
    os.environ.update({"MOTO_RECORDER_FILEPATH": str(recording), "AWS_ACCESS_KEY_ID": "scale",
                       "AWS_SECRET_ACCESS_KEY": "scale", "AWS_DEFAULT_REGION": "us-east-1"})
    import logging  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="scale")
    t0 = time.monotonic()
    # the objects go straight into the server's store (the server runs in this process): a PUT per
    # object over HTTP took 495 s for 100,000; the planning below talks HTTP as a job does
    from moto.s3.models import s3_backends  # noqa: PLC0415

    backend = next(b["global"] for b in s3_backends.values() if "scale" in b["global"].buckets)
    for k in range(n):
        backend.put_object("scale", f"in/d{k % 100:02d}/in{k:07d}.bin", b"input %d" % k)
    upload_s = time.monotonic() - t0
    from jobs import incremental  # noqa: PLC0415

    def planned(url: str) -> tuple[Any, float, int]:
        """``url`` planned as a job plans it: its inputs, seconds, and the requests the server answered
        meanwhile (moto's recorder writes a line per request)."""
        _moto_api(endpoint, "reset-recording")
        _moto_api(endpoint, "start-recording")
        t = time.monotonic()
        inputs = incremental.list_table(url, (".bin",))
        incremental.plan(inputs, incremental.done_table("s3://scale/out"), incremental=False, limit=None)
        seconds = time.monotonic() - t
        _moto_api(endpoint, "stop-recording")
        return inputs, seconds, sum(1 for line in recording.read_text().splitlines() if line.strip())

    listed, planning_s, made = planned("s3://scale/in")
    # the same inputs named by a manifest (id, uri): its rows' versions come from listing their folders
    import pyarrow as pa  # noqa: PLC0415

    from jobs import storage  # noqa: PLC0415

    storage.write_table("s3://scale/manifest.parquet", pa.table({"id": listed.column("id"), "uri": listed.column("uri")}))
    from_manifest, manifest_s, manifest_made = planned("s3://scale/manifest.parquet")
    # the same listing with nothing of ours around it (boto3's pages, one prefix after the other):
    # how much of the planning time is the server's
    t2 = time.monotonic()
    raw = sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket="scale", Prefix="in/"))
    raw_s = time.monotonic() - t2
    server.stop()
    return {"objects": n, "listed": len(listed), "with_version": len(listed) - listed.column("version").null_count,
            "planning_requests": made, "requests_per_input": round(made / n, 5), "planning_s": round(planning_s, 2),
            "bare_listing_s": round(raw_s, 2), "bare_listed": raw, "store_s": round(upload_s, 1),
            "manifest_planning_requests": manifest_made, "manifest_planning_s": round(manifest_s, 2),
            "manifest_with_version": len(from_manifest) - from_manifest.column("version").null_count}


def _moto_api(endpoint: str, action: str) -> None:
    import urllib.request  # noqa: PLC0415

    req = urllib.request.Request(f"{endpoint}/moto-api/recorder/{action}", method="POST")
    with urllib.request.urlopen(req) as r:  # noqa: S310 (the local server)
        r.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--block-inputs", type=int, default=256, help="inputs per block (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=1, help="actors (default: %(default)s; the driver gets a CPU too)")
    ap.add_argument("--kill", action="store_true", help="kill a worker once a third of the blocks are written")
    ap.add_argument("--s3", type=int, default=0, help="also plan this many objects on a local S3 server")
    ap.add_argument("--work", default=str(ROOT / "work" / "scale"), help="folder of inputs and outputs")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a size, in this process
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        print(json.dumps(one_size(args.one, work, args.block_inputs, args.workers, args.kill)))
        return
    results = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--block-inputs", str(args.block_inputs),
               "--workers", str(args.workers), "--work", str(work), *(["--kill"] if args.kill else [])]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(line))
        print(json.dumps(results[-1]), flush=True)
    small, large = results[0], results[-1]
    summary: dict[str, Any] = {
        "sizes": args.sizes,
        "driver_peak_rss_ratio_largest_to_smallest": round(large["driver_peak_rss_mb"] / small["driver_peak_rss_mb"], 3),
        "first_part_s_at_largest": large["first_part_s"],
        "ids_with_two_rows": sum(r["ids_with_two_rows"] for r in results),
        "every_input_one_row": all(r["ids_out"] == r["inputs"] for r in results),
    }
    if args.s3:
        summary["s3_planning"] = plan_on_s3(args.s3, work)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
