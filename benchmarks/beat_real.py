"""Beat-tracker accuracy on real scores rendered to audio with a General MIDI soundfont.

Run (needs ``apt-get install fluidsynth fluid-soundfont-gm``; the script says so if missing)::

    nice -n 10 .venv/bin/python benchmarks/beat_real.py --split dev    # choose on dev
    nice -n 10 .venv/bin/python benchmarks/beat_real.py --split test   # report on test

What it does
------------
1. **Pieces** of the music21 corpus, four kinds, each with its own General MIDI sound:
   ``chorale`` (Bach four-part chorales on a church organ), ``quartet`` (string quartets of Haydn,
   Mozart and Beethoven: violin, violin, viola, cello), ``piano`` (Joplin, Mozart K. 545,
   Clara Schumann, Chopin, and songs of Schubert/Schumann/Beach with every part on the piano) and
   ``folk`` (Essen and O'Neill tunes, the melody alone on a fiddle). A fixed split by a hash of
   the piece id puts each piece in ``dev`` or ``test``; trackers are chosen on dev only.
2. **Tempo map**: the beat tempo is the score's metronome mark, else drawn (seeded by the piece
   id) from 70-140 beats/min. A third of the pieces keep it steady; a third get smooth rubato
   (low-passed noise on the log tempo, ±8 % at two standard deviations); a third change tempo by ×1.25 or
   ×0.8 halfway. Note times are computed from the map and written to a MIDI file at 1 tick = 1 ms
   (so the MIDI tempo track is constant and the map lives in the note times).
3. **Ground-truth beats** come from the score: for each bar of the first part, its time
   signature's beats (music21's ``beatDuration``: a crotchet in 4/4 and 3/4, a minim in 2/2 and
   3/2, a dotted crotchet in the compound meters 6/8, 9/8, 12/8 — so 6/8 has two beats a bar,
   not six — and 3/8 one). A bar shorter than its signature is a **pickup** when it is the first
   bar: its beats are counted back from its end (a one-crotchet upbeat in 4/4 is beat 4); a
   short bar later on (a final bar) keeps its beats from its start. Beat positions in crotchets
   go through the tempo map to seconds. Repeats are played as written (not expanded).
4. **Render** the first 30 s (the length of a short video) with fluidsynth at 16 kHz, mono.
5. **Score** each tracker with ``mir_eval.beat`` (the first 5 s are trimmed, the standard
   practice): F-measure (±70 ms), CMLt and AMLt (continuity, AMLt also accepting double/half
   tempo and the off-beat), and tempo accuracy (the tracker's tempo within 4 % of the median
   true beat tempo; ``acc2`` also accepts ×2, ×1/2, ×3, ×1/3), plus seconds of tracking per
   minute of audio (one process, the same audio for all), and each tracker's per-piece beat F
   against the first one listed: mean difference, a bootstrap 95 % interval over pieces, wins
   and losses.

A caveat on the truth: the beat is the note-on time of the score, while the GM organ and
violin need about 95 and 57 ms to reach half their loudness (the piano 12 ms), so every tracker places
beats in slow-attack music 20-60 ms late, and a share of its "misses" at ±70 ms are that lag.
No tracker here is shifted to make up for it: that would tune to this soundfont.

``--speed REPS`` times instead the whole audio analysis (beats, downbeats, envelope) of 30 s
clips before this benchmark (``old_analyze``) and now (``vem.audio.analyze_audio``),
alternating, in one process: run it under ``taskset -c 0``.

Trackers: ``floor`` (librosa as ``vem.audio`` had it before this benchmark: default onset
envelope at an 8 ms hop, the DP tracker, tempo refitted from the beats) and the variants listed
by ``--list``. ``vem`` is whatever ``vem.audio.analyze_audio`` does now. BeatNet is optional:
``pip install --no-deps BeatNet madmom-infer`` (its causal CRNN weights ship in the wheel; the
features and the DBN decoder come from madmom-infer's pure-numpy reimplementation of madmom).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

SR = 16_000
CLIP_S = 30.0
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2",
              "/usr/share/sounds/sf2/default-GM.sf2")
APT = "apt-get update && apt-get install -y fluidsynth fluid-soundfont-gm"

# --------------------------------------------------------------------------------------------- pieces
# the pieces, their beats and their sounds are the library's (vem.realmusic), shared with real_footage.py
from vem.realmusic import PROGRAMS, load_piece, piece_id, select_pieces  # noqa: E402


def split_of(pid: str) -> str:
    return "dev" if zlib.crc32(pid.encode()) % 2 == 0 else "test"


def tempo_map(pid: str, bpm_quarter: float, beat_q: float, end_q: float) -> tuple[np.ndarray, np.ndarray, str]:
    """(grid of crotchet positions, their times in s, variant) of one piece's tempo map."""
    rng = np.random.default_rng(zlib.crc32(pid.encode()))
    variant = ("steady", "rubato", "change")[zlib.crc32(pid.encode()) // 2 % 3]
    q = np.arange(0.0, end_q + 1.0, 0.01)
    log_tempo = np.full(len(q), np.log(bpm_quarter))
    if variant == "rubato":
        width = int(400 * beat_q)  # noise low-passed over ~4 beats: the tempo swells and relaxes
        wave = np.convolve(rng.normal(0, 1, len(q) + width), np.hanning(width), mode="same")[width // 2 : width // 2 + len(q)]
        log_tempo += 0.04 * wave / (wave.std() or 1.0)  # ±8 % at two standard deviations
    elif variant == "change":
        middle = min(end_q / 2, CLIP_S / 2 * bpm_quarter / 60)  # halfway through the rendered clip
        log_tempo[q >= middle] += np.log(rng.choice([1.25, 0.8]))
    seconds = np.concatenate([[0.0], np.cumsum(60.0 / np.exp(log_tempo[:-1]) * 0.01)])
    return q, seconds, variant


def render_piece(kind: str, path: str, number: int | None, out: Path, soundfont: str) -> dict[str, Any] | None:
    """Render one piece's first 30 s to ``out/ID.wav`` and ``out/ID.json`` (beats, tempo); None if unusable."""
    import mido  # noqa: PLC0415
    import soundfile  # noqa: PLC0415

    pid = piece_id(path, number)
    meta_path = out / f"{pid}.json"
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    notes, beats_q = load_piece(path, number)
    if len(beats_q) < 8:
        return None
    beat_q = float(np.median(np.diff(beats_q)))
    rng = np.random.default_rng(zlib.crc32(pid.encode()) + 1)
    has_mark = abs(notes.tempo_bpm - 100.0) > 1e-6  # 100 = no metronome mark in the score
    beat_bpm = notes.tempo_bpm / beat_q if has_mark else float(rng.uniform(70, 140))
    beat_bpm = float(np.clip(beat_bpm, 40, 200))
    end_q = float(max(beats_q.max(), (notes.onset + notes.duration).max()))
    grid, secs, variant = tempo_map(pid, beat_bpm * beat_q, beat_q, end_q)
    to_s = lambda x: np.interp(x, grid, secs)  # noqa: E731
    onset_s, end_s = to_s(notes.onset), to_s(notes.onset + notes.duration)
    keep = onset_s < CLIP_S - 0.5
    beats = to_s(beats_q)
    beats = beats[beats < min(CLIP_S, float(end_s[keep].max()))]
    if len(beats) < 8 or end_s[keep].max() < 12.0:
        return None
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=480_000, time=0)])  # 1 tick = 1 ms
    mid.tracks.append(meta)
    programs = PROGRAMS[kind]
    for v in range(len(notes.voice_names)):
        idx = np.flatnonzero((notes.voice == v) & keep)
        channel = v % 15 + (1 if v % 15 >= 9 else 0)
        program = programs[min(v, len(programs) - 1)]
        events = sorted([(round(1000 * end_s[i]), 0, int(notes.pitch[i]), 0) for i in idx]
                        + [(round(1000 * onset_s[i]), 1, int(notes.pitch[i]), int(notes.velocity[i])) for i in idx])
        track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program, time=0)])
        now = 0
        for tick, on, pitch, vel in events:
            kind_ = "note_on" if on else "note_off"
            track.append(mido.Message(kind_, channel=channel, note=pitch, velocity=vel, time=tick - now))
            now = tick
        mid.tracks.append(track)
    with tempfile.TemporaryDirectory() as tmp:
        mid_path, wav_path = os.path.join(tmp, "x.mid"), os.path.join(tmp, "x.wav")
        mid.save(mid_path)
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SR), "-F", wav_path, soundfont, mid_path],
                       check=True, capture_output=True)
        y, sr = soundfile.read(wav_path, dtype="float32", always_2d=True)
    assert sr == SR, sr
    y = y.mean(axis=1)[: int(CLIP_S * SR)]
    y = y / (np.abs(y).max() or 1.0) * 0.9
    soundfile.write(out / f"{pid}.wav", y, SR, subtype="PCM_16")
    inner = np.diff(beats)
    meta_d = {"id": pid, "kind": kind, "path": path, "number": number, "split": split_of(pid), "variant": variant,
              "beats": beats.tolist(), "tempo_bpm": float(60.0 / np.median(inner)), "beat_quarters": beat_q,
              "duration_s": len(y) / SR}
    meta_path.write_text(json.dumps(meta_d))
    return meta_d


