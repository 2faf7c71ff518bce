"""``python -m jobs paired``: real compositions paired with footage cut on their beats, VeM's real-music clips.

Writes under ``--out``::

    videos/clip00000.mp4 ...   footage of photographs graded to the music's mood (H.264), the music (AAC)
    videos.parquet             the catalog: id, uri, status, error, duration_s (input of ``preprocess``)
    ground_truth.parquet       per clip: cuts and their kinds, beats, downbeats, tempo, key, mode, mood,
                               piece, ensemble, cut grid, split (``train`` or ``holdout``), ...
    pieces.parquet             every piece read: id, kind, source, mode, status, error, and its notes

A *piece* is a score of the music21 corpus (``--kinds``) or a MIDI file under ``--midi``; a clip
is an excerpt of it played by a General MIDI ensemble of its mood at an ad's tempo, filmed as
footage of photos (``--photos``, and synthetic textures) with camera motion, cut on its beats or
bar lines (:mod:`vem.realmusic`). Moods are drawn half and half; labels come from the score.

**Splits.** A clip is held out when ``train`` would hold its id out (the same hash and share:
pass ``train`` the same ``--holdout``). Held-out clips draw only on held-out pieces and photos
(split by the same hash of the piece id and the photo's file name), so the held-out clips are
music and pictures the model never heard or saw; with too few photos to split, photos are shared
and the summary says so.

Pieces are read and clips made in parallel Ray tasks; a rerun makes only what is missing. Every
piece and every clip gets one row, ``ok`` or ``error`` with the reason.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from typing import Any

from jobs import storage
from jobs.runtime import JobError, ray_results

DESCRIPTION = "real music (music21 scores, MIDI files) rendered with a soundfont and paired with footage cut on its beats"
EXAMPLES = """examples:
  python -m jobs paired --out work/paired --clips 400
  python -m jobs paired --out s3://ads/paired --clips 5000 --midi s3://ads/midi --photos s3://ads/stock-photos
  python -m jobs preprocess --input work/paired/videos --output work/paired-examples    (then train on them)
