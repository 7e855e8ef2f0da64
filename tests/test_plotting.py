"""Piano rolls: note-name ticks, bar lines from meters, states and probabilities."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from musicutils import midi, plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _state(n_steps: int = 48, n_notes: int = 78) -> np.ndarray:
    """C4 as two repeated quarter notes, then E4 as a half note (4 steps per beat)."""
    state = np.zeros((n_steps, n_notes, 2), np.uint8)
    state[0:8, 60 - 24, 0] = 1
    state[[0, 4], 60 - 24, 1] = 1
    state[8:16, 64 - 24, 0] = 1
    state[8, 64 - 24, 1] = 1
    return state


def _bar_line_steps(ax: Axes) -> list[float]:
    """x of the darker (bar) vertical lines."""
    collections = [
        c
        for c in ax.collections
        if hasattr(c, "get_segments")
        and c.get_segments()
        and np.allclose(c.get_color()[0][:3], 0.45)
    ]
    (bars,) = collections
    return sorted(float(seg[0][0]) for seg in bars.get_segments())


def test_piece_roll_returns_axes_with_note_names() -> None:
    piece = midi.from_state(_state(), name="two notes")
    ax = plotting.plot_piano_roll(piece)
    assert isinstance(ax, Axes) and ax.get_title() == "two notes"
    labels = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert labels.get("C4") == 60  # middle C
    lo, hi = ax.get_ylim()
    assert lo < 60 and hi > 64 and hi - lo < 20  # cropped to the used range plus a margin


def test_onsets_drawn_separately() -> None:
    ax = plotting.plot_piano_roll(_state())
    notes, onsets = (
        c for c in ax.collections if len(c.get_paths()) and not hasattr(c, "get_segments")
    )
    # Two repeated C4 quarters + one E4 half = 3 notes, each with its own onset mark,
    # so the repeated note is not drawn as one long note.
    assert len(notes.get_paths()) == 3 and len(onsets.get_paths()) == 3


@pytest.mark.parametrize(("meter", "bar_steps"), [((4, 4), 16), ((3, 4), 12), ((6, 8), 12)])
def test_bar_lines_follow_the_meter(meter, bar_steps) -> None:
    piece = midi.from_state(_state(48), meter=meter)
    ax = plotting.plot_piano_roll(piece)
    assert _bar_line_steps(ax) == list(range(0, 48, bar_steps))


def test_meter_change_and_pickup_numbering() -> None:
    piece = midi.from_state(_state(4 + 24))
    piece.meters = [(0, 1, 4), (4, 3, 4)]  # a one-beat pickup, then 3/4
    ax = plotting.plot_piano_roll(piece)
    assert _bar_line_steps(ax) == [0, 4, 16]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]


def test_bare_state_and_full_range() -> None:
    ax = plotting.plot_piano_roll(_state(), lowest=24, crop=False)
    assert ax.get_ylim() == (23.5, 101.5)


def test_probabilities_heat_map_with_truth() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.random((48, 78)) * 0.1
    probabilities[0:8, 36] = 0.9
    fig, ax = plt.subplots()
    out = plotting.plot_piano_roll(probabilities, ax=ax, truth=_state(), title="P(play)")
    assert out is ax and ax.get_title() == "P(play)"
    (image,) = [im for im in ax.images if im.get_array().shape == (78, 48)]
    assert image.get_clim() == (0.0, 1.0)
    assert len(fig.axes) == 2  # the colour bar
    with pytest.raises(ValueError, match="truth"):
        plotting.plot_piano_roll(probabilities, truth=_state()[:10])


def test_bad_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_piano_roll(np.zeros((4, 5, 3)))


def test_save_png(tmp_path: Path) -> None:
    out = plotting.save_piano_roll(midi.from_state(_state()), tmp_path / "sub" / "roll.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["roll.png"]  # no temp file left
    assert not plt.get_fignums()  # no pyplot figure left open


def test_empty_state() -> None:
    ax = plotting.plot_piano_roll(np.zeros((16, 78, 2), np.uint8))
    assert ax.get_ylim() == (23.5, 101.5)


def test_model_output_and_probabilities_keyword() -> None:
    rng = np.random.default_rng(1)
    output = rng.random((48, 78, 2)) * 0.5  # a model's (T, N, 2) probabilities
    ax = plotting.plot_piano_roll(output)
    (image,) = [im for im in ax.images if im.get_array().shape == (78, 48)]
    np.testing.assert_allclose(image.get_array(), output[..., 0].T)
    piece = midi.from_state(_state(), meter=(3, 4), name="truth")
    ax = plotting.plot_piano_roll(piece, probabilities=output)
    assert ax.get_title() == "truth" and _bar_line_steps(ax) == [0, 12, 24, 36]
    assert any(im.get_array().shape == (78, 48) for im in ax.images)
    with pytest.raises(ValueError, match="either"):
        plotting.plot_piano_roll(piece, probabilities=output, truth=piece)


def test_feature_matrix_labels_each_group():
    slices = {"position": slice(0, 1), "pitch_class": slice(1, 13), "beat": slice(13, 19)}
    fig, ax = plt.subplots()
    try:
        returned = plotting.plot_feature_matrix(np.zeros((5, 19)), slices, ax=ax, ylabel="note")
        assert returned is ax
        assert [t.get_text() for t in ax.texts] == ["pos", "pitch class", "beat"]
        assert [line.get_xdata()[0] for line in ax.lines] == [-0.5, 0.5, 12.5]
        assert ax.get_ylabel() == "note"
        # index ticks at the group starts and the last column; 1 would touch 0, so it is left out
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "13", "18"]
        (colorbar_axes,) = [a for a in fig.axes if a is not ax]
        assert colorbar_axes.get_ylabel() == "input value"
    finally:
        plt.close(fig)


def test_feature_matrix_without_colorbar():
    fig, ax = plt.subplots()
    try:
        plotting.plot_feature_matrix(np.zeros((2, 3)), {"a": slice(0, 3)}, ax=ax, colorbar=False)
        assert fig.axes == [ax]
    finally:
        plt.close(fig)


def test_biaxial_axes_diagram_connects_the_time_axis_to_the_note_axis():
    ax = plotting.plot_biaxial_axes(steps=3, notes=4)
    try:
        arrows = [a for a in ax.texts if hasattr(a, "arrow_patch") and a.arrow_patch]
        kinds = [a.get_label() for a in arrows]
        # time axis: 2 arrows per note row; one "feeds" per note from step t into the note
        # axis; the note axis: 3 arrows between the 4 notes plus one from silence below
        assert kinds.count("time") == 4 * 2
        assert kinds.count("feeds") == 4 and kinds.count("note") == 3 + 1
        for a in arrows:
            (x0, y0), (x1, y1) = a.xyann, a.xy  # from, to
            if a.get_label() in ("time", "feeds"):
                assert y0 == y1 and x1 > x0  # rightwards along the steps
            else:
                assert x0 == x1 and y1 > y0  # upwards along the notes
        feeds_from = sorted(a.xyann[0] for a in arrows if a.get_label() == "feeds")
        time_ends = max(a.xy[0] for a in arrows if a.get_label() == "time")
        assert feeds_from[0] > time_ends  # the note axis is fed from the last step, t
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels[:3] == ["t-2", "t-1", "t"] and labels[3].startswith("note axis")
        assert [t.get_text() for t in ax.get_yticklabels()] == ["n-2", "n-1", "n", "n+1"]
    finally:
        plt.close(ax.figure)


def test_piano_roll_bar_lines_from_a_segment_bar_position():
    # A segment cut from a 3/4 piece: 12 steps per bar, starting on a downbeat.
    state = np.zeros((36, 10, 2), np.uint8)
    state[:, 3, 0] = 1
    position = np.arange(36) % 12
    fig, ax = plt.subplots()
    try:
        plotting.plot_piano_roll(state, ax=ax, lowest=60, bar_position=position)
        bar_lines = ax.collections[-1].get_segments()
        assert [segment[0][0] for segment in bar_lines] == [0, 12, 24]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
        with pytest.raises(ValueError, match="bar_position"):
            plotting.plot_piano_roll(state, ax=ax, bar_position=position[:10])
    finally:
        plt.close(fig)
