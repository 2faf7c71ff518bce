"""``python -m jobs compact``: one part with one row per id in place of many small parts.

The row jobs write one part per block of inputs, and every run adds its own: a million inputs
make tens of thousands of small files, slow to list and to read. ``compact`` reads a folder of
parts the way every reader does (jobs.incremental.read_latest: the newest row of each id), writes
those rows as one part named after now (so it sorts after every part it replaces), and only then
removes the parts it read: a crash in between leaves the old parts beside the new one, which
still gives the same rows. Run it when no job is writing to the folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from jobs import incremental, storage
from jobs.runtime import JobError

DESCRIPTION = "merge a folder of row parts into one part with one row per id (the newest), then remove the old parts"
EXAMPLES = """examples:
  python -m jobs compact --output s3://ads/scores            # a job's output folder: its scores/ (and the like)
  python -m jobs compact --output work/words/pieces           # or a folder of parts itself
"""
PART_FOLDERS = ("scores", "examples", "pieces", "generated")  # where the row jobs put their parts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True,
                        help="a folder of part-*.parquet files, or a job's output folder (its " + ", ".join(PART_FOLDERS)
                             + " folders are compacted)")


def folders(output: str) -> list[str]:
    """The folders of parts under ``output``: its known part folders that hold parts, else itself if it does."""
    known = [f for f in (storage.join(output, name) for name in PART_FOLDERS) if incremental.parts(f)]
    return known or ([output] if incremental.parts(output) else [])


def check(args: argparse.Namespace) -> None:
    try:
        if not storage.exists(args.output):
            raise JobError(f"--output {storage.redact_url(args.output)}: not found")
        if not folders(args.output):
            raise JobError(f"--output {storage.redact_url(args.output)}: no part-*.parquet files there or in "
                           + ", ".join(f"{n}/" for n in PART_FOLDERS))
        storage.check_writable(args.output)
    except storage.StorageError as e:
        raise JobError(str(e)) from e


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    return {"would_compact": {f: len(incremental.parts(f)) for f in folders(args.output)}}


def compact(folder: str) -> dict[str, Any]:
    """Compact one folder of parts; its counts."""
    old = incremental.parts(folder)
    table = incremental.read_latest(folder)
    if table is None or len(old) <= 1:
        return {"folder": folder, "parts_before": len(old), "rows": 0 if table is None else len(table), "skipped": True}
    target = incremental.part_url(folder)
    storage.write_table(target, table)
    for url in old:  # only after the merged part is written (it sorts after all of them)
        storage.delete(url)
    return {"folder": folder, "parts_before": len(old), "rows": len(table), "part": target}


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    done = []
    for folder in folders(args.output):
        result = compact(folder)
        print(f"compact: {storage.redact_url(folder)}: {result['parts_before']} parts -> "
              f"{'unchanged' if result.get('skipped') else '1 part'}, {result['rows']} rows", file=sys.stderr)
        done.append(result)
    return {"folders": len(done), "parts_before": sum(r["parts_before"] for r in done),
            "rows": sum(r["rows"] for r in done), "seconds": round(time.time() - started, 2),
            "outputs": {"output": args.output}}
