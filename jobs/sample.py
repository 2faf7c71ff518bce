"""``python -m jobs sample``: the sample catalog that every other job is tested and demonstrated on.

Writes under ``--out``::

    videos/ad00000.mp4 ...        synthetic ads (H.264 + AAC), see vem.synthetic
    videos.parquet                the video catalog: id, uri, status, error, duration_s
    ground_truth.parquet          per video: cuts and their kinds, beats, tempo, key, mood, ...
    midi/<composer>/<piece>.mid   pieces of the music21 corpus, one track per part
    midi.parquet                  the MIDI catalog: id, uri, composer, group, title, n_notes, ...

Videos and pieces are made in parallel Ray tasks; a rerun renders only what is missing. Every
video and every piece gets one row, with ``status`` ``ok`` or ``error`` and the reason.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from jobs import storage
from jobs.runtime import JobError, ray_results

DESCRIPTION = "write the sample catalog: synthetic ads with known cuts and beats, and MIDI from the music21 corpus"
EXAMPLES = """examples:
  python -m jobs sample --out work/sample --videos 12 --pieces 10
  python -m jobs sample --out s3://my-bucket/sample --videos 1000 --seed 7
"""
MIDI_CHUNK = 16  # most pieces per Ray task: parsing one takes 0.05-10 s, starting a task ~0.1 s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder: a local path, file://, or s3://bucket/prefix")
    parser.add_argument("--videos", type=int, default=12, help="number of synthetic videos (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="catalog seed; the same seed gives the same bytes (default: %(default)s)"
    )
    parser.add_argument(
        "--preset", choices=("default", "debug"), default="default",
        help="video size: 'default' = 320x180, 8-30 s, 3-12 shots; 'debug' = 160x96, 8-10 s, 3-4 shots, built in seconds",
    )
    parser.add_argument(
        "--pieces", type=int, default=None,
        help="at most this many MIDI pieces per composer, spread over the collection (default: all, ~10,000 pieces)",
    )
    parser.add_argument(
        "--composers", default="bach,palestrina,beethoven,mozart,essen",
        help="comma-separated music21 collections to export, or 'none' (default: %(default)s)",
    )


def check(args: argparse.Namespace) -> None:
    """Validate the request in a second, before Ray or MLflow start."""
    from musicwords.corpus import COMPOSERS  # noqa: PLC0415

    if args.videos < 1:
        raise JobError(f"--videos must be at least 1, got {args.videos}")
    if args.seed < 0:
        raise JobError(f"--seed must be >= 0, got {args.seed}")
    if args.pieces is not None and args.pieces < 1:
        raise JobError(f"--pieces must be at least 1, got {args.pieces}")
    unknown = sorted(set(_composers(args)) - set(COMPOSERS))
    if unknown:
        raise JobError(f"--composers: unknown {unknown}; choose from {','.join(COMPOSERS)} or 'none'")
    try:
        storage.check_writable(args.out)
    except storage.StorageError as e:
        raise JobError(f"--out is not writable: {e}") from e
    _check_same_catalog(storage.join(args.out.rstrip("/"), "ground_truth.parquet"), args.seed, _config(args))


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    from musicwords.corpus import list_pieces  # noqa: PLC0415

    composers = _composers(args)
    pieces = list_pieces(composers, limit=args.pieces) if composers else []
    return {"videos": args.videos, "seed": args.seed, "pieces": len(pieces), "composers": composers,
            "outputs": {k: storage.join(args.out, k) for k in ("videos", "videos.parquet", "ground_truth.parquet",
                                                                "midi", "midi.parquet")}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Write the catalog (after :func:`check`); return a summary (also logged to MLflow)."""
    from musicwords.corpus import list_pieces  # noqa: PLC0415
    from vem.synthetic import plan_ad  # noqa: PLC0415

    out = args.out.rstrip("/")
    config = _config(args)
    composers = _composers(args)
    gt_url = storage.join(out, "ground_truth.parquet")

    # 2. Videos: one Ray task each; the plan (and so the ground truth) is cheap and made here too.
    import ray  # noqa: PLC0415

    started = time.time()
    plans = [plan_ad(seed=args.seed, index=i, config=config) for i in range(args.videos)]
    render = ray.remote(num_cpus=1, max_retries=2)(render_video)
    refs = [render.remote(plan, storage.join(out, "videos", f"{plan.id}.mp4")) for plan in plans]
    video_rows: list[dict[str, Any]] = [{} for _ in plans]
    for i, row, error in ray_results(refs, desc="videos", unit="video"):
        video_rows[i] = row if row is not None else _error_video_row(plans[i], out, error or "unknown error")

    # 3. MIDI pieces: one Ray task per chunk of pieces; pieces already exported are kept.
    refs_midi = list_pieces(composers, limit=args.pieces) if composers else []
    midi_url = storage.join(out, "midi.parquet")
    done = _finished_pieces(midi_url)
    todo = [r for r in refs_midi if r.id not in done]
    export = ray.remote(num_cpus=1, max_retries=2)(export_pieces)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = max(1, min(MIDI_CHUNK, len(todo) // (4 * cpus)))  # several chunks per CPU keep all CPUs busy
    chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
    midi_refs = [export.remote(chunk, out) for chunk in chunks]
    midi_rows = [done[r.id] for r in refs_midi if r.id in done]
    for i, rows, error in ray_results(midi_refs, desc="midi", unit="chunk"):
        midi_rows.extend(rows if rows is not None else [_error_piece_row(r, out, error or "unknown error") for r in chunks[i]])

    # 4. Catalog tables, written atomically after the files they point to.
    import pyarrow as pa  # noqa: PLC0415

    gt_rows = [{k: v for k, v in row.items() if k != "rendered"} for row in video_rows]
    storage.write_table(gt_url, pa.Table.from_pylist(gt_rows))
    catalog = [{k: row[k] for k in ("id", "uri", "status", "error", "duration_s")} for row in gt_rows]
    storage.write_table(storage.join(out, "videos.parquet"), pa.Table.from_pylist(catalog))
    if refs_midi:
        midi_rows.sort(key=lambda r: r["id"])
        storage.write_table(midi_url, pa.Table.from_pylist(midi_rows, schema=_midi_schema()))

    ok_videos = sum(r["status"] == "ok" for r in video_rows)
    ok_pieces = sum(r["status"] == "ok" for r in midi_rows)
    return {
        "videos_ok": ok_videos,
        "videos_error": len(video_rows) - ok_videos,
        "videos_rendered": sum(bool(r.get("rendered")) for r in video_rows),
        "pieces_ok": ok_pieces,
        "pieces_error": len(midi_rows) - ok_pieces,
        "notes": sum(int(r["n_notes"] or 0) for r in midi_rows),
        "seconds": round(time.time() - started, 2),
        "outputs": {
            "videos": storage.join(out, "videos.parquet"),
            "ground_truth": gt_url,
            "midi": midi_url if refs_midi else None,
        },
    }


# --------------------------------------------------------------------------------------------
# Per-task work (runs on Ray workers)


def render_video(plan: Any, uri: str) -> dict[str, Any]:
    """Render one planned ad to ``uri`` (skipped when it exists); its ground-truth row."""
    from vem.synthetic import encode_mp4, ground_truth_row  # noqa: PLC0415

    row = ground_truth_row(plan, uri=uri)
    row.update(status="ok", error=None, rendered=False)
    try:
        if storage.exists(uri):
            return row
        fd, tmp = tempfile.mkstemp(suffix=".mp4")
        os.close(fd)
        try:
            encode_mp4(plan, tmp)
            with open(tmp, "rb") as src, storage.atomic_write(uri) as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        finally:
            os.unlink(tmp)
        row["rendered"] = True
    except Exception as e:  # one bad video must not stop the catalog
        row.update(status="error", error=f"{type(e).__name__}: {e}")
    return row


def export_pieces(refs: list[Any], out: str) -> list[dict[str, Any]]:
    """Parse corpus pieces and write each as ``midi/<composer>/<piece>.mid``; one row per piece."""
    from musicwords.corpus import load_notes  # noqa: PLC0415
    from musicwords.midi import notes_to_midi_bytes, playable_notes  # noqa: PLC0415

    rows = []
    for ref in refs:
        uri = storage.join(out, "midi", ref.composer, f"{ref.name}.mid")
        try:
            notes = playable_notes(load_notes(ref))
            storage.write_bytes(uri, notes_to_midi_bytes(notes))
            rows.append({
                **_piece_fields(ref, uri), "title": notes.title, "n_notes": len(notes), "n_voices": notes.n_voices,
                "duration_beats": float((notes.onset + notes.duration).max() - min(notes.onset.min(), 0.0)),
                "tempo_bpm": notes.tempo_bpm, "status": "ok", "error": None,
            })
        except Exception as e:  # a piece music21 cannot read gets an error row
            rows.append(_error_piece_row(ref, out, f"{type(e).__name__}: {e}"))
    return rows


# --------------------------------------------------------------------------------------------
# Helpers


def _composers(args: argparse.Namespace) -> list[str]:
    text = args.composers.strip()
    return [] if text == "none" else [c.strip() for c in text.split(",") if c.strip()]


def _config(args: argparse.Namespace) -> Any:
    from vem.synthetic import SyntheticAdConfig  # noqa: PLC0415

    return SyntheticAdConfig.debug() if args.preset == "debug" else SyntheticAdConfig()


def _midi_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema([
        ("id", pa.string()), ("uri", pa.string()), ("composer", pa.string()), ("group", pa.string()),
        ("source", pa.string()), ("title", pa.string()), ("n_notes", pa.int64()), ("n_voices", pa.int64()),
        ("duration_beats", pa.float64()), ("tempo_bpm", pa.float64()), ("status", pa.string()), ("error", pa.string()),
    ])


def _piece_fields(ref: Any, uri: str) -> dict[str, Any]:
    source = ref.path if ref.number is None else f"{ref.path}#X:{ref.number}"
    return {"id": ref.id, "uri": uri, "composer": ref.composer, "group": ref.composer, "source": source}


def _error_piece_row(ref: Any, out: str, error: str) -> dict[str, Any]:
    uri = storage.join(out, "midi", ref.composer, f"{ref.name}.mid")
    return {
        **_piece_fields(ref, uri), "title": None, "n_notes": None, "n_voices": None, "duration_beats": None,
        "tempo_bpm": None, "status": "error", "error": error,
    }


def _error_video_row(plan: Any, out: str, error: str) -> dict[str, Any]:
    from vem.synthetic import ground_truth_row  # noqa: PLC0415

    row = ground_truth_row(plan, uri=storage.join(out, "videos", f"{plan.id}.mp4"))
    row.update(status="error", error=error, rendered=False)
    return row


def _finished_pieces(midi_url: str) -> dict[str, dict[str, Any]]:
    """Rows of pieces a previous run exported and whose file is still there."""
    if not storage.exists(midi_url):
        return {}
    rows = storage.read_table(midi_url).to_pylist()
    return {r["id"]: r for r in rows if r["status"] == "ok" and storage.exists(r["uri"])}


def _check_same_catalog(gt_url: str, seed: int, config: Any) -> None:
    """Refuse to mix two catalogs (another seed or preset) in one folder."""
    if not storage.exists(gt_url):
        return
    table = storage.read_table(gt_url)
    if table.num_rows == 0:
        return
    first = table.slice(0, 1).to_pylist()[0]
    if first["seed"] != seed or (first["width"], first["height"]) != (config.width, config.height):
        raise JobError(
            f"{storage.redact_url(gt_url)} holds a catalog made with seed {first['seed']} at "
            f"{first['width']}x{first['height']}; use another --out or the same --seed and --preset"
        )
