"""The synthesiser: timing from tempo, no clipping, silence, WAV files, speed."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from musicutils import audio, data, midi

SR = 22050


def _one_note(onset_step: int, n_steps: int = 32, pitch: int = 69, length: int = 4) -> np.ndarray:
    state = np.zeros((n_steps, 78, 2), np.uint8)
    state[onset_step : onset_step + length, pitch - 24, 0] = 1
    state[onset_step, pitch - 24, 1] = 1
    return state


def test_length_follows_tempo_changes() -> None:
    piece = midi.from_state(_one_note(0, n_steps=32))
    piece.tempos = [(0, 120.0), (16, 60.0)]  # 16 steps at 1/8 s, then 16 at 1/4 s
    wave_ = audio.render(piece, release=0.1)
    assert wave_.dtype == np.float32 and wave_.ndim == 1
    assert len(wave_) == round((2.0 + 4.0 + 0.1) * SR)
    assert len(audio.render(piece, bpm=240, release=0.0)) == round(2.0 * SR)  # bpm overrides


def test_step_times() -> None:
    # The tempo map the synthesiser renders with (it lives in midi).
    times = midi.step_times([(0, 120.0), (2, 60.0)], 4, 4)
    np.testing.assert_allclose(times, [0, 0.125, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(
        times[-1],
        midi.duration_seconds(
            midi.Piece(np.zeros((4, 1, 2), np.uint8), tempos=[(0, 120.0), (2, 60.0)])
        ),
    )


def test_silence_is_zeros() -> None:
    silent = audio.render(np.zeros((16, 78, 2), np.uint8), bpm=120)
    assert len(silent) == round((2.0 + 0.1) * SR) and not silent.any()


def test_onset_at_the_right_sample() -> None:
    # 120 bpm, 4 steps per beat: step 8 starts at exactly 1 s.
    wave_ = audio.render(_one_note(8), bpm=120)
    first = np.flatnonzero(np.abs(wave_) > 1e-4)[0]
    assert SR <= first <= SR + 3
    # The note is released after its 4 steps (0.5 s) plus the 0.1 s release: silent after.
    assert not np.abs(wave_[round(1.6 * SR) + 1 :]).any()
    assert np.abs(wave_[round(1.4 * SR) : round(1.5 * SR)]).max() > 0.05


def test_repeated_notes_are_struck_again() -> None:
    state = _one_note(0, length=8)
    state[4, 69 - 24, 1] = 1  # re-strike at step 4 (0.5 s)
    wave_ = audio.render(state, bpm=120)
    held = audio.render(_one_note(0, length=8), bpm=120)
    window = slice(round(0.5 * SR), round(0.55 * SR))
    assert np.abs(wave_[window]).max() > 1.5 * np.abs(held[window]).max()


def test_peak_is_normalised_without_clipping() -> None:
    state = np.zeros((64, 78, 2), np.uint8)
    state[:, 30:60, 0] = 1  # 30-note cluster, all struck together
    state[0, 30:60, 1] = 1
    wave_ = audio.render(state)
    assert np.isclose(np.abs(wave_).max(), audio.PEAK, atol=1e-6)
    assert np.isfinite(wave_).all()


def test_pitch_is_right() -> None:
    wave_ = audio.render(_one_note(0, length=16, pitch=69), bpm=120)[:SR]
    spectrum = np.abs(np.fft.rfft(wave_ * np.hanning(len(wave_))))
    assert abs(np.argmax(spectrum) * SR / len(wave_) - 440.0) < 2.0


def test_wav_file(tmp_path: Path) -> None:
    piece = midi.from_state(_one_note(0))
    path = audio.write_wav(piece, tmp_path / "out" / "a.wav", sample_rate=16000)
    with wave.open(str(path), "rb") as file:
        assert (file.getnchannels(), file.getsampwidth(), file.getframerate()) == (1, 2, 16000)
        frames = np.frombuffer(file.readframes(file.getnframes()), "<i2")
    expected = audio.render(piece, sample_rate=16000)
    assert len(frames) == len(expected)
    np.testing.assert_allclose(frames / 32767, expected, atol=1e-4)
    assert [p.name for p in path.parent.iterdir()] == ["a.wav"]


def test_play_returns_audio_widget() -> None:
    pytest.importorskip("IPython")
    player = audio.play(midi.from_state(_one_note(0)))
    assert type(player).__name__ == "Audio" and player.data[:4] == b"RIFF"


def test_a_chorale_renders_fast() -> None:
    pieces = data.load_corpus(data.bundled_chorales_dir(), cache=False, progress=False).pieces
    piece = max(pieces, key=midi.duration_seconds)  # about 1.5 minutes, 600+ notes
    audio.render(piece)  # warm up
    start = time.perf_counter()
    wave_ = audio.render(piece)
    seconds = time.perf_counter() - start
    assert len(wave_) / SR > 60
    assert seconds < 1.0, f"rendering {len(wave_) / SR:.0f} s of music took {seconds:.2f} s"