"""
PIECE_CHUNK = 8  # pieces per Ray task: parsing one takes 0.05-5 s
CLIP_CHUNK = 4  # clips per Ray task: about 1 s each
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vem.realmusic import KINDS  # noqa: PLC0415

    parser.add_argument("--out", required=True, help="output folder: a local path, file://, or s3://bucket/prefix")
    parser.add_argument("--clips", type=int, default=200, help="number of clips (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same clips (default: %(default)s)")
    parser.add_argument("--preset", choices=("default", "debug"), default="default",
                        help="'default': 320x180, 8-30 s, as the sample catalog; 'debug': 160x96, 8-10 s")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="music21 corpus kinds to draw pieces from, or 'none' (default: %(default)s)")
    parser.add_argument("--pieces-per-kind", type=int, default=40,
                        help="corpus pieces per kind, spread over the collection (default: %(default)s)")
    parser.add_argument("--midi", default=None, help="also every .mid/.midi file under this folder or prefix")
    parser.add_argument("--photos", default=None,
                        help="folder or prefix of .jpg/.png photographs (default: those that installed packages ship)")
    parser.add_argument("--synthetic-share", type=float, default=0.25,
                        help="share of a clip's pictures that are synthetic textures (default: %(default)s)")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="share of clip ids held out, as train's --holdout (default: %(default)s)")


def check(args: argparse.Namespace) -> None:
    """Validate the request in a second, before Ray or MLflow start."""
    from vem.realmusic import KINDS  # noqa: PLC0415

    if args.clips < 1 or args.pieces_per_kind < 1:
        raise JobError(f"--clips and --pieces-per-kind must be at least 1, got {args.clips}, {args.pieces_per_kind}")
    if args.seed < 0:
        raise JobError(f"--seed must be >= 0, got {args.seed}")
    if not 0 <= args.holdout < 1 or not 0 <= args.synthetic_share <= 1:
        raise JobError(f"--holdout must be in [0, 1) and --synthetic-share in [0, 1], got {args.holdout}, {args.synthetic_share}")
    unknown = sorted(set(_kinds(args)) - set(KINDS))
    if unknown:
        raise JobError(f"--kinds: unknown {unknown}; choose from {','.join(KINDS)} or 'none'")
    if not _kinds(args) and not args.midi:
        raise JobError("no music: give --kinds or --midi")
    try:
        import tinysoundfont  # noqa: F401, PLC0415
    except ImportError as e:
        raise JobError("rendering needs tinysoundfont: pip install --no-deps tinysoundfont (make setup does)") from e
    try:
        for name in ("midi", "photos"):
            url = getattr(args, name)
            if url and not storage.exists(url):
                raise JobError(f"--{name} {storage.redact_url(url)}: not found")
        storage.check_writable(args.out)
    except storage.StorageError as e:
        raise JobError(str(e)) from e
    _check_same_clips(storage.join(args.out.rstrip("/"), "ground_truth.parquet"), args)


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    return {"clips": args.clips, "seed": args.seed, "pieces": len(_piece_refs(args)), "photos": len(_photos(args)),
            "outputs": {k: storage.join(args.out, k) for k in ("videos", "videos.parquet", "ground_truth.parquet",
                                                                "pieces.parquet")}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Read the pieces, make the clips, write the tables (after :func:`check`); return a summary."""
    import pyarrow as pa  # noqa: PLC0415
    import ray  # noqa: PLC0415

    from jobs.train import held_out  # noqa: PLC0415

    started = time.time()
    out = args.out.rstrip("/")
    # 1. pieces: parsed once, kept in pieces.parquet (a rerun reads only new ones)
    refs = _piece_refs(args)
    pieces_url = storage.join(out, "pieces.parquet")
    done = {r["id"]: r for r in storage.read_table(pieces_url).to_pylist()} if storage.exists(pieces_url) else {}
    todo = [r for r in refs if r[0] not in done]
    chunks = [todo[i : i + PIECE_CHUNK] for i in range(0, len(todo), PIECE_CHUNK)]
    read = ray.remote(num_cpus=1, max_retries=2)(read_pieces)
    piece_rows = [done[r[0]] for r in refs if r[0] in done]
    for i, rows, error in ray_results([read.remote(c) for c in chunks], desc="pieces", unit="chunk"):
        piece_rows.extend(rows if rows is not None else [_piece_error(r, error or "unknown error") for r in chunks[i]])
    piece_rows.sort(key=lambda r: r["id"])
    storage.write_table(pieces_url, _table(piece_rows))
    pool = [r for r in piece_rows if r["status"] == "ok"]
    if not pool:
        raise JobError(f"none of the {len(piece_rows)} pieces could be read: see {storage.redact_url(pieces_url)}")

    # 2. clips: one task per few clips; held-out clips draw on held-out pieces and photos only
    photos = _photos(args)
    photo_split = {s: [p for p in photos if held_out(os.path.basename(p), args.holdout) == (s == "holdout")]
                   for s in ("train", "holdout")}
    shared_photos = min(len(v) for v in photo_split.values()) < 2
    if shared_photos:
        photo_split = {"train": photos, "holdout": photos}
    gt_url = storage.join(out, "ground_truth.parquet")
    finished = _finished_clips(gt_url)
    ids = [f"clip{i:05d}" for i in range(args.clips)]
    todo_clips = [(i, "holdout" if held_out(id_, args.holdout) else "train") for i, id_ in enumerate(ids) if id_ not in finished]
    pool_ref = ray.put({s: [r for r in pool if held_out(r["id"], args.holdout) == (s == "holdout")] or pool
                        for s in ("train", "holdout")})
    make = ray.remote(num_cpus=1, max_retries=2)(make_clips)
    settings = {"seed": args.seed, "preset": args.preset, "synthetic_share": args.synthetic_share, "out": out}
    clip_chunks = [todo_clips[i : i + CLIP_CHUNK] for i in range(0, len(todo_clips), CLIP_CHUNK)]
    tasks = [make.remote(c, pool_ref, {s: photo_split[s] for s in {split for _, split in c}}, settings) for c in clip_chunks]
    clip_rows = dict(finished)
    for i, rows, error in ray_results(tasks, desc="clips", unit="chunk"):
        for (index, split), row in zip(clip_chunks[i], rows or [None] * len(clip_chunks[i]), strict=True):
            clip_rows[ids[index]] = row or _clip_error(ids[index], split, out, args.seed, error or "unknown error")
    gt_rows = [clip_rows[i] for i in ids]
    storage.write_table(gt_url, _table(gt_rows))
    catalog = [{k: r.get(k) for k in ("id", "uri", "status", "error", "duration_s")} for r in gt_rows]
    storage.write_table(storage.join(out, "videos.parquet"), pa.Table.from_pylist(catalog))

    ok = [r for r in gt_rows if r["status"] == "ok"]
    return {
        "clips_ok": len(ok), "clips_error": len(gt_rows) - len(ok), "clips_made": len(gt_rows) - len(finished),
        "clips_bright": sum(r["mood"] == "bright" for r in ok), "clips_dark": sum(r["mood"] == "dark" for r in ok),
        "clips_holdout": sum(r["split"] == "holdout" for r in ok), "hours": round(sum(r["duration_s"] for r in ok) / 3600, 3),
        "pieces_ok": len(pool), "pieces_error": len(piece_rows) - len(pool), "photos": len(photos),
        "photos_shared_with_holdout": shared_photos, "seconds": round(time.time() - started, 2),
        "outputs": {"videos": storage.join(out, "videos.parquet"), "ground_truth": gt_url, "pieces": pieces_url},
    }


