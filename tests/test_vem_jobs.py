"""preprocess → train (Ray Train, 2 workers, resume) → generate (actor pool, moto S3) → the MLflow model."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import storage
from jobs.__main__ import main
from tests.procs import cpus_free_within
from vem.synthetic import SyntheticAdConfig, encode_mp4, plan_ad


@pytest.fixture(scope="module")
def clips(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalog's 6 paired clips, one corrupt file and one video without a soundtrack."""
    folder = tmp_path_factory.mktemp("clips")
    for p in sorted((catalog / "videos").glob("*.mp4")):
        shutil.copy(p, folder / p.name)
    data = (folder / "ad00000.mp4").read_bytes()
    (folder / "corrupt.mp4").write_bytes(data[: len(data) // 4])
    encode_mp4(plan_ad(seed=5, index=0, config=SyntheticAdConfig.debug()), str(folder / "mute.mp4"), streams="video")
    return folder


@pytest.fixture(scope="module")
def examples(ray_cluster: None, workdir: str, clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    assert main(["preprocess", "--input", str(clips), "--output", str(out), "--workdir", workdir,
                 "--preset", "debug", "--max-error-rate", "1"]) == 0
    return out


def test_preprocess_gives_one_row_per_clip(examples: Path, clips: Path) -> None:
    from vem.examples import read_example

    # the job's actor pool is gone with the job (it once outlived it, held a CPU, and the next
    # Ray Train job of the process waited forever for its workers)
    assert cpus_free_within(15.0)
    rows = {r["id"]: r for r in pq.read_table(examples / "examples").to_pylist()}
    assert sorted(rows) == sorted(p.stem for p in clips.glob("*.mp4"))  # rows out = rows in
    assert rows["corrupt"]["status"] == "error" and "VideoError" in rows["corrupt"]["error"]
    assert rows["mute"]["status"] == "error" and "audio" in rows["mute"]["error"]
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert len(ok) == 6
    e = read_example(ok[0])
    assert e.logmel.shape[1] == 64 and abs(len(e.logmel) / 100 - e.storyboard.duration_s) < 0.05
    assert len(e.tb_target) == len(e.storyboard.transition_indicator)
    assert sum(int(r["n_tb"]) for r in ok) > 0  # the catalog puts most cuts on beats
    # a rerun skips every clip
    assert main(["preprocess", "--input", str(clips), "--output", str(examples), "--workdir", str(examples / "w"),
                 "--preset", "debug"]) == 0
    assert len(pq.read_table(examples / "examples")) == len(rows)


def _train(examples: Path, out: Path, workdir: str, steps: int, *extra: str) -> None:
    argv = ["train", "--data", str(examples), "--output", str(out), "--preset", "debug", "--phase", "vae",
            "--steps", str(steps), "--workers", "2", "--batch-size", "2", "--checkpoint-every", "10", "--log-every", "10",
            "--holdout", "0.3", "--register", "vem-test", "--lr", "0.01", "--workdir", workdir, *extra]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def trained(examples: Path, workdir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    _train(examples, out, workdir, 20)
    return out


@pytest.mark.slow
def test_training_on_two_workers_learns_checkpoints_and_resumes(trained: Path, workdir: str, examples: Path) -> None:
    import mlflow

    latest = json.loads((trained / "checkpoints" / "latest.json").read_text())
    assert latest["phase"] == "vae" and latest["step"] == 20
    assert (trained / "checkpoints" / latest["name"] / "model.safetensors").is_file()
    assert (trained / "model" / "vem_config.json").is_file()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    run = client.search_runs([client.get_experiment_by_name("jobs/train").experiment_id], order_by=["start_time DESC"])[0]
    losses = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "loss_vae"), key=lambda m: m.step)]
    assert len(losses) == 2 and losses[1] < 0.95 * losses[0]  # the VAE learns (mean loss of steps 1-10 vs 11-20)
    # the same command with more steps continues from the checkpoint, not from step 0
    _train(examples, trained, workdir, 24)
    latest = json.loads((trained / "checkpoints" / "latest.json").read_text())
    assert (latest["step"], latest["global_step"]) == (24, 24)
    run = client.search_runs([run.info.experiment_id], order_by=["start_time DESC"])[0]
    assert run.data.metrics["resumed_from_step"] == 20


@pytest.mark.slow
def test_registered_model_generates_what_the_pipeline_does(trained: Path, workdir: str, catalog: Path) -> None:
    import mlflow
    import pandas as pd

    from vem.pipeline import VeMPipeline

    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    versions = mlflow.MlflowClient().search_model_versions("name='vem-test'")
    model = mlflow.pyfunc.load_model(f"models:/vem-test/{max(int(v.version) for v in versions)}")
    video = sorted((catalog / "videos").glob("*.mp4"))[1]
    out = model.predict(pd.DataFrame([{"uri": str(video), "seed": 4, "steps": 3}]))
    expected = VeMPipeline.from_pretrained(trained / "model")(video.read_bytes(), seed=4, steps=3)
    assert np.array_equal(np.asarray(out["audio"][0], np.float32), expected)


def test_generate_through_s3_one_row_per_video(ray_cluster: None, workdir: str, bucket: str, clips: Path,
                                               tmp_path: Path) -> None:
    import av

    from vem.pipeline import VeMPipeline

    names = ["ad00001.mp4", "ad00002.mp4", "corrupt.mp4"]
    for name in names:
        storage.write_bytes(f"s3://{bucket}/in/{name}", (clips / name).read_bytes())
    folder = VeMPipeline.build("debug").save_pretrained(tmp_path / "model")
    for p in folder.rglob("*"):
        if p.is_file():
            storage.write_bytes(f"s3://{bucket}/model/{p.relative_to(folder)}", p.read_bytes())
    out = f"s3://{bucket}/out"
    argv = ["generate", "--input", f"s3://{bucket}/in", "--model", f"s3://{bucket}/model", "--output", out,
            "--steps", "2", "--workdir", workdir, "--max-error-rate", "1"]
    assert main(argv) == 0
    rows = {r["id"]: r for p in storage.list_files(f"{out}/generated", suffixes=(".parquet",))
            for r in storage.read_table(p).to_pylist()}
    assert sorted(rows) == ["ad00001", "ad00002", "corrupt"]  # rows out = rows in
    assert rows["corrupt"]["status"] == "error" and rows["corrupt"]["error"]
    for id_ in ("ad00001", "ad00002"):
        r = rows[id_]
        assert r["status"] == "ok", r["error"]
        with av.open(io.BytesIO(storage.read_bytes(r["video_uri"]))) as c:
            kinds = sorted(s.type for s in c.streams)
            duration = c.duration / 1e6
        with av.open(io.BytesIO((clips / f"{id_}.mp4").read_bytes())) as c:
            source = c.duration / 1e6
        assert kinds == ["audio", "video"] and abs(duration - source) < 0.1
        assert r["audio_s"] == pytest.approx(r["duration_s"], abs=1e-3)
    # a rerun skips the done ids
    assert main(argv) == 0
    assert len(storage.list_files(f"{out}/generated", suffixes=(".parquet",))) == 1


@pytest.mark.slow
def test_the_vocoder_phase_learns_a_vocoder_the_model_then_uses(examples: Path, workdir: str, tmp_path: Path,
                                                                catalog: Path) -> None:
    import mlflow

    from vem.pipeline import VeMPipeline
    from vem.vocoder import LearnedVocoder

    out = tmp_path / "voc"
    argv = ["train", "--data", str(examples), "--output", str(out), "--preset", "debug", "--phase", "vocoder",
            "--steps", "40", "--workers", "2", "--batch-size", "2", "--checkpoint-every", "20", "--log-every", "20",
            "--holdout", "0.3", "--register", "vem-voc", "--lr", "0.003", "--shuffle-buffer", "1", "--workdir", workdir]
    assert main(argv) == 0
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    run = client.search_runs([client.get_experiment_by_name("jobs/train").experiment_id], order_by=["start_time DESC"])[0]
    losses = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "loss_vocoder"), key=lambda m: m.step)]
    assert len(losses) == 2 and losses[1] < losses[0]
    # a buffer smaller than the shard: the shard is streamed again and again, every example each epoch
    epochs = client.get_metric_history(run.info.run_id, "epochs")
    assert max(m.value for m in epochs) >= 10
    pipe = VeMPipeline.from_pretrained(out / "model")
    assert isinstance(pipe.vocoder, LearnedVocoder)
    video = sorted((catalog / "videos").glob("*.mp4"))[0]
    wav = pipe(video.read_bytes(), steps=2, seed=0)
    assert np.isfinite(wav).all() and np.abs(wav).max() > 0


