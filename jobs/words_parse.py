"""``words`` steps 1 and 2: list the scores (with their groups) and parse them into notes and voices.

See :mod:`jobs.words` for the job as a whole.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from jobs import incremental, sandbox, storage
from jobs.rows import RowWorker
from jobs.runtime import JobError

SUFFIXES = (".mid", ".midi", ".xml", ".mxl", ".musicxml", ".krn", ".abc")


CORPUS = "whole corpus"  # the group of every piece, learned when there are several groups


UNGROUPED = "ungrouped"


def list_inputs(url: str, group_by: str) -> list[dict[str, Any]]:
    """``[{id, uri, version, group}]`` of a manifest or of the scores under a prefix (ids as
    :func:`jobs.incremental.list_inputs` gives them: paths without suffix under a prefix)."""
    inputs = incremental.list_inputs(url, SUFFIXES, columns=("composer", "group"))
    column = next((c for c in ("composer", "group") if inputs and c in inputs[0]), None)
    manifest = url.lower().endswith(".parquet")
    if manifest and group_by == "composer" and column is None and inputs:
        raise JobError(f"--input {storage.redact_url(url)}: --group-by composer needs a composer or group column "
                       "(or use --group-by folder/none)")
    out = []
    for r in inputs:
        folder = posixpath.dirname(str(r["uri"]).split("://", 1)[-1] if manifest else r["id"])
        if group_by == "composer":
            group = (str(r[column] or UNGROUPED) if column else UNGROUPED) if manifest else (folder.split("/", 1)[0] or UNGROUPED)
        elif group_by == "folder":
            group = folder or UNGROUPED
        else:
            group = CORPUS
        out.append({"id": r["id"], "uri": r["uri"], "version": r["version"], "group": group})
    return out


# imported by the parsing child before its first file, so that the time limit counts the parsing:
# the direct MusicXML and kern readers use a few pieces of music21 (offsets, part names)
PARSE_MODULES = ("musicwords.io", "musicwords.voices", "musicwords.kern", "musicwords.musicxml",
                 "music21.common.numberTools", "music21.humdrum.instruments", "music21.musicxml.xmlToM21")


class PieceParser(RowWorker):
    """Ray Data actor (through :func:`jobs.rows.map_rows`): one score file → its notes and voices.

    The file is read here and parsed in the sandbox (see jobs.sandbox); the driver adds the
    input's group and version to the row."""

    PRELOAD = PARSE_MODULES

    def __init__(self, voices: str, max_voices: int, input_time_limit: float = sandbox.DEFAULT_LIMIT_S,
                 input_memory_limit: float = sandbox.DEFAULT_MEMORY_GIB) -> None:
        super().__init__(input_time_limit, input_memory_limit)
        self.voices, self.max_voices = voices, max_voices

    def one(self, id_: str, uri: str) -> dict[str, Any]:
        t0 = time.time()
        try:
            data = storage.read_bytes(uri)
        except storage.StorageError as e:
            return error_row(id_, uri, "", f"read: {e}", time.time() - t0)
        row: dict[str, Any] = self.isolated(parse_one, id_, uri, data, voices=self.voices, max_voices=self.max_voices)
        return row

    def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
        return error_row(id_, uri, "", reason, 0.0)


def parse_one(id_: str, uri: str, data: bytes, *, voices: str, max_voices: int) -> dict[str, Any]:
    """One parsed row from the file's bytes: the piece's notes and monophonic voices, or an error row
    saying why not (its ``group`` is left empty: the driver knows it)."""
    from musicwords.io import read_notes  # noqa: PLC0415
    from musicwords.notes import NotesError  # noqa: PLC0415
    from musicwords.voices import separate_voices  # noqa: PLC0415

    t0 = time.time()
    try:
        notes = read_notes(posixpath.basename(uri.split("://", 1)[-1]), data=data, piece_id=id_)
        streams = separate_voices(notes, method=voices, max_voices=max_voices)
    except NotesError as e:
        return error_row(id_, uri, "", str(e), time.time() - t0)
    except Exception as e:  # a parser bug on one file must not lose the others; say what happened
        return error_row(id_, uri, "", f"{type(e).__name__}: {e}", time.time() - t0)
    return {
        "id": id_, "uri": uri, "group": "", "status": "ok", "error": None, "title": notes.title,
        "n_notes": len(notes), "n_voices": int(notes.n_voices), "n_tokens": int(sum(max(len(s) - 1, 0) for s in streams.streams)),
        "tempo_bpm": float(notes.tempo_bpm), "voice_names": list(notes.voice_names),
        "onset": notes.onset.tolist(), "duration": notes.duration.tolist(), "pitch": notes.pitch.astype(int).tolist(),
        "voice": notes.voice.astype(int).tolist(), "velocity": notes.velocity.astype(int).tolist(),
        "streams": [s.astype(int).tolist() for s in streams.streams], "stream_names": list(streams.names),
        "bars": None if notes.bars is None else notes.bars.tolist(), "first_bar": notes.first_bar,
        "morph": None if notes.morph is None else notes.morph.astype(int).tolist(),
        "key_onsets": None if notes.keys is None else notes.keys[:, 0].tolist(),
        "key_fifths": None if notes.keys is None else notes.keys[:, 1].astype(int).tolist(),
        "seconds": time.time() - t0,
    }


