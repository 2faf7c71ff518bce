"""The demo end to end at test size, every artifact checked, and its report opened in Chromium."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from jobs.demo import main as demo
from vem.pipeline import VeMPipeline

from .test_words_job import _browser_eval, _chromium

pytestmark = pytest.mark.slow  # the whole demo, twice the size of any other test: make test-slow


@pytest.fixture(scope="module")
def demo_run(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("demo")
    model = VeMPipeline.build("debug").save_pretrained(root / "model")
    out, workdir = root / "out", root / "mlflow"
    assert demo(["--out", str(out), "--debug", "--model", str(model), "--workdir", str(workdir)]) == 0
    return {"out": out, "workdir": workdir}


def test_demo_writes_every_artifact(demo_run: dict[str, Any]) -> None:
    import av
    import mlflow

    out = demo_run["out"]
    scores = pq.read_table(out / "scores" / "scores").to_pylist()
    generated = pq.read_table(out / "generated" / "generated").to_pylist()
    assert len(scores) == 3 and all(r["status"] == "ok" for r in scores)
    assert len(generated) == 2 and all(r["status"] == "ok" for r in generated)
    for r in generated:
        with av.open(io.BytesIO(Path(r["video_uri"]).read_bytes())) as c:
            assert sorted(s.type for s in c.streams) == ["audio", "video"]
            assert abs(c.duration / 1e6 - r["duration_s"]) < 0.1
    report = out / "report"
    page = (report / "index.html").read_text()
    assert page.count("<section class='video'") == 2 and "What these numbers mean" in page
    assert len(list((report / "timelines").glob("*.png"))) == 4 and len(list((report / "media").glob("*.mp4"))) == 2
    assert (out / "words" / "index.html").is_file()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{demo_run['workdir']}/mlflow.db")
    for job in ("sample", "score", "generate", "words", "report"):
        exp = client.get_experiment_by_name(f"jobs/{job}")
        assert exp is not None, job
        runs = client.search_runs([exp.experiment_id])
        assert any(r.info.status == "FINISHED" for r in runs), job


def test_demo_report_opens_in_chromium(demo_run: dict[str, Any], tmp_path: Path) -> None:
    browser = _chromium()
    page_url = (demo_run["out"] / "report" / "index.html").as_uri()
    probe = """JSON.stringify({
      videos: document.querySelectorAll('section.video').length,
      images: [...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
      players: [...document.querySelectorAll('video')].map(v => v.getAttribute('src')),
      links: [...document.querySelectorAll('a')].map(a => a.href)})"""
    page = json.loads(_browser_eval(browser, page_url, probe, tmp_path / "profile"))
    assert page["videos"] == 2
    broken = [i["src"] for i in page["images"] if not i["ok"]]
    assert len(page["images"]) == 4 and not broken, broken
    report = demo_run["out"] / "report"
    assert all((report / src).is_file() for src in page["players"])
    for link in page["links"]:  # the music-words report is reachable
        assert link.startswith("file://") and Path(link.removeprefix("file://")).is_file(), link
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2400", page_url], capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 10_000
