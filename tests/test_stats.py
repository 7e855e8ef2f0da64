"""Statistics of note-state matrices (musicutils.stats)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from musicutils import midi, stats  # noqa: E402


def example_state() -> np.ndarray:
    """8 steps, 24 notes from MIDI 60: C held 4 steps, E struck twice (2 + 1), 3 silent steps."""
    state = np.zeros((8, 24, 2), np.uint8)
    state[0:4, 0] = [1, 0]  # C (index 0 = MIDI 60): one note of 4 steps
    state[0, 0, 1] = 1
    state[1:4, 4, 0] = 1  # E: struck at step 1 and again at step 3
    state[[1, 3], 4, 1] = 1
    state[4, 7] = [1, 1]  # G, one step
    return state


def test_pitch_classes_lengths_counts_silence():
    state = example_state()
    hist = stats.pitch_class_histogram(state, lowest=60)
    expected = np.zeros(12)
    np.add.at(expected, [0, 4, 4, 7], 1)
    np.testing.assert_allclose(hist, expected / 4)
    assert sorted(stats.note_lengths(state, lowest=60)) == [1, 1, 2, 4]
    np.testing.assert_array_equal(stats.notes_per_step(state), [1, 2, 2, 2, 1, 0, 0, 0])
    assert stats.silent_fraction(state) == pytest.approx(3 / 8)


def test_pieces_bring_their_own_range_and_batches_pool():
    state = example_state()
    piece = midi.from_state(state, lowest=61)  # everything a semitone up
    assert stats.pitch_class_histogram(piece)[[1, 5, 8]].tolist() == [0.25, 0.5, 0.25]
    batch = np.stack([state, np.zeros_like(state)])
    summary = stats.describe([batch, piece], lowest=60)
    assert summary["steps"] == 24 and summary["notes"] == 8
    assert summary["silent_fraction"] == pytest.approx((3 + 8 + 3) / 24)
    assert summary["note_length"] == pytest.approx(2.0)


def test_no_notes():
    empty = np.zeros((5, 10, 2), np.uint8)
    assert stats.pitch_class_histogram(empty).sum() == 0
    assert stats.describe(empty)["note_length"] == 0.0
    assert stats.silent_fraction(empty) == 1.0
    with pytest.raises(ValueError, match="shape"):
        stats.notes_per_step(np.zeros((3, 2)))


def test_plot_comparison_draws_one_series_per_label():
    fig = stats.plot_comparison({"a": example_state(), "b": [example_state()] * 2}, lowest=60)
    assert len(fig.axes) == 4
    assert len(fig.axes[1].lines) == 2
