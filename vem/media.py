"""Opening a media file (a path or its bytes) for reading with PyAV, with errors in the caller's terms."""

from __future__ import annotations

import io
from typing import Any

__all__ = ["open_media"]


def open_media(source: str | bytes, error: type[Exception]) -> Any:
    """An ``av`` input container of ``source``; an unreadable file raises ``error("cannot open the file: ...")``."""
    import av  # noqa: PLC0415

    try:
        return av.open(io.BytesIO(source) if isinstance(source, bytes) else source, mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise error(f"cannot open the file: {e}") from e
