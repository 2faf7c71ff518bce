"""``python -m jobs train``: VeM training on Ray Train, in the paper's phases, resumable.

Reads the examples of ``python -m jobs preprocess`` (``<data>/examples``), holds out a share of
the ids (by a hash of the id: the same split on every run and machine), and runs a Ray Train
``TorchTrainer``: each worker streams its shard with ``get_dataset_shard`` (decoded examples are
kept in memory up to ``--cache`` per worker), takes random crops, and the gradients are averaged
across workers with an all-reduce (gloo on CPU, NCCL on GPU) before each optimiser step.

Phases (``--phase all`` runs them in order): ``vae`` (the music latent space), ``aligner``
(TB-As aligner, BCE on transition ∩ beat), ``diffusion`` (denoiser + conditioner, adapters off),
``adapter`` (the adapters alone, everything else frozen). Before the first diffusion step the
latent scale is set from the data (1 / std after subtracting the mean).

Checkpoints: rank 0 writes the pipeline + optimiser + position to
``<output>/checkpoints/step-N/`` every ``--checkpoint-every`` steps and at the end of each phase,
then points ``<output>/checkpoints/latest.json`` at it (written last, atomically). A worker (or
the whole job) that starts again loads the latest checkpoint and continues from its step; Ray
Train restarts failed workers up to ``--max-failures`` times (the whole worker group starts
again: every worker loads the latest checkpoint; rank 0 logs the MLflow metric
``started_at_step`` at each start, so the summary's ``worker_restarts`` and ``started_at_steps``
show where it resumed). The final pipeline goes to ``<output>/model``, is logged to MLflow
(weights as safetensors, served through ``jobs/vem_model.py``, MLflow's models-from-code, so
nothing is unpickled) and registered as ``--register``. Rank 0 logs losses and, every
``--val-every`` steps of the diffusion phases, validation sync metrics of generated music on
held-out clips, with sample audio and spectrograms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jobs import storage
from jobs.runtime import JobError

DESCRIPTION = "train VeM on preprocessed examples with Ray Train (phases, checkpoints, resume, MLflow model)"
EXAMPLES = """examples:
  python -m jobs train --data work/examples --output work/vem-small --preset small --phase all --workers 2
  python -m jobs train --data s3://ads/examples --output s3://ads/models/vem --preset base --workers 8 --gpu
  (rerun the same command after a crash or a kill: it continues from the last checkpoint)