def render_all(out: Path, per_kind: int) -> list[dict[str, Any]]:
    if shutil.which("fluidsynth") is None or not any(os.path.exists(s) for s in SOUNDFONTS):
        sys.exit(f"beat_real needs fluidsynth and a General MIDI soundfont: {APT}")
    soundfont = next(s for s in SOUNDFONTS if os.path.exists(s))
    out.mkdir(parents=True, exist_ok=True)
    metas = []
    for kind, path, number in select_pieces(per_kind):
        try:
            m = render_piece(kind, path, number, out, soundfont)
        except Exception as e:  # a corpus file music21 cannot read: say so and go on
            print(f"  skipped {path} {number or ''}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        if m is not None:
            metas.append(m)
    return metas


# --------------------------------------------------------------------------------------------- trackers

Tracker = Callable[[np.ndarray], tuple[np.ndarray, float]]
HOP = 128


def _refit_tempo(beats: np.ndarray, fallback: float) -> float:
    if len(beats) < 4:
        return fallback
    period = float(np.median(np.diff(beats)))
    index = np.round((beats - beats[0]) / period)
    return 60.0 / float(np.polyfit(index, beats, 1)[0])


def _dp(env: np.ndarray, **kw: Any) -> tuple[np.ndarray, float]:
    import librosa  # noqa: PLC0415

    tempo, frames = librosa.beat.beat_track(onset_envelope=env, sr=SR, hop_length=HOP, units="frames", **kw)
    beats = librosa.frames_to_time(frames, sr=SR, hop_length=HOP)
    return beats, _refit_tempo(beats, float(np.atleast_1d(tempo)[0]))


def floor(y: np.ndarray) -> tuple[np.ndarray, float]:
    """librosa as vem.audio had it: default mel spectral-flux envelope at an 8 ms hop, DP tracker."""
    import librosa  # noqa: PLC0415

    return _dp(librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP))


