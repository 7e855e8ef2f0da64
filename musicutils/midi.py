"""MIDI files <-> note-state matrices, through mido.

This is the only module that knows about ticks: everything downstream counts time in *steps*
(`steps_per_beat` per quarter note) and pitch as an index from `Piece.lowest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import MidiError

__all__ = ["MidiError", "Piece", "bar_positions", "from_state"]

#: Default pitch range: MIDI 24 (C1) up to, not including, 102 (F#7): 78 notes, as in Johnson 2015.
DEFAULT_LOWEST = 24
DEFAULT_HIGHEST = 102


@dataclass
class Piece:
    """A piece as a note-state matrix plus what is needed to write it back faithfully.

    Attributes:
        state: uint8 array (T, N, 2). `[t, n, 0]` = 1 when pitch `lowest + n` sounds during step
            t; `[t, n, 1]` = 1 when it is (re)struck at the start of step t. Articulate implies
            play.
        lowest: MIDI pitch of note index 0.
        steps_per_beat: time steps per quarter note (4 = sixteenth-note grid).
        tempos: [(step, bpm)], quarter notes per minute, sorted, the first at step 0.
        meters: [(step, numerator, denominator)], sorted, the first at step 0.
        name: where the piece came from (file name), used in messages.
        ticks_per_beat: resolution of the source file, if it came from one.
        dropped_notes: notes of the source outside [lowest, lowest + N), left out.
    """

    state: np.ndarray
    lowest: int = DEFAULT_LOWEST
    steps_per_beat: int = 4
    tempos: list[tuple[int, float]] = field(default_factory=lambda: [(0, 120.0)])
    meters: list[tuple[int, int, int]] = field(default_factory=lambda: [(0, 4, 4)])
    name: str = ""
    ticks_per_beat: int | None = None
    dropped_notes: int = 0

    @property
    def n_steps(self) -> int:
        """T, the number of time steps."""
        return int(self.state.shape[0])

    @property
    def n_notes(self) -> int:
        """N, the number of pitches in the range."""
        return int(self.state.shape[1])

    @property
    def highest(self) -> int:
        """One past the highest MIDI pitch of the range (exclusive bound)."""
        return self.lowest + self.n_notes

    @property
    def note_count(self) -> int:
        """Number of notes (articulations) in the piece."""
        return int(self.state[..., 1].sum())

    def bar_position(self) -> np.ndarray:
        """Position of every step within its bar, in steps (0 = downbeat): int32 (T,)."""
        return bar_positions(self.meters, self.n_steps, self.steps_per_beat)


def steps_per_bar(numerator: int, denominator: int, steps_per_beat: int) -> int:
    """Length of a bar of `numerator/denominator` in steps (a beat is a quarter note)."""
    return max(1, round(numerator * 4 * steps_per_beat / denominator))


def bar_positions(
    meters: list[tuple[int, int, int]], n_steps: int, steps_per_beat: int, start: int = 0
) -> np.ndarray:
    """Position within the bar of steps `start .. start + n_steps - 1`: int32 (n_steps,).

    Each meter change restarts the bar count at its step, so a 3/4 section counts 0..11 and a 4/4
    section 0..15 on a sixteenth-note grid. `start` lets a composition carry on the count after a
    primer.
    """
    steps = np.arange(start, start + n_steps)
    positions = np.zeros(n_steps, dtype=np.int32)
    meters = sorted(meters) or [(0, 4, 4)]
    bounds = [m[0] for m in meters[1:]] + [np.iinfo(np.int64).max]
    for (first, num, den), end in zip(meters, bounds, strict=True):
        inside = (steps >= first) & (steps < end)
        if first == meters[0][0]:
            inside |= steps < first  # steps before the first meter use it too
        positions[inside] = (steps[inside] - first) % steps_per_bar(num, den, steps_per_beat)
    return positions


def from_state(
    state: np.ndarray,
    *,
    lowest: int = DEFAULT_LOWEST,
    steps_per_beat: int = 4,
    bpm: float = 120.0,
    meter: tuple[int, int] = (4, 4),
    name: str = "",
) -> Piece:
    """Wrap a bare note-state array (T, N, 2) as a Piece with one tempo and one meter."""
    state = np.asarray(state)
    if state.ndim != 3 or state.shape[-1] != 2:
        raise MidiError(f"{name or 'state'}: expected shape (steps, notes, 2), got {state.shape}")
    state = state.astype(np.uint8)
    return Piece(
        state=state,
        lowest=lowest,
        steps_per_beat=steps_per_beat,
        tempos=[(0, float(bpm))],
        meters=[(0, int(meter[0]), int(meter[1]))],
        name=name,
    )
