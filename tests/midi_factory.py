"""Build small MIDI files for the tests, either with mido or byte by byte.

`midi_bytes` takes tracks as lists of ``(absolute_tick, message)`` so a test reads like a
score; `raw_midi` / `track_chunk` assemble hand-made (possibly broken) files.
"""

from __future__ import annotations

import io
import struct

import mido


def note(pitch: int, start: int, end: int, channel: int = 0, velocity: int = 64) -> list:
    """A note as two timed events: note_on at `start`, note_off at `end` (ticks)."""
    return [
        (start, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)),
        (end, mido.Message("note_off", note=pitch, velocity=0, channel=channel)),
    ]


def tempo(tick: int, bpm: float) -> tuple:
    return (tick, mido.MetaMessage("set_tempo", tempo=round(mido.bpm2tempo(bpm))))


def meter(tick: int, numerator: int, denominator: int) -> tuple:
    return (
        tick,
        mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator),
    )


def midi_file(
    tracks: list[list[tuple]], ticks_per_beat: int = 480, fmt: int = 1, end: int | None = None
) -> mido.MidiFile:
    """A mido.MidiFile from tracks of (absolute tick, message); events are sorted stably by
    tick. `end`: tick of every track's end_of_track (default: its last event)."""
    midi = mido.MidiFile(type=fmt, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track = mido.MidiTrack()
        previous = 0
        for tick, msg in sorted(events, key=lambda event: event[0]):
            track.append(msg.copy(time=tick - previous))
            previous = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, (end or previous) - previous)))
        midi.tracks.append(track)
    return midi


def midi_bytes(tracks: list[list[tuple]], **kwargs) -> bytes:
    """The bytes of `midi_file(tracks, **kwargs)`."""
    buffer = io.BytesIO()
    midi_file(tracks, **kwargs).save(file=buffer)
    return buffer.getvalue()


def header(fmt: int = 1, n_tracks: int = 1, division: int = 480, length: int = 6) -> bytes:
    """An MThd chunk, fields as given (no checks: for building broken files)."""
    return b"MThd" + struct.pack(">IHHH", length, fmt, n_tracks, division) + b"\0" * (length - 6)


def track_chunk(body: bytes, length: int | None = None) -> bytes:
    """An MTrk chunk around raw event bytes; `length` overrides the declared length."""
    return b"MTrk" + struct.pack(">I", len(body) if length is None else length) + body


#: One quarter-note middle C then end of track, as raw event bytes (delta, status, data).
MIDDLE_C_EVENTS = b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00\x00\xff\x2f\x00"


def raw_midi(*chunks: bytes, **header_fields) -> bytes:
    """A header plus the given chunks (default: one track holding MIDDLE_C_EVENTS)."""
    chunks = chunks or (track_chunk(MIDDLE_C_EVENTS),)
    return header(n_tracks=header_fields.pop("n_tracks", len(chunks)), **header_fields) + b"".join(
        chunks
    )


def benchmark_pickle(path, lengths: dict[str, list[int]], seed: int = 1):
    """Write a tiny benchmark pickle in the Boulanger-Lewandowski format to `path`.

    `lengths` maps each split ("train", "valid", "test") to its pieces' lengths in steps; every
    step is a sorted list of 3 MIDI pitches from 48..71, drawn in split order from one seeded
    generator. Returns `path`.
    """
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)

    def sequence(n):
        return [
            sorted(int(p) for p in rng.choice(np.arange(48, 72), 3, replace=False))
            for _ in range(n)
        ]

    data = {split: [sequence(n) for n in ns] for split, ns in lengths.items()}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path
