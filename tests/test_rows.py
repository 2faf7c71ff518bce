"""The row machinery every batch job runs on (jobs.rows): one row per input whatever fails, parts
named after their blocks, and a pool that is gone when the job is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.incremental import read_latest
from jobs.rows import RowWorker, block_part_url, map_rows
from tests.procs import cpus_free_within

SCHEMA = pa.schema([("id", pa.string()), ("uri", pa.string()), ("status", pa.string()), ("error", pa.string()),
                    ("n", pa.int64()), ("version", pa.string())])


class Length(RowWorker):
    """The length of the uri; a uri with "bad" in it fails (that input's own error row)."""

    def one(self, id_: str, uri: str) -> dict[str, Any]:
        if "bad" in uri:
            raise ValueError(f"cannot read {uri}")
        return {"id": id_, "uri": uri, "status": "ok", "n": len(uri)}

    def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
        return {"id": id_, "uri": uri, "status": "error", "error": reason}


def _lost(r: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"id": r["id"], "uri": r["uri"], "status": "error", "error": reason}


def _todo(n: int) -> list[dict[str, Any]]:
    return [{"id": f"i{k:03d}", "uri": f"u{'bad' if k % 5 == 0 else ''}{k}", "version": "v1"} for k in range(n)]


def test_each_block_writes_one_part_named_after_it(ray_cluster: None, tmp_path: Path) -> None:
    todo = _todo(10)
    kept = map_rows(todo, Length, folder=str(tmp_path), schema=SCHEMA, workers=2, lost_row=_lost, block_inputs=3,
                    keep=lambda r: {"status": r["status"], "n": r["n"]})  # an error row has no "n": it reads None
    assert sorted(r["id"] for r in kept) == [r["id"] for r in todo]
    assert {r["id"]: r["n"] for r in kept}["i000"] is None and {r["id"]: r["n"] for r in kept}["i001"] == 2
    parts = sorted(p.name for p in tmp_path.glob("part-*.parquet"))
    assert len(parts) == 4 and all("-b-" in p for p in parts)  # 10 inputs in blocks of 3
    rows = read_latest(str(tmp_path)).to_pylist()
    assert len(rows) == 10 and all(r["version"] == "v1" for r in rows)
    assert [r["error"] for r in rows if r["status"] == "error"] == [f"ValueError: cannot read ubad{k}" for k in (0, 5)]
    # a part's name follows from its run and its block's ids alone, so a retried block (the same ids)
    # overwrites its own part; the same ids in another order are another block, with another name
    for path in tmp_path.glob("part-*.parquet"):
        run = "-".join(path.name.split("-")[1:4])
        ids = pq.read_table(path).column("id").to_pylist()
        assert block_part_url(str(tmp_path), run, ids) == str(path)
    ids = [r["id"] for r in todo[:3]]
    assert block_part_url("f", "run", ids) != block_part_url("f", "run", ids[::-1])
    assert cpus_free_within(15.0)


def test_a_failing_pool_still_gives_every_input_one_row_and_lets_go_of_its_cpus(ray_cluster: None,
                                                                                tmp_path: Path) -> None:
    driver = os.getpid()

    def keep(row: dict[str, Any]) -> dict[str, Any]:  # fails in the actors (the whole block fails), not here
        if os.getpid() != driver and row["id"] == "i004":
            raise RuntimeError("the block fails")
        return {"status": row["status"]}

    todo = _todo(12)
    kept = map_rows(todo, Length, folder=str(tmp_path), schema=SCHEMA, workers=1, lost_row=_lost, block_inputs=4,
                    keep=keep)
    assert sorted(r["id"] for r in kept) == [r["id"] for r in todo]  # each input once in what the driver counts
    rows = {r["id"]: r for r in read_latest(str(tmp_path)).to_pylist()}
    assert sorted(rows) == [r["id"] for r in todo]
    failed = [r for r in rows.values() if str(r["error"]).startswith("the worker pool failed")]
    assert failed and failed[0]["error"] == "the worker pool failed: RuntimeError: the block fails"
    # the block that failed wrote its part before it failed: its rows stand
    assert rows["i006"]["status"] == "ok" and rows["i005"]["error"] == "ValueError: cannot read ubad5"
    # the pool is gone with the job (it once outlived a failure, held its CPU, and the next job of the process
    # waited forever for it)
    assert cpus_free_within(15.0)
