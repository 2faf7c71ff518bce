"""Workers killed mid-job (SIGKILL of the real process): generate, words and train lose no input.

Each test runs the real job in a thread, finds the worker process by its title under this
session's raylet (tests/procs.py) and kills it with ``os.kill(pid, SIGKILL)`` while it works:

- ``generate``: a Ray Data generation actor, after its first soundtrack is written;
- ``words``: a GroupLearner inside ``learn`` (and, in another test, every one, so that a retry
  dies too), and a ShardActor of the sharded E-step while the group is being learned (its calls
  last milliseconds: it dies between two of them or inside one, and the next call finds it dead);
- ``train``: one of two Ray Train workers after a checkpoint (slow: ``make test-slow``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs.__main__ import main
from tests.procs import run_and_kill

# --------------------------------------------------------------------------------------------
# generate


@pytest.mark.slow  # ~40 s: the same guarantee for score runs in make test (tests/test_faults.py)
def test_a_generate_actor_killed_mid_job_loses_no_input(ray_cluster: None, workdir: str, catalog: Path,
                                                        tmp_path: Path) -> None:
    import soundfile

    from vem.pipeline import VeMPipeline

    videos = tmp_path / "videos"
    videos.mkdir()
    for p in sorted((catalog / "videos").glob("*.mp4"))[:3]:  # 3 of 6: the kill comes after the first
        shutil.copy(p, videos / p.name)
    model = VeMPipeline.build("debug").save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    argv = ["generate", "--input", str(videos), "--model", str(model), "--output", str(out), "--workers", "1",
            "--block-inputs", "1", "--steps", "1", "--workdir", workdir]

    def first_written() -> dict[str, int] | None:  # the actor has finished one video and works on the next
        n = len(list((out / "audio").glob("*.wav"))) if (out / "audio").is_dir() else 0
        return {"wavs": n} if n else None

    kill = run_and_kill(lambda: main(argv), "MapBatches(Generator)", ready=first_written)
    print(f"killed {kill.title!r} (pid {kill.pid}) {kill.at} s in, {kill.seen}")
    assert kill.pid is not None, "no generation actor was seen at work"
    assert kill.code == 0
    rows = pq.read_table(out / "generated").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(p.stem for p in videos.glob("*.mp4"))  # each input exactly once
    for r in rows:
        assert r["status"] == "ok", (r["id"], r["error"])
        assert Path(r["video_uri"]).is_file()
        info = soundfile.info(r["audio_uri"])
        assert info.duration == pytest.approx(r["duration_s"], abs=0.01)


# --------------------------------------------------------------------------------------------
# words


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two composers' scores (planted motifs) and three unreadable files, as in test_words_job."""
    from tests.test_words_job import _write_inputs

    root = tmp_path_factory.mktemp("scores")
    return {"root": root, "expected": _write_inputs(root)}


def _words(root: Path, out: Path, workdir: str, *extra: str) -> list[str]:
    return ["words", "--input", str(root), "--output", str(out), "--preset", "debug", "--top-words", "4",
            "--max-error-rate", "0.5", "--workdir", workdir, *extra]