@pytest.mark.slow
def test_preprocess_and_train_around_pretrained_parts(ray_cluster: None, workdir: str, clips: Path, tmp_path: Path) -> None:
    from tests.tiny_models import save_tiny_audioldm, save_tiny_clip_vision
    from vem.examples import read_example
    from vem.pipeline import VeMPipeline

    audio = save_tiny_audioldm(tmp_path / "audioldm", n_mels=32)
    clip = save_tiny_clip_vision(tmp_path / "clip")
    data = tmp_path / "examples"
    assert main(["preprocess", "--input", str(clips), "--output", str(data), "--workdir", workdir, "--preset", "debug",
                 "--encoder", str(clip), "--audio-dir", str(audio), "--max-error-rate", "1"]) == 0
    rows = [r for r in pq.read_table(data / "examples").to_pylist() if r["status"] == "ok"]
    e = read_example(rows[0])
    assert e.storyboard.embeddings.shape[1] == 16 and e.logmel.shape[1] == 32  # the encoder's features, the vocoder's mel
    base = ["train", "--data", str(data), "--preset", "debug", "--phase", "vae", "--steps", "2", "--batch-size", "2",
            "--holdout", "0", "--register", "vem-pretrained", "--workdir", workdir]
    assert main([*base, "--output", str(tmp_path / "no-encoder")]) == 2  # features of another encoder: refused
    assert main([*base, "--output", str(tmp_path / "model"), "--encoder", str(clip), "--audio-dir", str(audio)]) == 0
    pipe = VeMPipeline.from_pretrained(tmp_path / "model" / "model")
    assert (pipe.config.visual_dim, pipe.config.mel.n_mels) == (16, 32)
    assert (tmp_path / "model" / "model" / "image_encoder").is_dir()


