"""``python -m jobs preprocess``: paired clips (video + its soundtrack) → VeM training examples.

Per clip, in a Ray Data actor pool: the storyboard and frame features (vem.storyboard, the
built-in visual embedding), the soundtrack's log-mel (vem.mel) and beats (vem.audio), and the
beat and transition ∩ beat targets at 16 fps (vem.examples). The log-mel has ``--preset``'s mel
settings (``small``: 128 bands), so the examples fit the model ``train --preset`` builds. One row
per input to ``<output>/examples/part-*.parquet``; a clip without an audio track, or one that cannot be
decoded, gets an error row. A rerun skips the ids already written (``--incremental``: also the
changed ones are redone). Caption and tags come from a Parquet manifest's ``caption`` / ``tags``
columns when it has them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from jobs import incremental, sandbox, storage
from jobs.rows import RowWorker, add_row_arguments, map_rows, preview, row_options
from jobs.runtime import JobError

DESCRIPTION = "turn paired clips (videos with their music) into VeM training examples"
EXAMPLES = """examples:
  python -m jobs preprocess --input work/sample/videos --output work/examples
  python -m jobs preprocess --input s3://ads/paired.parquet --output s3://ads/examples --workers 32
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="a folder/prefix of videos with soundtracks, or a Parquet manifest "
                        "(id, uri, optional caption and tags)")
    parser.add_argument("--output", required=True, help="output folder: examples/part-*.parquet go there")
    parser.add_argument("--limit", type=int, default=None, help="process at most this many new clips")
    parser.add_argument("--workers", type=int, default=None, help="actors (default: CPUs - 1, at least 1)")
    add_row_arguments(parser, block_inputs=8)
    parser.add_argument("--preset", default="small", choices=["debug", "small", "base"],
                        help="the model the examples are for: its log-mel settings (bands) are used (default: %(default)s)")
    add_pretrained_arguments(parser)
    sandbox.add_argument(parser)
    incremental.add_arguments(parser)


