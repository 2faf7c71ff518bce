"""The row machinery every batch job runs on (jobs.rows): one row per input whatever fails, parts
named after their blocks, and a pool that is gone when the job is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jobs import incremental
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
    tally = map_rows(todo, Length, folder=str(tmp_path), schema=SCHEMA, workers=2, lost_row=_lost, block_inputs=3,
                     keep=lambda r: {"status": r["status"], "n": r["n"]})  # an error row has no "n": it reads None
    assert tally.rows == 10 and tally.errors == 2  # ids 0 and 5 cannot be read
    assert tally.sum["n"] == sum(len(r["uri"]) for r in todo if "bad" not in r["uri"]) and tally.count["n"] == 8
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
    assert not list(tmp_path.glob(".tmp-*"))  # the plan the workers read is gone with the run
    assert cpus_free_within(15.0)


def test_a_failing_pool_still_gives_every_input_one_row_and_lets_go_of_its_cpus(ray_cluster: None,
                                                                                tmp_path: Path) -> None:
    driver = os.getpid()

    def keep(row: dict[str, Any]) -> dict[str, Any]:  # fails in the actors (the whole block fails), not here
        if os.getpid() != driver and row["id"] == "i004":
            raise RuntimeError("the block fails")
        return {"status": row["status"]}

    todo = _todo(12)
    tally = map_rows(todo, Length, folder=str(tmp_path), schema=SCHEMA, workers=1, lost_row=_lost, block_inputs=4,
                     keep=keep)
    assert tally.rows == 12  # each input once in what the driver counts
    rows = {r["id"]: r for r in read_latest(str(tmp_path)).to_pylist()}
    assert sorted(rows) == [r["id"] for r in todo]
    failed = [r for r in rows.values() if str(r["error"]).startswith("the worker pool failed")]
    assert failed and failed[0]["error"] == "the worker pool failed: RuntimeError: the block fails"
    # the block that failed wrote its part before it failed: its rows stand
    assert rows["i006"]["status"] == "ok" and rows["i005"]["error"] == "ValueError: cannot read ubad5"
    # the pool is gone with the job (it once outlived a failure, held its CPU, and the next job of the process
    # waited forever for it)
    assert cpus_free_within(15.0)


def test_a_plan_takes_new_and_changed_inputs_in_input_order_up_to_the_limit() -> None:
    inputs = pa.table({"id": ["a", "b", "c", "d", "e"], "uri": ["ua", "ub", "uc", "ud", "ue"],
                       "version": ["v1", "v2", "v1", "v1", None]})
    done = {"a": "v1", "b": "v1", "c": None, "e": "v0"}  # c: no version recorded; e: the input's version unknown
    scheduled = incremental.plan(inputs, done, incremental=True)
    assert scheduled.todo.column("id").to_pylist() == ["b", "d"] and scheduled.counts() == {"new": 1, "changed": 1,
                                                                                          "skipped": 3}
    resumed = incremental.plan(inputs, done, incremental=False)
    assert resumed.todo.column("id").to_pylist() == ["d"] and resumed.counts() == {"new": 1, "changed": 0, "skipped": 4}
    capped = incremental.plan(inputs, {}, incremental=True, limit=2)
    assert capped.todo.column("id").to_pylist() == ["a", "b"] and capped.counts() == {"new": 2, "changed": 0, "skipped": 3}
    assert capped.take_todo().num_rows == 2 and capped.todo.num_rows == 0  # handed over; the counts stay
    assert capped.describe() == "5 inputs: 2 new, 0 changed, 3 skipped"


def test_a_listing_names_inputs_by_their_path_below_the_prefix(tmp_path: Path, monkeypatch: Any) -> None:
    for name in ("x/b.mp4", "x/a.mp4", "x/b.mov", "x/.tmp-c.mp4", "x/y/c.mp4", "x/y/z/d.mp4", "x/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"v")
    monkeypatch.chdir(tmp_path)  # a relative prefix names them as an absolute one does
    for prefix in ("x", str(tmp_path / "x") + "/"):
        table = incremental.list_table(prefix, (".mp4", ".mov"))
        # folder by folder, by name in each; a stem two files share keeps the suffix; an unfinished write is not an input
        assert table.column("id").to_pylist() == ["a", "b.mov", "b.mp4", "y/c", "y/z/d"]
        assert table.column("uri").to_pylist()[0] == str(tmp_path / "x" / "a.mp4")
        assert all(v.startswith("mtime_ns=") for v in table.column("version").to_pylist())
