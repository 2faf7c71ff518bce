"""``python -m jobs train``: VeM training on Ray Train, in the paper's phases, resumable.

Reads the examples of ``python -m jobs preprocess`` (``<data>/examples``), holds out a share of
the ids (by a hash of the id: the same split on every run and machine), and runs a Ray Train
``TorchTrainer``: each worker streams its shard with ``get_dataset_shard`` epoch after epoch
through a shuffle buffer of ``--shuffle-buffer`` decoded examples (memory stays bounded, every
example is seen each epoch), takes random crops, and trains the phase's loss wrapped in DDP by
``ray.train.torch.prepare_model`` (gradients averaged in the backward pass: gloo on CPU, NCCL
on GPU). The learning rate warms up linearly over 5 % of the steps and decays on a cosine to a
tenth; the diffusion and adapter phases keep an EMA of their weights (``--ema``), which the
phase ends with (validation and the saved model use it).

Phases (``--phase all`` runs the paper's four in order): ``vae`` (the music latent space),
``aligner`` (TB-As aligner, BCE on transition ∩ beat), ``diffusion`` (denoiser + conditioner,
adapters off), ``adapter`` (the adapters alone, everything else frozen). Before the first
diffusion step the latent scale is set from the data (1 / std after subtracting the mean).
``--phase vocoder`` trains a learned vocoder (:mod:`vem.vocoder`) on 1 s crops of the clips'
own soundtracks (decoded from the examples' ``uri``); the model then uses it instead of
Griffin-Lim.

Checkpoints go through ``ray.train.report(checkpoint=...)`` every ``--checkpoint-every`` steps
and at the end of each phase: rank 0 puts the pipeline, optimiser, schedule, EMA and position,
every worker its RNG state; Ray Train persists them to ``<output>/checkpoints/step-N/`` (the
last two are kept) and rank 0 then points ``<output>/checkpoints/latest.json`` at it. A worker
group that Ray Train restarts (up to ``--max-failures`` times) continues from the latest
checkpoint (the newer of ``ray.train.get_checkpoint`` and the one the pointer names: Ray Train
registers a report only when its controller next polls, so a worker killed just after a checkpoint
would otherwise redo it), and so does a rerun of the command; rank 0 logs the MLflow metric ``started_at_step`` at each
start, so the summary's ``worker_restarts`` and ``started_at_steps`` show where it resumed.
The final pipeline goes to ``<output>/model``, is logged to MLflow (weights as safetensors,
served through ``jobs/vem_model.py``, MLflow's models-from-code, so nothing is unpickled) and
registered as ``--register``. Rank 0 logs losses and, every ``--val-every`` steps of the
diffusion phases, validation sync metrics of generated music on held-out clips, with sample
audio and spectrograms.
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
from jobs.preprocess import add_pretrained_arguments, check_pretrained, mel_settings
from jobs.runtime import JobError

DESCRIPTION = "train VeM on preprocessed examples with Ray Train (phases, checkpoints, resume, MLflow model)"
EXAMPLES = """examples:
  python -m jobs train --data work/examples --output work/vem-small --preset small --phase all --workers 2
  python -m jobs train --data s3://ads/examples --output s3://ads/models/vem --preset base --workers 8 --gpu
  (rerun the same command after a crash or a kill: it continues from the last checkpoint)
