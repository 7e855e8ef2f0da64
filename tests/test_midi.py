"""musicutils.midi: the fixed bugs of the original parser, malformed files, round trips."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from midi_factory import (
    MIDDLE_C_EVENTS,
    header,
    meter,
    midi_bytes,
    note,
    raw_midi,
    tempo,
    track_chunk,
)

from musicutils import midi
from musicutils.errors import MidiError

CHORALES = Path(__file__).parents[1] / "data" / "chorales"
C4 = 60


def play(piece: midi.Piece, pitch: int) -> list[int]:
    """The play column of one MIDI pitch, as a list (one entry per step)."""
    return piece.state[:, pitch - piece.lowest, 0].tolist()


def articulate(piece: midi.Piece, pitch: int) -> list[int]:
    return piece.state[:, pitch - piece.lowest, 1].tolist()


# ---------------------------------------------------------------------------------------------
# Time grid: the original only advanced when `time % (res / 4) == res / 8`, which never holds
# for resolutions that are not multiples of 8, and so collapsed such files to one row.


@pytest.mark.parametrize("ticks_per_beat", [96, 100, 384, 1000, 10080])
def test_onsets_on_the_grid_land_on_their_step_at_any_resolution(ticks_per_beat):
    tps = ticks_per_beat / 4  # ticks per sixteenth
    # C4 on steps 0..1, E4 on 3..6, G4 on 7..7: a quarter-note-ish melody on any grid.
    events = note(60, 0, round(2 * tps)) + note(64, round(3 * tps), round(7 * tps))
    events += note(67, round(7 * tps), round(8 * tps))
    piece = midi.read(midi_bytes([events], ticks_per_beat=ticks_per_beat))
    assert piece.n_steps == 8
    assert play(piece, 60) == [1, 1, 0, 0, 0, 0, 0, 0]
    assert play(piece, 64) == [0, 0, 0, 1, 1, 1, 1, 0]
    assert articulate(piece, 67) == [0, 0, 0, 0, 0, 0, 0, 1]
    assert piece.ticks_per_beat == ticks_per_beat


def test_off_grid_onsets_snap_to_the_nearest_step():
    # 100 ticks per beat: 25 ticks per step. 12 -> 0.48 -> step 0; 13 -> 0.52 -> step 1;
    # 62.5 would be exactly half way: 63 -> 2.52 -> step 3 and 62 -> 2.48 -> step 2.
    events = note(60, 12, 50) + note(62, 13, 50) + note(64, 62, 100) + note(65, 63, 100)
    piece = midi.read(midi_bytes([events], ticks_per_beat=100))
    assert articulate(piece, 60).index(1) == 0
    assert articulate(piece, 62).index(1) == 1
    assert articulate(piece, 64).index(1) == 2
    assert articulate(piece, 65).index(1) == 3


def test_steps_per_beat_sets_the_grid():
    events = note(60, 0, 480) + note(62, 480, 960)  # two quarter notes
    for steps_per_beat, expected in [(1, [1, 0]), (2, [1, 1, 0, 0]), (8, [1] * 8 + [0] * 8)]:
        piece = midi.read(midi_bytes([events]), steps_per_beat=steps_per_beat)
        assert play(piece, 60) == expected
        assert piece.steps_per_beat == steps_per_beat


# ---------------------------------------------------------------------------------------------
# Notes.


def test_a_note_shorter_than_one_step_survives_as_one_step():
    # The original set the note on and off again inside one step, so it vanished.
    events = note(60, 0, 10) + note(62, 480, 481) + note(64, 960, 1920)
    piece = midi.read(midi_bytes([events]))
    assert play(piece, 60)[:2] == [1, 0]
    assert articulate(piece, 62)[4] == 1 and play(piece, 62)[4:6] == [1, 0]
    assert piece.note_count == 3


def test_a_zero_length_note_survives_as_one_step():
    events = note(60, 480, 480)
    piece = midi.read(midi_bytes([events], end=960))
    assert play(piece, 60) == [0, 0, 0, 0, 1, 0, 0, 0]


def test_note_on_with_velocity_zero_ends_the_note():
    events = [
        (0, mido.Message("note_on", note=60, velocity=90)),
        (480, mido.Message("note_on", note=60, velocity=0)),
        (960, mido.Message("note_on", note=62, velocity=90)),
        (1440, mido.Message("note_on", note=62, velocity=0)),
    ]
    piece = midi.read(midi_bytes([events]))
    assert play(piece, 60) == [1] * 4 + [0] * 8
    assert play(piece, 62) == [0] * 8 + [1] * 4


def test_a_note_still_sounding_at_the_end_is_closed_there(tmp_path):
    hanging = [(0, mido.Message("note_on", note=60, velocity=90))]
    other_track = note(64, 0, 960)  # the piece lasts two beats
    piece = midi.read(midi_bytes([hanging, other_track]))
    assert play(piece, 60) == [1] * 8
    assert articulate(piece, 60) == [1] + [0] * 7
    # ... and writing it back closes every note: as many note-offs as note-ons.
    written = midi.write(piece, tmp_path / "h.mid")
    messages = [m for track in mido.MidiFile(written).tracks for m in track]
    ons = sum(m.type == "note_on" and m.velocity > 0 for m in messages)
    offs = sum(m.type == "note_off" or (m.type == "note_on" and m.velocity == 0) for m in messages)
    assert ons == offs == 2


def test_overlapping_instances_of_one_pitch_on_one_channel():
    # C4 struck at step 0 and again at step 2 while sounding; one note-off at step 4 ends both.
    events = [
        (0, mido.Message("note_on", note=60, velocity=90)),
        (240, mido.Message("note_on", note=60, velocity=90)),
        (480, mido.Message("note_off", note=60)),
        (960, mido.Message("note_off", note=60)),  # ends nothing: nothing sounds any more
    ]
    piece = midi.read(midi_bytes([events]))
    assert play(piece, 60) == [1, 1, 1, 1, 0, 0, 0, 0]
    assert articulate(piece, 60) == [1, 0, 1, 0, 0, 0, 0, 0]


def test_a_pitch_struck_again_on_another_channel_is_articulated():
    events = note(60, 0, 960, channel=0) + note(60, 480, 720, channel=1)
    piece = midi.read(midi_bytes([events]))
    assert play(piece, 60) == [1] * 8
    assert articulate(piece, 60) == [1, 0, 0, 0, 1, 0, 0, 0]


def test_repeated_notes_stay_separate_whatever_the_order_at_the_shared_tick():
    # off-then-on (usual) and on-then-off (some sequencers) at tick 480 both mean two notes.
    off_first = note(60, 0, 480) + note(60, 480, 960)
    on_first = [
        (0, mido.Message("note_on", note=60, velocity=90)),
        (480, mido.Message("note_on", note=60, velocity=90)),
        (480, mido.Message("note_off", note=60)),
        (960, mido.Message("note_off", note=60)),
    ]
    for events in (off_first, on_first):
        piece = midi.read(midi_bytes([events]))
        assert play(piece, 60) == [1] * 8
        assert articulate(piece, 60) == [1, 0, 0, 0, 1, 0, 0, 0]


def test_drums_on_channel_10_are_left_out():
    events = note(36, 0, 480, channel=9) + note(60, 0, 480, channel=0)
    piece = midi.read(midi_bytes([events]))
    assert piece.state[..., 0].sum(axis=0).nonzero()[0].tolist() == [60 - piece.lowest]
    assert piece.note_count == 1
    assert piece.dropped_notes == 0  # drums are not "dropped": they are not pitched notes


def test_notes_outside_the_range_are_dropped_and_counted():
    events = note(21, 0, 480) + note(60, 0, 480) + note(108, 0, 480) + note(101, 0, 480)
    piece = midi.read(midi_bytes([events]))  # range 24..101
    assert piece.dropped_notes == 2
    assert piece.note_count == 2
    narrow = midi.read(midi_bytes([events]), lowest=48, highest=72)
    assert narrow.n_notes == 24 and narrow.lowest == 48
    assert narrow.dropped_notes == 3 and play(narrow, 60) == [1] * 4


def test_all_tracks_of_a_format_1_file_are_merged():
    conductor = [tempo(0, 90), meter(0, 3, 4)]
    soprano = note(72, 0, 960)
    bass = note(48, 480, 1440, channel=1)
    piece = midi.read(midi_bytes([conductor, soprano, bass]))
    assert play(piece, 72) == [1] * 8 + [0] * 4
    assert play(piece, 48) == [0] * 4 + [1] * 8
    assert piece.tempos == [(0, pytest.approx(90, abs=1e-3))]
    assert piece.meters == [(0, 3, 4)]


def test_format_0_with_several_channels():
    events = [tempo(0, 100)] + note(60, 0, 480, channel=0) + note(64, 0, 480, channel=3)
    piece = midi.read(midi_bytes([events], fmt=0))
    assert play(piece, 60) == play(piece, 64) == [1] * 4
    assert piece.tempos[0][1] == pytest.approx(100, abs=1e-3)


def test_format_2_is_refused_clearly():
    data = midi_bytes([note(60, 0, 480), note(62, 0, 480)], fmt=2)
    with pytest.raises(MidiError, match="format 2"):
        midi.read(data, name="seq.mid")
    with pytest.raises(MidiError, match="format 2"):
        midi.read(mido.MidiFile(file=io.BytesIO(data)))


def test_length_runs_to_the_end_of_the_longest_track():
    piece = midi.read(midi_bytes([note(60, 0, 480)], end=1920))
    assert piece.n_steps == 16
    assert play(piece, 60) == [1] * 4 + [0] * 12


def test_a_file_without_notes_is_a_silent_piece():
    piece = midi.read(midi_bytes([[tempo(0, 60)]], end=960))
    assert piece.state.shape == (8, 78, 2) and piece.note_count == 0
    empty = midi.read(midi_bytes([[]]))
    assert empty.state.shape == (0, 78, 2)
    assert empty.tempos == [(0, 120.0)] and empty.meters == [(0, 4, 4)]


# ---------------------------------------------------------------------------------------------
# Tempo and meter.


def test_every_time_signature_is_kept():
    # The original stopped reading at the first meter whose numerator was not 2 or 4.
    conductor = [meter(0, 3, 4), meter(3 * 480, 5, 8), meter(3 * 480 + 5 * 240, 4, 4)]
    notes = note(60, 0, 3 * 480) + note(62, 3 * 480, 3 * 480 + 5 * 240)
    notes += note(64, 3 * 480 + 5 * 240, 3 * 480 + 5 * 240 + 4 * 480)
    piece = midi.read(midi_bytes([conductor, notes]))
    assert piece.meters == [(0, 3, 4), (12, 5, 8), (22, 4, 4)]
    assert piece.n_steps == 38
    assert play(piece, 64)[22:] == [1] * 16  # the piece goes on past the 5/8 bar
    positions = piece.bar_position()
    assert positions[[0, 11, 12, 21, 22, 37]].tolist() == [0, 11, 0, 9, 0, 15]


def test_tempo_changes_are_kept_at_their_steps_deduplicated():
    conductor = [
        tempo(0, 100),
        tempo(960, 80),
        tempo(1000, 70),  # same step as 960 (steps 8 and 8.33 -> 8): the last one wins
        tempo(1920, 70),  # no change: dropped
        tempo(2400, 110),
    ]
    piece = midi.read(midi_bytes([conductor, note(60, 0, 4 * 960)]))
    steps = [step for step, _ in piece.tempos]
    bpms = [bpm for _, bpm in piece.tempos]
    assert steps == [0, 8, 20]
    assert bpms == pytest.approx([100, 70, 110], abs=1e-3)
    # 32 steps: 8 at 100 bpm, 12 at 70, 12 at 110 (a step is a sixteenth: 1/4 beat).
    expected = (8 / 4) * 60 / 100 + (12 / 4) * 60 / 70 + (12 / 4) * 60 / 110
    assert midi.duration_seconds(piece) == pytest.approx(expected, rel=1e-5)


def test_corrupt_tempo_and_meter_events_are_skipped():
    zero_tempo = (480, mido.MetaMessage("set_tempo", tempo=0))
    zero_meter = (480, mido.MetaMessage("time_signature", numerator=0, denominator=4))
    piece = midi.read(
        midi_bytes([[tempo(0, 60), meter(0, 2, 4), zero_tempo, zero_meter], note(60, 0, 960)])
    )
    assert piece.tempos == [(0, 60.0)] and piece.meters == [(0, 2, 4)]


def test_midi_defaults_apply_before_the_first_change():
    piece = midi.read(midi_bytes([[tempo(960, 90), meter(960, 3, 4)], note(60, 0, 1920)]))
    assert piece.tempos[0] == (0, 120.0) and piece.tempos[1][0] == 8
    assert piece.meters == [(0, 4, 4), (8, 3, 4)]


# ---------------------------------------------------------------------------------------------
# Malformed files: always MidiError naming the file, never mido's EOFError/OSError/KeyError.

MALFORMED = {
    "empty": b"",
    "only the magic": b"MThd",
    "wrong magic": b"RIFF" + b"\0" * 30,
    "truncated header": b"MThd\0\0\0\x06\0\x01",
    "short header chunk": header(length=4) + track_chunk(MIDDLE_C_EVENTS),
    "truncated track": raw_midi(track_chunk(MIDDLE_C_EVENTS)[:12]),
    "chunk length too long": raw_midi(track_chunk(MIDDLE_C_EVENTS, length=1000)),
    "division 0": raw_midi(division=0),
    "SMPTE division": raw_midi(division=0xE728),
    "unknown format": raw_midi(fmt=7),
    "no tracks": header(n_tracks=0),
    "running status without status": raw_midi(track_chunk(b"\x00\x3c\x40\x00\xff\x2f\x00")),
    "undefined status byte": raw_midi(track_chunk(b"\x00\xf4\x01\x02\x00\xff\x2f\x00")),
    "data byte over 127": raw_midi(track_chunk(b"\x00\x90\xbc\x40\x00\xff\x2f\x00")),
    "meta length beyond the track": raw_midi(track_chunk(b"\x00\xff\x01\x7f\x41")),
    "unterminated delta time": raw_midi(track_chunk(b"\xff\xff\xff\xff\xff")),
    "garbage instead of a track": raw_midi(
        track_chunk(MIDDLE_C_EVENTS), b"\x01\x02\xff\xfe\0\0\0\0", n_tracks=2
    ),
}


#: The reason given for some of them: each case fails for its own reason.
MALFORMED_REASONS = {
    "short header chunk": "header chunk is 4 bytes long, expected 6",
    "division 0": "invalid time division of 0",
    "SMPTE division": "SMPTE time division",
    "unknown format": "unknown MIDI file format 7",
    "no tracks": "no tracks",
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_raise_midi_error_naming_the_file(case, tmp_path):
    path = tmp_path / "broken.mid"
    path.write_bytes(MALFORMED[case])
    with pytest.raises(MidiError, match=r"^broken\.mid: ") as caught:
        midi.read(path)
    reason = str(caught.value).removeprefix("broken.mid: ")
    assert len(reason) > 5 and "\n" not in reason
    assert MALFORMED_REASONS.get(case, "") in reason


def test_malformed_bytes_from_a_fuzzer_only_ever_raise_midi_error():
    rng = np.random.default_rng(0)
    good = midi_bytes([[tempo(0, 90), meter(0, 3, 4)] + note(60, 0, 480) + note(64, 240, 960)])
    outcomes = {"read": 0, "refused": 0}
    for _ in range(500):
        data = bytearray(good)
        flips = rng.integers(14, len(data), size=rng.integers(1, 4))  # past the header
        for position in flips.tolist():
            data[position] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            data = data[: rng.integers(0, len(data))]
        try:
            piece = midi.read(bytes(data), max_steps=10_000)
        except MidiError:
            outcomes["refused"] += 1
            continue
        outcomes["read"] += 1
        assert piece.state.dtype == np.uint8 and piece.state.ndim == 3
    assert min(outcomes.values()) > 50, outcomes  # both paths were exercised


def test_unknown_chunks_and_data_after_the_declared_tracks_are_ignored():
    expected = midi.read(raw_midi())
    unknown_chunk = track_chunk(b"xyz").replace(b"MTrk", b"XFIH")
    for data in [
        raw_midi(unknown_chunk, track_chunk(MIDDLE_C_EVENTS), n_tracks=1),
        raw_midi() + b"\x01\x02\xff\xfe\0\0\0\0 trailing junk",
        raw_midi(track_chunk(MIDDLE_C_EVENTS), n_tracks=3),  # fewer tracks than declared
    ]:
        np.testing.assert_array_equal(midi.read(data).state, expected.state)
    assert expected.note_count == 1 and expected.n_steps == 4


def test_a_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        midi.read(tmp_path / "nowhere.mid")


def test_a_huge_tick_fails_fast_without_allocating():
    events = note(60, 10**9, 10**9 + 480)
    data = midi_bytes([events])
    # Memory counted, not time (a time limit flakes on a loaded machine): the state would
    # take 8.3 million steps x 78 notes x 2 = 1.3 GB; the refusal comes before any of it.
    tracemalloc.start()
    try:
        with pytest.raises(MidiError, match=r"too long .*max_steps"):
            midi.read(data, name="far.mid")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000, f"{peak} bytes allocated"
    # A long silence is fine when allowed, and a short limit refuses even normal pieces.
    piece = midi.read(midi_bytes([note(60, 480 * 1000, 480 * 1001)]), max_steps=5000)
    assert piece.n_steps == 4004
    with pytest.raises(MidiError, match="4004 steps > limit of 100"):
        midi.read(midi_bytes([note(60, 480 * 1000, 480 * 1001)]), max_steps=100)


def test_huge_delta_times_in_many_events_stay_bounded():
    # 2000 events, each 2**28 - 1 ticks apart: ~5e11 ticks in all, refused quickly.
    body = b"".join(b"\xff\xff\xff\x7f\x90\x3c\x40" for _ in range(2000)) + b"\x00\xff\x2f\x00"
    with pytest.raises(MidiError, match="too long"):
        midi.read(raw_midi(track_chunk(body)))


# ---------------------------------------------------------------------------------------------
# Sources and names.


def test_read_accepts_paths_bytes_files_and_midifiles(tmp_path):
    data = midi_bytes([note(60, 0, 480)])
    path = tmp_path / "tune.mid"
    path.write_bytes(data)
    pieces = [
        midi.read(path),
        midi.read(str(path)),
        midi.read(data),
        midi.read(io.BytesIO(data)),
        midi.read(mido.MidiFile(path)),
    ]
    for piece in pieces:
        np.testing.assert_array_equal(piece.state, pieces[0].state)
    assert [p.name for p in pieces] == ["tune.mid", "tune.mid", "<bytes>", "<file>", "tune.mid"]


def test_note_names():
    assert midi.note_name(60) == "C4"
    assert midi.note_name(61) == "C#4"
    assert midi.note_name(21) == "A0"
    assert midi.note_name(24) == "C1"
    assert midi.note_name(101) == "F7"
    assert midi.note_name(0) == "C-1"


def test_describe_summarises_the_piece():
    conductor = [tempo(0, 90), meter(0, 3, 4)]
    events = note(48, 0, 1440) + note(81, 0, 1440) + note(10, 0, 480)
    piece = midi.read(midi_bytes([conductor, events]), name="waltz.mid")
    text = midi.describe(piece)
    assert text.splitlines()[0] == "waltz.mid"
    for fragment in [
        "480 ticks per beat",
        "90 bpm",
        "3/4",
        "12 steps",
        "1 bars",
        "2 s",
        "notes:      2",
        "C3–A5",
        "dropped:    1",
    ]:
        assert fragment in text, fragment


# ---------------------------------------------------------------------------------------------
# Writing and round trips.


def test_write_is_atomic_and_valid(tmp_path):
    piece = midi.read(midi_bytes([[tempo(0, 72), meter(0, 6, 8)], note(60, 0, 480)]))
    out = midi.write(piece, tmp_path / "sub" / "out.mid")
    assert out == tmp_path / "sub" / "out.mid"
    assert [p.name for p in out.parent.iterdir()] == ["out.mid"]  # no temp file left
    assert out.stat().st_mode & 0o777 == 0o644
    written = mido.MidiFile(out)
    assert written.type == 1 and written.ticks_per_beat == 480
    types = [m.type for m in written.tracks[0]]
    assert {"set_tempo", "time_signature", "end_of_track"} <= set(types)


def test_write_accepts_any_piece_name(tmp_path):
    piece = midi.from_state(np.ones((2, 3, 2), np.uint8), name="Bach – Choral № 1 ♪")
    back = midi.read(midi.write(piece, tmp_path / "x.mid"), lowest=24, highest=27)
    np.testing.assert_array_equal(back.state, piece.state)


def test_write_refuses_what_midi_cannot_hold(tmp_path):
    state = np.zeros((4, 10, 2), np.uint8)
    with pytest.raises(MidiError, match="outside"):
        midi.write(midi.from_state(state, lowest=120), tmp_path / "a.mid")
    with pytest.raises(MidiError, match="3/5"):
        midi.write(midi.from_state(state, meter=(3, 5)), tmp_path / "b.mid")
    assert not list(tmp_path.iterdir())


def test_write_treats_play_without_articulate_as_an_onset(tmp_path):
    state = np.zeros((6, 4, 2), np.uint8)
    state[1:4, 2, 0] = 1  # sounding, never marked as struck
    state[5, 0, 1] = 1  # struck but not sounding: invalid, ignored
    back = midi.read(
        midi.write(midi.from_state(state, lowest=60), tmp_path / "x.mid"), lowest=60, highest=64
    )
    expected = state.copy()
    expected[1, 2, 1] = 1
    expected[5, 0, 1] = 0
    np.testing.assert_array_equal(back.state, expected)


@st.composite
def valid_pieces(draw):
    steps_per_beat = draw(st.integers(1, 8))
    n_steps = draw(st.integers(0, 40))
    n_notes = draw(st.integers(1, 12))
    lowest = draw(st.integers(0, 128 - n_notes))
    play_bits = draw(
        st.lists(st.booleans(), min_size=n_steps * n_notes, max_size=n_steps * n_notes)
    )
    strike_bits = draw(
        st.lists(st.booleans(), min_size=n_steps * n_notes, max_size=n_steps * n_notes)
    )
    play = np.array(play_bits, dtype=np.uint8).reshape(n_steps, n_notes)
    strike = np.array(strike_bits, dtype=np.uint8).reshape(n_steps, n_notes) & play
    # A note that starts sounding is struck: every valid state read from a file has that.
    previous = np.vstack([np.zeros((1, n_notes), np.uint8), play[:-1]])
    strike |= play & (1 - previous)
    state = np.stack([play, strike], axis=-1)

    def changes(values):
        steps = sorted(set(draw(st.lists(st.integers(1, max(1, n_steps - 1)), max_size=3))))
        steps = [s for s in steps if s < n_steps]
        chosen = [draw(values) for _ in range(len(steps) + 1)]
        result = [(0, chosen[0])]
        for step, value in zip(steps, chosen[1:], strict=True):
            if value != result[-1][1]:
                result.append((step, value))
        return result

    microseconds = st.integers(200_000, 2_000_000)  # 30..300 bpm, as a MIDI file stores it
    tempos = [(s, 60_000_000 / us) for s, us in changes(microseconds)]
    meter_values = st.tuples(st.integers(1, 13), st.sampled_from([1, 2, 4, 8, 16]))
    meters = [(s, *m) for s, m in changes(meter_values)]
    ticks_per_beat = draw(st.sampled_from([None, 96, 100, 384, 480, 1000]))
    return midi.Piece(
        state=state,
        lowest=lowest,
        steps_per_beat=steps_per_beat,
        tempos=tempos,
        meters=meters,
        name="random.mid",
        ticks_per_beat=ticks_per_beat,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_pieces())
def test_read_write_round_trip_is_exact(tmp_path_factory, piece):
    path = tmp_path_factory.mktemp("rt") / "random.mid"
    midi.write(piece, path)
    back = midi.read(
        path, steps_per_beat=piece.steps_per_beat, lowest=piece.lowest, highest=piece.highest
    )
    np.testing.assert_array_equal(back.state, piece.state)
    assert back.tempos == piece.tempos
    assert back.meters == piece.meters
    assert back.dropped_notes == 0


def test_round_trip_of_a_bundled_chorale(tmp_path):
    files = sorted(CHORALES.glob("*.mid"))
    if not files:
        pytest.skip("data/chorales/ not present")
    piece = midi.read(files[0])
    back = midi.read(midi.write(piece, tmp_path / files[0].name))
    np.testing.assert_array_equal(back.state, piece.state)
    assert (back.tempos, back.meters, back.ticks_per_beat) == (
        piece.tempos,
        piece.meters,
        piece.ticks_per_beat,
    )


# ---------------------------------------------------------------------------------------------
# Agreement with pretty_midi (a dev dependency) on the notes it finds.


def _expected_from_pretty_midi(data: bytes, steps_per_beat: int, lowest: int, highest: int):
    """Our state, rebuilt from pretty_midi's notes: pretty_midi pairs the notes, we only snap
    its start/end *beats* to the nearest step (the same rule `read` documents)."""
    pretty_midi = pytest.importorskip("pretty_midi")
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    beat_of = pm.time_to_tick  # seconds -> ticks
    resolution = pm.resolution
    notes = [
        n
        for inst in pm.instruments
        if not inst.is_drum
        for n in inst.notes
        if lowest <= n.pitch < highest
    ]
    n_steps = midi.read(data, steps_per_beat=steps_per_beat, lowest=lowest, highest=highest).n_steps
    state = np.zeros((n_steps, highest - lowest, 2), np.uint8)
    for n in notes:
        start = int(np.floor(beat_of(n.start) * steps_per_beat / resolution + 0.5))
        end = max(int(np.floor(beat_of(n.end) * steps_per_beat / resolution + 0.5)), start + 1)
        state[start:end, n.pitch - lowest, 0] = 1
        state[start, n.pitch - lowest, 1] = 1
    return state


def test_agrees_with_pretty_midi_on_a_tricky_synthetic_file():
    conductor = [tempo(0, 66), meter(0, 3, 4), tempo(300, 100), meter(300, 5, 8)]
    melody = note(72, 0, 75) + note(74, 75, 77) + note(76, 100, 180) + note(72, 180, 300)
    inner = note(64, 12, 150, channel=1) + note(76, 130, 160, channel=1)  # overlaps melody
    bass = note(40, 0, 300, channel=2) + note(36, 0, 100, channel=9) + note(110, 0, 30)
    data = midi_bytes([conductor, melody, inner, bass], ticks_per_beat=100, end=300)
    ours = midi.read(data, steps_per_beat=4)
    np.testing.assert_array_equal(ours.state, _expected_from_pretty_midi(data, 4, 24, 102))
    assert ours.dropped_notes == 1


def test_agrees_with_pretty_midi_piano_roll_on_bundled_chorales():
    pretty_midi = pytest.importorskip("pretty_midi")
    files = sorted(CHORALES.glob("*.mid"))
    if not files:
        pytest.skip("data/chorales/ not present")
    rolls_compared = 0
    for path in files:
        data = path.read_bytes()
        ours = midi.read(path)
        np.testing.assert_array_equal(ours.state, _expected_from_pretty_midi(data, 4, 24, 102))
        # Under one constant tempo the piano roll with one column per step is our play matrix.
        # Only for whole-number tempi: pretty_midi floors seconds * fs, so with e.g. 666667 us
        # per beat (89.99995 bpm) an onset at 26.9999999 columns lands one column early.
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        _, bpms = pm.get_tempo_changes()
        if len(bpms) == 1 and float(bpms[0]).is_integer():
            fs = bpms[0] / 60 * ours.steps_per_beat
            roll = pm.get_piano_roll(fs=fs)[24:102].T > 0
            assert roll.shape == ours.state.shape[:2]
            np.testing.assert_array_equal(roll, ours.state[..., 0] > 0)
            rolls_compared += 1
    assert rolls_compared > 0  # most bundled chorales are at a whole-number tempo


def test_bar_positions_follow_meters_and_carry_on_after_a_start():
    meters = [(2, 3, 4), (8, 6, 8)]  # at 2 steps per beat both bars are 6 steps long
    assert midi.bar_positions(meters, 10, 2).tolist() == [4, 5, 0, 1, 2, 3, 4, 5, 0, 1]
    assert midi.bar_positions([(0, 4, 4)], 4, 4, start=14).tolist() == [14, 15, 0, 1]
    assert midi.bar_positions([], 3, 1).tolist() == [0, 1, 2]  # 4/4 when nothing is said
    assert midi.bar_positions(meters, 0, 4).shape == (0,)