def check(args: argparse.Namespace) -> None:
    for name in ("limit", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise JobError(f"--{name} must be at least 1, got {value}")
    try:
        if not storage.exists(args.input):
            raise JobError(f"--input {storage.redact_url(args.input)}: not found")
        check_pretrained(args)
        storage.check_writable(args.output)
    except storage.StorageError as e:
        raise JobError(str(e)) from e


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    from jobs.score import list_inputs  # noqa: PLC0415

    folder = examples_folder(args.output)
    return preview(list_inputs(args.input), folder, incremental_run=args.incremental, limit=args.limit,
                   outputs={"examples": folder})


def add_pretrained_arguments(parser: argparse.ArgumentParser) -> None:
    """``--encoder`` and ``--audio-dir``: the same on preprocess and on train (a model reads what its examples hold)."""
    parser.add_argument("--encoder", default=None,
                        help="CLIP or SigLIP vision folder (local or s3): frame features from it instead of the built-in "
                             "ones; give preprocess and train the same one")
    parser.add_argument("--audio-dir", default=None,
                        help="pretrained AudioLDM-style folder (vae/ + vocoder/): the log-mel follows its vocoder's "
                             "settings and a new model starts from its VAE and vocoder; give preprocess and train the same one")


def check_pretrained(args: argparse.Namespace) -> None:
    """``--encoder`` and ``--audio-dir`` (preprocess and train): folders that exist, with what they need."""
    for name, needs in (("encoder", "config.json"), ("audio_dir", "vocoder/config.json"), ("text_encoder", "config.json")):
        url = getattr(args, name, None)
        if url and not storage.exists(storage.join(url, needs)):
            raise JobError(f"--{name.replace('_', '-')} {storage.redact_url(url)}: no {needs} there")


def mel_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The log-mel the model will read: the pretrained vocoder's (``--audio-dir``), else the preset's."""
    if args.audio_dir:
        from vem.pipeline import audio_dir_mel  # noqa: PLC0415

        return audio_dir_mel(args.audio_dir).to_dict()
    from vem.presets import preset  # noqa: PLC0415

    return preset(args.preset).mel.to_dict()


def examples_folder(output: str) -> str:
    return storage.join(output, "examples")


class Preprocessor(RowWorker):
    """Ray Data actor: one clip → one training-example row (or an error row)."""

    PRELOAD = ("vem.storyboard", "vem.audio")

    REJECTIONS = ("vem.storyboard.VideoError", "vem.audio.AudioError")

    def __init__(self, texts: dict[str, dict[str, Any]] | None = None, input_time_limit: float = sandbox.DEFAULT_LIMIT_S,
                 mel: dict[str, Any] | None = None, encoder: str | None = None,
                 input_memory_limit: float = sandbox.DEFAULT_MEMORY_GIB) -> None:
        from vem.encoders import load_image_encoder, local_dir  # noqa: PLC0415
        from vem.mel import LogMel, MelConfig  # noqa: PLC0415
        from vem.storyboard import ParseConfig  # noqa: PLC0415

        super().__init__(input_time_limit, input_memory_limit)
        self.parse = ParseConfig(embedding="light")
        self.encoder = load_image_encoder(local_dir(encoder)) if encoder else None
        self.logmel = LogMel(MelConfig(**(mel or {})))
        self.texts = texts or {}

    def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
        return error_row(id_, uri, reason)

    def one(self, id_: str, uri: str) -> dict[str, Any]:
        import numpy as np  # noqa: PLC0415
        import torch  # noqa: PLC0415

        from vem.examples import make_example  # noqa: PLC0415

        t0 = time.time()
        try:
            data = storage.read_bytes(uri)
        except storage.StorageError as e:
            return error_row(id_, uri, f"read: {e}")
        decoded = self.isolated(decode_clip, data, self.parse, keep_frames=self.encoder is not None)
        if decoded is None:
            return error_row(id_, uri, "no soundtrack: the file has no audio track or only silence")
        sb, audio, analysis = decoded
        if self.encoder is not None:  # the pretrained encoder's features of the decoded frames, as generation computes them
            from dataclasses import replace  # noqa: PLC0415

            sb = replace(sb, embeddings=self.encoder(sb.frames), frames=None)
        with torch.no_grad():
            mel = self.logmel(torch.from_numpy(audio.astype(np.float32))[None])[0].numpy()
        extra = self.texts.get(id_, {})
        row = make_example(id_, sb, mel, np.asarray(analysis.beats), float(analysis.tempo_bpm or 0.0),
                           caption=extra.get("caption"), tags=extra.get("tags"))
        return {**row, "uri": uri, "status": "ok", "error": None, "seconds": round(time.time() - t0, 3)}


def decode_clip(data: bytes, parse: Any, keep_frames: bool = False) -> tuple[Any, Any, Any] | None:
    """Storyboard (with its analysis frames when ``keep_frames``), 16 kHz audio and its beat analysis
    of one clip; None when it has no sound. Runs in the actor's sandbox (untrusted bytes)."""
    import numpy as np  # noqa: PLC0415

    from vem.audio import analyze_audio, load_audio  # noqa: PLC0415
    from vem.storyboard import parse_video  # noqa: PLC0415

    sb = parse_video(data, parse, keep_frames=keep_frames)
    audio = load_audio(data)
    if len(audio) == 0 or not np.any(audio):
        return None
    return sb, audio, analyze_audio(audio)


def error_row(id_: str, uri: str, reason: str) -> dict[str, Any]:
    return {"id": id_, "uri": uri, "status": "error", "error": reason}


def schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    floats, ints = pa.list_(pa.float64()), pa.list_(pa.int64())
    fields = [("id", pa.string()), ("uri", pa.string()), ("status", pa.string()), ("error", pa.string()),
              ("duration_s", pa.float64()), ("fps", pa.float64()), ("n_frames", pa.int64()), ("shot_starts", floats),
              ("shot_durations", floats), ("transitions", floats), ("transition_kinds", pa.list_(pa.string())),
              ("beats", floats), ("tempo_bpm", pa.float64()), ("caption", pa.string()), ("tags", pa.list_(pa.string())),
              ("n_tb", pa.int64())]
    for name in ("transition_indicator", "motion_energy", "embeddings", "logmel", "beat_target", "tb_target"):
        fields += [(name, pa.binary()), (name + "_shape", ints)]
    fields += [("seconds", pa.float64()), ("version", pa.string())]
    return pa.schema(fields)


def _texts(url: str) -> dict[str, dict[str, Any]]:
    if not url.lower().endswith(".parquet"):
        return {}
    table = storage.read_table(url)
    cols = [c for c in ("caption", "tags") if c in table.column_names]
    if not cols:
        return {}
    return {str(r["id"]): {c: r[c] for c in cols} for r in table.select(["id", *cols]).to_pylist()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray  # noqa: PLC0415

    from jobs.score import VIDEO_SUFFIXES, list_inputs  # noqa: PLC0415
    started = time.time()
    inputs = list_inputs(args.input)
    if not inputs:
        raise JobError(f"--input {storage.redact_url(args.input)}: no videos ({', '.join(VIDEO_SUFFIXES)})")
    folder = examples_folder(args.output)
    work = incremental.plan(inputs, incremental.done_table(folder), incremental=args.incremental, limit=args.limit)
    n_inputs = len(inputs)
    del inputs  # the plan's table goes to storage; the driver keeps counts (jobs.rows)
    workers = args.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) - 1)
    rows = map_rows(work.take_todo(), Preprocessor, folder=folder, schema=schema(), workers=workers,
                    lost_row=lambda r, why: error_row(r["id"], r["uri"], why),
                    worker_kwargs={"texts": _texts(args.input), **sandbox.limits(args),
                                 "mel": mel_settings(args), "encoder": args.encoder},
                    keep=lambda r: {k: r[k] for k in ("status", "n_tb", "duration_s")}, **row_options(args))
    summary = {"inputs": n_inputs, "processed": rows.rows, "ok": rows.ok, "errors": rows.errors,
               **work.counts(), "transition_beat_frames": int(rows.sum["n_tb"]),
               "hours": round(rows.sum["duration_s"] / 3600, 4), "seconds": round(time.time() - started, 2),
               "outputs": {"examples": folder}}
    print(f"preprocess: {work.describe(errors=rows.errors)}", file=sys.stderr)
    return summary
