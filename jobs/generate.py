"""``python -m jobs generate``: a soundtrack for every video of a catalog, muxed, and scored.

An actor pool (Ray Data ``map_batches`` with a callable class, ``--gpus-per-worker`` GPUs each)
loads the pipeline once per actor, from a folder (local or s3) or an MLflow model
(``models:/NAME/VERSION``). Per video: its storyboard → a soundtrack of exactly its duration →
``<output>/audio/<id>.wav`` and ``<output>/videos/<id>.mp4`` (the picture stream copied, not
re-encoded) → a score row of the muxed video (vem.scoring: transitions vs the new beats). One row
per input in ``<output>/generated/part-*.parquet``; a video that cannot be read gets an error
row; a rerun skips the ids done (``--incremental``: also redoes changed inputs).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from jobs import incremental, sandbox, storage
from jobs.rows import RowWorker, add_row_arguments, map_rows, preview, row_options
from jobs.runtime import JobError

DESCRIPTION = "write a soundtrack for every video with a trained VeM model, mux it, and score the result"
EXAMPLES = """examples:
  python -m jobs generate --input work/sample/videos --model models/vem-small --output work/generated
  python -m jobs generate --input s3://ads/new --model models:/vem-base/3 --output s3://ads/soundtracks \\
      --workers 8 --gpus-per-worker 1 --steps 25 --guidance 3
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="a folder/prefix of videos, or a Parquet manifest with id and uri")
    parser.add_argument("--model", required=True, help="a saved pipeline folder (local or s3://) or models:/NAME/VERSION")
    parser.add_argument("--output", required=True, help="output folder: audio/, videos/ and generated/part-*.parquet")
    parser.add_argument("--limit", type=int, default=None, help="generate for at most this many new videos")
    parser.add_argument("--workers", type=int, default=None, help="generation actors (default: CPUs - 1, or GPUs)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor (default: %(default)s = CPU)")
    add_row_arguments(parser, block_inputs=4)
    controls = parser.add_argument_group("controls")
    controls.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same music")
    controls.add_argument("--steps", type=int, default=25, help="sampler steps (DPM-Solver++; default: %(default)s)")
    controls.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (1 = off)")
    controls.add_argument("--mask-mode", choices=["hard", "soft", "off"], default=None,
                          help="storyboard mask of SG-CAtt (default: the model's)")
    controls.add_argument("--adapter-strength", type=float, default=1.0, help="TB-As strength (0 = off; default: 1)")
    controls.add_argument("--bpm", type=float, default=None, help="ask for this tempo (default: the model decides)")
    sandbox.add_argument(parser)
    incremental.add_arguments(parser)


def check(args: argparse.Namespace) -> None:
    for name in ("limit", "workers", "steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise JobError(f"--{name} must be at least 1, got {value}")
    if args.gpus_per_worker < 0:
        raise JobError("--gpus-per-worker must not be negative")
    try:
        if not storage.exists(args.input):
            raise JobError(f"--input {storage.redact_url(args.input)}: not found")
        if not args.model.startswith("models:/") and not storage.exists(storage.join(args.model, "vem_config.json")):
            raise JobError(f"--model {storage.redact_url(args.model)}: not a saved VeM pipeline (no vem_config.json)")
        storage.check_writable(args.output)
    except storage.StorageError as e:
        raise JobError(str(e)) from e


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    from jobs.score import list_inputs  # noqa: PLC0415

    out = preview(list_inputs(args.input), storage.join(args.output, "generated"), incremental_run=args.incremental,
                  limit=args.limit, outputs={"generated": storage.join(args.output, "generated"),
                                             "videos": storage.join(args.output, "videos"),
                                             "audio": storage.join(args.output, "audio")})
    return {**out, "model": args.model}


def resolve_model(model: str, into: Path) -> str:
    """A folder the pipeline loads from: ``models:/`` URIs are downloaded from MLflow."""
    if not model.startswith("models:/"):
        return model
    import mlflow  # noqa: PLC0415

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model.rstrip("/") + "/artifacts/pipeline", dst_path=str(into))
    except Exception as e:  # MLflow raises its own exception types for unknown models and versions
        raise JobError(f"--model {model}: cannot be loaded from MLflow ({type(e).__name__}: {e})") from e
    return local


class Generator(RowWorker):
    """Ray Data actor: the pipeline, loaded once; one video → soundtrack, muxed video, score row."""

    PRELOAD = ("jobs.generate", "vem.storyboard", "vem.media", "vem.scoring")

    REJECTIONS = ("vem.storyboard.VideoError", "vem.audio.AudioError")

    def __init__(self, model: str, output: str, controls: dict[str, Any], tracking_uri: str | None = None,
                 input_time_limit: float = sandbox.DEFAULT_LIMIT_S,
                 input_memory_limit: float = sandbox.DEFAULT_MEMORY_GIB) -> None:
        import torch  # noqa: PLC0415

        from vem.pipeline import VeMPipeline  # noqa: PLC0415

        super().__init__(input_time_limit, input_memory_limit)
        if tracking_uri:
            import mlflow  # noqa: PLC0415

            mlflow.set_tracking_uri(tracking_uri)
        self.tmp = tempfile.TemporaryDirectory()
        self.pipe = VeMPipeline.from_pretrained(resolve_model(model, Path(self.tmp.name)))
        if torch.cuda.is_available():
            self.pipe = self.pipe.to("cuda")
        self.output, self.controls, self.model = output, controls, model

    def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
        return error_row(id_, uri, reason)

    def one(self, id_: str, uri: str) -> dict[str, Any]:
        from vem.validation import wav_bytes  # noqa: PLC0415

        t0 = time.time()
        try:
            data = storage.read_bytes(uri)
        except storage.StorageError as e:
            return error_row(id_, uri, f"read: {e}")
        # Every step that reads the untrusted bytes runs in the sandbox: parsing (with the model's
        # image encoder, loaded there from the model's folder), muxing and scoring the result.
        encoder_dir = str(self.pipe.image_encoder_dir) if self.pipe.image_encoder is not None else None
        sb = self.isolated(storyboard_of, data, self.pipe.parse_config(), encoder_dir)
        wav = self.pipe(sb, **self.controls)
        sr = self.pipe.config.mel.sample_rate
        name = safe_name(id_)
        audio_url = storage.join(self.output, "audio", f"{name}.wav")
        video_url = storage.join(self.output, "videos", f"{name}.mp4")
        muxed, score = self.isolated(mux_and_score, id_, video_url, data, wav, sr)
        storage.write_bytes(audio_url, wav_bytes(wav, sr))
        storage.write_bytes(video_url, muxed)
        score.pop("seconds", None)
        return {**score, "source_uri": uri, "audio_uri": audio_url, "video_uri": video_url, "model": self.model,
                "seed": self.controls["seed"], "audio_s": round(len(wav) / sr, 4), "seconds": round(time.time() - t0, 3)}


