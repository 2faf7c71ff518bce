"""Untrusted input: the sandbox enforces the per-input time limit, bombs are refused by limits, and
mutated real files (fuzzed with hypothesis) only ever give a result or the parser's own error.

The fuzz tests run every mutated file through jobs.sandbox.Sandbox, as the jobs do: a hang fails
the test as InputTimeout, a crash of the C decoders as ParserCrashed, and any exception other
than the parser's documented error (NotesError, VideoError, AudioError) fails it too. They are
marked slow (``make test-slow``); FUZZ_EXAMPLES raises the number of mutated files per format.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.sandbox import InputTimeout, ParserCrashed, Sandbox

LIMIT_S = 30.0  # per mutated file; the seeds parse in well under a second
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))


# --------------------------------------------------------------------------------------------
# The sandbox itself


def test_the_time_limit_stops_a_hang_and_the_next_input_still_runs() -> None:
    with Sandbox(1.0) as box:
        t0 = time.monotonic()
        with pytest.raises(InputTimeout, match="longer than the 1 s limit"):
            box(time.sleep, 60)
        assert time.monotonic() - t0 < 10
        assert box(sum, [1, 2, 3]) == 6  # a fresh child took over


def test_a_crashing_parser_costs_one_input_not_the_process() -> None:
    with Sandbox(10.0) as box:
        with pytest.raises(ParserCrashed, match="SIGABRT"):
            box(os.abort)
        assert box(os.getpid) != os.getpid()  # it ran in a child, and a new one answered


def test_parser_errors_come_back_as_they_are() -> None:
    from musicwords.io import read_notes
    from musicwords.notes import NotesError

    with Sandbox(10.0) as box, pytest.raises(NotesError, match="not a MIDI file"):
        box(read_notes, "x.mid", data=b"RIFF not midi")


def allocate(n_bytes: int) -> int:  # run in the sandbox (importable by name): a memory bomb
    return len(bytearray(n_bytes))


def spin(seconds: float) -> int:  # run in the sandbox: burns CPU time
    end, n = time.process_time() + seconds, 0
    while time.process_time() < end:
        n += 1
    return n


def environment() -> dict[str, str]:  # run in the sandbox: everything the child can see of its environment
    return dict(os.environ)


def test_the_child_cannot_read_the_workers_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "planted-secret-4f1c"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secret)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == secret  # the parent has it
    with Sandbox(30.0) as box:
        seen = box(environment)
    assert not any(secret in f"{k}={v}" for k, v in seen.items()), sorted(seen)
    assert set(seen) <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                         "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "LD_LIBRARY_PATH", "HOME", "PYTHONPATH",
                         "PYTHONDONTWRITEBYTECODE"}
    assert seen["HOME"] != os.environ.get("HOME")  # a fresh home: no ~/.aws, no ~/.netrc


def test_a_memory_bomb_fails_in_the_child_and_a_fresh_child_takes_over() -> None:
    with Sandbox(30.0, memory_bytes=1 << 30) as box:
        first = box(os.getpid)
        with pytest.raises(MemoryError):
            box(allocate, 4 << 30)  # 4 GiB against a 1 GiB address space
        assert box(allocate, 1 << 20) == 1 << 20
        assert box(os.getpid) != first  # the child that raised was replaced


def test_cpu_time_past_the_limit_kills_the_child() -> None:
    with Sandbox(60.0, cpu_seconds=1.0) as box:
        with pytest.raises(ParserCrashed, match="SIGXCPU|SIGKILL"):
            box(spin, 30.0)
        assert box(spin, 0.2) > 0  # the budget is per call: a fresh one for the next


def test_the_child_is_recycled_every_n_calls_and_kept_after_a_documented_refusal() -> None:
    from musicwords.io import read_notes
    from musicwords.notes import NotesError

    with Sandbox(30.0, recycle_every=3, rejections=(NotesError,)) as box:
        first = box(os.getpid)
        with pytest.raises(NotesError):
            box(read_notes, "x.mid", data=b"not midi")
        assert box(os.getpid) == first  # a refusal keeps the child; that was its third call
        assert box(os.getpid) != first
        with pytest.raises(ZeroDivisionError):
            box(divmod, 1, 0)
        assert box(os.getpid) != first


def test_a_memory_bomb_costs_a_job_one_error_row() -> None:
    from jobs.rows import RowWorker

    class Bomber(RowWorker):  # the row machinery the jobs use, with one input that asks for 4 GiB
        def one(self, id_: str, uri: str) -> dict[str, Any]:
            return {"id": id_, "status": "ok", "bytes": self.isolated(allocate, (4 << 30) if id_ == "bomb" else 1024)}

        def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
            return {"id": id_, "status": "error", "error": reason}

    rows = Bomber(30.0, input_memory_limit=1.0)({"id": ["a", "bomb", "c"], "uri": ["u1", "u2", "u3"]})["row"]
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert "MemoryError" in rows[1]["error"] and rows[2]["bytes"] == 1024


def test_the_score_job_gives_an_error_row_when_an_input_is_over_the_time_limit(ray_cluster: None, workdir: str,
                                                                               catalog: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from jobs.__main__ import main

    out = tmp_path / "scores"
    argv = ["score", "--input", str(catalog / "videos"), "--output", str(out), "--workers", "1",
            "--input-time-limit", "0.001", "--max-error-rate", "1", "--workdir", workdir]
    assert main(argv) == 0
    rows = pq.read_table(out / "scores").to_pylist()
    assert len(rows) == len(list((catalog / "videos").glob("*.mp4")))
    for row in rows:
        assert row["status"] == "error"
        assert "InputTimeout" in row["error"] and "0.001 s limit" in row["error"], row["error"]


# --------------------------------------------------------------------------------------------
# Bombs: refused by limits, before they can exhaust memory


def _video(width: int, height: int, pts: list[int], *, rate: int = 24) -> bytes:
    """An H.264 MP4 of black frames at the given presentation times (in 1/rate s)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for p in pts:
            frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
            frame.pts = p
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def test_a_small_file_with_8k_frames_is_refused_before_decoding() -> None:
    from vem.storyboard import ParseConfig, VideoError, parse_video

    data = _video(7680, 4320, [0])
    assert len(data) < 200_000  # tiny on disk, 100 MB a frame once decoded
    with pytest.raises(VideoError, match="7680x4320 are over the limit"):
        parse_video(data, ParseConfig(embedding="none"))


