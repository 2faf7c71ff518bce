"""Load: ``score`` over 2,000 small videos on the 2-CPU test cluster, memory watched (benchmarks/score_load.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_scoring_2000_videos_keeps_memory_bounded_and_every_row(ray_cluster: None, workdir: str, tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "score_load.py"
    spec = importlib.util.spec_from_file_location("score_load", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    report = bench.load_test(tmp_path, 2000, workdir)
    print(json.dumps(report, indent=1))  # the figures, for whoever reads the log
    first, rest = report["first"], report["rest"]
    assert first["exit_code"] == 0 and rest["exit_code"] == 0
    assert report["every_input_once"] and report["rows"] == 2000
    assert report["ok"] == 2000
    # Bounded: the second run scores three times as many videos as the first and needs no more memory.
    assert first["samples"] > 5 and rest["samples"] > 5
    assert rest["driver_peak_mb"] < first["driver_peak_mb"] + 100
    assert rest["object_store_peak_mb"] <= max(first["object_store_peak_mb"] * 1.5, first["object_store_peak_mb"] + 50)
    assert rest["worker_peak_mb"] < max(first["worker_peak_mb"] * 1.3, first["worker_peak_mb"] + 100)
    assert rest["worker_peak_mb"] < 2048