@pytest.mark.slow
def test_every_phase_trains_on_two_workers_with_checkpoints_of_its_state(examples: Path, workdir: str, tmp_path: Path,
                                                                          catalog: Path) -> None:
    """The four phases in DDP (each phase's loss wrapped by prepare_model), the schedule, the EMA
    and every worker's RNG state in the checkpoints; the model generates."""
    from safetensors.torch import load_file

    from vem.pipeline import VeMPipeline

    out = tmp_path / "all"
    argv = ["train", "--data", str(examples), "--output", str(out), "--preset", "debug", "--phase", "all",
            "--steps", "6", "--workers", "2", "--batch-size", "2", "--checkpoint-every", "4", "--log-every", "3",
            "--holdout", "0.3", "--register", "vem-all", "--ema", "0.9", "--workdir", workdir]
    assert main(argv) == 0
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())
    assert (latest["phase"], latest["step"], latest["global_step"]) == ("adapter", 6, 24)
    kept = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    assert kept == ["step-0000022", "step-0000024"]  # the last two: mid-phase (step 4 of the adapter) and its end
    mid = out / "checkpoints" / "step-0000022"
    state = json.loads((mid / "trainer_state.json").read_text())
    assert state["phase"] == "adapter" and state["schedule"]["last_epoch"] == 4
    assert {p.name for p in mid.glob("rng-rank*.json")} == {"rng-rank0.json", "rng-rank1.json"}
    ema = load_file(str(mid / "ema.safetensors"))
    assert int(ema["updates"]) == 4 and any(k.startswith("shadow.denoiser.adapters.") for k in ema)
    pipe = VeMPipeline.from_pretrained(out / "model")
    assert pipe.config.latent_scale != 1.0  # the diffusion phase set the latent statistics from the data
    video = sorted((catalog / "videos").glob("*.mp4"))[0]
    wav = pipe(video.read_bytes(), steps=2, seed=0)
    assert np.isfinite(wav).all() and np.abs(wav).max() > 0