# --------------------------------------------------------------------------------------------
# Per-task work (runs on Ray workers)


def read_pieces(refs: list[tuple[str, str, str, int | None]]) -> list[dict[str, Any]]:
    """Parse pieces (``(id, kind, source, number)``; kind ``midi``: source is a file URL); one row each."""
    import numpy as np  # noqa: PLC0415

    from vem.realmusic import corpus_piece, midi_piece, notes_key  # noqa: PLC0415

    rows = []
    for id_, kind, source, number in refs:
        try:
            piece = midi_piece(storage.read_bytes(source), id_) if kind == "midi" else corpus_piece(kind, source, number)
            if len(piece.onset_q) < 8 or len(piece.beats_q) < 8:
                raise ValueError(f"{len(piece.onset_q)} notes and {len(piece.beats_q)} beats: too short for a clip")
            key, mode, _ = notes_key(piece.pitch, piece.duration_q)
            rows.append({**piece.to_row(), "source": _source(source, number), "key": key, "mode": mode,
                         "n_notes": len(piece.onset_q), "length_beats": float(len(piece.beats_q)),
                         "mean_pitch": float(np.mean(piece.pitch)), "status": "ok", "error": None})
        except Exception as e:  # one unreadable piece must not stop the job
            rows.append(_piece_error((id_, kind, source, number), f"{type(e).__name__}: {e}"))
    return rows


