"""The ``words`` job: sharded E-step = one process, one parse row per input, S3 in and out, a
report that renders in a real browser."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import music21
import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import incremental
from jobs.__main__ import main
from jobs.words_parse import to_pieces
from musicwords.em import EMConfig, learn_dictionary, split_blocks
from musicwords.midi import notes_to_midi_bytes, playable_notes
from musicwords.spelling import key_fifths
from musicwords.synthetic import planted_corpus
from musicwords.tokens import Alphabet, tokenize
from musicwords.voices import separate_voices

COMPOSERS = {"alpha": 11, "beta": 12}  # group -> seed of its planted motifs
ABC_TUNE = b"""X:1
T:Scale and back
M:4/4
L:1/8
K:C
CDEF GABc | cBAG FEDC | CEGc GECE | D2F2 A2c2 | CDEF GABc | cBAG FEDC |]
"""


def _drums_only() -> bytes:
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack()
    for k in range(16):
        track.append(mido.Message("note_on", channel=9, note=36 + k % 3, velocity=90, time=0 if k == 0 else 240))
        track.append(mido.Message("note_off", channel=9, note=36 + k % 3, velocity=0, time=240))
    mid.tracks.append(track)
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def _write_inputs(root: Path) -> dict[str, str | None]:
    """Scores under ``root/<composer>/``; returns input id -> expected error word (None: readable)."""
    expected: dict[str, str | None] = {}
    for composer, seed in COMPOSERS.items():
        corpus = planted_corpus(seed=seed, n_pieces=5, n_motifs=2, occurrences=4)
        (root / composer).mkdir(parents=True)
        for k, notes in enumerate(corpus.pieces):
            (root / composer / f"piece{k}.mid").write_bytes(notes_to_midi_bytes(playable_notes(notes)))
            expected[f"{composer}/piece{k}"] = None
    (root / "alpha" / "tune.abc").write_bytes(ABC_TUNE)
    expected["alpha/tune"] = None
    (root / "beta" / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage that is not MIDI")
    expected["beta/corrupt"] = "corrupt"
    (root / "beta" / "empty.mid").write_bytes(b"")
    expected["beta/empty"] = "empty"
    (root / "beta" / "drums.mid").write_bytes(_drums_only())
    expected["beta/drums"] = "drums"
    return expected


def _run(argv: list[str], workdir: str) -> dict[str, Any]:
    """Run the job; its summary as the driver logged it (MLflow summary.json of the run)."""
    assert main([*argv, "--workdir", workdir]) == 0
    return _last_run(workdir)["summary"]


def _last_run(workdir: str) -> dict[str, Any]:
    import mlflow
    from mlflow.tracking import MlflowClient

    from jobs.tracking import tracking_uri

    client = MlflowClient(tracking_uri(workdir))
    experiment = client.get_experiment_by_name("jobs/words")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    path = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="summary.json",
                                               tracking_uri=tracking_uri(workdir))
    return {"parent": parent, "children": children, "client": client, "summary": json.loads(Path(path).read_text())}


# --------------------------------------------------------------------------------------------
# the sharded E-step


def test_sharded_estep_equals_one_process(ray_cluster: None) -> None:
    from jobs.words_learn import RayEStep

    pieces = planted_corpus(seed=5, n_pieces=24, n_motifs=3).pieces
    alphabet = Alphabet()
    streams = tokenize([(n, separate_voices(n)) for n in pieces], alphabet)
    config = dataclasses.replace(EMConfig.debug(), block_tokens=600)
    assert len(split_blocks(streams.tokens, config.block_tokens)) >= 4  # several blocks per shard

    local = learn_dictionary(streams, Alphabet(symbols=list(alphabet.symbols)), config)
    made: list[RayEStep] = []

    def sharded(blocks: list[np.ndarray]) -> RayEStep:
        made.append(RayEStep(blocks, 2, num_cpus=0.5))
        return made[-1]

    try:
        remote = learn_dictionary(streams, Alphabet(symbols=list(alphabet.symbols)), config, estep=sharded)
        assert len(made) == 1 and len(made[0].actors) == 2 and min(made[0].shards) >= 2
    finally:
        for e in made:
            e.close()
    assert len(local.words) > local.n_literals + 3  # it learned words, so the comparison means something
    assert remote.words == local.words
    assert remote.code_length == local.code_length
    assert remote.history == local.history
    assert np.array_equal(remote.logp, local.logp)
    assert np.array_equal(remote.counts, local.counts)


def test_blocks_are_whole_streams() -> None:
    tokens = tokenize([(n, separate_voices(n)) for n in planted_corpus(seed=1, n_pieces=6).pieces], Alphabet()).tokens
    blocks = split_blocks(tokens, 50)
    assert np.array_equal(np.concatenate(blocks), tokens)
    assert all(b[-1] == -1 for b in blocks)
    assert len(split_blocks(tokens, 10**9)) == 1


def test_shards_are_contiguous_and_balanced() -> None:
    from jobs.words_learn import balanced_ranges

    sizes = [int(x) for x in np.random.default_rng(0).integers(100, 1000, 37)]
    for n in (1, 2, 3, 8):
        ranges = balanced_ranges(sizes, n)
        assert len(ranges) == n and ranges[0][0] == 0 and ranges[-1][1] == len(sizes)
        assert all(a < b for a, b in ranges) and all(r[1] == q[0] for r, q in zip(ranges, ranges[1:], strict=False))
        loads = [sum(sizes[a:b]) for a, b in ranges]
        assert max(loads) - min(loads) <= 2 * max(sizes)
    assert balanced_ranges([5, 5], 4) == [(0, 1), (1, 2)]


# --------------------------------------------------------------------------------------------
# the job, locally


@pytest.fixture(scope="module")
def local_run(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("scores")
    expected = _write_inputs(root)
    out = tmp_path_factory.mktemp("words") / "out"
    workdir = str(tmp_path_factory.mktemp("mlflow"))
    t0 = time.time()
    summary = _run(["words", "--input", str(root), "--output", str(out), "--preset", "debug", "--workers", "3",
                    "--shard-tokens", "1000", "--block-tokens", "300", "--top-words", "6", "--max-error-rate", "0.5"], workdir)
    return {"root": root, "out": out, "workdir": workdir, "expected": expected, "summary": summary,
            "seconds": time.time() - t0, "runs": _last_run(workdir)}


def test_one_parse_row_per_input(local_run: dict[str, Any]) -> None:
    out, expected = local_run["out"], local_run["expected"]
    rows = pq.read_table(out / "pieces").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(expected)  # rows out = rows in, none twice
    for r in rows:
        word = expected[r["id"]]
        if word is None:
            assert r["status"] == "ok", r["error"]
            assert r["n_notes"] == len(r["pitch"]) > 0 and r["n_tokens"] > 0
            if r["id"] == "alpha/tune":  # a score spells its notes: C D E F G A B c, one staff position a step
                assert r["morph"][:8] == list(range(60, 68)) and len(r["morph"]) == r["n_notes"]
                assert to_pieces([r])[0][0].morph.tolist() == r["morph"]
            else:  # MIDI does not (musicwords.spelling estimates it)
                assert r["morph"] is None
        else:
            assert r["status"] == "error" and word in r["error"].lower() and r["id"].split("/")[1] in r["error"]
            assert r["n_notes"] == 0
    summary = local_run["summary"]
    assert summary["parsed"] == summary["inputs"] == len(expected)
    assert summary["parse_errors"] == summary["errors"] == sum(v is not None for v in expected.values())
    assert summary["processed"] == len(expected)


def test_every_group_has_its_outputs(local_run: dict[str, Any]) -> None:
    out = local_run["out"]
    groups = {r["group"]: r for r in pq.read_table(out / "groups.parquet").to_pylist()}
    assert set(groups) == {"alpha", "beta", "whole corpus"}
    assert all(g["status"] == "ok" for g in groups.values()), groups
    # bigger than --shard-tokens and 1.5 fair shares (half of all tokens, 3 workers): its E-step ran
    # on 3 actors; the composers' groups, in the pool beside it, were not
    assert groups["whole corpus"]["sharded"] and not groups["alpha"]["sharded"] and not groups["beta"]["sharded"]
    assert local_run["summary"]["groups_sharded"] >= 1
    pieces = {r["id"]: r for r in pq.read_table(out / "pieces").to_pylist()}
    shown: list[int] = []
    for g in groups.values():
        folder = out / "groups" / g["folder"]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["history"] == sorted(summary["history"], reverse=True) and len(summary["history"]) >= 2
        assert g["code_length_bits"] < g["base_bits"] and g["compression_ratio"] > 1.0
        words = pq.read_table(folder / "dictionary.parquet").to_pylist()
        assert words and all(w["count"] >= 2 and len(w["interval"]) == w["n_notes"] for w in words)
        # the first statement's pitches and their written names (MIDI input: spelled by its key)
        assert all(np.diff(w["pitch"]).tolist() == np.diff(w["interval"]).tolist() for w in words)
        assert all([music21.pitch.Pitch(n[:1] + n[1:].replace("b", "-")).midi for n in w["spelling"]] == w["pitch"]
                   for w in words)
        motifs = pq.read_table(folder / "motifs.parquet")
        assert motifs.schema == pq.read_table(folder / "dictionary.parquet").schema
        assert all(m["count"] >= 2 and m["n_notes"] >= 4 for m in motifs.to_pylist())
        shown += [m["word_id"] for m in motifs.to_pylist()[:1] if g["folder"] != "_corpus"]
        top = summary["top_motif"]  # the top motif statement by statement, for the page
        assert top["word_id"] == motifs.to_pylist()[0]["word_id"] and 1 <= len(top["statements"]) <= min(8, top["count"])
        assert top["statements"][0]["kind"] == "exact" and all(s["onset"][0] == 0 and s["interval"][0] == 0
                                                                for s in top["statements"])
        for s in top["statements"]:  # each note by its written name, which sounds the statement's steps
            midi = [music21.pitch.Pitch(n[:1] + n[1:].replace("b", "-")).midi for n in s["spelling"]]
            assert [m - midi[0] for m in midi] == s["interval"]
        for m in motifs.to_pylist()[:1]:  # in the key and metre of its first statement's piece
            xml = music21.converter.parse((folder / "words" / f"m{m['word_id']}.musicxml").read_text(), format="musicxml")
            assert xml.recurse().getElementsByClass("KeySignature")[0].sharps == m["fifths"]
            assert xml.recurse().getElementsByClass("TimeSignature")[0].ratioString == f"{m['bar_length']:g}/4"
            assert float(xml.recurse().notes[0].offset) == m["beat"] - 1
        occ = pq.read_table(folder / "occurrences.parquet").to_pylist()
        by_word = {w["word_id"]: w["count"] for w in words}
        assert {o["word_id"] for o in occ} == set(by_word)
        for o in occ[:50]:  # occurrences point at real notes of their piece
            p = pieces[o["piece_id"]]
            assert all(0 <= i < p["n_notes"] for i in o["notes"])
            assert o["start"] == pytest.approx(min(p["onset"][i] for i in o["notes"]))
            assert o["pitch_lo"] == min(p["pitch"][i] for i in o["notes"])
            bar = int(np.searchsorted(p["bars"], o["start"] + 1e-9, side="right")) - 1 + p["first_bar"]  # MIDI: measures
            assert o["bar"] == bar and 1.0 <= o["beat"] < 1.0 + 4.0 + 1e-9
        first_occ = {o["word_id"]: o for o in reversed(occ)}  # a word's first statement: its table row's notes
        for w in words:
            o, p = first_occ[w["word_id"]], pieces[first_occ[w["word_id"]]["piece_id"]]
            i = min(int(np.searchsorted(p["bars"], o["start"] + 1e-9, side="right")) - 1, len(p["bars"]) - 2)
            assert w["beat"] == o["beat"] and w["bar_length"] == p["bars"][i + 1] - p["bars"][i]
            notes = to_pieces([p])[0][0]  # the score's key signature there, else the estimate (MIDI)
            assert w["fifths"] == (key_fifths(notes) if notes.keys is None else notes.fifths_at(o["start"]))
        per_piece = pq.read_table(folder / "pieces.parquet").to_pylist()
        assert len(per_piece) == g["n_pieces"] and all(r["compression_ratio"] > 0 for r in per_piece)
        document = json.loads((folder / "dictionary.json").read_text())
        assert len(document["words"]) == g["n_words"] and document["alphabet"]["symbols"]
        for w in summary["top_words"]:
            assert (folder / "words" / f"w{w}.mid").read_bytes()[:4] == b"MThd"
    motif_cards = (out / "index.html").read_text().split('class="words motifs"')[1:]  # each group's motif layer
    assert shown and all(any(f'data-word="{w}"' in cards for cards in motif_cards) for w in shown)
    assert all('class="statements"' in cards and 'data-kind="exact"' in cards for cards in motif_cards)
    assert all('class="notes"' in cards for cards in motif_cards)  # each motif's notes by name


def test_planted_motifs_are_distinctive(local_run: dict[str, Any]) -> None:
    """Each composer's planted motifs are its own: its most distinctive corpus word is one of them."""
    out = local_run["out"]
    html = (out / "index.html").read_text()
    corpus = out / "groups" / "_corpus"
    vocabulary = {w["word_id"]: w for w in pq.read_table(corpus / "words.parquet").to_pylist()}
    usage = pq.read_table(corpus / "usage.parquet").to_pylist()
    from musicwords.compare import distinctive_words, is_distinctive

    counts: dict[str, dict[int, int]] = {"alpha": {}, "beta": {}}
    pieces: dict[str, dict[int, int]] = {"alpha": {}, "beta": {}}
    for u in usage:
        name = u["piece_id"].split("/")[0]
        counts[name][u["word_id"]] = counts[name].get(u["word_id"], 0) + u["count"]
        pieces[name][u["word_id"]] = pieces[name].get(u["word_id"], 0) + 1
    for composer, seed in COMPOSERS.items():
        motifs = planted_corpus(seed=seed, n_pieces=5, n_motifs=2, occurrences=4).motifs
        best = distinctive_words(counts, composer, pieces=pieces)[0]
        assert is_distinctive(best) and best["rest"] == 0 and best["pieces"] >= 2
        intervals = vocabulary[best["word"]]["interval"]
        planted = [list(np.asarray(m[0]) - m[0][0]) for m in motifs]
        # the word lies inside one planted motif (a run of its intervals)
        steps = list(np.diff(intervals))
        assert any(_contains(list(np.diff(p)), steps) for p in planted), (intervals, planted)
        assert f'data-word="{best["word"]}"' in html  # and the report shows it


