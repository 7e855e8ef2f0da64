"""Piano-roll pictures of a `Piece`, a bare note-state array or a model's probabilities.

    ax = plot_piano_roll(piece)                        # notes, bar and beat lines
    plot_piano_roll(probs, truth=piece, lowest=24)     # predicted P(play) with the true notes
    save_piano_roll(piece, "roll.png")                 # what `python -m musicutils roll` does

Time runs left to right in steps, labelled in bars; pitch bottom to top with the C's named
(middle C = C4 = MIDI 60). A note is a bar from its onset to its end; its first step is drawn
darker, so two repeated quarter notes and one half note look different.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import midi
from ._io import atomic_open

__all__ = ["plot_biaxial_axes", "plot_feature_matrix", "plot_piano_roll", "save_piano_roll"]

NOTE_COLOR = "#4c72b0"
ONSET_COLOR = "#1b2a49"
TRUTH_COLOR = "#d62728"
_BLACK_KEYS = {1, 3, 6, 8, 10}


def _as_roll(piece_or_state, lowest, steps_per_beat, meters):
    """(array, lowest, steps_per_beat, meters, name) from a Piece or a bare array."""
    if isinstance(piece_or_state, midi.Piece):
        p = piece_or_state
        return (
            np.asarray(p.state),
            p.lowest if lowest is None else lowest,
            steps_per_beat or p.steps_per_beat,
            meters or p.meters,
            p.name,
        )
    array = np.asarray(piece_or_state)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 2):
        raise ValueError(
            f"expected a Piece, a state (steps, notes, 2) or probabilities (steps, notes); "
            f"got shape {array.shape}"
        )
    return (
        array,
        midi.DEFAULT_LOWEST if lowest is None else lowest,
        steps_per_beat or 4,
        meters or [(0, 4, 4)],
        "",
    )


def _is_probability(array: np.ndarray) -> bool:
    """A float array with a value strictly between 0 and 1 (not a 0/1 note-state)."""
    return array.dtype.kind == "f" and bool(((array > 0) & (array < 1)).any())


def _as_probabilities(probabilities) -> np.ndarray:
    """(T, N) from (T, N) or (T, N, 2) (channel 0, P(play))."""
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim == 3 and probabilities.shape[-1] == 2:
        return probabilities[..., 0]
    if probabilities.ndim != 2:
        raise ValueError(
            f"probabilities must have shape (steps, notes) or (steps, notes, 2), "
            f"got {probabilities.shape}"
        )
    return probabilities


def _note_boxes(state: np.ndarray, lowest: int, gap: float = 0.12):
    """Vertices (K, 4, 2) of the note bars and of their darker onset marks (the first step,
    or half of a one-step note). A small gap before each onset separates repeated notes."""
    starts, ends, notes = midi.note_intervals(state)
    starts = starts + gap
    pitch = (notes + lowest).astype(float)
    lo, hi = pitch - 0.42, pitch + 0.42

    def boxes(x0, x1):
        return np.stack(
            [
                np.stack([x0, lo], -1),
                np.stack([x1, lo], -1),
                np.stack([x1, hi], -1),
                np.stack([x0, hi], -1),
            ],
            axis=1,
        )

    onset_end = starts + np.minimum(1.0 - gap, (ends - starts) / 2)
    return boxes(starts, ends), boxes(starts, onset_end), pitch


def plot_piano_roll(
    piece_or_state,
    *,
    ax=None,
    lowest: int | None = None,
    steps_per_beat: int | None = None,
    meters: list[tuple[int, int, int]] | None = None,
    title: str | None = None,
    truth=None,
    probabilities=None,
    crop: bool = True,
    margin: int = 2,
    bar_position=None,
):
    """Draw a piano roll and return the matplotlib Axes.

    Args:
        piece_or_state: a `midi.Piece`; a state array (T, N, 2) (channel 0 play, 1 articulate);
            or probabilities, drawn as a heat map from 0 (white) to 1: a float array (T, N), or
            a float array (T, N, 2) with values between 0 and 1 (a model's output; channel 0,
            P(play), is drawn).
        ax: Axes to draw into; a new figure when None.
        lowest: MIDI pitch of note index 0 (default: the piece's, else 24).
        steps_per_beat: steps per quarter note (default: the piece's, else 4).
        meters: [(step, numerator, denominator)] for bar and beat lines (default: the
            piece's, else 4/4).
        title: the title (default: the piece's name).
        truth: with probabilities, the true notes (a Piece or state (T, N, 2)) drawn as
            outlines on the heat map.
        probabilities: the other way round: `plot_piano_roll(piece, probabilities=p)` draws
            p (T, N) or (T, N, 2) as the heat map and the piece as `truth`.
        crop: show only the pitches used, plus `margin` semitones each side (at least an
            octave); False shows the whole range N.
        margin: semitones of space above and below the used range when cropping.
        bar_position: int (T,), each step's position in its bar (0 = downbeat), e.g. the
            "beat" input of a training segment cut from a piece: draws the bar and beat lines
            from it instead of from `meters` (bars are then numbered from 1).

    Returns:
        The Axes.
    """
    from matplotlib.collections import PolyCollection

    if probabilities is not None:
        if truth is not None:
            raise ValueError("give either `probabilities` or `truth`, not both")
        truth_piece = piece_or_state if isinstance(piece_or_state, midi.Piece) else None
        truth, piece_or_state = piece_or_state, _as_probabilities(probabilities)
        if truth_piece is not None:  # the piece's range, grid, meters and name still apply
            lowest = truth_piece.lowest if lowest is None else lowest
            steps_per_beat = steps_per_beat or truth_piece.steps_per_beat
            meters = meters or truth_piece.meters
            title = truth_piece.name if title is None else title
    array, lowest, steps_per_beat, meters, name = _as_roll(
        piece_or_state, lowest, steps_per_beat, meters
    )
    if array.ndim == 3 and _is_probability(array):
        array = array[..., 0]
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(12, 4.5), layout="constrained")
    n_steps, n_notes = array.shape[:2]
    used = np.zeros(n_notes, dtype=bool)

    if array.ndim == 2:  # probabilities
        image = ax.imshow(
            array.T.astype(float),
            origin="lower",
            aspect="auto",
            cmap="Blues",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
            extent=(0, n_steps, lowest - 0.5, lowest + n_notes - 0.5),
        )
        ax.figure.colorbar(image, ax=ax, label="probability", pad=0.01, fraction=0.03)
        used |= (array > 0.25).any(axis=0)
        if truth is not None:
            truth_state = truth.state if isinstance(truth, midi.Piece) else np.asarray(truth)
            if truth_state.shape[:2] != array.shape:
                raise ValueError(
                    f"truth has shape {truth_state.shape[:2]}, probabilities {array.shape}"
                )
            bars, onsets, _ = _note_boxes(truth_state, lowest)
            ax.add_collection(
                PolyCollection(
                    bars,
                    facecolors="none",
                    edgecolors=TRUTH_COLOR,
                    linewidths=0.8,
                    label="true notes",
                )
            )
            ax.add_collection(
                PolyCollection(onsets, facecolors=TRUTH_COLOR, edgecolors="none", alpha=0.8)
            )
            used |= truth_state[..., 0].any(axis=0)
    else:  # a note-state
        bars, onsets, _ = _note_boxes(array, lowest)
        ax.add_collection(PolyCollection(bars, facecolors=NOTE_COLOR, edgecolors="none"))
        ax.add_collection(PolyCollection(onsets, facecolors=ONSET_COLOR, edgecolors="none"))
        used |= array[..., 0].astype(bool).any(axis=0)

    # Pitch range: the used notes plus a margin, at least an octave, inside the window.
    if crop and used.any():
        first, last = np.flatnonzero(used)[[0, -1]] + lowest
        first, last = first - margin, last + margin
        if last - first < 12:
            pad = (12 - (last - first)) / 2
            first, last = first - int(np.ceil(pad)), last + int(np.floor(pad))
        first, last = max(first, lowest), min(last, lowest + n_notes - 1)
    else:
        first, last = lowest, lowest + n_notes - 1
    ax.set_ylim(first - 0.5, last + 0.5)
    ax.set_xlim(0, max(n_steps, 1))

    # Black-key rows lightly shaded, as on a keyboard: one image, not a patch per row.
    rows = np.arange(first, last + 1)
    shade = np.isin(rows % 12, list(_BLACK_KEYS)).astype(float)[:, None]
    ax.imshow(
        shade,
        origin="lower",
        aspect="auto",
        cmap="Greys",
        vmin=0,
        vmax=12,
        extent=(0, max(n_steps, 1), first - 0.5, last + 0.5),
        zorder=-2,
        interpolation="nearest",
    )
    cs = rows[rows % 12 == 0]
    ax.set_yticks(cs, [midi.note_name(p) for p in cs])
    ax.set_ylabel("pitch")

    # Bar lines (dark) and beat lines (light) from the meters.
    if bar_position is not None:
        position = np.asarray(bar_position)
        if position.shape != (n_steps,):
            raise ValueError(f"bar_position has shape {position.shape}, expected ({n_steps},)")
    else:
        position = midi.bar_positions(meters, n_steps, steps_per_beat)
    bar_starts = np.flatnonzero(position == 0)
    beats = np.flatnonzero((position % steps_per_beat == 0) & (position != 0))
    if len(beats) <= 600:
        ax.vlines(beats, first - 0.5, last + 0.5, colors="0.85", linewidths=0.5, zorder=-1)
    ax.vlines(bar_starts, first - 0.5, last + 0.5, colors="0.45", linewidths=0.8, zorder=-1)
    # A short first bar before a meter change is a pickup: number it 0, as musicians do.
    meters = sorted(meters)
    pickup = (
        bar_position is None
        and len(meters) > 1
        and 0 < meters[1][0] < midi.steps_per_bar(meters[1][1], meters[1][2], steps_per_beat)
        and meters[0][0] == 0
    )
    every = max(1, int(np.ceil(len(bar_starts) / 24)))
    labelled = bar_starts[::every]
    first_number = 0 if pickup else 1
    ax.set_xticks(labelled, [str(i * every + first_number) for i in range(len(labelled))])
    ax.set_xlabel(f"bar ({steps_per_beat} steps per quarter note)")
    ax.set_title(name if title is None else title)
    return ax


def save_piano_roll(piece_or_state, path: str | os.PathLike, *, dpi: int = 100, **kw) -> Path:
    """Draw `plot_piano_roll(piece_or_state, **kw)` into a PNG, written atomically.

    Uses a bare matplotlib Figure (no pyplot), so it works without a display and leaves any
    open notebook figures alone. Returns the path.
    """
    from matplotlib.figure import Figure

    path = Path(path)
    n_steps = np.asarray(getattr(piece_or_state, "state", piece_or_state)).shape[0]
    figure = Figure(figsize=(min(24.0, max(8.0, n_steps / 32)), 4.5), layout="constrained")
    plot_piano_roll(piece_or_state, ax=figure.add_subplot(), **kw)
    with atomic_open(path) as file:
        figure.savefig(file, format="png", dpi=dpi)
    return path


def plot_feature_matrix(
    matrix,
    slices: dict[str, slice],
    *,
    ax=None,
    ylabel: str = "",
    title: str | None = None,
    colorbar: bool = True,
):
    """Draw per-note input features as a heat map, each named group of columns labelled.

    Args:
        matrix: float (rows, F): e.g. every note's features at one step, or one note's over time.
        slices: group name -> columns (`musicutils.features.FEATURE_SLICES`; passed in so this
            module does not import TensorFlow).
        ax: Axes to draw into (default: the current one).
        ylabel, title: axis label and title.
        colorbar: draw a colour bar labelled "input value" beside the Axes.

    Returns the Axes. Colours run from -2 (blue) to +2 (red), so the ±1 beat bits, the 0/1
    states and the small pitch-class counts are all readable on one scale. Each group is named
    above its columns and separated by a line; the x ticks give the feature index of the group
    starts and of the last column.
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    image = ax.imshow(
        np.asarray(matrix),
        aspect="auto",
        cmap="RdBu_r",
        vmin=-2,
        vmax=2,
        interpolation="nearest",
        origin="lower",
    )
    short = {"position": "pos", "pitch_class": "pitch class"}
    for name, part in slices.items():
        ax.axvline(part.start - 0.5, color="k", lw=0.6)
        ax.text(
            (part.start + part.stop - 1) / 2,
            1.01,
            short.get(name, name),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ticks = []  # group starts and the last column, leaving out any that would touch
    for column in [part.start for part in slices.values()] + [np.shape(matrix)[-1] - 1]:
        if not ticks or column - ticks[-1] >= 4:
            ticks.append(column)
    ax.set_xticks(ticks, [str(i) for i in ticks])
    ax.set_xlabel("feature index")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, pad=16)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="input value", pad=0.01, fraction=0.04)
    return ax


def plot_biaxial_axes(ax=None, steps: int = 4, notes: int = 5):
    """How the two recurrences of the biaxial model connect, on a (time step, note) grid.

    Circles are time-axis cells: one LSTM sequence per note runs along the steps (blue arrows,
    the same weights on every row). At the step being predicted, t (the last column), each
    time-axis output goes right into a note-axis cell (squares): one LSTM sequence per step
    runs up the notes (orange arrows), each cell also reading the choice made for the note
    below, and each ends in the two probabilities of its note. The note axis runs like this
    at every step; it is drawn at t only.

    Args:
        ax: Axes to draw into; a new figure when None.
        steps: time steps drawn (t-steps+1 .. t).
        notes: notes drawn (n-notes//2 .. ).

    Returns the Axes. Arrows are annotations (`ax.texts`) whose label (`get_label()`) says
    which kind they are: "time", "feeds" (time output into the note axis) or "note".
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.6), layout="constrained")
    note_x = steps - 1 + 0.75  # the column of note-axis cells, right of step t
    rows = range(notes)

    def arrow(start, end, kind, color):
        ax.annotate(
            "", end, start, arrowprops=dict(arrowstyle="->", color=color, lw=1.4)
        ).set_label(kind)

    grid_t, grid_n = np.meshgrid(np.arange(steps), np.arange(notes))
    ax.scatter(grid_t, grid_n, s=260, facecolor="white", edgecolor="C0", lw=1.5, zorder=3)
    ax.scatter(
        np.full(notes, note_x), list(rows), s=260, marker="s", facecolor="white",
        edgecolor="C1", lw=1.5, zorder=3,
    )  # fmt: skip
    for n in rows:
        for t in range(steps - 1):  # time axis: state carried along t
            arrow((t + 0.17, n), (t + 0.83, n), "time", "C0")
        arrow((steps - 1 + 0.17, n), (note_x - 0.15, n), "feeds", "0.35")
        if n < notes - 1:  # note axis: state and choice carried up the keyboard
            arrow((note_x, n + 0.2), (note_x, n + 0.8), "note", "C1")
        ax.text(note_x + 0.2, n, "P(play), P(artic.)", va="center", fontsize=8, color="C1")
    ax.text(note_x, -0.55, "silence", ha="center", va="top", fontsize=8, color="C1")
    arrow((note_x, -0.5), (note_x, -0.2), "note", "C1")
    offset = lambda axis, k: f"{axis}{k:+d}" if k else axis  # noqa: E731
    ax.set_xticks(
        [*range(steps), note_x],
        [offset("t", k) for k in range(-(steps - 1), 1)] + ["note axis\nat step t"],
    )
    ax.set_yticks(list(rows), [offset("n", k) for k in range(-(notes // 2), notes - notes // 2)])
    ax.set_xlim(-0.5, note_x + 1.6)
    ax.set_ylim(-0.9, notes - 0.4)
    ax.set_xlabel("time step")
    ax.set_ylabel("note (pitch)")
    ax.set_title(
        "time axis (circles, along t for every note) feeds the note axis (squares, up n)",
        fontsize=10,
    )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