def test_a_video_claiming_ten_hours_is_refused() -> None:
    from vem.storyboard import ParseConfig, VideoError, parse_video

    data = _video(64, 48, [0, 36_000], rate=1)  # two frames, ten hours apart
    assert len(data) < 10_000
    with pytest.raises(VideoError, match="over the 1800 s limit"):
        parse_video(data, ParseConfig(embedding="none"))


def test_audio_over_the_duration_limit_is_refused() -> None:
    import soundfile as sf

    from vem.audio import AudioError, load_audio

    buf = io.BytesIO()
    sf.write(buf, np.zeros(16_000 * 5, np.float32), 16_000, format="FLAC")
    assert len(load_audio(buf.getvalue())) == 16_000 * 5
    with pytest.raises(AudioError, match="(over|longer than) the 2 s limit"):  # by the header, or while decoding
        load_audio(buf.getvalue(), max_duration_s=2.0)


def _midi_with_events(n_events: int) -> bytes:
    """One track of ``n_events`` note-ons/offs under running status: 3 bytes an event."""
    pairs = np.empty((n_events, 3), np.uint8)
    pairs[:, 0] = 0  # delta time
    pairs[:, 1] = 60
    pairs[:, 2] = np.where(np.arange(n_events) % 2 == 0, 64, 0)  # note on, then note off (velocity 0)
    body = b"\x00\x90\x3c\x40" + pairs.tobytes() + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body


def test_a_midi_file_of_ten_million_events_is_refused_before_parsing() -> None:
    from musicwords.io import read_midi
    from musicwords.notes import NotesError

    data = _midi_with_events(10_000_000)
    t0 = time.monotonic()
    with pytest.raises(NotesError, match="refused before parsing"):
        read_midi("bomb.mid", data=data)
    assert time.monotonic() - t0 < 1.0  # a parse of 10^7 events takes seconds: it never started
    assert len(read_midi("small.mid", data=_midi_with_events(2_000))) == 1_000  # the same shape, small: read
    with pytest.raises(NotesError, match="refused before parsing"):  # the limit follows max_notes
        read_midi("small.mid", data=_midi_with_events(2_000), max_notes=100)


def test_xml_entity_expansion_is_refused() -> None:
    from musicwords.io import read_score
    from musicwords.notes import NotesError

    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE score-partwise [<!ENTITY e0 "lol">{entities}]>'
            "<score-partwise><work><work-title>&e9;</work-title></work></score-partwise>")
    t0 = time.monotonic()
    with pytest.raises(NotesError):
        read_score("bomb.xml", data=bomb.encode())
    assert time.monotonic() - t0 < 10


def test_a_zip_bomb_score_is_refused() -> None:
    from musicwords.io import read_score
    from musicwords.notes import NotesError

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="s.xml"/></rootfiles></container>')
        z.writestr("s.xml", b"<" + b" " * (200 << 20))  # 200 MB of spaces
    assert len(buf.getvalue()) < 1 << 20
    with pytest.raises(NotesError, match="over the .*-byte limit"):
        read_score("bomb.mxl", data=buf.getvalue())


# --------------------------------------------------------------------------------------------
# Fuzzing: mutated real files


