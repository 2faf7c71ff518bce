"""VeM: video-to-music generation aligned with the video's storyboard and cuts (no Ray here).

Modules: :mod:`vem.synthetic` (the sample catalog's synthetic ads with known ground truth),
:mod:`vem.storyboard` (video parsing: transitions, shots, frame features), :mod:`vem.encoders`
(pluggable CLIP/SigLIP frame encoders), :mod:`vem.audio` (beats, tempo, downbeats),
:mod:`vem.metrics` (alignment metrics), :mod:`vem.scoring` (one video → one score row),
:mod:`vem.explain` (a video's timeline as a PNG), :mod:`vem.media` (opening media files).
"""

__all__: list[str] = []
