"""MIDI files <-> note-state matrices, through mido.

This is the only module that knows about ticks: everything downstream counts time in *steps*
(`steps_per_beat` per quarter note) and pitch as an index from `Piece.lowest`.

Reading (`read`) turns every pitched note of a format 0 or 1 file into an interval of steps
and paints those intervals into a `Piece.state` array with numpy; writing (`write`) turns a
state array back into note-on/note-off pairs. For every valid state (articulate implies play,
and a pitch that starts sounding is articulated there, as in every state `read` returns),
``read(write(piece))`` gives back the same state, tempos and meters. `write` also accepts
other states: play without articulate at a note's start is an onset, articulate without play
is ignored.

How `read` decides, in the terms of a musician:

- Time. A step is ``1 / steps_per_beat`` of a quarter note, whatever the file's resolution
  (ticks per beat). A note from tick ``a`` to tick ``b`` covers steps
  ``round(a / tps) .. max(round(b / tps), start + 1)`` (end exclusive, halves rounded up),
  where ``tps = ticks_per_beat / steps_per_beat``: onsets snap to the *nearest* step and a
  note shorter than a step still lasts one step. Tempo does not move notes on this grid; it
  only matters for durations in seconds (`duration_seconds`).
- Tracks. All tracks of a format 0 or 1 file are merged (the tempo map applies to all).
  Format 2 (independent sequences) is refused.
- Notes. ``note_on`` with velocity 0 is a ``note_off``. Notes are paired per track, channel
  and pitch; a ``note_off`` ends *every* sounding instance of that pitch there (as pretty_midi
  does), except one struck at that very tick while an older one sounds (some sequencers write
  the new note-on before the old note-off). A note still sounding when its track ends is
  closed at the end of the piece. A note struck while the same pitch already sounds is
  articulated again at its onset step.
- Drums (MIDI channel 10, mido channel 9) are left out; so are notes outside
  ``[lowest, highest)`` (counted in `Piece.dropped_notes`).
- Length. ``T`` is the end of the longest track, in steps (rounded), or the end of the last
  note if that is later; so trailing rests survive and a file without notes still has a
  length (possibly 0).
- Tempo and meter. Every change is kept, at its rounded step (corrupt ones, a tempo of 0 or
  a meter n/0, are skipped); of several changes on the same
  step the last wins and repeats of the value in force are dropped. Before the first change,
  MIDI's defaults apply (120 bpm, 4/4), so the lists always start at step 0. Changes at or
  after step ``T`` are dropped.

What this fixes in the original reader (``midi_to_statematrix.py`` of
danieldjohnson/biaxial-rnn-music-composition): it started a new step only when
``time % (resolution / 4) == resolution / 8``, which under Python 3 never holds unless the
resolution is a multiple of 8 (the whole piece collapsed into one step); it stopped reading
at the first time signature whose numerator was not 2 or 4; it kept drum notes as pitches;
a note shorter than a step was switched on and off inside one step and vanished; and its
writer lost the note-offs of notes still sounding at the end, with a fixed 55 ticks per step
and no tempo or meter.
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import mido
import numpy as np

from ._io import atomic_open
from .errors import MidiError

__all__ = [
    "MidiError",
    "Piece",
    "bar_positions",
    "describe",
    "duration_seconds",
    "from_state",
    "note_intervals",
    "note_name",
    "read",
    "step_times",
    "steps_per_bar",
    "write",
]

#: Default pitch range: MIDI 24 (C1) up to, not including, 102 (F#7): 78 notes, as in Johnson 2015.
DEFAULT_LOWEST = 24
DEFAULT_HIGHEST = 102
#: MIDI's defaults when a file says nothing: 120 quarter notes per minute, 4/4.
DEFAULT_BPM = 120.0
DEFAULT_METER = (4, 4)
#: Resolution of the files `write` produces when the piece does not bring a usable one.
DEFAULT_TICKS_PER_BEAT = 480
#: mido channel of General MIDI percussion (channel 10 counting from 1).
DRUM_CHANNEL = 9

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


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
    tempos: list[tuple[int, float]] = field(default_factory=lambda: [(0, DEFAULT_BPM)])
    meters: list[tuple[int, int, int]] = field(default_factory=lambda: [(0, *DEFAULT_METER)])
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
    meters = sorted(meters) or [(0, *DEFAULT_METER)]
    firsts = np.array([first for first, _, _ in meters], dtype=np.int64)
    lengths = np.array([steps_per_bar(n, d, steps_per_beat) for _, n, d in meters], np.int64)
    steps = np.arange(start, start + n_steps, dtype=np.int64)
    # The meter in force at each step; steps before the first meter use it too.
    which = np.searchsorted(firsts, steps, side="right") - 1
    which[which < 0] = np.searchsorted(firsts, firsts[0], side="right") - 1
    return ((steps - firsts[which]) % lengths[which]).astype(np.int32)


def from_state(
    state: np.ndarray,
    *,
    lowest: int = DEFAULT_LOWEST,
    steps_per_beat: int = 4,
    bpm: float = DEFAULT_BPM,
    meter: tuple[int, int] = DEFAULT_METER,
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


# ---------------------------------------------------------------------------------------------
# Names and summaries.


def note_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI pitch, sharps only: 60 -> "C4", 61 -> "C#4", 21 -> "A0"."""
    pitch = int(pitch)
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def step_times(tempos: list[tuple[int, float]], n_steps: int, steps_per_beat: int) -> np.ndarray:
    """Start time in seconds of each step 0..n_steps (the last entry is the end): float64 (T+1,).

    `tempos` is [(step, quarter notes per minute)]; the first tempo also covers steps before it.
    """
    tempos = sorted(tempos) or [(0, DEFAULT_BPM)]
    change_steps = np.array([s for s, _ in tempos])
    bpms = np.array([b for _, b in tempos], dtype=np.float64)
    which = np.searchsorted(change_steps, np.arange(n_steps), side="right") - 1
    seconds_per_step = 60.0 / (bpms[np.maximum(which, 0)] * steps_per_beat)
    return np.concatenate([[0.0], np.cumsum(seconds_per_step)])


