"""Opening a media file (a path or its bytes) for reading with PyAV, with errors in the caller's terms."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

__all__ = ["mux_soundtrack", "open_media", "write_mp4"]


def open_media(source: str | bytes, error: type[Exception]) -> Any:
    """An ``av`` input container of ``source``; an unreadable file raises ``error("cannot open the file: ...")``."""
    import av  # noqa: PLC0415

    try:
        return av.open(io.BytesIO(source) if isinstance(source, bytes) else source, mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise error(f"cannot open the file: {e}") from e


def write_mp4(path: str, frames: Iterable[Any] | None, *, width: int, height: int, fps: int, crf: int = 23,
              audio: Any = None, sample_rate: int = 16_000) -> None:
    """Write H.264 video (``frames``: (height, width, 3) uint8 RGB, at ``fps``) and, given,
    ``audio`` (mono float32 at ``sample_rate``) as AAC into the mp4 file ``path``.

    ``frames`` None writes an audio-only file, ``audio`` None a video without sound.
    x264 runs single-threaded (preset veryfast, a keyframe at least every 2 s), so the bytes are
    the same on every machine for the same input.
    """
    from fractions import Fraction  # noqa: PLC0415

    import av  # noqa: PLC0415

    with av.open(path, mode="w", format="mp4") as container:
        if frames is not None:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height = width, height
            video.pix_fmt = "yuv420p"
            video.codec_context.time_base = Fraction(1, fps)
            video.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "g": str(2 * fps)}
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
            sound.options = {"b": "96k"}
        if frames is not None:
            _encode(container, video, (_video_frame(rgb, k, fps) for k, rgb in enumerate(frames)))
        if audio is not None:
            _mux_audio(container, sound, audio, sample_rate)


def _video_frame(rgb: Any, k: int, fps: int) -> Any:
    from fractions import Fraction  # noqa: PLC0415

    import av  # noqa: PLC0415

    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.pts = k
    frame.time_base = Fraction(1, fps)
    return frame


def _encode(container: Any, stream: Any, frames: Iterable[Any]) -> None:
    """Encode ``frames`` (PyAV frames with their timestamps) into ``stream``, flush it, and mux every packet."""
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def mux_soundtrack(video: bytes, audio: Any, sample_rate: int) -> bytes:
    """The video with ``audio`` (mono float32) as its only soundtrack, as MP4 bytes.

    The picture stream is copied packet by packet (not re-encoded: no quality loss, fast); any
    audio the file had is dropped; the new track is AAC at 128 kb/s.
    """

    import av  # noqa: PLC0415

    out = io.BytesIO()
    with av.open(io.BytesIO(video), mode="r") as src, av.open(out, mode="w", format="mp4") as dst:
        if not src.streams.video:
            raise ValueError("the file has no video stream")
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        sound = dst.add_stream("aac", rate=sample_rate)
        sound.layout = "mono"
        sound.options = {"b": "128k"}
        for packet in src.demux(vin):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = vout
            dst.mux(packet)
        _mux_audio(dst, sound, audio, sample_rate)
    return out.getvalue()


def _mux_audio(container: Any, stream: Any, audio: Any, sample_rate: int) -> None:
    """Encode mono float32 ``audio`` into ``stream`` in AAC-frame chunks and mux it into ``container``."""
    from fractions import Fraction  # noqa: PLC0415

    import av  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    samples = np.ascontiguousarray(np.asarray(audio, np.float32))
    chunk = 1024  # AAC frame size

    def blocks() -> Iterable[Any]:
        for start in range(0, len(samples), chunk):
            block = av.AudioFrame.from_ndarray(samples[None, start : start + chunk], format="flt", layout="mono")
            block.sample_rate = sample_rate
            block.pts = start
            block.time_base = Fraction(1, sample_rate)
            yield block

    _encode(container, stream, blocks())
