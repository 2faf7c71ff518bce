"""VeM: video-to-music generation aligned with the video's storyboard and cuts (no Ray here).

Modules: :mod:`vem.synthetic` (the sample catalog's synthetic ads with known ground truth).
"""

__all__: list[str] = []
