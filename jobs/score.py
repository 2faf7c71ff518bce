"""``python -m jobs score``: how well each video's music fits its picture, for a whole catalog.

Reads videos under a prefix (or the ``id``/``uri`` rows of a Parquet manifest), scores them in
parallel in a Ray Data actor pool (each actor parses video and audio, see vem.scoring), and
writes one row per input to ``<output>/scores/part-*.parquet`` (each actor writes a part per
block of ``--block-inputs`` videos, atomically, so a crash keeps what was finished). A rerun skips the ids already written;
``--incremental`` also scores again the inputs whose content changed (see jobs.incremental: every
row has the input's ``version``, and when an id has several rows the one of the latest part counts).
The MLflow run gets the means of the metrics, the counts and a histogram of the tight sync
metrics. ``--explain ID`` draws one video's timeline instead.

``--encoder PATH`` (a local or s3:// folder of a CLIP/SigLIP model saved with ``save_pretrained``)
replaces the light frame embedding and fills each row's ``visual_embedding``; with
``--music-encoder PATH`` (a CLAP model) as well, the two are bridged into a joint video-music
embedder and the rows get ``semantic`` and ``tw_semantic`` (see vem.scoring). Without them the
rows say that no joint embedder was configured.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from jobs import incremental, sandbox, storage
from jobs.rows import RowWorker, Tally, add_row_arguments, map_rows, preview, row_options
from jobs.runtime import JobError

DESCRIPTION = "score a catalog of videos: transitions, beats, tempo, and how well cuts land on beats"
EXAMPLES = """examples:
  python -m jobs score --input work/sample/videos --output work/scores
  python -m jobs score --input s3://ads/catalog.parquet --output s3://ads/scores --workers 16
  python -m jobs score --input work/sample/videos --output work/scores --explain ad00003
  python -m jobs score --input s3://ads/incoming --output s3://ads/scores --incremental   # nightly: new and changed only
  python -m jobs score --input work/sample/videos --output work/scores --encoder models/clip --music-encoder models/clap
"""
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".m4v", ".avi")
HISTOGRAMS = ("cut_beat_hit", "tbiou_tight", "tbiou")  # the scores drawn in the run's histograms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="a folder/prefix of videos, or a Parquet manifest with id and uri columns")
    parser.add_argument("--output", required=True, help="output folder: scores/part-*.parquet go there")
    parser.add_argument("--limit", type=int, default=None, help="score at most this many new videos")
    parser.add_argument("--workers", type=int, default=None, help="scoring actors (default: CPUs - 1, at least 1)")
    add_row_arguments(parser, block_inputs=16)
    parser.add_argument("--explain", default=None, metavar="ID", help="draw the timeline of one video as a PNG and stop")
    parser.add_argument("--encoder", default=None, metavar="PATH",
                        help="CLIP/SigLIP model folder (local or s3://) for the frame embeddings; fills visual_embedding")
    parser.add_argument("--music-encoder", default=None, metavar="PATH",
                        help="CLAP model folder (local or s3://); with a full CLIP/SigLIP --encoder, adds the semantic scores")
    sandbox.add_argument(parser)
    incremental.add_arguments(parser)


def check(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise JobError(f"--limit must be at least 1, got {args.limit}")
    if args.workers is not None and args.workers < 1:
        raise JobError(f"--workers must be at least 1, got {args.workers}")
    if args.music_encoder and not args.encoder:
        raise JobError("--music-encoder needs --encoder: the semantic scores bridge a visual and a music model")
    try:
        for flag, path in (("--encoder", args.encoder), ("--music-encoder", args.music_encoder)):
            if path and not storage.exists(path):
                raise JobError(f"{flag} {storage.redact_url(path)}: not found")
        if not storage.exists(args.input):
            raise JobError(f"--input {storage.redact_url(args.input)}: not found")
        storage.check_writable(args.output)
    except storage.StorageError as e:
        raise JobError(str(e)) from e


def list_inputs(url: str) -> Any:
    """``id``, ``uri``, ``version`` of a manifest or of the videos under a prefix (:func:`jobs.incremental.list_table`)."""
    return incremental.list_table(url, VIDEO_SUFFIXES)


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    if args.explain:
        return {"would_draw": args.explain, "outputs": {"timeline": storage.join(args.output, "explain")}}
    return preview(list_inputs(args.input), storage.join(args.output, "scores"), incremental_run=args.incremental,
                   limit=args.limit, outputs={"scores": storage.join(args.output, "scores")})


def read_scores(output: str) -> Any:
    """The current score rows under ``<output>/scores`` (one per id, the newest), as an Arrow table or None."""
    return incremental.read_latest(storage.join(output, "scores"))


class Scorer(RowWorker):
    """Ray Data actor: scores one video per call; the video is decoded in the actor's sandbox."""

    PRELOAD = ("vem.scoring",)

    def __init__(self, input_time_limit: float = sandbox.DEFAULT_LIMIT_S, encoder: str | None = None,
                 music_encoder: str | None = None, input_memory_limit: float = sandbox.DEFAULT_MEMORY_GIB) -> None:
        from vem.encoders import local_dir  # noqa: PLC0415
        from vem.storyboard import ParseConfig  # noqa: PLC0415

        super().__init__(input_time_limit, input_memory_limit)
        self.config = ParseConfig(embedding="none")  # without an encoder a row needs transitions, not frame embeddings
        # s3:// folders are copied once (per machine: a shared cache); the sandbox loads the models once per child
        self.encoders = {"encoder_dir": str(local_dir(encoder)) if encoder else None,
                         "music_encoder_dir": str(local_dir(music_encoder)) if music_encoder else None}

    def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
        from vem.scoring import error_row  # noqa: PLC0415

        return error_row(id_, uri, reason)

    def one(self, id_: str, uri: str) -> dict[str, Any]:
        from vem.scoring import score_video  # noqa: PLC0415

        try:
            data = storage.read_bytes(uri)
        except storage.StorageError as e:
            return self.error_row(id_, uri, f"read: {e}")
        row: dict[str, Any] = self.isolated(score_video, id_, uri, data, config=self.config, **self.encoders)
        return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray  # noqa: PLC0415

    if args.explain:
        return _explain(args)
    inputs = list_inputs(args.input)
    if not inputs:
        raise JobError(f"--input {storage.redact_url(args.input)}: no videos ({', '.join(VIDEO_SUFFIXES)})")
    work = incremental.plan(inputs, incremental.done_table(storage.join(args.output, "scores")),
                            incremental=args.incremental, limit=args.limit)
    n_inputs = len(inputs)
    del inputs  # the plan's table goes to storage; the driver keeps counts (jobs.rows)
    started = time.time()
    rows = Tally(HISTOGRAMS)
    if len(work.todo):
        _check_encoders(args)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        rows = map_rows(work.take_todo(), Scorer, folder=storage.join(args.output, "scores"), schema=schema(),
                        workers=args.workers or max(1, cpus - 1), lost_row=_lost_row,
                        worker_kwargs={**sandbox.limits(args), "encoder": args.encoder,
                                       "music_encoder": args.music_encoder}, keep=summary_fields, histograms=HISTOGRAMS,
                        **row_options(args))
    summary = summarise(rows)
    summary.update(inputs=n_inputs, processed=rows.rows, **work.counts(), seconds=round(time.time() - started, 2),
                   outputs={"scores": storage.join(args.output, "scores")})
    print(f"score: {work.describe(errors=summary['errors'])}", file=sys.stderr)
    if rows.rows:
        _log_histogram(rows)
    return summary


