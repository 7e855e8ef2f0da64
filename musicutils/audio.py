"""Hear a piece without a soundfont: a small numpy synthesiser with a plucked, piano-like tone.

    wave = render(piece)              # float32 mono in [-1, 1], 22050 samples per second
    play(piece)                       # an IPython audio player (in a notebook)
    write_wav(piece, "piece.wav")     # 16-bit PCM, what `python -m musicutils render` does

Each note is a sum of harmonics, each dying away exponentially (higher harmonics faster, low
notes ringing longer), with a 4 ms attack and a short cosine release after the note ends. A
note sounds from its onset (articulate, or play starting) to the end of its play run, timed by
the piece's tempo changes. The mix is scaled so its peak is 0.9: never clipped.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from . import midi
from ._io import atomic_open

__all__ = ["play", "render", "write_wav"]

SAMPLE_RATE = 22050
PEAK = 0.9
_HARMONICS = np.arange(1, 7, dtype=np.float64)
_HARMONIC_AMPLITUDES = 1.0 / _HARMONICS**1.5
_ATTACK = 0.004  # seconds


def render(
    piece_or_state,
    *,
    sample_rate: int = SAMPLE_RATE,
    lowest: int | None = None,
    steps_per_beat: int | None = None,
    bpm: float | None = None,
    release: float = 0.1,
) -> np.ndarray:
    """Synthesise a piece (or a bare state (T, N, 2)) to a mono waveform.

    Args:
        piece_or_state: a `midi.Piece`, or a state array (T, N, 2); for a bare state,
            `lowest` (default 24), `steps_per_beat` (default 4) and `bpm` (default 120) say
            how to play it. `bpm` given with a Piece overrides its tempos.
        sample_rate: samples per second.
        release: seconds a note takes to fade after it ends; the output is this much longer
            than the piece so the last notes fade out instead of clicking.

    Returns:
        float32 (round((duration + release) * sample_rate),), peak 0.9 (all zeros for silence),
        where duration is the piece's length in seconds at its tempos.
    """
    if isinstance(piece_or_state, midi.Piece):
        state = np.asarray(piece_or_state.state)
        lowest = piece_or_state.lowest if lowest is None else lowest
        steps_per_beat = steps_per_beat or piece_or_state.steps_per_beat
        tempos = [(0, float(bpm))] if bpm else piece_or_state.tempos
    else:
        state = np.asarray(piece_or_state)
        if state.ndim != 3 or state.shape[-1] != 2:
            raise ValueError(f"expected a Piece or a state (steps, notes, 2), got {state.shape}")
        lowest = midi.DEFAULT_LOWEST if lowest is None else lowest
        steps_per_beat = steps_per_beat or 4
        tempos = [(0, float(bpm or 120.0))]
    times = midi.step_times(tempos, state.shape[0], steps_per_beat)
    out = np.zeros(int(round((times[-1] + release) * sample_rate)), dtype=np.float64)
    starts, ends, notes = midi.note_intervals(state)
    if not len(starts):
        return out.astype(np.float32)

    first = np.round(times[starts] * sample_rate).astype(np.int64)
    held = np.maximum(np.round(times[ends] * sample_rate).astype(np.int64) - first, 1)
    release_len = max(1, int(round(release * sample_rate)))
    length = np.minimum(held + release_len, len(out) - first)  # samples each note adds
    fade = 0.5 * (1.0 + np.cos(np.pi * np.arange(release_len) / release_len))
    # A note's sound depends only on its pitch until it is released, so each pitch's tone is
    # computed once, as long as its longest note, and every note adds a slice of it.
    pitches = notes + lowest
    for pitch in np.unique(pitches):
        mine = np.flatnonzero(pitches == pitch)
        tone = _tone(440.0 * 2.0 ** ((pitch - 69) / 12.0), int(length[mine].max()), sample_rate)
        for start, n_held, n in zip(first[mine], held[mine], length[mine], strict=True):
            h = min(n_held, n)
            out[start : start + h] += tone[:h]
            out[start + h : start + n] += tone[h:n] * fade[: n - h]
    peak = np.abs(out).max()
    if peak > 0:
        out *= PEAK / peak
    return out.astype(np.float32)


def _tone(frequency: float, n: int, sample_rate: int) -> np.ndarray:
    """`n` samples of a struck-string tone at `frequency` Hz, with its attack: float64 (n,).

    Harmonic h has amplitude h^-1.5 and decays at rate d * (1 + 0.8 (h - 1)) per second, with
    d larger for higher notes (low notes ring longer). Harmonics above Nyquist are left out.
    """
    t = np.arange(n) / sample_rate
    decay = 0.8 + frequency / 600.0
    base = np.exp(-decay * t)  # envelope of the fundamental
    step = np.exp(-0.8 * decay * t)  # extra decay per harmonic
    phase = 2 * np.pi * frequency * t
    sin_prev, sin_h, two_cos = np.zeros(n), np.sin(phase), 2 * np.cos(phase)
    envelope, tone = base, np.zeros(n)
    for h in _HARMONICS:
        if h * frequency >= sample_rate / 2:
            break
        tone += _HARMONIC_AMPLITUDES[int(h) - 1] * envelope * sin_h
        # sin((h+1)x) = 2 cos(x) sin(hx) - sin((h-1)x): harmonics without more sin calls.
        sin_prev, sin_h = sin_h, two_cos * sin_h - sin_prev
        envelope = envelope * step
    return tone * np.minimum(1.0, t / _ATTACK)


def play(piece_or_state, **kw):
    """An `IPython.display.Audio` player for the piece (keyword arguments go to `render`)."""
    from IPython.display import Audio

    sample_rate = kw.get("sample_rate", SAMPLE_RATE)
    return Audio(render(piece_or_state, **kw), rate=sample_rate, normalize=False)


def write_wav(
    piece_or_state, path: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE, **kw
) -> Path:
    """Render and write a 16-bit PCM mono WAV file, atomically. Returns the path."""
    path = Path(path)
    samples = render(piece_or_state, sample_rate=sample_rate, **kw)
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with atomic_open(path) as file, wave.open(file, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return path