"""
PHASES = ("vae", "aligner", "diffusion", "adapter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="output folder of the preprocess job (or its examples/ folder)")
    parser.add_argument("--output", required=True, help="folder for checkpoints/ and the final model/")
    parser.add_argument("--preset", default="small", choices=["debug", "small", "base"], help="model size (default: %(default)s)")
    parser.add_argument("--phase", default="all", choices=[*PHASES, "all"], help="which phase(s) to run (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps per phase (default: the preset's: debug 20, small 400, base 20000)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per worker per step (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-3 for small models, 2e-4 base)")
    parser.add_argument("--crop-s", type=float, default=None, help="seconds per training crop (default: the preset's window)")
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker (NCCL)")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default: %(default)s)")
    parser.add_argument("--val-every", type=int, default=0,
                        help="steps between validations in the diffusion phases (default: only at each phase's end)")
    parser.add_argument("--val-clips", type=int, default=4, help="held-out clips generated at each validation")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of ids held out (default: %(default)s)")
    parser.add_argument("--cache", type=int, default=5000, help="decoded examples kept in memory per worker")
    parser.add_argument("--register", default=None, help="MLflow registered model name (default: vem-<preset>)")
    parser.add_argument("--max-failures", type=int, default=2, help="worker failures Ray Train recovers from")
    parser.add_argument("--log-every", type=int, default=10, help="steps between logged losses (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)


def check(args: argparse.Namespace) -> None:
    for name in ("workers", "batch_size", "checkpoint_every", "val_clips", "log_every"):
        if getattr(args, name) < 1:
            raise JobError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.steps is not None and args.steps < 1:
        raise JobError(f"--steps must be at least 1, got {args.steps}")
    if not 0 <= args.holdout < 1:
        raise JobError(f"--holdout must be in [0, 1), got {args.holdout}")
    try:
        if not storage.exists(args.data):
            raise JobError(f"--data {storage.redact_url(args.data)}: not found")
        storage.check_writable(args.output)
    except storage.StorageError as e:
        raise JobError(str(e)) from e


DEFAULT_STEPS = {"debug": 20, "small": 400, "base": 20000}
VAE_CROP_S = 2.0  # the VAE is convolutional: 2 s crops carry its context at a fifth of the cost of 10 s


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    from jobs import incremental  # noqa: PLC0415

    table = incremental.read_latest(_examples_url(args.data), columns=["id", "status"])
    ids = [r["id"] for r in (table.to_pylist() if table is not None else []) if r["status"] == "ok"]
    latest = storage.join(args.output, "checkpoints", "latest.json")
    resume = json.loads(storage.read_bytes(latest)) if storage.exists(latest) else None
    return {"train_clips": sum(not held_out(i, args.holdout) for i in ids), "held_out_clips": sum(held_out(i, args.holdout)
            for i in ids), "phases": list(PHASES) if args.phase == "all" else [args.phase],
            "steps_per_phase": args.steps or DEFAULT_STEPS[args.preset], "resume_from": resume,
            "outputs": {"checkpoints": storage.join(args.output, "checkpoints"), "model": storage.join(args.output, "model")}}


def held_out(id_: str, share: float) -> bool:
    """The split: an id is held out when its hash falls in the first ``share`` of the range."""
    return int(hashlib.sha256(id_.encode()).hexdigest()[:8], 16) / 16**8 < share


def _examples_url(data: str) -> str:
    folder = data.rstrip("/")
    return folder if folder.endswith("/examples") else storage.join(folder, "examples")


# ---- checkpoints (storage: local or s3) -------------------------------------------------------
def latest_checkpoint(output: str) -> str | None:
    pointer = storage.join(output, "checkpoints", "latest.json")
    if not storage.exists(pointer):
        return None
    return storage.join(output, "checkpoints", json.loads(storage.read_bytes(pointer))["name"])


def upload_dir(local: Path, url: str) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            storage.write_bytes(storage.join(url, str(path.relative_to(local))), path.read_bytes())


def download_dir(url: str, local: Path) -> Path:
    for file_url in storage.list_files(url):
        rel = file_url[len(url.rstrip("/")) + 1 :]
        target = local / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read_bytes(file_url))
    return local


def save_checkpoint(pipe: Any, optimizer: Any, state: dict[str, Any], output: str) -> str:
    import torch  # noqa: PLC0415

    name = f"step-{state['global_step']:07d}"
    url = storage.join(output, "checkpoints", name)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp)
        pipe.save_pretrained(local)
        if optimizer is not None:
            torch.save(optimizer.state_dict(), local / "optimizer.pt")
        (local / "trainer_state.json").write_text(json.dumps(state))
        upload_dir(local, url)
    storage.write_bytes(storage.join(output, "checkpoints", "latest.json"), json.dumps({"name": name, **state}).encode())
    _prune(storage.join(output, "checkpoints"), keep=KEEP_CHECKPOINTS)
    return url


KEEP_CHECKPOINTS = 2  # the latest and the one before it (in case the latest is being read)


def _prune(folder: str, keep: int) -> None:
    fs, path = storage.filesystem(folder)
    names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)
                   if p.rstrip("/").rsplit("/", 1)[-1].startswith("step-"))
    for old in names[:-keep]:
        fs.rm(f"{path.rstrip('/')}/{old}", recursive=True)


# ---- the training function (runs in each Ray Train worker) ------------------------------------
def train_loop(config: dict[str, Any]) -> None:  # noqa: C901, PLR0912, PLR0915
    import logging  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import ray.data  # noqa: PLC0415
    import ray.train  # noqa: PLC0415
    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415

    from vem.examples import read_example  # noqa: PLC0415
    from vem.pipeline import VeMPipeline  # noqa: PLC0415
    from vem.presets import preset  # noqa: PLC0415
    from vem.training import aligner_loss, crop_batch, diffusion_loss, trainable_parameters, vae_loss  # noqa: PLC0415

    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "Reporting training result" line per report
    ray.data.DataContext.get_current().enable_progress_bars = False  # per-epoch bars of every worker's shard
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device() if config["gpu"] else torch.device("cpu")
    torch.manual_seed(config["seed"] + rank)
    rng = np.random.default_rng(config["seed"] * 1000 + rank)
    output = config["output"]

    # where to start: the latest checkpoint, or a fresh model
    state = {"phase": config["phases"][0], "step": 0, "global_step": 0}
    optimizer_state = None
    latest = latest_checkpoint(output)
    tmp = tempfile.TemporaryDirectory()
    if latest is not None:
        local = download_dir(latest, Path(tmp.name) / "ckpt")
        pipe = VeMPipeline.from_pretrained(local)
        state = json.loads((local / "trainer_state.json").read_text())
        if (local / "optimizer.pt").is_file():
            optimizer_state = torch.load(local / "optimizer.pt", weights_only=True, map_location="cpu")
    else:
        pipe = VeMPipeline.build(preset(config["preset"]), seed=config["seed"])
    pipe = pipe.to(device)

    logger = _MlflowLogger(config) if rank == 0 else None
    if rank == 0:  # where this start of the worker group begins: once per run, again after each recovered failure
        where = (f"{latest.rstrip('/').rsplit('/', 1)[-1]} (phase {state['phase']}, step {state['step']})" if latest
                 else "a new model")
        print(f"train: {world} worker(s) start from {where}", file=sys.stderr)
        if logger:
            logger.metrics({"started_at_step": state["global_step"]}, state["global_step"])
    cache: list[Any] = []
    shard = ray.train.get_dataset_shard("train")
    streamed = [False]

    def examples(n: int) -> list[Any]:
        """``n`` examples: streamed from the shard until it is in memory, then sampled from memory."""
        if not streamed[0] or len(cache) < n:
            for row in shard.iter_rows():
                if len(cache) < config["cache"]:
                    cache.append(read_example(row))
            streamed[0] = len(cache) > 0
        if not cache:
            raise RuntimeError(f"worker {rank} has no training examples")
        return [cache[i] for i in rng.choice(len(cache), size=n, replace=len(cache) < n)]

    phases = config["phases"]
    start_index = phases.index(state["phase"]) if state["phase"] in phases else 0
    for phase in phases[start_index:]:
        first_step = state["step"] if phase == state["phase"] else 0  # a phase checkpointed at its end: step = its steps
        steps = config["steps"]
        if first_step >= steps:
            continue
        pipe.train()
        for p in pipe.parameters():
            p.requires_grad_(False)
        params = list(trainable_parameters(pipe, phase))
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(params, lr=config["lr"], weight_decay=0.01)
        if optimizer_state is not None and phase == state["phase"] and first_step > 0:
            optimizer.load_state_dict(optimizer_state)
        if phase in ("diffusion", "adapter") and not config_has_latent_stats(pipe):
            _set_latent_stats(pipe, examples(min(32, config["batch_size"] * 4)), rng, config, world, device)
        losses: list[float] = []
        latent_cache: dict[str, Any] = {}  # the VAE is frozen after its phase: encode each clip once
        t0 = time.time()
        for step in range(first_step, steps):
            chosen = examples(config["batch_size"])
            batch = crop_batch(pipe, chosen, VAE_CROP_S if phase == "vae" else config["crop_s"], rng)
            frames = batch.frames.to(device)
            if phase == "vae":
                loss = vae_loss(pipe, batch.logmel.to(device))
            elif phase == "aligner":
                loss = aligner_loss(pipe, frames, batch.tb_target.to(device))
            else:
                for e in chosen:
                    if e.id not in latent_cache:
                        with torch.no_grad():
                            latent_cache[e.id] = pipe.mel_to_latents(torch.from_numpy(e.logmel)[None].to(device))[0]
                latents = torch.stack([latent_cache[e.id][j : j + batch.n_latent]
                                       for e, j in zip(chosen, batch.latent_starts, strict=True)])
                loss = diffusion_loss(pipe, latents, batch.cond.to(device), frames,
                                      adapter_strength=1.0 if phase == "adapter" else 0.0,
                                      beats=batch.beat_channels.to(device))
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            if world > 1:
                for p in params:
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= world
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
            global_step = state["global_step"] + 1
            state = {"phase": phase, "step": step + 1, "global_step": global_step}
            done = step + 1 == steps
            if (step + 1) % config["log_every"] == 0 or done:
                mean = float(np.mean(losses[-config["log_every"] :]))
                metrics = {f"loss_{phase}": mean, "step": step + 1, "samples_per_s": round(
                    config["batch_size"] * world * len(losses) / (time.time() - t0), 2)}
                if logger:
                    logger.metrics(metrics, global_step)
                ray.train.report(metrics)
            validate = phase in ("diffusion", "adapter") and (
                done or (config["val_every"] and (step + 1) % config["val_every"] == 0))
            if validate and logger:
                pipe.eval()
                logger.validate(pipe, phase, global_step)
                pipe.train()
            if rank == 0 and ((step + 1) % config["checkpoint_every"] == 0 or done):
                save_checkpoint(pipe, optimizer, state, output)
            if world > 1 and (step + 1) % config["checkpoint_every"] == 0:
                dist.barrier()  # nobody runs ahead of a checkpoint being written
        if logger:
            logger.metrics({f"phase_{phase}_seconds": round(time.time() - t0, 1)}, state["global_step"])
        state = {"phase": phase, "step": steps, "global_step": state["global_step"]}
    if rank == 0:
        pipe.eval()
        with tempfile.TemporaryDirectory() as out:
            upload_dir(pipe.cpu().save_pretrained(Path(out) / "model"), storage.join(output, "model"))
    if world > 1:
        dist.barrier()
    tmp.cleanup()


def config_has_latent_stats(pipe: Any) -> bool:
    return bool(pipe.config.latent_scale != 1.0 or pipe.config.latent_shift != 0.0)


def _set_latent_stats(pipe: Any, examples: list[Any], rng: Any, config: dict[str, Any], world: int, device: Any) -> None:
    """Latent shift and scale from the data (averaged over workers): diffusion sees unit variance."""
    from dataclasses import replace  # noqa: PLC0415

    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415

    from vem.training import crop_batch  # noqa: PLC0415

    with torch.no_grad():
        batch = crop_batch(pipe, examples, config["crop_s"], rng)
        z = pipe.mel_to_latents(batch.logmel.to(device))
        stats = torch.stack([z.mean(), (z**2).mean()])
        if world > 1:
            dist.all_reduce(stats)
            stats /= world
    mean, sq = float(stats[0]), float(stats[1])
    std = max((sq - mean**2) ** 0.5, 1e-6)
    pipe.config = replace(pipe.config, latent_shift=mean, latent_scale=1.0 / std)


class _MlflowLogger:
    """Rank 0's MLflow: the driver's run (same tracking URI and run id)."""

    def __init__(self, config: dict[str, Any]):
        import mlflow  # noqa: PLC0415

        self.config = config
        self.client = mlflow.MlflowClient(tracking_uri=config["tracking_uri"])
        self.run_id = config["run_id"]
        self.val = None

    def metrics(self, values: dict[str, float], step: int) -> None:
        if self.run_id:
            for k, v in values.items():
                self.client.log_metric(self.run_id, k, float(v), step=step)

    def validate(self, pipe: Any, phase: str, step: int) -> None:
        import ray.train  # noqa: PLC0415

        from vem.validation import validate_pipeline  # noqa: PLC0415

        if self.val is None:
            from vem.examples import read_example  # noqa: PLC0415

            # no held-out clips (--holdout 0): Ray Train has no "val" dataset, and asking for its shard raises
            shard = ray.train.get_dataset_shard("val") if self.config.get("has_val", True) else None
            self.val = [read_example(r) for r in shard.iter_rows()][: self.config["val_clips"]] if shard else []
        if not self.val:
            return
        with tempfile.TemporaryDirectory() as tmp:
            figures = validate_pipeline(pipe, self.val, Path(tmp), steps=self.config["val_steps"])
            self.metrics({f"val_{k}": v for k, v in figures.items()}, step)
            if self.run_id:
                self.client.log_artifacts(self.run_id, tmp, artifact_path=f"validation/{phase}-step{step:07d}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow  # noqa: PLC0415
    import ray  # noqa: PLC0415
    from ray.train import FailureConfig, RunConfig, ScalingConfig  # noqa: PLC0415
    from ray.train.torch import TorchConfig, TorchTrainer  # noqa: PLC0415

    from jobs import incremental  # noqa: PLC0415
    from vem.presets import preset  # noqa: PLC0415

    started = time.time()
    # Ray Train runs the workers in their own working directory: a relative local path must not
    # mean another folder there (they would start from a new model and checkpoint elsewhere).
    args.output, args.data = (url if "://" in url else os.path.abspath(url) for url in (args.output, args.data))
    table = incremental.read_latest(_examples_url(args.data))
    if table is None or table.num_rows == 0:
        raise JobError(f"--data {storage.redact_url(args.data)}: no examples (run python -m jobs preprocess first)")
    rows = [r for r in table.to_pylist() if r["status"] == "ok"]
    val = [r for r in rows if held_out(r["id"], args.holdout)]
    train = [r for r in rows if not held_out(r["id"], args.holdout)]
    if len(train) < args.workers:
        raise JobError(f"{len(train)} training clips for {args.workers} workers: need at least one each")
    cfg = preset(args.preset)
    bands = {int(r["logmel_shape"][-1]) for r in rows}
    if bands != {cfg.mel.n_mels}:
        raise JobError(f"--data has log-mels of {sorted(bands)} bands, the {args.preset} preset's model reads "
                       f"{cfg.mel.n_mels}: preprocess with --preset {args.preset}")
    phases = list(PHASES) if args.phase == "all" else [args.phase]
    active = mlflow.active_run()
    config = {
        "preset": args.preset, "phases": phases, "steps": args.steps or DEFAULT_STEPS[args.preset],
        "batch_size": args.batch_size, "lr": args.lr or (2e-4 if args.preset == "base" else 1e-3),
        "crop_s": args.crop_s or cfg.window_s, "gpu": args.gpu, "checkpoint_every": args.checkpoint_every,
        "val_every": args.val_every, "val_clips": args.val_clips, "val_steps": 10, "cache": args.cache, "seed": args.seed,
        "log_every": args.log_every, "output": args.output, "tracking_uri": mlflow.get_tracking_uri(),
        "run_id": active.info.run_id if active else None, "has_val": bool(val),
    }
    mlflow.log_params({"train_clips": len(train), "val_clips_total": len(val), "steps_per_phase": config["steps"],
                       "phases": ",".join(phases), "lr": config["lr"], "crop_s": config["crop_s"]})
    latest = latest_checkpoint(args.output)
    resumed = json.loads(storage.read_bytes(storage.join(args.output, "checkpoints", "latest.json"))) if latest else None
    if resumed:
        print(f"train: resuming from {storage.redact_url(latest or '')}: phase {resumed['phase']}, step {resumed['step']}",
              file=sys.stderr)
    datasets = {"train": ray.data.from_items(train)}
    if val:
        datasets["val"] = ray.data.from_items(val)
    from ray.train import DataConfig  # noqa: PLC0415

    storage_path = args.output if "://" in args.output else os.path.abspath(args.output)
    run_config = RunConfig(name="ray-train", storage_path=storage.join(storage_path, "ray") if "://" in storage_path
                           else os.path.join(storage_path, "ray"), failure_config=FailureConfig(max_failures=args.max_failures))
    if "://" in storage_path:
        fs, path = storage.arrow_filesystem(storage.join(storage_path, "ray"))
        run_config = RunConfig(name="ray-train", storage_path=path, storage_filesystem=fs,
                               failure_config=FailureConfig(max_failures=args.max_failures))
    trainer = TorchTrainer(
        train_loop, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=args.workers, use_gpu=args.gpu,
                                     resources_per_worker=None if args.gpu else {"CPU": 1}),
        torch_config=TorchConfig(backend="nccl" if args.gpu else "gloo"),
        datasets=datasets, dataset_config=DataConfig(datasets_to_split=["train"]), run_config=run_config,
    )
    from ray.train import TrainingFailedError  # noqa: PLC0415

    try:
        result = trainer.fit()
    except TrainingFailedError as e:  # more worker failures than --max-failures, or the training function raised
        raise JobError(f"training failed (the checkpoints so far are kept: rerun to resume; --max-failures "
                       f"{args.max_failures}): {_first_line(e)}") from e
    if result.error:
        raise JobError(f"training failed: {result.error}")
    model_url = storage.join(args.output, "model")
    final = json.loads(storage.read_bytes(storage.join(args.output, "checkpoints", "latest.json")))
    summary: dict[str, Any] = {"train_clips": len(train), "val_clips": len(val), "phases": len(phases),
                               "resumed_from_step": resumed["global_step"] if resumed else 0,
                               "global_step": final["global_step"],
                               "seconds": round(time.time() - started, 1), "outputs": {"model": model_url}}
    summary.update({k: v for k, v in (result.metrics or {}).items() if isinstance(v, int | float)})
    if config["run_id"]:  # every start of the worker group (rank 0 logs its first step): Ray Train's restarts
        starts = mlflow.MlflowClient(tracking_uri=config["tracking_uri"]).get_metric_history(config["run_id"], "started_at_step")
        steps = [int(m.value) for m in sorted(starts, key=lambda m: (m.timestamp, m.step))]
        summary.update(worker_restarts=max(len(steps) - 1, 0), started_at_steps=steps)
    name = args.register or f"vem-{args.preset}"
    version = log_model(model_url, name)
    if version:
        summary["outputs"]["registered"] = f"models:/{name}/{version}"
    return summary


def _first_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def log_model(model_url: str, name: str) -> str | None:
    """Log the pipeline folder as an MLflow pyfunc (models-from-code) and register it; returns the version."""
    import shutil  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    import mlflow  # noqa: PLC0415

    code = Path(__file__).with_name("vem_model.py")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "pipeline"  # the artifact's name inside the model: artifacts/pipeline
        if "://" in model_url:
            download_dir(model_url, local)
        else:
            shutil.copytree(model_url, local)
        with warnings.catch_warnings():  # MLflow's note that predict() has no type hints for a schema
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code), artifacts={"pipeline": str(local)},
                                           registered_model_name=name)
    return str(info.registered_model_version) if info.registered_model_version else None