_POS = st.integers(0, 2**31)
MUTATIONS = st.lists(st.one_of(
    st.tuples(st.just("set"), _POS, st.integers(0, 255)),
    st.tuples(st.just("flip"), _POS, st.integers(0, 7)),
    st.tuples(st.just("int32"), _POS, st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])),
    st.tuples(st.just("insert"), _POS, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), _POS, st.integers(1, 512)),
    st.tuples(st.just("repeat"), _POS, st.integers(1, 4096)),
    st.tuples(st.just("truncate"), _POS, st.just(0)),
), min_size=1, max_size=6)

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def mutate(data: bytes, ops: list[tuple[str, int, Any]]) -> bytes:
    """Apply byte-level mutations (positions wrap around the file) to a copy of ``data``."""
    out = bytearray(data)
    for op, pos, arg in ops:
        if not out:
            break
        i = pos % len(out)
        if op == "set":
            out[i] = arg
        elif op == "flip":
            out[i] ^= 1 << arg
        elif op == "int32":
            out[i:i + 4] = struct.pack("<I", arg)
        elif op == "insert":
            out[i:i] = arg
        elif op == "delete":
            del out[i:i + arg]
        elif op == "repeat":
            out[i:i] = out[i:i + arg] * 3
        elif op == "truncate":
            del out[i:]
    return bytes(out)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    from musicwords.notes import NotesError
    from vem.audio import AudioError
    from vem.storyboard import VideoError

    with Sandbox(LIMIT_S, preload=("musicwords.io", "vem.storyboard", "vem.audio"),
                 rejections=(NotesError, VideoError, AudioError)) as sandbox:  # as the jobs do
        yield sandbox


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real files of every format the jobs read: corpus scores, their MIDI export, an ad, its audio."""
    import soundfile as sf
    from music21 import corpus

    from musicwords.corpus import score_to_notes
    from musicwords.midi import notes_to_midi_bytes, playable_notes
    from vem.synthetic import SyntheticAdConfig, encode_mp4, plan_ad, render_soundtrack

    mxl = Path(str(corpus.getWork("bach/bwv66.6")))
    with zipfile.ZipFile(mxl) as z:
        xml = next(z.read(n) for n in z.namelist() if n.endswith(".xml") and not n.startswith("META-INF"))
    notes = playable_notes(score_to_notes(corpus.parse("bach/bwv66.6"), piece_id="bwv66.6", source=str(mxl)))
    abc = b"\nX:".join(Path(str(corpus.getWork("essenFolksong/han1"))).read_bytes().split(b"\nX:")[:3])  # two tunes
    krn = (mxl.parent / "bwv277.krn").read_bytes()
    plan = plan_ad(seed=5, index=0, config=SyntheticAdConfig.debug())
    video = tmp_path_factory.mktemp("seed") / "ad.mp4"
    encode_mp4(plan, str(video))
    wav = io.BytesIO()
    sf.write(wav, render_soundtrack(plan)[: plan.sample_rate * 3], plan.sample_rate, format="WAV")
    return {"mid": notes_to_midi_bytes(notes), "xml": xml, "mxl": mxl.read_bytes(), "abc": abc, "krn": krn,
            "mp4": video.read_bytes(), "wav": wav.getvalue()}


def _survives(box: Sandbox, fn: Callable[..., Any], allowed: type[Exception], *args: Any, **kwargs: Any) -> None:
    """``fn`` gives a result or ``allowed``; a hang, a crash or another exception fails the test."""
    try:
        box(fn, *args, **kwargs)
    except allowed:
        return
    except InputTimeout:
        pytest.fail(f"{fn.__name__} hung past {LIMIT_S:g} s on a mutated file")
    except ParserCrashed as e:
        pytest.fail(f"{fn.__name__} crashed on a mutated file: {e}")


def test_the_seeds_parse(box: Sandbox, seeds: dict[str, bytes]) -> None:
    from musicwords.io import read_notes
    from vem.audio import load_audio
    from vem.storyboard import ParseConfig, parse_video

    for suffix in ("mid", "xml", "mxl", "abc", "krn"):
        assert len(box(read_notes, f"seed.{suffix}", data=seeds[suffix])) > 10, suffix
    assert box(parse_video, seeds["mp4"], ParseConfig(embedding="none")).duration_s > 1
    assert len(box(load_audio, seeds["wav"])) > 16_000


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["mid", "xml", "mxl", "abc", "krn"])
def test_music_parsers_survive_mutated_files(box: Sandbox, seeds: dict[str, bytes], suffix: str) -> None:
    from musicwords.io import read_notes
    from musicwords.notes import NotesError

    @FUZZ
    @given(ops=MUTATIONS)
    def check(ops: list[tuple[str, int, Any]]) -> None:
        _survives(box, read_notes, NotesError, f"fuzz.{suffix}", data=mutate(seeds[suffix], ops))

    check()


@pytest.mark.slow
def test_the_video_parser_survives_mutated_files(box: Sandbox, seeds: dict[str, bytes]) -> None:
    from vem.storyboard import ParseConfig, VideoError, parse_video

    @FUZZ
    @given(ops=MUTATIONS)
    def check(ops: list[tuple[str, int, Any]]) -> None:
        _survives(box, parse_video, VideoError, mutate(seeds["mp4"], ops), ParseConfig(embedding="none"))

    check()


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["wav", "mp4"])
def test_the_audio_decoder_survives_mutated_files(box: Sandbox, seeds: dict[str, bytes], suffix: str) -> None:
    from vem.audio import AudioError, load_audio

    @FUZZ
    @given(ops=MUTATIONS)
    def check(ops: list[tuple[str, int, Any]]) -> None:
        _survives(box, load_audio, AudioError, mutate(seeds[suffix], ops))

    check()