"""
PHASES = ("vae", "aligner", "diffusion", "adapter")  # --phase all: the paper's phases, in order
OTHER_PHASES = ("vocoder",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="output folder of the preprocess job (or its examples/ folder)")
    parser.add_argument("--output", required=True, help="folder for checkpoints/ and the final model/")
    parser.add_argument("--preset", default="small", choices=["debug", "small", "base"], help="model size (default: %(default)s)")
    parser.add_argument("--phase", default="all", choices=[*PHASES, *OTHER_PHASES, "all"],
                        help="which phase(s) to run; 'all' = the paper's four, not the vocoder (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps per phase (default: the preset's: debug 20, small 400, base 20000)")
    parser.add_argument("--schedule-steps", type=int, default=None,
                        help="length of the learning-rate schedule (warm-up, cosine decay) in steps (default: --steps); "
                             "longer stops the phase part-way down its schedule, where a longer run would be at that "
                             "step (a learning curve from one run's checkpoints)")
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
    parser.add_argument("--shuffle-buffer", type=int, default=512,
                        help="decoded examples each worker holds and draws its batches from (default: %(default)s)")
    parser.add_argument("--ema", type=float, default=0.999,
                        help="EMA decay of the diffusion and adapter weights; 0 = no EMA (default: %(default)s)")
    parser.add_argument("--register", default=None, help="MLflow registered model name (default: vem-<preset>)")
    parser.add_argument("--max-failures", type=int, default=2, help="worker failures Ray Train recovers from")
    parser.add_argument("--log-every", type=int, default=10, help="steps between logged losses (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    add_pretrained_arguments(parser)
    parser.add_argument("--text-encoder", default=None,
                        help="CLAP or CLIP text folder: a new model reads captions and tags (the examples' caption/tags, "
                             "from preprocess's manifest) and learns them")


def check(args: argparse.Namespace) -> None:
    for name in ("workers", "batch_size", "checkpoint_every", "val_clips", "log_every", "shuffle_buffer"):
        if getattr(args, name) < 1:
            raise JobError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.steps is not None and args.steps < 1:
        raise JobError(f"--steps must be at least 1, got {args.steps}")
    steps = args.steps or DEFAULT_STEPS[args.preset]
    if args.schedule_steps is not None and args.schedule_steps < steps:
        raise JobError(f"--schedule-steps ({args.schedule_steps}) must be at least the phase's steps ({steps})")
    if not 0 <= args.holdout < 1:
        raise JobError(f"--holdout must be in [0, 1), got {args.holdout}")
    if not 0 <= args.ema < 1:
        raise JobError(f"--ema must be in [0, 1), got {args.ema}")
    try:
        if not storage.exists(args.data):
            raise JobError(f"--data {storage.redact_url(args.data)}: not found")
        check_pretrained(args)
        storage.check_writable(args.output)
    except storage.StorageError as e:
        raise JobError(str(e)) from e


DEFAULT_STEPS = {"debug": 20, "small": 400, "base": 20000}
VAE_CROP_S = 2.0  # the VAE is convolutional: 2 s crops carry its context at a fifth of the cost of 10 s
VOCODER_CROP_S = 1.0  # the vocoder sees 7 frames each side: 1 s crops are plenty


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
# Ray Train persists each reported checkpoint to <output>/checkpoints/step-N (RunConfig storage_path
# = <output>, name = "checkpoints", checkpoint_dir_name = step-N) and keeps the last KEEP_CHECKPOINTS;
# rank 0 then points <output>/checkpoints/latest.json at it, which a rerun of the command resumes from.
KEEP_CHECKPOINTS = 2  # the latest and the one before it (in case the latest is being read)


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


# ---- the training function (runs in each Ray Train worker) ------------------------------------
def train_loop(config: dict[str, Any]) -> None:
    """Each worker: start from the latest checkpoint (or a new model), run the pending phases, save the model."""
    worker = _Worker(config)
    worker.start()
    for phase in worker.pending_phases():
        worker.run_phase(phase)
    worker.finish()


class _ExampleStream:
    """Training examples from the worker's shard, through a shuffle buffer of at most ``size``
    decoded examples: each batch is drawn from the buffer. When the shard is larger than the
    buffer, the drawn slots are refilled from the stream, epoch after epoch, so every example is
    seen each epoch and memory stays bounded whatever the data's size; when the whole shard fits,
    it is read once and kept. The shards are equal (``streaming_split(equal=True)``), so every
    worker makes the same choice and reads the same number of rows per step: the workers move
    through the epochs together."""

    def __init__(self, shard: Any, size: int, rng: Any, rank: int):
        self.shard, self.size, self.rng, self.rank = shard, size, rng, rank
        self.buffer: list[Any] = []
        self.epochs = 0
        self.whole = False  # the shard fits in the buffer: no more reading
        self.rows: Any = None

    def _decode(self, row: dict[str, Any]) -> Any:
        from vem.examples import read_example  # noqa: PLC0415

        return read_example(row)

    def _fill(self) -> None:
        """The first epoch, until the buffer is full or the epoch ends (then the buffer is the whole shard)."""
        rows = iter(self.shard.iter_rows())
        for row in rows:
            self.buffer.append(self._decode(row))
            if len(self.buffer) >= self.size:
                self.rows = rows
                return
        if not self.buffer:
            raise RuntimeError(f"worker {self.rank} has no training examples")
        self.whole, self.epochs = True, 1

    def _next(self) -> Any:
        """The next row of the stream, starting the next epoch when one ends."""
        for row in self.rows:
            return self._decode(row)
        self.epochs += 1
        self.rows = iter(self.shard.iter_rows())
        return self._decode(next(self.rows))

    def sample(self, n: int) -> list[Any]:
        if not self.buffer:
            self._fill()
        picks = self.rng.choice(len(self.buffer), size=n, replace=len(self.buffer) < n)
        batch = [self.buffer[i] for i in picks]
        if not self.whole:
            for i in picks:
                self.buffer[i] = self._next()
        return batch


class _Worker:
    """One Ray Train worker's state and the named steps of its training."""

    def __init__(self, config: dict[str, Any]):
        import logging  # noqa: PLC0415

        import numpy as np  # noqa: PLC0415
        import ray.data  # noqa: PLC0415
        import ray.train  # noqa: PLC0415
        import torch  # noqa: PLC0415

        logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "Reporting training result" line per report
        ray.data.DataContext.get_current().enable_progress_bars = False  # per-epoch bars of every worker's shard
        ctx = ray.train.get_context()
        self.config = config
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device() if config["gpu"] else torch.device("cpu")
        torch.manual_seed(config["seed"] + self.rank)
        self.rng = np.random.default_rng(config["seed"] * 1000 + self.rank)
        self.logger = _MlflowLogger(config) if self.rank == 0 else None
        self.examples = _ExampleStream(ray.train.get_dataset_shard("train"), config["shuffle_buffer"], self.rng, self.rank)
        self.state = {"phase": config["phases"][0], "step": 0, "global_step": 0}
        self.resume: dict[str, Any] = {}  # optimiser, schedule and EMA states of the phase a checkpoint stopped in
        self.audio: dict[str, Any] = {}  # decoded soundtracks (vocoder phase), bounded
        self.pipe: Any = None

    # -- start: the latest checkpoint, or a new model ------------------------------------------
    def start(self) -> None:
        import ray.train  # noqa: PLC0415

        from vem.pipeline import VeMPipeline  # noqa: PLC0415
        from vem.presets import preset  # noqa: PLC0415

        # The newer of Ray Train's latest checkpoint of this run (after it restarted the workers) and
        # the one latest.json names (a rerun of the command; or this run's, when a worker died after
        # reporting it but before the controller registered it, which get_checkpoint then lacks).
        checkpoint = ray.train.get_checkpoint()
        pointer = latest_checkpoint(self.config["output"])
        if checkpoint is not None and Path(checkpoint.path).name >= (pointer or "/").rsplit("/", 1)[-1]:
            with checkpoint.as_directory() as folder:
                self._load(Path(folder))
        elif pointer:
            with tempfile.TemporaryDirectory() as tmp:
                self._load(download_dir(pointer, Path(tmp)))
        else:
            self.pipe = VeMPipeline.build(preset(self.config["preset"]), audio_dir=self.config["audio_dir"],
                                          image_encoder_dir=self.config["encoder"],
                                          text_encoder_dir=self.config["text_encoder"], seed=self.config["seed"])
        self.pipe = self.pipe.to(self.device)
        if self.rank == 0:  # where this start of the worker group begins: once per run, again after each recovered failure
            where = (f"step-{self.state['global_step']:07d} (phase {self.state['phase']}, step {self.state['step']})"
                     if self.state["global_step"] else "a new model")
            print(f"train: {self.world} worker(s) start from {where}", file=sys.stderr)
            if self.logger:
                self.logger.metrics({"started_at_step": self.state["global_step"]}, self.state["global_step"])

    def _load(self, folder: Path) -> None:
        import torch  # noqa: PLC0415
        from safetensors.torch import load_file  # noqa: PLC0415

        from vem.pipeline import VeMPipeline  # noqa: PLC0415

        self.pipe = VeMPipeline.from_pretrained(folder)
        self.state = json.loads((folder / "trainer_state.json").read_text())
        if (folder / "optimizer.pt").is_file():
            self.resume["optimizer"] = torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu")
        if (folder / "ema.safetensors").is_file():
            self.resume["ema"] = load_file(str(folder / "ema.safetensors"))
        self.resume["schedule"] = self.state.get("schedule")
        rng_file = folder / f"rng-rank{self.rank}.json"
        if rng_file.is_file():  # the same draws as a run that was never stopped (same world size)
            rng = json.loads(rng_file.read_text())
            self.rng.bit_generator.state = rng["numpy"]
            torch.set_rng_state(torch.tensor(rng["torch"], dtype=torch.uint8))

    def pending_phases(self) -> list[str]:
        phases = self.config["phases"]
        start = phases.index(self.state["phase"]) if self.state["phase"] in phases else 0
        return phases[start:]

    # -- one phase --------------------------------------------------------------------------------
    def run_phase(self, phase: str) -> None:  # noqa: PLR0912
        import numpy as np  # noqa: PLC0415
        import ray.train  # noqa: PLC0415
        import torch  # noqa: PLC0415
        from ray.train.torch import prepare_model  # noqa: PLC0415

        from vem.training import EMA, PhaseLoss, lr_factor, trainable_parameters  # noqa: PLC0415

        config, pipe = self.config, self.pipe
        steps = config["steps"]
        resuming = phase == self.state["phase"]
        first_step = self.state["step"] if resuming else 0  # a phase checkpointed at its end: step = its steps
        if first_step >= steps:
            return
        if phase == "vocoder":
            self._ensure_learned_vocoder()
        pipe.train()
        for p in pipe.parameters():
            p.requires_grad_(False)
        params = list(trainable_parameters(pipe, phase))
        for p in params:
            p.requires_grad_(True)
        # DDP (through Ray Train): the gradients are averaged across workers in the backward pass
        model = prepare_model(PhaseLoss(pipe, phase), move_to_device=False)  # every trained parameter is used each step
        optimizer = torch.optim.AdamW(params, lr=config["lr"], weight_decay=0.01)
        horizon = config["schedule_steps"]  # check() made sure it is not shorter than the phase
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, horizon))
        ema = None
        if phase in ("diffusion", "adapter") and config["ema"] > 0:
            ema = EMA([(n, p) for n, p in pipe.named_parameters() if p.requires_grad], decay=config["ema"])
        if resuming and first_step > 0:
            if "optimizer" in self.resume:
                optimizer.load_state_dict(self.resume["optimizer"])
            if self.resume.get("schedule"):
                schedule.load_state_dict(self.resume["schedule"])
            if ema is not None and "ema" in self.resume:
                ema.load_state_dict(self.resume["ema"])
        if phase in ("diffusion", "adapter") and not config_has_latent_stats(pipe):
            _set_latent_stats(pipe, self.examples.sample(min(32, config["batch_size"] * 4)), self.rng, config, self.world,
                              self.device)
        losses: list[float] = []
        latents: dict[str, Any] = {}  # the VAE is frozen after its phase: encode each clip once (bounded)
        t0 = time.time()
        for step in range(first_step, steps):
            loss = model(**self._inputs(phase, latents))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            if ema is not None:
                ema.update()
            losses.append(float(loss.detach()))
            self.state = {"phase": phase, "step": step + 1, "global_step": self.state["global_step"] + 1}
            done = step + 1 == steps
            if done and ema is not None:
                ema.copy_to()  # a phase ends with its averaged weights: the next phase and the model use them
            metrics: dict[str, Any] = {}
            if (step + 1) % config["log_every"] == 0 or done:
                metrics = {f"loss_{phase}": float(np.mean(losses[-config["log_every"] :])), "step": step + 1,
                           "lr": float(schedule.get_last_lr()[0]), "epochs": self.examples.epochs,
                           "samples_per_s": round(config["batch_size"] * self.world * len(losses) / (time.time() - t0), 2)}
                if self.logger:
                    self.logger.metrics(metrics, self.state["global_step"])
            if phase in ("diffusion", "adapter") and self.logger and (
                    done or (config["val_every"] and (step + 1) % config["val_every"] == 0)):
                self._validate(phase, None if done else ema)
            if (step + 1) % config["checkpoint_every"] == 0 or done:
                self._checkpoint(metrics, optimizer, schedule, None if done else ema)
            elif metrics:
                ray.train.report(metrics)
        if self.logger:
            self.logger.metrics({f"phase_{phase}_seconds": round(time.time() - t0, 1)}, self.state["global_step"])
        del model

    def _ensure_learned_vocoder(self) -> None:
        import torch  # noqa: PLC0415

        from vem.vocoder import LearnedVocoder  # noqa: PLC0415

        if not isinstance(self.pipe.vocoder, LearnedVocoder):
            torch.manual_seed(self.config["seed"])  # the same initial weights on every worker
            self.pipe.vocoder = LearnedVocoder(self.pipe.config.mel).to(self.device)

    def _inputs(self, phase: str, latents: dict[str, Any]) -> dict[str, Any]:
        """One step's batch, as the phase's loss takes it."""
        import torch  # noqa: PLC0415

        from vem.training import crop_batch  # noqa: PLC0415

        config, pipe, device = self.config, self.pipe, self.device
        chosen = self.examples.sample(config["batch_size"])
        if phase == "vocoder":
            return {"wav": torch.from_numpy(self._audio_crops(chosen)).to(device)}
        batch = crop_batch(pipe, chosen, VAE_CROP_S if phase == "vae" else config["crop_s"], self.rng)
        frames = batch.frames.to(device)
        if phase == "vae":
            return {"logmel": batch.logmel.to(device)}
        if phase == "aligner":
            return {"frames": frames, "tb_target": batch.tb_target.to(device)}
        if len(latents) > 4 * config["shuffle_buffer"]:
            latents.clear()
        for e in chosen:
            if e.id not in latents:
                with torch.no_grad():
                    latents[e.id] = pipe.mel_to_latents(torch.from_numpy(e.logmel)[None].to(device))[0]
        z = torch.stack([latents[e.id][j : j + batch.n_latent] for e, j in zip(chosen, batch.latent_starts, strict=True)])
        return {"latents": z, "cond": batch.cond.to(device), "frames": frames, "beats": batch.beat_channels.to(device)}

    def _audio_crops(self, chosen: list[Any]) -> Any:
        """``VOCODER_CROP_S`` of each clip's own soundtrack (decoded from the clip the example came from)."""
        import numpy as np  # noqa: PLC0415

        from vem.audio import load_audio  # noqa: PLC0415

        sr = self.pipe.config.mel.sample_rate
        n = int(VOCODER_CROP_S * sr)
        crops = []
        for e in chosen:
            if e.id not in self.audio:
                if len(self.audio) >= self.config["shuffle_buffer"]:
                    self.audio.pop(next(iter(self.audio)))
                if not e.uri:
                    raise RuntimeError(f"example {e.id} has no uri: the vocoder phase reads the clip's audio")
                self.audio[e.id] = (load_audio(storage.read_bytes(e.uri)) * 32767).astype(np.int16)
            y = self.audio[e.id]
            start = int(self.rng.integers(0, max(1, len(y) - n)))
            crop = y[start : start + n].astype(np.float32) / 32767
            crops.append(np.pad(crop, (0, n - len(crop))))
        return np.stack(crops)

    def _validate(self, phase: str, ema: Any) -> None:
        saved = ema.copy_to() if ema is not None else None  # validate the weights the model would ship
        self.pipe.eval()
        assert self.logger is not None
        self.logger.validate(self.pipe, phase, self.state["global_step"])
        self.pipe.train()
        if saved is not None:
            ema.restore(saved)

    # -- checkpoints --------------------------------------------------------------------------
    def _checkpoint(self, metrics: dict[str, Any], optimizer: Any, schedule: Any, ema: Any) -> None:
        """Every worker reports the checkpoint (rank 0 the model, optimiser, schedule and EMA; each its RNG state)."""
        import ray.train  # noqa: PLC0415
        import torch  # noqa: PLC0415
        from safetensors.torch import save_file  # noqa: PLC0415

        name = f"step-{self.state['global_step']:07d}"
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp)
            if self.rank == 0:
                self.pipe.save_pretrained(local)
                torch.save(optimizer.state_dict(), local / "optimizer.pt")
                if ema is not None:
                    save_file(ema.state_dict(), str(local / "ema.safetensors"))
                (local / "trainer_state.json").write_text(json.dumps({**self.state, "schedule": schedule.state_dict()}))
            (local / f"rng-rank{self.rank}.json").write_text(json.dumps(
                {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state().tolist()}))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp), checkpoint_dir_name=name)
        if self.rank == 0:  # written after Ray Train has persisted the checkpoint: a rerun resumes from it
            storage.write_bytes(storage.join(self.config["output"], "checkpoints", "latest.json"),
                                json.dumps({"name": name, **self.state}).encode())

    def finish(self) -> None:
        import torch.distributed as dist  # noqa: PLC0415

        if self.rank == 0:
            self.pipe.eval()
            with tempfile.TemporaryDirectory() as out:
                upload_dir(self.pipe.cpu().save_pretrained(Path(out) / "model"), storage.join(self.config["output"], "model"))
        if self.world > 1:
            dist.barrier()


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
        self.val: list[Any] | None = None

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
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig  # noqa: PLC0415
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
    bands, n_mels = {int(r["logmel_shape"][-1]) for r in rows}, int(mel_settings(args)["n_mels"])
    if bands != {n_mels}:
        how = f"--audio-dir {args.audio_dir}" if args.audio_dir else f"--preset {args.preset}"
        raise JobError(f"--data has log-mels of {sorted(bands)} bands, the model reads {n_mels}: preprocess with {how}")
    dims = {int(r["embeddings_shape"][-1]) for r in rows}
    if not args.encoder and dims != {cfg.visual_dim}:
        raise JobError(f"--data has frame features of {sorted(dims)} dimensions, the built-in ones have {cfg.visual_dim}: "
                       "pass train the --encoder the examples were preprocessed with")
    phases = list(PHASES) if args.phase == "all" else [args.phase]
    active = mlflow.active_run()
    steps = args.steps or DEFAULT_STEPS[args.preset]
    config = {
        "preset": args.preset, "phases": phases, "steps": steps, "schedule_steps": args.schedule_steps or steps,
        "batch_size": args.batch_size, "lr": args.lr or (2e-4 if args.preset == "base" else 1e-3),
        "crop_s": args.crop_s or cfg.window_s, "gpu": args.gpu, "checkpoint_every": args.checkpoint_every,
        "val_every": args.val_every, "val_clips": args.val_clips, "val_steps": 10, "shuffle_buffer": args.shuffle_buffer,
        "ema": args.ema, "seed": args.seed,
        "log_every": args.log_every, "output": args.output, "tracking_uri": mlflow.get_tracking_uri(),
        "run_id": active.info.run_id if active else None, "has_val": bool(val),
        "encoder": args.encoder, "audio_dir": args.audio_dir, "text_encoder": args.text_encoder,
    }
    mlflow.log_params({"train_clips": len(train), "val_clips_total": len(val), "steps_per_phase": config["steps"],
                       "schedule_steps": config["schedule_steps"],
                       "phases": ",".join(phases), "lr": config["lr"], "crop_s": config["crop_s"]})
    latest = latest_checkpoint(args.output)
    resumed = json.loads(storage.read_bytes(storage.join(args.output, "checkpoints", "latest.json"))) if latest else None
    if resumed:
        print(f"train: resuming from {storage.redact_url(latest or '')}: phase {resumed['phase']}, step {resumed['step']}",
              file=sys.stderr)
    datasets: dict[str, Any] = {"train": ray.data.from_items(train)}
    if val:
        datasets["val"] = ray.data.from_items(val)
    from ray.train import DataConfig  # noqa: PLC0415

    # Ray Train persists the reported checkpoints to <output>/checkpoints/step-N and keeps the last ones
    failure, keep = FailureConfig(max_failures=args.max_failures), CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS)
    if "://" in args.output:
        fs, path = storage.arrow_filesystem(args.output)
        run_config = RunConfig(name="checkpoints", storage_path=path, storage_filesystem=fs, failure_config=failure,
                               checkpoint_config=keep)
    else:
        run_config = RunConfig(name="checkpoints", storage_path=args.output, failure_config=failure, checkpoint_config=keep)
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
    # the metrics of the last checkpoint, named apart from the per-step series rank 0 logged
    summary.update({f"final_{k}": v for k, v in (result.metrics or {}).items() if isinstance(v, int | float) and k != "step"})
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