def _contains(seq: list[int], part: list[int]) -> bool:
    return any(seq[i : i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def test_mlflow_nested_run_per_group(local_run: dict[str, Any]) -> None:
    runs = local_run["runs"]
    children = runs["children"]
    assert sorted(c.data.tags["group"] for c in children) == ["alpha", "beta", "whole corpus"]
    client = runs["client"]
    for child in children:
        history = sorted(client.get_metric_history(child.info.run_id, "code_length_bits"), key=lambda m: m.step)
        assert len(history) >= 2 and [m.step for m in history] == list(range(len(history)))
        assert [m.value for m in history] == sorted((m.value for m in history), reverse=True)
        assert child.data.metrics["code_length_bits"] == history[-1].value < child.data.metrics["base_bits"]
        assert child.data.metrics["compression_ratio"] > 1.0
        assert child.data.params["preset"] == "debug"
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"dictionary.json", "summary.json", "history.png"} <= names
    assert "AWS_SECRET" not in json.dumps(runs["parent"].data.params)


def test_rerun_skips_finished_work(local_run: dict[str, Any]) -> None:
    argv = ["words", "--input", str(local_run["root"]), "--output", str(local_run["out"]), "--preset", "debug", "--workers", "3",
            "--shard-tokens", "1000", "--block-tokens", "300", "--top-words", "6"]
    summary = _run(argv, local_run["workdir"])
    assert summary["parsed_now"] == 0 and summary["groups_reused"] == summary["groups"] == 3
    assert summary["parsed"] == len(local_run["expected"])
    # other settings in the same folder are refused before anything runs
    assert main([*argv[:-2], "--top-words", "7", "--workdir", local_run["workdir"]]) == 2


def test_incremental_reparses_a_changed_file_and_relearns_only_its_groups(local_run: dict[str, Any], tmp_path: Path) -> None:
    root, out = tmp_path / "scores", tmp_path / "out"
    shutil.copytree(local_run["root"], root)
    shutil.copytree(local_run["out"], out)  # a finished run, then one input of group beta changes
    rows = {r["id"]: r for r in pq.read_table(out / "pieces").to_pylist()}
    assert rows["beta/drums"]["group"] == "beta" and rows["beta/drums"]["version"]  # the driver adds both
    (root / "beta" / "drums.mid").write_bytes(notes_to_midi_bytes(playable_notes(
        planted_corpus(seed=99, n_pieces=1, n_motifs=1, occurrences=3).pieces[0])))
    argv = ["words", "--input", str(root), "--output", str(out), "--preset", "debug", "--workers", "3",
            "--shard-tokens", "1000", "--block-tokens", "300", "--top-words", "6"]
    plain = _run(argv, local_run["workdir"])  # without --incremental a rerun skips every id already written
    assert plain["parsed_now"] == 0 and plain["skipped"] == len(local_run["expected"])
    summary = _run([*argv, "--incremental"], local_run["workdir"])
    assert (summary["changed"], summary["new"], summary["parsed_now"]) == (1, 0, 1)
    assert summary["parse_errors"] == sum(v is not None for v in local_run["expected"].values()) - 1  # drums now parse
    assert summary["groups_reused"] == summary["groups"] - 2  # beta and the whole corpus are learned again
    latest = {r["id"]: r for r in incremental.read_latest(str(out / "pieces")).to_pylist()}
    assert latest["beta/drums"]["status"] == "ok" and latest["beta/drums"]["version"] != rows["beta/drums"]["version"]


def test_group_by_none_learns_the_corpus_alone(local_run: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "none"
    shutil.copytree(local_run["out"] / "pieces", out / "pieces")  # the parsed rows: only the learning runs
    summary = _run(["words", "--input", str(local_run["root"]), "--output", str(out), "--preset", "debug", "--workers", "2",
                    "--group-by", "none", "--top-words", "6", "--motif-voices", "none", "--motif-bars", "none"],
                   local_run["workdir"])
    assert summary["parsed_now"] == 0 and summary["groups"] == summary["groups_ok"] == 1
    config = json.loads((out / "config.json").read_text())
    assert config["motif_voices"] == "none" and config["motif_bars"] is None
    assert json.loads((local_run["out"] / "config.json").read_text())["motif_bars"] == 1.0  # the default: filled to a bar
    groups = pq.read_table(out / "groups.parquet").to_pylist()
    assert [g["group"] for g in groups] == ["whole corpus"]
    assert groups[0]["n_pieces"] == summary["parsed"] - summary["parse_errors"]
    page = (out / "index.html").read_text()
    assert page.count('class="group"') + page.count('class="corpus"') == 1


def test_bad_calls_are_refused(tmp_path: Path) -> None:
    assert main(["words", "--input", str(tmp_path / "nothing"), "--output", str(tmp_path / "o")]) == 2
    assert main(["words", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--workers", "0"]) == 2


# --------------------------------------------------------------------------------------------
# S3 in, S3 out


def test_job_on_s3(ray_cluster: None, bucket: str, tmp_path: Path) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    root = tmp_path / "scores"
    expected = _write_inputs(root)
    for path in root.rglob("*"):
        if path.is_file():
            s3.put_object(Bucket=bucket, Key=f"in/{path.relative_to(root).as_posix()}", Body=path.read_bytes())
    summary = _run(["words", "--input", f"s3://{bucket}/in", "--output", f"s3://{bucket}/out", "--preset", "debug",
                    "--workers", "1", "--top-words", "4", "--max-error-rate", "0.5"], str(tmp_path / "mlflow"))
    assert summary["parsed"] == len(expected) and summary["groups_ok"] == 3
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]}
    assert {"out/index.html", "out/groups.parquet", "out/groups/alpha/dictionary.parquet",
            "out/groups/_corpus/usage.parquet", "out/report/overview.png"} <= keys
    assert not any("/.tmp-" in k for k in keys)
    body = s3.get_object(Bucket=bucket, Key="out/groups.parquet")["Body"].read()
    groups = pq.read_table(io.BytesIO(body)).to_pylist()
    assert {g["group"] for g in groups} == {"alpha", "beta", "whole corpus"} and all(g["status"] == "ok" for g in groups)
    html = s3.get_object(Bucket=bucket, Key="out/index.html")["Body"].read().decode()
    assert 'src="groups/alpha/piece.png"' in html and "out/groups/alpha/piece.png" in keys


# --------------------------------------------------------------------------------------------
# the report in a real browser


def _chromium() -> str:
    """The system Chromium, installed with apt-get when missing (root only); skips, saying why, otherwise."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return str(shutil.which(name))
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                              capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:  # the package lists may be stale
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=300)
            done = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                                  capture_output=True, text=True, env=env, timeout=900)
        if done.returncode == 0 and shutil.which("chromium"):
            return str(shutil.which("chromium"))
        pytest.skip(f"no Chromium: apt-get install chromium failed ({done.stderr.strip()[-300:]})")
    # the rule: skip, with the reason, only where Chromium cannot be installed (CI runs as root and installs it)
    pytest.skip("no Chromium on this machine and no root apt-get to install it (apt-get install chromium)")


def _browser_eval(browser: str, url: str, expression: str, profile: Path) -> Any:
    """Open ``url`` in headless Chromium, wait for the load event, return ``expression``'s JSON value
    (over the DevTools protocol, with aiohttp's WebSocket client)."""
    import asyncio

    import aiohttp

    proc = subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--allow-file-access-from-files", f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.time() < deadline, "Chromium did not start"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])

        async def go() -> Any:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                    target = next(t for t in await r.json() if t["type"] == "page")
                async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    ids = iter(range(1, 10**6))

                    async def call(method: str, **params: Any) -> Any:
                        k = next(ids)
                        await ws.send_json({"id": k, "method": method, "params": params})
                        while True:
                            msg = await ws.receive_json(timeout=60)
                            if msg.get("id") == k:
                                assert "error" not in msg, msg
                                return msg["result"]

                    await call("Page.enable")
                    await call("Page.navigate", url=url)
                    for _ in range(300):
                        state = await call("Runtime.evaluate", expression="document.readyState", returnByValue=True)
                        if state["result"]["value"] == "complete":
                            break
                        await asyncio.sleep(0.1)
                    out = await call("Runtime.evaluate", expression=expression, returnByValue=True)
                    return out["result"]["value"]

        return asyncio.run(go())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_report_renders_in_chromium(local_run: dict[str, Any], tmp_path: Path) -> None:
    browser = _chromium()
    out = local_run["out"]
    probe = """JSON.stringify({
      groups: [...document.querySelectorAll('section.group')].map(s => s.dataset.group),
      corpus: document.querySelectorAll('section.corpus').length,
      images: [...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
      rolls: document.querySelectorAll('.word svg rect').length,
      midi: [...document.querySelectorAll('a[href$=".mid"]')].map(a => a.getAttribute('href')),
      title: document.title})"""
    page = json.loads(_browser_eval(browser, (out / "index.html").as_uri(), probe, tmp_path / "profile"))
    assert sorted(page["groups"]) == sorted(COMPOSERS)  # one section per composer
    assert page["corpus"] == 1
    assert len(page["images"]) >= 1 + 2 * (len(COMPOSERS) + 1)  # overview, and per group: code length, piece view
    broken = [i["src"] for i in page["images"] if not i["ok"]]
    assert not broken, f"broken images: {broken}"
    assert page["rolls"] > 0 and page["title"].startswith("Music-words")
    assert page["midi"] and all((out / href).read_bytes()[:4] == b"MThd" for href in page["midi"])
