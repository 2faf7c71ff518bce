"""The MIREX pattern-discovery output format (``mir_eval.io.load_patterns`` reads it back).

::

    pattern1
    occurrence1
    0.00000, 60.00000
    ...
"""

from __future__ import annotations

__all__ = ["write_patterns"]


def write_patterns(patterns: list[list[list[tuple[float, float]]]]) -> str:
    """Text of ``patterns`` (each a list of occurrences, each a list of ``(onset, MIDI pitch)``)."""
    lines = []
    for i, pattern in enumerate(patterns, start=1):
        lines.append(f"pattern{i}")
        for j, occurrence in enumerate(pattern, start=1):
            lines.append(f"occurrence{j}")
            lines.extend(f"{onset:.5f}, {pitch:.5f}" for onset, pitch in sorted(occurrence))
    return "\n".join(lines) + "\n"