def error_row(id_: str, uri: str, group: str, error: str, seconds: float) -> dict[str, Any]:
    return {"id": id_, "uri": uri, "group": group, "status": "error", "error": error, "title": None, "n_notes": 0,
            "n_voices": 0, "n_tokens": 0, "tempo_bpm": None, "voice_names": [], "onset": [], "duration": [], "pitch": [],
            "voice": [], "velocity": [], "streams": [], "stream_names": [], "bars": None, "first_bar": None,
            "morph": None, "key_onsets": None, "key_fifths": None, "seconds": seconds}


def parse_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    ints, floats, strings = pa.list_(pa.int64()), pa.list_(pa.float64()), pa.list_(pa.string())
    return pa.schema([
        ("id", pa.string()), ("uri", pa.string()), ("group", pa.string()), ("status", pa.string()), ("error", pa.string()),
        ("title", pa.string()), ("n_notes", pa.int64()), ("n_voices", pa.int64()), ("n_tokens", pa.int64()),
        ("tempo_bpm", pa.float64()), ("voice_names", strings), ("onset", floats), ("duration", floats), ("pitch", ints),
        ("voice", ints), ("velocity", ints), ("streams", pa.list_(ints)), ("stream_names", strings),
        ("bars", floats), ("first_bar", pa.int64()), ("morph", ints), ("key_onsets", floats), ("key_fifths", ints),
        ("seconds", pa.float64()), ("version", pa.string()),
    ])


def parsed_rows(output: str, *, retried: bool = False) -> dict[str, dict[str, Any]]:
    """Rows in ``<output>/pieces`` by id, the newest of each (jobs.incremental.read_latest); unless
    ``retried``, less those a rerun retries: files storage could not read and files whose worker
    died (jobs.incremental.RETRY_ERRORS)."""
    table = incremental.read_latest(storage.join(output, "pieces"))
    rows = table.to_pylist() if table is not None else []
    retry = incremental.RETRY_ERRORS
    return {r["id"]: r for r in rows
            if retried or not (r["status"] == "error" and str(r["error"] or "").startswith(retry))}


def to_pieces(rows: Sequence[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Notes and Streams of parsed rows (status ok)."""
    from musicwords.notes import Notes  # noqa: PLC0415
    from musicwords.voices import Streams  # noqa: PLC0415

    pieces, streams = [], []
    for r in rows:
        notes = Notes.from_arrays(
            r["id"], onset=np.asarray(r["onset"], dtype=float), pitch=np.asarray(r["pitch"]),
            duration=np.asarray(r["duration"], dtype=float), voice=np.asarray(r["voice"]),
            velocity=np.asarray(r["velocity"]), tempo_bpm=float(r["tempo_bpm"]), voice_names=tuple(r["voice_names"]),
            title=r["title"] or "", bars=r.get("bars"), first_bar=1 if r.get("first_bar") is None else r["first_bar"],
            morph=r.get("morph"),
            keys=None if r.get("key_onsets") is None else list(zip(r["key_onsets"], r["key_fifths"], strict=True)),
        )
        pieces.append(notes)
        streams.append(Streams(r["id"], tuple(np.asarray(s, dtype=np.int64) for s in r["streams"]), tuple(r["stream_names"])))
    return pieces, streams