@functools.lru_cache(maxsize=1)
def _image_encoder(folder: str) -> Any:
    from vem.encoders import load_image_encoder  # noqa: PLC0415

    return load_image_encoder(folder)


def storyboard_of(data: bytes, config: Any, encoder_dir: str | None) -> Any:
    """(In the sandbox.) The video's storyboard, embedded by the image encoder in ``encoder_dir`` if one
    (loaded once per sandbox process), else by the built-in features ``config`` names."""
    from vem.storyboard import parse_video  # noqa: PLC0415

    return parse_video(data, config, _image_encoder(encoder_dir) if encoder_dir else None)


def mux_and_score(id_: str, video_url: str, data: bytes, wav: Any, sample_rate: int) -> tuple[bytes, dict[str, Any]]:
    """(In the sandbox.) The video with the soundtrack muxed in, and that video's score row."""
    from vem.media import mux_soundtrack  # noqa: PLC0415
    from vem.scoring import score_video  # noqa: PLC0415
    from vem.storyboard import ParseConfig  # noqa: PLC0415

    muxed = mux_soundtrack(data, wav, sample_rate)
    return muxed, score_video(id_, video_url, muxed, config=ParseConfig(embedding="none"))


def safe_name(id_: str) -> str:
    """A file name from an id: percent-encoded, so it holds no separator, does not start with a dot
    and no two ids share one (``a/b`` and ``a__b`` stay apart)."""
    name = urllib.parse.quote(id_, safe="")  # every byte but letters, digits and "_.-~" as %XX ("%" itself too)
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name or "%"  # a lone "%" is no encoding of anything else


def error_row(id_: str, uri: str, reason: str) -> dict[str, Any]:
    from vem.scoring import error_row as score_error  # noqa: PLC0415

    row = score_error(id_, uri, reason)
    row.update(source_uri=uri, uri=uri)
    return row


def schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    from jobs.score import schema as score_schema  # noqa: PLC0415

    base = score_schema()
    extra = [("source_uri", pa.string()), ("audio_uri", pa.string()), ("video_uri", pa.string()), ("model", pa.string()),
             ("seed", pa.int64()), ("audio_s", pa.float64())]
    return pa.schema([f for f in base if f.name != "version"] + [pa.field(n, t) for n, t in extra] + [base.field("version")])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow  # noqa: PLC0415
    import ray  # noqa: PLC0415

    from jobs.score import VIDEO_SUFFIXES, list_inputs, summarise, summary_fields  # noqa: PLC0415

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:  # fail early, before any actor starts, on an unknown models:/ URI
        resolve_model(args.model, Path(tmp))
    inputs = list_inputs(args.input)
    if not inputs:
        raise JobError(f"--input {storage.redact_url(args.input)}: no videos ({', '.join(VIDEO_SUFFIXES)})")
    folder = storage.join(args.output, "generated")
    work = incremental.plan(inputs, incremental.done_table(folder), incremental=args.incremental, limit=args.limit)
    n_inputs = len(inputs)
    del inputs  # the plan's table goes to storage; the driver keeps counts (jobs.rows)
    if args.gpus_per_worker:
        workers = args.workers or max(1, int(ray.cluster_resources().get("GPU", 0) / args.gpus_per_worker))
    else:
        workers = args.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) - 1)
    controls = {"seed": args.seed, "steps": args.steps, "guidance_scale": args.guidance, "mask_mode": args.mask_mode,
                "adapter_strength": args.adapter_strength, "bpm": args.bpm}
    rows = map_rows(work.take_todo(), Generator, folder=folder, schema=schema(), workers=workers,
                    num_cpus=0 if args.gpus_per_worker else 1, num_gpus=args.gpus_per_worker,
                    lost_row=lambda r, why: error_row(r["id"], r["uri"], why),
                    worker_kwargs={"model": args.model, "output": args.output, "controls": controls,
                                   "tracking_uri": mlflow.get_tracking_uri() if args.model.startswith("models:/") else None,
                                   **sandbox.limits(args)}, keep=summary_fields, **row_options(args))
    summary = summarise(rows)
    summary.update(inputs=n_inputs, processed=rows.rows, **work.counts(), seconds=round(time.time() - started, 2),
                   videos_per_minute=round(rows.rows / max(time.time() - started, 1e-6) * 60, 2),
                   outputs={"generated": folder, "videos": storage.join(args.output, "videos"),
                            "audio": storage.join(args.output, "audio")})
    print(f"generate: {work.describe(errors=summary['errors'])}", file=sys.stderr)
    return summary
