"""Music-words: unsupervised discovery of recurring patterns in symbolic music (no Ray here).

Modules: :mod:`musicwords.notes` (the Notes table), :mod:`musicwords.midi` (MIDI writing),
:mod:`musicwords.corpus` (the music21 corpus).
"""

__all__: list[str] = []