def duration_seconds(piece: Piece) -> float:
    """Length of the piece in seconds, following its tempo changes (the first tempo also
    covers any steps before it)."""
    return float(step_times(piece.tempos, piece.n_steps, piece.steps_per_beat)[-1])


def _bar_count(piece: Piece) -> float:
    """Number of bars (fractional for a last, incomplete bar), following the meter changes."""
    meters = sorted(piece.meters) or [(0, *DEFAULT_METER)]
    bounds = [step for step, _, _ in meters[1:]] + [piece.n_steps]
    bars = 0.0
    for i, ((first, num, den), end) in enumerate(zip(meters, bounds, strict=True)):
        begin = 0 if i == 0 else first
        length = max(0, min(end, piece.n_steps) - begin)
        bars += length / steps_per_bar(num, den, piece.steps_per_beat)
    return bars


def _format_changes(changes: list[str], steps: list[int], limit: int = 6) -> str:
    parts = [
        f"{text} (step {step})" if step else text for text, step in zip(changes, steps, strict=True)
    ]
    if len(parts) > limit:
        parts = parts[:limit] + [f"... {len(changes) - limit} more"]
    return ", ".join(parts)


def describe(piece: Piece) -> str:
    """A short, multi-line human summary of a piece (what `python -m musicutils info` prints).

    Name, resolution, tempi, meters, length in steps / bars / seconds, number of notes, the
    pitch range actually used (as note names) and how many notes were dropped.
    """
    tempos = piece.tempos or [(0, DEFAULT_BPM)]
    meters = piece.meters or [(0, *DEFAULT_METER)]
    tempo_text = _format_changes([f"{bpm:g} bpm" for _, bpm in tempos], [s for s, _ in tempos])
    meter_text = _format_changes([f"{n}/{d}" for _, n, d in meters], [s for s, _, _ in meters])
    resolution = (
        f"{piece.ticks_per_beat} ticks per beat, " if piece.ticks_per_beat is not None else ""
    )
    sounding = np.flatnonzero(piece.state[..., 0].any(axis=0)) if piece.n_steps else []
    if len(sounding):
        used = f"{note_name(piece.lowest + sounding[0])}–{note_name(piece.lowest + sounding[-1])}"
    else:
        used = "none"
    window = f"{note_name(piece.lowest)}–{note_name(piece.highest - 1)}" if piece.n_notes else "-"
    lines = [
        piece.name or "(unnamed piece)",
        f"  resolution: {resolution}{piece.steps_per_beat} steps per beat",
        f"  tempo:      {tempo_text}",
        f"  meter:      {meter_text}",
        f"  length:     {piece.n_steps} steps, {_bar_count(piece):.4g} bars, "
        f"{duration_seconds(piece):.1f} s",
        f"  notes:      {piece.note_count}, range {used} (window {window})",
        f"  dropped:    {piece.dropped_notes} notes outside the window",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Reading.


def _load_midifile(data: bytes, name: str) -> mido.MidiFile:
    """Check the chunk structure ourselves (clear messages), then let mido parse the tracks.

    Unknown chunks are skipped, as the standard asks. Like mido, we stop after the number of
    tracks the header declares (anything after them is ignored); a file with fewer tracks
    than declared is read with the tracks it has.
    """
    if len(data) == 0:
        raise MidiError(f"{name}: the file is empty")
    if data[:4] != b"MThd":
        raise MidiError(f"{name}: not a MIDI file (it does not start with 'MThd')")
    if len(data) < 14:
        raise MidiError(f"{name}: the file is truncated inside its header")
    header_length, fmt, declared_tracks, division = struct.unpack(">IHHH", data[4:14])
    if header_length < 6:
        raise MidiError(f"{name}: header chunk is {header_length} bytes long, expected 6")
    if fmt not in (0, 1, 2):
        raise MidiError(f"{name}: unknown MIDI file format {fmt} (expected 0, 1 or 2)")
    if fmt == 2:
        raise MidiError(f"{name}: format 2 (independent sequences) is not supported")
    if division & 0x8000:
        raise MidiError(
            f"{name}: SMPTE time division (frames per second) is not supported; "
            "only ticks per quarter note"
        )
    if division == 0:
        raise MidiError(f"{name}: invalid time division of 0 ticks per quarter note")
    position = 8 + header_length
    if position > len(data):
        raise MidiError(f"{name}: the file is truncated inside its header")
    chunks = []
    while position + 8 <= len(data) and len(chunks) < declared_tracks:
        kind, length = struct.unpack(">4sI", data[position : position + 8])
        body_start = position + 8
        if body_start + length > len(data):
            raise MidiError(
                f"{name}: track {len(chunks) + 1} is truncated "
                f"(its chunk says {length} bytes, only {len(data) - body_start} remain)"
            )
        if kind == b"MTrk":
            chunks.append(data[position : body_start + length])
        elif not kind.isascii() or not kind.decode("ascii").isprintable():
            where = f"after track {len(chunks)}" if chunks else "where the first track should be"
            raise MidiError(f"{name}: unreadable data {where}")
        position = body_start + length
    if not chunks:
        raise MidiError(f"{name}: the file has no tracks")
    clean = struct.pack(">4sIHHH", b"MThd", 6, fmt, len(chunks), division) + b"".join(chunks)
    try:
        return mido.MidiFile(file=io.BytesIO(clean))
    except Exception as exc:  # mido raises OSError/EOFError/ValueError/KeyError for bad bytes
        reason = str(exc) or type(exc).__name__
        raise MidiError(f"{name}: corrupt track data ({reason})") from None


def _quantise(ticks: np.ndarray, ticks_per_beat: int, steps_per_beat: int) -> np.ndarray:
    """Nearest step of each tick, halves rounded up, exact integer arithmetic: int64 like ticks."""
    return (2 * ticks * steps_per_beat + ticks_per_beat) // (2 * ticks_per_beat)


def _changes_to_steps(
    changes: list[tuple[int, int, tuple]],
    ticks_per_beat: int,
    steps_per_beat: int,
    n_steps: int,
    default: tuple,
) -> list[tuple]:
    """[(tick, track, value)] -> [(step, *value)]: sorted, last of a step wins, no repeats."""
    by_step: dict[int, tuple] = {}
    for tick, _track, value in sorted(changes, key=lambda c: c[0]):  # stable: keeps file order
        step = (2 * tick * steps_per_beat + ticks_per_beat) // (2 * ticks_per_beat)
        by_step[step] = value
    result: list[tuple] = []
    current = default
    if 0 not in by_step:
        result.append((0, *default))
    for step in sorted(by_step):
        if step >= max(n_steps, 1):
            break
        value = by_step[step]
        if result and value == current:
            continue
        result.append((step, *value))
        current = value
    return result


def read(
    source: str | os.PathLike | bytes | BinaryIO | mido.MidiFile,
    *,
    steps_per_beat: int = 4,
    lowest: int = DEFAULT_LOWEST,
    highest: int = DEFAULT_HIGHEST,
    max_steps: int = 100_000,
    name: str | None = None,
) -> Piece:
    """Read a MIDI file into a `Piece` whose state is uint8 (T, highest - lowest, 2).

    Args:
        source: a path (str or Path), the file's bytes, a binary file object, or a
            `mido.MidiFile` already loaded.
        steps_per_beat: time steps per quarter note (4 = a sixteenth-note grid).
        lowest: MIDI pitch of note index 0 (inclusive).
        highest: one past the highest MIDI pitch kept (exclusive); N = highest - lowest.
        max_steps: refuse pieces longer than this many steps (checked before any allocation,
            so a hostile file cannot ask for gigabytes).
        name: how messages name the file; by default the file's name.

    Returns:
        The piece, see the module docstring for how notes, tempos and meters are placed.

    Raises:
        MidiError: the file is not a readable MIDI file (message starts with its name), is in
            format 2, uses SMPTE time, or is longer than `max_steps`.
        OSError: the path cannot be opened (missing file, permissions).
    """
    if not 0 <= lowest < highest <= 128:
        raise ValueError(f"need 0 <= lowest < highest <= 128, got {lowest}, {highest}")
    if steps_per_beat < 1:
        raise ValueError(f"steps_per_beat must be >= 1, got {steps_per_beat}")
    if isinstance(source, mido.MidiFile):
        name = name or Path(source.filename or "").name or "<MidiFile>"
        mid = source
        if mid.type == 2:
            raise MidiError(f"{name}: format 2 (independent sequences) is not supported")
        if not isinstance(mid.ticks_per_beat, int) or mid.ticks_per_beat <= 0:
            raise MidiError(
                f"{name}: time division {mid.ticks_per_beat!r} is not a positive number "
                "of ticks per quarter note"
            )
    else:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            name = name or "<bytes>"
        elif isinstance(source, str | os.PathLike):
            data = Path(source).read_bytes()  # OSError (missing file...) goes to the caller
            name = name or Path(source).name
        else:
            data = source.read()
            name = name or Path(getattr(source, "name", "") or "").name or "<file>"
        mid = _load_midifile(data, name)
    return _piece_from_midifile(mid, name, steps_per_beat, lowest, highest, max_steps)


def _piece_from_midifile(
    mid: mido.MidiFile,
    name: str,
    steps_per_beat: int,
    lowest: int,
    highest: int,
    max_steps: int,
) -> Piece:
    ticks_per_beat = int(mid.ticks_per_beat)
    # One pass over the messages (unavoidable with mido) pairs note-ons with note-offs;
    # everything after works on numpy arrays of note intervals.
    note_starts: list[int] = []  # ticks
    note_ends: list[int] = []  # ticks; -1 = still sounding when its track ended
    note_pitches: list[int] = []
    tempo_changes: list[tuple[int, int, tuple]] = []
    meter_changes: list[tuple[int, int, tuple]] = []
    end_tick = 0
    for track_index, track in enumerate(mid.tracks):
        tick = 0
        sounding: dict[int, list[int]] = {}  # channel * 128 + pitch -> start ticks
        for msg in track:
            tick += msg.time
            kind = msg.type
            if kind == "note_on" or kind == "note_off":
                channel = msg.channel
                if channel == DRUM_CHANNEL:
                    continue
                key = channel * 128 + msg.note
                if kind == "note_on" and msg.velocity > 0:
                    sounding.setdefault(key, []).append(tick)
                    continue
                starts = sounding.pop(key, None)
                if not starts:
                    continue  # a note-off for nothing
                # A note-off ends every sounding instance of its pitch on its channel, except
                # notes struck at this very tick when older ones sound too: then the off is
                # meant for the older ones (some sequencers write the new note-on first).
                if starts[-1] == tick and starts[0] < tick:
                    sounding[key] = [start for start in starts if start == tick]
                    starts = [start for start in starts if start < tick]
                note_starts.extend(starts)
                note_ends.extend([tick] * len(starts))
                note_pitches.extend([msg.note] * len(starts))
            elif kind == "set_tempo":
                if msg.tempo > 0:  # a tempo of 0 microseconds per beat means nothing: skip it
                    tempo_changes.append((tick, track_index, (60_000_000 / msg.tempo,)))
            elif kind == "time_signature":
                if msg.numerator > 0 and msg.denominator <= 256:  # else corrupt: skip it
                    meter_changes.append((tick, track_index, (msg.numerator, msg.denominator)))
        for key, starts in sounding.items():
            note_starts.extend(starts)
            note_ends.extend([-1] * len(starts))
            note_pitches.extend([key % 128] * len(starts))
        end_tick = max(end_tick, tick)

    # Length guard before any array of steps exists: every tick is <= end_tick.
    n_steps = (2 * end_tick * steps_per_beat + ticks_per_beat) // (2 * ticks_per_beat)
    if n_steps > max_steps:
        raise MidiError(
            f"{name}: the piece is too long ({n_steps} steps > limit of {max_steps}; "
            "pass max_steps=... to allow it)"
        )

    starts = np.asarray(note_starts, dtype=np.int64)
    ends = np.asarray(note_ends, dtype=np.int64)
    ends[ends < 0] = end_tick  # notes still sounding at the end of their track: close them
    pitches = np.asarray(note_pitches, dtype=np.int64)
    in_range = (pitches >= lowest) & (pitches < highest)
    dropped = int(len(pitches) - in_range.sum())
    starts, ends, pitches = starts[in_range], ends[in_range], pitches[in_range] - lowest

    first_step = _quantise(starts, ticks_per_beat, steps_per_beat)
    last_step = np.maximum(_quantise(ends, ticks_per_beat, steps_per_beat), first_step + 1)
    if len(last_step):
        n_steps = max(n_steps, int(last_step.max()))
    if n_steps > max_steps:
        raise MidiError(
            f"{name}: the piece is too long ({n_steps} steps > limit of {max_steps}; "
            "pass max_steps=... to allow it)"
        )

    n_notes = highest - lowest
    # Play: +1 where a note starts, -1 where it ends; the running sum over time is the number
    # of instances sounding, so overlapping notes of one pitch need no special case.
    starts_minus_ends = np.zeros((n_steps + 1, n_notes), dtype=np.int32)
    np.add.at(starts_minus_ends, (first_step, pitches), 1)
    np.add.at(starts_minus_ends, (last_step, pitches), -1)
    state = np.zeros((n_steps, n_notes, 2), dtype=np.uint8)
    state[..., 0] = np.cumsum(starts_minus_ends[:-1], axis=0, dtype=np.int32) > 0
    state[first_step, pitches, 1] = 1

    tempos = _changes_to_steps(
        tempo_changes, ticks_per_beat, steps_per_beat, n_steps, (DEFAULT_BPM,)
    )
    meters = _changes_to_steps(
        meter_changes, ticks_per_beat, steps_per_beat, n_steps, DEFAULT_METER
    )
    return Piece(
        state=state,
        lowest=lowest,
        steps_per_beat=steps_per_beat,
        tempos=tempos,
        meters=meters,
        name=name,
        ticks_per_beat=ticks_per_beat,
        dropped_notes=dropped,
    )


# ---------------------------------------------------------------------------------------------
# Writing.


def _write_resolution(piece: Piece) -> int:
    """Ticks per beat for `write`: the piece's own if the step grid fits it exactly, else 480
    (or the nearest multiple of steps_per_beat), so every step lands on a whole tick."""
    spb = piece.steps_per_beat
    if piece.ticks_per_beat and piece.ticks_per_beat % spb == 0 and piece.ticks_per_beat < 32768:
        return int(piece.ticks_per_beat)
    if DEFAULT_TICKS_PER_BEAT % spb == 0:
        return DEFAULT_TICKS_PER_BEAT
    return spb * max(1, round(DEFAULT_TICKS_PER_BEAT / spb))


def _delta_track(events: Iterable[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """Absolute-tick events (already sorted) -> a track with delta times."""
    track = mido.MidiTrack()
    previous = 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - previous))
        previous = tick
    return track


def note_intervals(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes of a state (T, N, 2) as intervals: (start step, end step, note index) int64.

    A note starts where articulate is 1 (while playing) or where play starts without it, and
    ends where play stops or at the next articulation of its pitch. Articulate without play is
    ignored. Sorted by start, then note index.
    """
    state = np.asarray(state)
    play = state[..., 0] > 0
    onset = play & (state[..., 1] > 0)
    onset[1:] |= play[1:] & ~play[:-1]
    onset[:1] |= play[:1]
    n_steps, n_notes = play.shape
    # A note ends at the first step after it that is silent or a new onset (T if none).
    boundary = np.vstack([onset[1:] | ~play[1:], np.ones((1, n_notes), dtype=bool)])
    step_index = np.where(boundary, np.arange(1, n_steps + 1)[:, None], n_steps + 1)
    next_boundary = np.minimum.accumulate(step_index[::-1], axis=0)[::-1]
    starts, notes = np.nonzero(onset)
    ends = next_boundary[starts, notes]
    return starts.astype(np.int64), ends.astype(np.int64), notes.astype(np.int64)


def write(piece: Piece, path: str | os.PathLike, *, velocity: int = 80) -> Path:
    """Write a piece as a format 1 MIDI file (atomically: temp file + rename). Returns the path.

    Track 0 holds the track name, tempo and time-signature changes at their steps; track 1
    the notes, all on channel 1 with the given velocity (1..127), each closed by a note-off
    (including those still sounding at the last step). Both tracks end at step T, so trailing
    rests are kept; tempo or meter changes after step 0 at or past step T are left out.
    Resolution: the piece's ticks per beat when it is a multiple of
    steps_per_beat, otherwise 480 (or the nearest multiple of steps_per_beat).

    Raises:
        MidiError: the piece cannot be represented in MIDI (pitches outside 0..127, a meter
            denominator that is not a power of two, a bad velocity or tempo).
    """
    path = Path(path)
    label = piece.name or path.name
    state = np.asarray(piece.state)
    if state.ndim != 3 or state.shape[-1] != 2:
        raise MidiError(f"{label}: expected a state of shape (steps, notes, 2), got {state.shape}")
    if piece.lowest < 0 or piece.lowest + state.shape[1] > 128:
        raise MidiError(
            f"{label}: pitches {piece.lowest}..{piece.lowest + state.shape[1] - 1} are outside "
            "MIDI's 0..127"
        )
    if not 1 <= velocity <= 127:
        raise MidiError(f"{label}: velocity must be 1..127, got {velocity}")
    ticks_per_beat = _write_resolution(piece)
    ticks_per_step = ticks_per_beat // piece.steps_per_beat
    end_tick = piece.n_steps * ticks_per_step

    meta: list[tuple[int, int, mido.MetaMessage]] = []
    if piece.name:
        # MIDI text is Latin-1 (mido's charset): replace what it cannot hold.
        title = piece.name.encode("latin-1", "replace").decode("latin-1")
        meta.append((0, 0, mido.MetaMessage("track_name", name=title)))
    for step, bpm in piece.tempos:
        if step > 0 and step >= piece.n_steps:
            continue  # after the last step: `read` would drop it anyway
        if not 0 < bpm < math.inf or 60_000_000 / bpm > 0xFFFFFF:
            raise MidiError(f"{label}: tempo {bpm} bpm cannot be written to MIDI")
        tempo = max(1, round(60_000_000 / bpm))
        meta.append((step * ticks_per_step, 1, mido.MetaMessage("set_tempo", tempo=tempo)))
    for step, numerator, denominator in piece.meters:
        if step > 0 and step >= piece.n_steps:
            continue
        if denominator < 1 or denominator & (denominator - 1) or not 1 <= numerator <= 255:
            raise MidiError(f"{label}: meter {numerator}/{denominator} cannot be written to MIDI")
        message = mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)
        meta.append((step * ticks_per_step, 1, message))
    meta.sort(key=lambda event: event[:2])
    conductor = _delta_track((tick, msg) for tick, _, msg in meta)
    conductor_end = sum(msg.time for msg in conductor)
    conductor.append(mido.MetaMessage("end_of_track", time=end_tick - conductor_end))

    starts, ends, notes = note_intervals(state)
    pitches = notes + piece.lowest
    # Note-offs before note-ons at the same tick, so a re-struck note is not cut short.
    event_ticks = np.concatenate([ends, starts]) * ticks_per_step
    event_is_on = np.concatenate([np.zeros(len(ends), bool), np.ones(len(starts), bool)])
    event_pitch = np.concatenate([pitches, pitches])
    order = np.lexsort((event_pitch, event_is_on, event_ticks))
    ticks = event_ticks[order].tolist()
    notes_track = _delta_track(
        (tick, mido.Message("note_on" if on else "note_off", note=pitch, velocity=velocity * on))
        for tick, on, pitch in zip(
            ticks, event_is_on[order].tolist(), event_pitch[order].tolist(), strict=True
        )
    )
    last_note = ticks[-1] if ticks else 0
    notes_track.append(mido.MetaMessage("end_of_track", time=end_tick - last_note))

    midi_file = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    midi_file.tracks.extend([conductor, notes_track])
    with atomic_open(path) as file:
        midi_file.save(file=file)
    return path
