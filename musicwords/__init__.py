"""Music-words: unsupervised discovery of recurring patterns in symbolic music (no Ray here).

Modules: :mod:`musicwords.notes` (the Notes table), :mod:`musicwords.io` (reading MIDI,
MusicXML/kern/abc, note CSVs), :mod:`musicwords.midi` (writing MIDI), :mod:`musicwords.corpus`
(the music21 corpus), :mod:`musicwords.voices` (voice separation), :mod:`musicwords.tokens`,
:mod:`musicwords.lattice` (forward-backward and Viterbi), :mod:`musicwords.em` (stage 1: the
dictionary under minimum code length), :mod:`musicwords.reconstruct` (stage 2: occurrences and
patterns), :mod:`musicwords.discover` (both stages in one call), :mod:`musicwords.evaluate`
(JKUPDD, mir_eval, box IoU, baselines), :mod:`musicwords.report` (tables, MIDI, plots),
:mod:`musicwords.mirex` (the MIREX output format), :mod:`musicwords.synthetic` (planted motifs),
:mod:`musicwords.compare` (distinctive and shared words of composers), :mod:`musicwords.page` (the HTML
corpus report).
"""

__all__: list[str] = []
