"""Hear a piece without a soundfont: a small numpy synthesiser with a plucked, piano-like tone.

    wave = render(piece)              # float32 mono in [-1, 1], 22050 samples per second
    play(piece, seconds=20)           # a small MP3 audio player for a notebook (<= 300 KB stored)
    write_wav(piece, "piece.wav")     # 16-bit PCM, what `python -m musicutils render` does

Each note is a sum of harmonics, each dying away exponentially (higher harmonics faster, low
notes ringing longer), with a 4 ms attack and a short cosine release after the note ends. A
note sounds from its onset (articulate, or play starting) to the end of its play run, timed by
the piece's tempo changes. The mix is scaled so its peak is 0.9: never clipped.
"""

from __future__ import annotations

import base64
import io
import os
import wave
from pathlib import Path

import numpy as np

from . import midi
from ._io import atomic_open

__all__ = ["play", "render", "write_wav"]

SAMPLE_RATE = 22050
PEAK = 0.9
#: Most bytes a notebook audio player may add to a saved notebook: its base64 text, ~300 KB.
MAX_PLAYER_BYTES = 300_000
#: MP3 quality of the players, soundfile's `compression_level` in [0, 1] (higher: smaller, worse);
#: 0.5 is LAME's variable-bit-rate quality 5, about 3.5 KB per second of a four-voice chorale.
PLAYER_COMPRESSION = 0.5
_PLAYER_FADE = 0.25  # seconds of fade-out where a player cuts a piece short
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


def play(
    piece_or_state,
    *,
    seconds: float | None = None,
    max_bytes: int = MAX_PLAYER_BYTES,
    encoding: str = "mp3",
    sample_rate: int = SAMPLE_RATE,
    **kw,
):
    """A notebook audio player whose stored output stays small: an `IPython.display.Audio`.

    The piece is rendered by `render` and encoded as variable-bit-rate MP3 (via `soundfile`,
    whose wheel bundles libsndfile: no system library), about 3.5 KB per second of a chorale,
    4.7 KB per second once base64-encoded into the notebook. A piece longer than `seconds`,
    or than what fits in `max_bytes`, is cut with a short fade-out.

    Args:
        piece_or_state: a `midi.Piece`, or a state (T, N, 2) (see `render` for its defaults).
        seconds: play at most this many seconds from the start (None: the whole piece, as far
            as `max_bytes` allows).
        max_bytes: most bytes the player may add to a saved notebook (its base64 text).
        encoding: "mp3", or "wav" (16-bit PCM at 11025 Hz, about 29 KB per stored second, so
            a player holds about 10 s); "mp3" falls back to "wav" when soundfile is missing.
        sample_rate: render rate in Hz for MP3 (WAV players always use 11025).
        **kw: passed to `render` (`bpm`, `lowest`, `steps_per_beat`, `release`).

    Returns:
        `IPython.display.Audio` with embedded data; `.mimetype` is "audio/mpeg" or "audio/wav".
    """
    from IPython.display import Audio

    if seconds is not None and not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    encode = _encoder(encoding)
    rate = sample_rate if encode is _mp3 else _WAV_PLAYER_RATE
    samples = render(piece_or_state, sample_rate=rate, **kw)
    if seconds is not None:
        samples = _cut(samples, seconds, rate)
    data = encode(samples, rate)
    while _stored_bytes(data) > max_bytes:
        # Cut to the share that fits (minus 5 % for the encoder's variable rate) and re-encode.
        keep = len(samples) / rate * max_bytes / _stored_bytes(data) * 0.95
        samples = _cut(samples, keep, rate)
        data = encode(samples, rate)
    player = Audio(data=data)
    player.mimetype = "audio/mpeg" if encode is _mp3 else "audio/wav"
    return player


_WAV_PLAYER_RATE = 11025


def _encoder(encoding: str):
    if encoding == "wav":
        return _wav
    if encoding != "mp3":
        raise ValueError(f"encoding must be 'mp3' or 'wav', got {encoding!r}")
    try:
        import soundfile  # noqa: F401
    except ImportError:
        return _wav
    return _mp3


def _stored_bytes(data: bytes) -> int:
    """Length of the base64 text a player of `data` stores in a notebook."""
    return len(base64.b64encode(data))


def _cut(samples: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """The first `seconds` of `samples`, fading out over the last 0.25 s if anything was cut."""
    n = int(round(seconds * sample_rate))
    if n >= len(samples):
        return samples
    out = samples[:n].copy()
    fade = min(n, int(_PLAYER_FADE * sample_rate))
    out[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


def _mp3(samples: np.ndarray, sample_rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(
        buffer,
        samples,
        sample_rate,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=PLAYER_COMPRESSION,
        bitrate_mode="VARIABLE",
    )
    return buffer.getvalue()


def _wav(samples: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    _write_pcm(buffer, samples, sample_rate)
    return buffer.getvalue()


def _write_pcm(file, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono WAV of float samples in [-1, 1] into an open binary file."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(file, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def write_wav(
    piece_or_state, path: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE, **kw
) -> Path:
    """Render and write a 16-bit PCM mono WAV file, atomically. Returns the path."""
    path = Path(path)
    samples = render(piece_or_state, sample_rate=sample_rate, **kw)
    with atomic_open(path) as file:
        _write_pcm(file, samples, sample_rate)
    return path