def superflux(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Log-power mel spectrogram, flux with lag 2 and a 3-band max filter (librosa's SuperFlux recipe)."""
    import librosa  # noqa: PLC0415

    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=1024, n_mels=138, fmin=27.5,
                                                           fmax=8000), ref=np.max)
    return _dp(librosa.onset.onset_strength(S=S, sr=SR, hop_length=HOP, lag=2, max_size=3))


def _logflux(y: np.ndarray, n_fft: int, n_mels: int = 64) -> np.ndarray:
    import librosa  # noqa: PLC0415

    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=n_fft, n_mels=n_mels,
                                                           fmin=30, fmax=8000), ref=np.max, top_db=80)
    return np.asarray(librosa.onset.onset_strength(S=S, sr=SR, hop_length=HOP, n_fft=n_fft))


def logflux512(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Log-mel flux with a 32 ms window (the default's 128 ms window smears slow attacks later)."""
    return _dp(_logflux(y, 512))


def logflux1024(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Log-mel flux with a 64 ms window."""
    return _dp(_logflux(y, 1024))


def _chroma_env(y: np.ndarray, bands: int = 1) -> np.ndarray:
    """Spectral flux (``bands`` mel bands flux-ed apart, each scaled to unit std) plus harmonic change."""
    import librosa  # noqa: PLC0415

    if bands == 1:
        env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    else:
        edges = np.linspace(0, 128, bands + 1).astype(int)
        multi = librosa.onset.onset_strength_multi(y=y, sr=SR, hop_length=HOP, channels=list(edges))
        env = (multi / (multi.std(axis=1, keepdims=True) + 1e-9)).mean(axis=0)
    C = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=HOP, n_fft=2048)
    C = C / (np.linalg.norm(C, axis=0, keepdims=True) + 1e-9)
    change = np.maximum(0.0, np.concatenate([[0.0], 1.0 - np.sum(C[:, 1:] * C[:, :-1], axis=0)]))
    n = min(len(env), len(change))
    return np.asarray(env[:n] / (env.std() + 1e-9) + change[:n] / (change.std() + 1e-9))


def chromaflux(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Default flux plus harmonic change (chroma flux): chords change on beats in slow legato music."""
    return _dp(_chroma_env(y))


def chromaflux_t50(y: np.ndarray) -> tuple[np.ndarray, float]:
    """chromaflux with a looser DP (tightness 50 instead of 100: follows rubato)."""
    return _dp(_chroma_env(y), tightness=50)


def chromaflux_t200(y: np.ndarray) -> tuple[np.ndarray, float]:
    """chromaflux with a stiffer DP (tightness 200)."""
    return _dp(_chroma_env(y), tightness=200)


def chromaflux_mb(y: np.ndarray) -> tuple[np.ndarray, float]:
    """chromaflux on a 4-band flux (each band scaled to unit std, so a quiet cello counts)."""
    return _dp(_chroma_env(y, bands=4))


def chromaflux_fluxtempo(y: np.ndarray) -> tuple[np.ndarray, float]:
    """chromaflux beats, but the DP's tempo estimated from the spectral flux alone (as the floor does)."""
    import librosa  # noqa: PLC0415

    flux = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    bpm = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=flux, sr=SR, hop_length=HOP))[0])
    return _dp(_chroma_env(y), bpm=bpm)