def _check_words(out: Path, expected: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every parsed file once, every group once; returns the groups by name."""
    pieces = [r["id"] for r in pq.read_table(out / "pieces").to_pylist()]
    assert sorted(pieces) == sorted(expected)
    groups = [r["group"] for r in pq.read_table(out / "groups.parquet").to_pylist()]
    assert sorted(groups) == ["alpha", "beta", "whole corpus"]
    return {r["group"]: r for r in pq.read_table(out / "groups.parquet").to_pylist()}


def test_a_group_learner_killed_mid_group_learns_it_again(ray_cluster: None, scores: dict[str, Any],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = _words(scores["root"], out, str(tmp_path / "mlflow"), "--workers", "2", "--shard-tokens", str(10**9))
    kill = run_and_kill(lambda: main(argv), "GroupLearner.learn")
    print(f"killed {kill.title!r} (pid {kill.pid}) {kill.at} s in")
    assert kill.pid is not None, "no GroupLearner was seen learning"
    assert kill.code == 0
    groups = _check_words(out, scores["expected"])
    assert all(g["status"] == "ok" for g in groups.values()), groups
    for g in groups.values():
        summary = json.loads((out / "groups" / g["folder"] / "summary.json").read_text())
        assert summary["group"] == g["group"] and not summary["sharded"] and summary["n_words"] > 0


def test_a_group_whose_retry_dies_too_gets_an_error_row(ray_cluster: None, scores: dict[str, Any],
                                                        tmp_path: Path) -> None:
    """Every GroupLearner is killed as soon as it is seen learning: each group's second try dies
    too, so each gets an error row naming it and why, and the job still writes its report."""
    import threading

    from tests.procs import raylet_pid, workers

    out = tmp_path / "out"
    argv = _words(scores["root"], out, str(tmp_path / "mlflow"), "--workers", "1", "--shard-tokens", str(10**9))
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        import os
        import signal

        raylet = raylet_pid()
        while not stop.is_set():
            for pid in workers(raylet, "GroupLearner.learn"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass  # it ended between the listing and the kill
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        code = main(argv)
    finally:
        stop.set()
        thread.join()
    assert code == 0  # group errors do not count against --max-error-rate, which is about input files
    groups = _check_words(out, scores["expected"])
    # two tries per group, each killed (a dying process may be listed, and killed, twice)
    assert len(set(killed)) == 2 * len(groups)
    for name, g in groups.items():
        assert g["status"] == "error" and name in g["error"] and "died 2 times" in g["error"], g
    assert "died 2 times" in (out / "index.html").read_text()


def test_a_shard_actor_killed_mid_learning_gives_the_single_process_result(
        ray_cluster: None, scores: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from jobs.__main__ import build_parser
    from jobs.words import _fingerprint, job_config
    from jobs.words_learn import discover_config, learn_group
    from jobs.words_parse import CORPUS, list_inputs, parsed_rows
    from tests.procs import raylet_pid, workers

    out = tmp_path / "out"
    argv = _words(scores["root"], out, str(tmp_path / "mlflow"), "--workers", "3", "--shard-tokens", "1000",
                  "--block-tokens", "300")
    raylet = raylet_pid()
    first_seen: list[float] = []

    def learning() -> dict[str, float] | None:
        """Shard actors have been up for a while: they hold their lattices, learning goes on (the
        calls themselves last milliseconds, too short to be caught in the act)."""
        if not first_seen and workers(raylet, "ray::ShardActor"):
            first_seen.append(time.time())
        up = time.time() - first_seen[0] if first_seen else 0.0
        return {"shards_up_s": round(up, 2)} if up >= 0.5 else None

    kill = run_and_kill(lambda: main(argv), "ray::ShardActor", ready=learning)
    print(f"killed {kill.title!r} (pid {kill.pid}) {kill.at} s in, {kill.seen}")
    assert kill.pid is not None, "no ShardActor was seen"
    assert kill.code == 0
    groups = _check_words(out, scores["expected"])
    assert all(g["status"] == "ok" for g in groups.values()), groups
    assert groups[CORPUS]["sharded"]
    err = capfd.readouterr().err
    assert "its actor died" in err and "a new actor rebuilds" in err  # it died mid-learning and was replaced
    # the sharded groups' results are those of one process (learned here, in the test's process)
    args = build_parser().parse_args(argv)
    config = job_config(args)
    done = parsed_rows(str(out))
    rows = [{**done[r["id"]], "group": r["group"]} for r in list_inputs(str(scores["root"]), "composer")]
    ok = [r for r in rows if r["status"] == "ok"]
    assert discover_config(config).em.block_tokens == 300
    for name, g in groups.items():
        if not g["sharded"]:
            continue
        members = ok if name == CORPUS else [r for r in ok if r["group"] == name]
        local = learn_group(name, g["folder"], members, config, str(tmp_path / "local"),
                            _fingerprint(config, members))
        job = json.loads((out / "groups" / g["folder"] / "summary.json").read_text())
        assert job["history"] == local["history"] and job["code_length_bits"] == local["code_length_bits"]
        assert job["n_words"] == local["n_words"] and job["top_words"] == local["top_words"]


def test_sharded_estep_survives_a_dead_shard(ray_cluster: None) -> None:
    """RayEStep alone: a shard killed inside an E-step call is replaced, its lattices rebuilt, the
    call made again, and the dictionary is the single-process one; with no replacement allowed the
    learning fails with a clear error instead."""
    from jobs.words_learn import RayEStep, ShardLost
    from musicwords.em import EMConfig, learn_dictionary
    from musicwords.synthetic import planted_corpus
    from musicwords.tokens import Alphabet, tokenize
    from musicwords.voices import separate_voices

    pieces = planted_corpus(seed=5, n_pieces=24, n_motifs=3).pieces
    alphabet = Alphabet()
    streams = tokenize([(n, separate_voices(n)) for n in pieces], alphabet)
    config = dataclasses.replace(EMConfig.debug(), block_tokens=600)
    local = learn_dictionary(streams, Alphabet(symbols=list(alphabet.symbols)), config)

    def learn(max_restarts: int) -> tuple[Any, list[RayEStep]]:
        made: list[RayEStep] = []

        def sharded(blocks: list[np.ndarray]) -> RayEStep:
            made.append(RayEStep(blocks, 2, num_cpus=0.5, max_restarts=max_restarts))
            return made[-1]

        result: list[Any] = []

        def job() -> int:
            try:
                result.append(learn_dictionary(streams, Alphabet(symbols=list(alphabet.symbols)), config, estep=sharded))
            except ShardLost as lost:
                result.append(lost)
            finally:
                for estep in made:
                    estep.close()
            return 0

        # once the first round's trial lattice is built (the pruning's restricted ones follow: a
        # replacement rebuilds several lattices), the shard idle or inside a call
        kill = run_and_kill(job, "ray::ShardActor", ready=lambda: bool(made) and made[0].restarts == [0, 0]
                            and len(made[0]._recipes) >= 2)
        print(f"killed {kill.title!r} (pid {kill.pid}) {kill.at} s in")
        assert kill.pid is not None, "no ShardActor was seen"
        return result[0], made

    remote, made = learn(max_restarts=3)
    assert sum(made[0].restarts) == 1
    assert remote.words == local.words and remote.history == local.history
    assert np.array_equal(remote.logp, local.logp) and np.array_equal(remote.counts, local.counts)
    failed, _ = learn(max_restarts=0)
    assert isinstance(failed, ShardLost) and "shard" in str(failed) and "died 1 time(s)" in str(failed)


# --------------------------------------------------------------------------------------------
# train


@pytest.mark.slow
def test_a_train_worker_killed_mid_run_resumes_from_the_last_checkpoint(ray_cluster: None, workdir: str, catalog: Path,
                                                                         tmp_path: Path) -> None:
    import mlflow

    examples = tmp_path / "examples"
    assert main(["preprocess", "--input", str(catalog / "videos"), "--output", str(examples), "--preset", "debug",
                 "--workdir", workdir]) == 0
    out = tmp_path / "trained"
    steps, every = 30, 5
    argv = ["train", "--data", str(examples), "--output", str(out), "--preset", "debug", "--phase", "vae",
            "--steps", str(steps), "--workers", "2", "--batch-size", "2", "--checkpoint-every", str(every),
            "--log-every", str(every), "--holdout", "0.3", "--register", "vem-fault", "--max-failures", "2",
            "--workdir", workdir]
    latest = out / "checkpoints" / "latest.json"

    def checkpointed() -> dict[str, Any] | None:  # a checkpoint is written and steps are left to do
        try:
            state = json.loads(latest.read_text())
        except (OSError, ValueError):
            return None
        return state if every <= state["step"] <= steps - 2 * every else None

    kill = run_and_kill(lambda: main(argv), "RayTrainWorker", ready=checkpointed)
    print(f"killed {kill.title!r} (pid {kill.pid}) {kill.at} s in, latest checkpoint then: {kill.seen}")
    assert kill.pid is not None, "no Ray Train worker was seen after a checkpoint"
    assert kill.code == 0
    final = json.loads(latest.read_text())
    assert (final["step"], final["global_step"]) == (steps, steps)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("jobs/train")
    assert experiment is not None
    run = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])[0]
    starts = [int(m.value) for m in sorted(client.get_metric_history(run.info.run_id, "started_at_step"),
                                           key=lambda m: m.timestamp)]
    assert len(starts) == 2 and starts[0] == 0, starts  # one restart, after a fresh start
    resumed = starts[1]
    assert 0 < resumed < steps and resumed % every == 0  # from a checkpoint, not from step 0
    assert resumed >= kill.seen["step"]  # the latest one (a later one may have been written before the kill)
    assert run.data.metrics["worker_restarts"] == 1