def _check_encoders(args: argparse.Namespace) -> None:
    """Load the models once here, so that a wrong folder stops the job before any row is written."""
    from vem.encoders import EncoderError, load_image_encoder, load_prompt_bridge, local_dir  # noqa: PLC0415

    try:
        if args.encoder and args.music_encoder:
            load_prompt_bridge(local_dir(args.encoder), local_dir(args.music_encoder))
        if args.encoder:
            load_image_encoder(local_dir(args.encoder))
    except EncoderError as e:
        raise JobError(f"--encoder/--music-encoder: {storage.scrub(str(e))}") from e


def _lost_row(item: dict[str, Any], reason: str) -> dict[str, Any]:
    from vem.scoring import error_row  # noqa: PLC0415

    return error_row(str(item["id"]), str(item["uri"]), reason)


def schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    from vem.scoring import METRIC_COLUMNS  # noqa: PLC0415

    floats = pa.list_(pa.float64())
    fields = [
        ("id", pa.string()), ("uri", pa.string()), ("status", pa.string()), ("error", pa.string()), ("warning", pa.string()),
        ("duration_s", pa.float64()), ("n_shots", pa.int64()), ("tempo_bpm", pa.float64()), ("transitions", floats),
        ("transition_kinds", pa.list_(pa.string())), ("beats", floats), ("downbeats", floats),
    ]
    fields += [(k, pa.float64()) for k in METRIC_COLUMNS]
    fields += [("semantic_note", pa.string()), ("visual_embedding", pa.list_(pa.float32())), ("seconds", pa.float64()),
               ("version", pa.string())]
    return pa.schema(fields)


def summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What the driver keeps of a row: enough for :func:`summarise` and the histograms."""
    from vem.scoring import METRIC_COLUMNS  # noqa: PLC0415

    return {"status": row["status"], **{k: row.get(k) for k in METRIC_COLUMNS}}


def summarise(rows: Tally) -> dict[str, Any]:
    """The job's summary from the tally of :func:`summary_fields` over its rows."""
    from vem.scoring import METRIC_COLUMNS  # noqa: PLC0415

    out: dict[str, Any] = {"scored": rows.rows, "ok": rows.ok, "errors": rows.errors,
                           "without_rhythm": rows.missing["cut_beat_hit"]}
    for k in METRIC_COLUMNS:
        mean = rows.mean(k)
        if mean is not None:
            out[f"mean_{k}"] = round(mean, 4)
    return out


def _log_histogram(rows: Tally) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import mlflow  # noqa: PLC0415

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, key in zip(axes, HISTOGRAMS, strict=True):
        counts = rows.histogram[key]
        ax.stairs(counts, [k / Tally.BINS for k in range(Tally.BINS + 1)], fill=True, color="#4477aa")
        ax.set_title(f"{key} ({sum(counts)} videos)")
    fig.tight_layout()
    mlflow.log_figure(fig, "score_histograms.png")
    plt.close(fig)


def _explain(args: argparse.Namespace) -> dict[str, Any]:
    from vem.explain import timeline_png  # noqa: PLC0415

    match = [r for r in list_inputs(args.input).to_pylist() if r["id"] == args.explain]
    if not match:
        raise JobError(f"--explain {args.explain}: no such id under {storage.redact_url(args.input)}")
    url = storage.join(args.output, "explain", f"{args.explain.replace('/', '__')}.png")
    storage.write_bytes(url, timeline_png(storage.read_bytes(str(match[0]["uri"])), title=args.explain))
    return {"explained": 1, "outputs": {"timeline": url}}