def plp_peaks(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Predominant local pulse (Grosche & Müller) of the default envelope; beats at its peaks."""
    import librosa  # noqa: PLC0415

    env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    pulse = librosa.beat.plp(onset_envelope=env, sr=SR, hop_length=HOP, win_length=768)  # ~6 s window
    peaks = np.flatnonzero(librosa.util.localmax(pulse) & (pulse > 0.1 * pulse.max()))
    beats = librosa.frames_to_time(peaks, sr=SR, hop_length=HOP)
    return beats, _refit_tempo(beats, 120.0)


def vem_now(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Whatever vem.audio.analyze_audio does now."""
    from vem.audio import analyze_audio  # noqa: PLC0415

    a = analyze_audio(y, sr=SR)
    return a.beats, a.tempo_bpm


_BEATNET: dict[int, Any] = {}


def beatnet(model: int) -> Tracker:
    """BeatNet's causal CRNN (weights from the BeatNet wheel) + madmom-infer features and DBN decoder."""

    def track(y: np.ndarray) -> tuple[np.ndarray, float]:
        import librosa  # noqa: PLC0415
        import torch  # noqa: PLC0415
        from madmom_infer.audio.signal import FramedSignalProcessor, SignalProcessor  # noqa: PLC0415
        from madmom_infer.audio.spectrogram import (  # noqa: PLC0415
            FilteredSpectrogramProcessor,
            LogarithmicSpectrogramProcessor,
            SpectrogramDifferenceProcessor,
        )
        from madmom_infer.audio.stft import ShortTimeFourierTransformProcessor  # noqa: PLC0415
        from madmom_infer.features.downbeats import DBNDownBeatTrackingProcessor  # noqa: PLC0415
        from madmom_infer.processors import SequentialProcessor  # noqa: PLC0415

        if model not in _BEATNET:
            import BeatNet  # noqa: PLC0415
            from BeatNet.model import BDA  # noqa: PLC0415

            net = BDA(272, 150, 2, "cpu")
            state = torch.load(Path(BeatNet.__file__).parent / "models" / f"model_{model}_weights.pt", weights_only=True,
                               map_location="cpu")
            net.load_state_dict(state, strict=False)
            net.eval()
            sr = 22050
            pipe = SequentialProcessor((
                SignalProcessor(num_channels=1, sample_rate=sr),
                FramedSignalProcessor(frame_size=int(0.064 * sr), hop_size=int(0.020 * sr)),
                ShortTimeFourierTransformProcessor(),
                FilteredSpectrogramProcessor(num_bands=24, fmin=30, fmax=17000, norm_filters=True),
                LogarithmicSpectrogramProcessor(mul=1, add=1),
                SpectrogramDifferenceProcessor(diff_ratio=0.5, positive_diffs=True, stack_diffs=np.hstack),
            ))
            dbn = DBNDownBeatTrackingProcessor(beats_per_bar=[2, 3, 4], fps=50)
            _BEATNET[model] = (net, pipe, dbn)
        net, pipe, dbn = _BEATNET[model]
        torch.set_num_threads(1)  # one core, like the rest of the analysis
        y22 = librosa.resample(y, orig_sr=SR, target_sr=22050)
        feats = np.asarray(pipe(y22), dtype=np.float32)
        with torch.no_grad():
            net.hidden = torch.zeros(2, 1, 150)
            net.cell = torch.zeros(2, 1, 150)
            out = net(torch.from_numpy(feats).unsqueeze(0))[0]
            act = torch.softmax(out, dim=0).numpy()[:2].T  # (frames, [beat, downbeat])
        result = dbn(act)
        beats = np.asarray(result)[:, 0] if len(result) else np.zeros(0)
        return beats, _refit_tempo(beats, 120.0)

    track.__doc__ = f"BeatNet CRNN model {model} (causal; from the BeatNet wheel) + madmom-infer features and DBN."
    return track


TRACKERS: dict[str, Tracker] = {"floor": floor, "superflux": superflux, "plp": plp_peaks, "vem": vem_now,
                                "logflux512": logflux512, "logflux1024": logflux1024, "chromaflux": chromaflux,
                                "chromaflux_t50": chromaflux_t50, "chromaflux_t200": chromaflux_t200,
                                "chromaflux_mb": chromaflux_mb, "chromaflux_fluxtempo": chromaflux_fluxtempo,
                                "beatnet1": beatnet(1), "beatnet2": beatnet(2), "beatnet3": beatnet(3)}


def old_analyze(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole of vem.audio.analyze_audio before this benchmark (beats, downbeats, envelope), for --speed."""
    import librosa  # noqa: PLC0415

    env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    beats, _ = _dp(env)
    frames = librosa.time_to_frames(beats, sr=SR, hop_length=HOP)
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=HOP * 4)
    at_beats = chroma[:, np.clip(frames // 4, 0, chroma.shape[1] - 1)]
    at_beats = at_beats / (np.linalg.norm(at_beats, axis=0, keepdims=True) + 1e-9)
    change = np.concatenate([[0.0], 1.0 - np.sum(at_beats[:, 1:] * at_beats[:, :-1], axis=0)])
    downbeats = beats[int(np.argmax([change[p::4].mean() for p in range(4)])) :: 4]
    times = librosa.frames_to_time(np.arange(len(env)), sr=SR, hop_length=HOP)
    grid = np.interp(np.arange(int(len(y) / SR * 16)) / 16, times, env)
    return beats, downbeats, grid


def speed(metas: list[dict[str, Any]], folder: Path, reps: int) -> None:
    """Seconds for the whole audio analysis of 30 s of audio: before (old_analyze) and now (vem), alternating."""
    import soundfile  # noqa: PLC0415

    from vem.audio import analyze_audio  # noqa: PLC0415

    clips = [soundfile.read(folder / f"{m['id']}.wav", dtype="float32")[0] for m in metas if m["duration_s"] >= CLIP_S - 0.01]
    clips = clips[:: max(1, len(clips) // 8)][:8]
    old_analyze(clips[0])  # warm-up: imports, numba compilation
    analyze_audio(clips[0])
    times: dict[str, list[float]] = {"before": [], "now": []}
    for _ in range(reps):
        for y in clips:
            t0 = time.perf_counter()
            old_analyze(y)
            t1 = time.perf_counter()
            analyze_audio(y)
            t2 = time.perf_counter()
            times["before"].append(t1 - t0)
            times["now"].append(t2 - t1)
    before, now = np.median(times["before"]), np.median(times["now"])
    print(f"audio analysis of 30 s ({len(clips)} clips x {reps}, median; load {os.getloadavg()[0]:.2f}): "
          f"before {before:.3f} s, now {now:.3f} s, ratio now/before {now / before:.2f}")


# --------------------------------------------------------------------------------------------- scoring

def evaluate(metas: list[dict[str, Any]], folder: Path, names: list[str]) -> None:
    import mir_eval  # noqa: PLC0415
    import soundfile  # noqa: PLC0415

    audio = {m["id"]: soundfile.read(folder / f"{m['id']}.wav", dtype="float32")[0] for m in metas}
    kinds = sorted({m["kind"] for m in metas})
    minutes = sum(len(a) for a in audio.values()) / SR / 60
    counts = ", ".join(f"{k} {sum(m['kind'] == k for m in metas)}" for k in kinds)
    print(f"{len(metas)} pieces ({counts}), {minutes:.1f} min of audio; load {os.getloadavg()[0]:.2f}")
    header = f"{'tracker':12s} {'kind':8s} {'F':>6s} {'CMLt':>6s} {'AMLt':>6s} {'tempo4%':>8s} {'acc2':>6s}"
    print(header + f" {'s/min':>7s}")
    base_speed = None
    per_piece: dict[str, np.ndarray] = {}
    for name in names:
        tracker = TRACKERS[name]
        try:
            tracker(next(iter(audio.values()))[: SR * 5])  # warm-up (imports, model load) outside the clock
        except ImportError as e:
            print(f"{name:12s} unavailable: {e} (pip install --no-deps BeatNet madmom-infer)")
            continue
        rows: dict[str, list[tuple[float, ...]]] = {k: [] for k in kinds}
        by_variant: dict[str, list[float]] = {}
        spent = 0.0
        for m in metas:
            t0 = time.perf_counter()
            beats, tempo = tracker(audio[m["id"]])
            spent += time.perf_counter() - t0
            ref = mir_eval.beat.trim_beats(np.asarray(m["beats"]))
            est = mir_eval.beat.trim_beats(np.asarray(beats, dtype=float))
            f = mir_eval.beat.f_measure(ref, est)
            _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est) if len(est) > 1 else (0, 0, 0, 0)
            ratio = tempo / m["tempo_bpm"]
            acc1 = float(abs(ratio - 1) <= 0.04)
            acc2 = float(any(abs(ratio / k - 1) <= 0.04 for k in (1, 2, 0.5, 3, 1 / 3)))
            rows[m["kind"]].append((f, cmlt, amlt, acc1, acc2))
            by_variant.setdefault(m["variant"], []).append(f)
        per_min = spent / minutes
        per_piece[name] = np.array([x[0] for k in kinds for x in rows[k]])
        base_speed = base_speed or per_min
        for k in kinds + ["all"]:
            r = np.array([x for kk in kinds for x in rows[kk]] if k == "all" else rows[k])
            mean = r.mean(axis=0)
            tail = f" {per_min:7.2f} ({per_min / base_speed:.2f}x {names[0]})" if k == "all" else ""
            print(f"{name:12s} {k:8s} {mean[0]:6.3f} {mean[1]:6.3f} {mean[2]:6.3f} {mean[3]:8.2f} {mean[4]:6.2f}{tail}")
        print(f"{name:12s} beat F by tempo map: "
              + ", ".join(f"{v} {np.mean(fs):.3f} ({len(fs)})" for v, fs in sorted(by_variant.items())))
    first = next(iter(per_piece), None)
    rng = np.random.default_rng(0)
    for name, f in per_piece.items():
        if name == first:
            continue
        diff = f - per_piece[str(first)]
        boot = rng.choice(diff, size=(5000, len(diff))).mean(axis=1)
        low, high = np.percentile(boot, [2.5, 97.5])
        print(f"{name} - {first}: beat F {diff.mean():+.3f} (95 % bootstrap CI over pieces {low:+.3f} .. {high:+.3f}); "
              f"better on {int((diff > 0.005).sum())}, worse on {int((diff < -0.005).sum())} of {len(diff)} pieces")


def evaluate_catalog(folder: str, names: list[str]) -> None:
    """The same trackers on a sample catalog's soundtracks (``python -m jobs sample``), for comparison only."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    from vem.audio import load_audio  # noqa: PLC0415

    rows = [r for r in pq.read_table(os.path.join(folder, "ground_truth.parquet")).to_pylist() if r["status"] == "ok"]
    tmp = Path(tempfile.mkdtemp(prefix="beat_catalog_"))
    import soundfile  # noqa: PLC0415

    metas = []
    for r in rows:
        y = load_audio(r["uri"])
        soundfile.write(tmp / f"{r['id']}.wav", y, SR, subtype="FLOAT")
        metas.append({"id": r["id"], "kind": "catalog", "variant": "catalog", "beats": list(r["beats"]),
                      "tempo_bpm": float(r["tempo_bpm"]), "duration_s": len(y) / SR})
    evaluate(metas, tmp, names)
    shutil.rmtree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="work/beat_real", help="folder of rendered pieces (reused)")
    ap.add_argument("--per-kind", type=int, default=24)
    ap.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    ap.add_argument("--trackers", default="floor,superflux,plp,vem,beatnet1,beatnet2,beatnet3")
    ap.add_argument("--list", action="store_true", help="list the trackers and exit")
    ap.add_argument("--speed", type=int, default=0, metavar="REPS",
                    help="instead: time the whole audio analysis of 30 s, before vs now, REPS rounds (run under taskset -c 0)")
    ap.add_argument("--catalog", metavar="DIR", help="instead: score the trackers on a sample catalog's ground truth")
    args = ap.parse_args()
    if args.catalog:
        evaluate_catalog(args.catalog, args.trackers.split(","))
        return
    if args.list:
        for n, t in TRACKERS.items():
            print(f"{n:12s} {(t.__doc__ or '').strip().splitlines()[0] if t.__doc__ else ''}")
        return
    folder = Path(args.out)
    t0 = time.time()
    metas = render_all(folder, args.per_kind)
    print(f"rendered/loaded {len(metas)} pieces in {time.time() - t0:.0f} s into {folder}")
    metas = [m for m in metas if args.split == "all" or m["split"] == args.split]
    if args.speed:
        speed(metas, folder, args.speed)
        return
    evaluate(metas, folder, args.trackers.split(","))


if __name__ == "__main__":
    main()
