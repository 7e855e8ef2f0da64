"""The synthesiser: timing from tempo, no clipping, silence, WAV files, speed."""

from __future__ import annotations

import io
import sys
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
    # 2 steps at 1/8 s, 2 at 1/4 s: what the duration of a 4-step piece with that map reports
    piece = midi.Piece(np.zeros((4, 1, 2), np.uint8), tempos=[(0, 120.0), (2, 60.0)])
    assert midi.duration_seconds(piece) == pytest.approx(0.75)


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


def _chorale(name: str = "bwv269") -> midi.Piece:
    return midi.read(data.bundled_chorales_dir() / f"{name}.mid")  # 47.2 s at 80 bpm


def _decoded_seconds(player) -> float:
    soundfile = pytest.importorskip("soundfile")
    samples, rate = soundfile.read(io.BytesIO(player.data))
    return len(samples) / rate


def _stored_bytes(player) -> int:
    """What the player adds to a saved notebook: its HTML, base64 audio included."""
    return len(player._repr_html_())


def test_player_is_small_mp3_of_the_whole_piece() -> None:
    pytest.importorskip("IPython")
    pytest.importorskip("soundfile")
    piece = _chorale()
    player = audio.play(piece)
    assert type(player).__name__ == "Audio" and player.mimetype == "audio/mpeg"
    assert player.data[:3] == b"ID3" or player.data[0] == 0xFF  # an MP3 stream
    assert "audio/mpeg;base64," in player._repr_html_()
    seconds = midi.duration_seconds(piece) + 0.1  # the render's release tail
    assert abs(_decoded_seconds(player) - seconds) < 0.2  # not cut (the encoder pads a little)
    # Measured 4.55 KB per stored second for this chorale (215 KB): far below WAV's 29 KB/s.
    assert _stored_bytes(player) / seconds < 6_000
    assert _stored_bytes(player) <= audio.MAX_PLAYER_BYTES


def test_player_plays_the_first_seconds() -> None:
    pytest.importorskip("IPython")
    player = audio.play(_chorale(), seconds=5)
    assert abs(_decoded_seconds(player) - 5.0) < 0.15
    with pytest.raises(ValueError, match="seconds"):
        audio.play(_chorale(), seconds=0)
    with pytest.raises(ValueError, match="encoding"):
        audio.play(_chorale(), encoding="flac")


def test_player_is_cut_to_its_byte_budget() -> None:
    pytest.importorskip("IPython")
    piece = _chorale()
    player = audio.play(piece, max_bytes=60_000)
    assert _stored_bytes(player) <= 60_000 + 400  # the HTML around the base64 text
    assert 5.0 < _decoded_seconds(player) < 0.5 * midi.duration_seconds(piece)
    # The fade-out: the last 10 ms are near silence, not a click.
    soundfile = pytest.importorskip("soundfile")
    samples, rate = soundfile.read(io.BytesIO(player.data))
    assert np.abs(samples[-rate // 100 :]).max() < 0.02


def test_wav_player_and_fallback_without_soundfile(monkeypatch) -> None:
    pytest.importorskip("IPython")
    player = audio.play(_chorale(), encoding="wav")
    assert player.mimetype == "audio/wav" and player.data[:4] == b"RIFF"
    with wave.open(io.BytesIO(player.data)) as file:
        assert (file.getframerate(), file.getsampwidth()) == (11025, 2)
        assert 9.0 < file.getnframes() / 11025 < 11.0  # 16-bit WAV: ~10 s fit in 300 KB
    assert _stored_bytes(player) <= audio.MAX_PLAYER_BYTES
    monkeypatch.setitem(sys.modules, "soundfile", None)  # `import soundfile` raises ImportError
    short = audio.play(midi.from_state(_one_note(0)))
    assert short.mimetype == "audio/wav" and short.data[:4] == b"RIFF"


def test_the_longest_chorale_renders_whole() -> None:
    # Its speed is measured by benchmarks/bench_audio.py (a time limit here would flake on a
    # loaded machine).
    pieces = data.load_corpus(data.bundled_chorales_dir(), cache=False, progress=False).pieces
    piece = max(pieces, key=midi.duration_seconds)  # about 1.5 minutes, 600+ notes
    wave_ = audio.render(piece)
    assert len(wave_) == pytest.approx((midi.duration_seconds(piece) + 0.1) * SR, abs=2)
    assert np.isfinite(wave_).all() and np.isclose(np.abs(wave_).max(), audio.PEAK, atol=1e-6)