def make_clips(clips: list[tuple[int, str]], pool: dict[str, list[dict[str, Any]]], photos: dict[str, list[str]],
               settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Render clips ``(index, split)`` to ``<out>/videos/clipNNNNN.mp4``; one ground-truth row each."""
    rows = []
    for index, split in clips:
        id_ = f"clip{index:05d}"
        try:
            rows.append(_make_clip(index, split, pool[split], photos[split], settings))
        except Exception as e:  # one clip that fails gets an error row, the others go on
            rows.append(_clip_error(id_, split, settings["out"], settings["seed"], f"{type(e).__name__}: {e}"))
    return rows


def _make_clip(index: int, split: str, pool: list[dict[str, Any]], photos: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415

    from vem.media import write_mp4  # noqa: PLC0415
    from vem.realmusic import MOOD_OF_MODE, PairedConfig, Piece, pair_clip  # noqa: PLC0415
    from vem.synthetic import texture_picture  # noqa: PLC0415

    cfg = PairedConfig.debug() if settings["preset"] == "debug" else PairedConfig()
    seed = settings["seed"]
    rng = np.random.default_rng([seed, index, 0x9A1])
    mood = str(rng.choice(["bright", "dark"]))
    # pictures: 4-6, real photos and synthetic textures
    n_pictures = int(rng.integers(4, 7))
    n_synthetic = n_pictures if len(photos) < 2 else int(rng.binomial(n_pictures, settings["synthetic_share"]))
    chosen = [photos[int(i)] for i in rng.choice(len(photos), size=min(len(photos), n_pictures - n_synthetic), replace=False)]
    pictures = [_load_photo(p, 2 * cfg.width) for p in chosen]
    pictures += [texture_picture(rng, 2 * cfg.width, 2 * cfg.height) for _ in range(n_pictures - len(pictures))]
    # the piece: of the drawn mood's mode where the split has one; the kind first, so no kind swamps the others
    matching = [r for r in pool if MOOD_OF_MODE[r["mode"]] == mood] or pool
    tried = []
    for _ in range(4):
        kinds = sorted({r["kind"] for r in matching})
        kind = kinds[int(rng.integers(len(kinds)))]
        of_kind = [r for r in matching if r["kind"] == kind]
        row = of_kind[int(rng.integers(len(of_kind)))]
        made = pair_clip(Piece.from_row(row), pictures, seed=seed, index=index, config=cfg)
        if made is not None:
            break
        tried.append(row["id"])
    else:
        raise ValueError(f"pieces too short for a {cfg.min_duration_s:g} s clip: {', '.join(tried)}")
    plan, music, frames, gt = made
    uri = storage.join(settings["out"], "videos", f"{plan.id}.mp4")
    fd, tmp = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        write_mp4(tmp, frames, width=plan.width, height=plan.height, fps=plan.fps, crf=plan.crf, audio=music.audio,
                  sample_rate=music.sample_rate)
        with open(tmp, "rb") as src, storage.atomic_write(uri) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    finally:
        os.unlink(tmp)
    gt.update(uri=uri, split=split, photos=[os.path.basename(p) for p in chosen], n_synthetic_pictures=n_pictures - len(chosen),
              status="ok", error=None)
    return gt


@functools.lru_cache(maxsize=64)
def _load_photo(uri: str, max_width: int) -> Any:
    """A photo of ``--photos``, read once per task process."""
    from vem.footage import load_photo  # noqa: PLC0415

    return load_photo(storage.read_bytes(uri), max_width)


# --------------------------------------------------------------------------------------------
# Helpers


def _table(rows: list[dict[str, Any]]) -> Any:
    """A table of rows that may miss columns (error rows): every column of every row, None where missing."""
    import pyarrow as pa  # noqa: PLC0415

    columns = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({c: [r.get(c) for r in rows] for c in columns})


def _kinds(args: argparse.Namespace) -> list[str]:
    text = args.kinds.strip()
    return [] if text == "none" else [k.strip() for k in text.split(",") if k.strip()]


def _piece_refs(args: argparse.Namespace) -> list[tuple[str, str, str, int | None]]:
    """(id, kind, source, abc number) of every piece to read: corpus pieces, then MIDI files."""
    from vem.realmusic import piece_id, select_pieces  # noqa: PLC0415

    refs = [(piece_id(path, number), kind, path, number) for kind, path, number in
            select_pieces(args.pieces_per_kind, _kinds(args))] if _kinds(args) else []
    if args.midi:
        root = args.midi.rstrip("/")
        for url in storage.list_files(root, suffixes=(".mid", ".midi")):
            refs.append(("midi:" + url[len(root) + 1 :], "midi", url, None))
    return refs


def _photos(args: argparse.Namespace) -> list[str]:
    if args.photos:
        return sorted(storage.list_files(args.photos.rstrip("/"), suffixes=PHOTO_SUFFIXES))
    from vem.footage import packaged_photos  # noqa: PLC0415

    return packaged_photos()


def _source(source: str, number: int | None) -> str:
    return storage.redact_url(source) if number is None else f"{source}#X:{number}"


def _piece_error(ref: tuple[str, str, str, int | None], error: str) -> dict[str, Any]:
    id_, kind, source, number = ref
    return {"id": id_, "kind": kind, "onset_q": None, "duration_q": None, "pitch": None, "voice": None, "velocity": None,
            "beats_q": None, "downbeats_q": None, "tempo_mark": None, "source": _source(source, number), "key": None,
            "mode": None, "n_notes": None, "length_beats": None, "mean_pitch": None, "status": "error", "error": error}


def _clip_error(id_: str, split: str, out: str, seed: int, error: str) -> dict[str, Any]:
    return {"id": id_, "uri": storage.join(out, "videos", f"{id_}.mp4"), "seed": seed, "split": split, "duration_s": None,
            "status": "error", "error": error}


def _finished_clips(gt_url: str) -> dict[str, dict[str, Any]]:
    """Rows of clips a previous run made and whose file is still there."""
    if not storage.exists(gt_url):
        return {}
    return {r["id"]: r for r in storage.read_table(gt_url).to_pylist() if r["status"] == "ok" and storage.exists(r["uri"])}


def _check_same_clips(gt_url: str, args: argparse.Namespace) -> None:
    """Refuse to mix two sets (another seed or preset) in one folder."""
    if not storage.exists(gt_url):
        return
    rows = [r for r in storage.read_table(gt_url).to_pylist() if r["status"] == "ok"]
    if not rows:
        return
    from vem.realmusic import PairedConfig  # noqa: PLC0415

    cfg = PairedConfig.debug() if args.preset == "debug" else PairedConfig()
    first = rows[0]
    if first["seed"] != args.seed or (first["width"], first["height"]) != (cfg.width, cfg.height):
        raise JobError(f"{storage.redact_url(gt_url)} holds clips made with seed {first['seed']} at "
                       f"{first['width']}x{first['height']}; use another --out or the same --seed and --preset")
