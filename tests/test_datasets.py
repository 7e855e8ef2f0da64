"""Tests for musicutils.datasets: benchmark pickles, splits, segments, transposition, batches."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from musicutils import datasets
from musicutils.errors import DataError
from musicutils.midi import from_state

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "polyphonic"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared benchmark data absent")


def piece(n_steps: int, n_notes: int = 6, *, meter=(4, 4), steps_per_beat=1, seed=0, name=""):
    """A random piece whose steps are numbered in note 0 ... so a segment says where it came from.

    Channel 0 of note 0..n_notes-1 holds a random pattern; articulation where a note starts.
    """
    rng = np.random.default_rng(seed)
    play = (rng.random((n_steps, n_notes)) < 0.3).astype(np.uint8)
    before = np.concatenate([np.zeros((1, n_notes), np.uint8), play[:-1]])
    state = np.stack([play, play & (1 - before)], axis=-1)
    return from_state(
        state, lowest=40, steps_per_beat=steps_per_beat, meter=meter, name=name or f"p{n_steps}"
    )


# ---------------------------------------------------------------------------------------------
# Frames -> state.


def test_frames_to_state_derives_articulation_from_onsets():
    frames = [[60], [60, 64], [], [64], (60,)]
    state = datasets.frames_to_state(frames, lowest=60, n_notes=5)
    assert state.shape == (5, 5, 2) and state.dtype == np.uint8
    np.testing.assert_array_equal(state[:, 0, 0], [1, 1, 0, 0, 1])  # C4 plays
    np.testing.assert_array_equal(state[:, 0, 1], [1, 0, 0, 0, 1])  # tied across 0-1, restruck
    np.testing.assert_array_equal(state[:, 4, 0], [0, 1, 0, 1, 0])  # E4
    np.testing.assert_array_equal(state[:, 4, 1], [0, 1, 0, 1, 0])
    assert not np.any(state[..., 1] > state[..., 0])  # articulate implies play


@pytest.mark.parametrize(
    "frames, reason",
    [
        ([[60], [200]], "outside the range"),
        ([[60], 5], "should list pitches"),
        ([["a"]], "MIDI pitch numbers"),
        ([[60.5]], "whole numbers"),
        ("not frames", "list of frames"),
    ],
)
def test_frames_to_state_rejects_bad_frames(frames, reason):
    with pytest.raises(DataError, match=reason):
        datasets.frames_to_state(frames, name="seq")


def _write_pickle(path: Path, obj) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


def test_load_benchmark_small_file(tmp_path):
    data = {"train": [[[60], [62, 64]], [[], [21], [108]]], "valid": [[[70]]], "test": [[[72]]]}
    splits = datasets.load_benchmark(_write_pickle(tmp_path / "tiny.pickle", data))
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    first = splits["train"][0]
    assert first.state.shape == (2, 88, 2) and first.lowest == 21
    assert first.steps_per_beat == 1 and first.meters == [(0, 4, 4)]
    assert first.state[1, 62 - 21, 0] == 1 and first.state[1, 64 - 21, 1] == 1
    np.testing.assert_array_equal(splits["train"][1].bar_position(), [0, 1, 2])
    assert first.name == "tiny/train/0"


def test_load_benchmark_eighth_note_sets_get_two_steps_per_beat(tmp_path):
    data = {"train": [[[60]] * 9], "valid": [[[70]]], "test": [[[72]]]}
    piece = datasets.load_benchmark(_write_pickle(tmp_path / "Nottingham.pickle", data))["train"][0]
    assert piece.steps_per_beat == 2
    np.testing.assert_array_equal(piece.bar_position(), [0, 1, 2, 3, 4, 5, 6, 7, 0])
    forced = datasets.load_benchmark(tmp_path / "Nottingham.pickle", steps_per_beat=1)
    assert forced["train"][0].steps_per_beat == 1


@pytest.mark.parametrize(
    "content, reason",
    [
        ([1, 2, 3], "dict of splits"),
        ({"train": [], "valid": []}, "test are missing"),
        ({"train": 5, "valid": [], "test": []}, "list of sequences"),
        ({"train": [[[60], [300]]], "valid": [], "test": []}, "outside the range"),
        ({"train": [[]], "valid": [], "test": []}, "empty sequence"),
    ],
)
def test_load_benchmark_rejects_unexpected_structure(tmp_path, content, reason):
    path = _write_pickle(tmp_path / "bad.pickle", content)
    with pytest.raises(DataError, match=reason):
        datasets.load_benchmark(path)


def test_load_benchmark_rejects_non_pickle(tmp_path):
    path = tmp_path / "notes.pickle"
    path.write_text("this is not a pickle")
    with pytest.raises(DataError, match="notes.pickle: not a readable pickle"):
        datasets.load_benchmark(path)


# Counts from ../shared/data/polyphonic/README.md: sequences, steps, notes per split.
JSB_COUNTS = {"train": (229, 13807, 53824), "valid": (76, 4602, 17811), "test": (77, 4725, 18367)}


@needs_shared
def test_jsb_benchmark_matches_published_counts():
    splits = datasets.load_benchmark(SHARED / "jsb_chorales.pickle")
    for split, (sequences, steps, notes) in JSB_COUNTS.items():
        pieces = splits[split]
        assert len(pieces) == sequences
        assert sum(p.n_steps for p in pieces) == steps
        assert sum(int(p.state[..., 0].sum()) for p in pieces) == notes
    played = np.flatnonzero(np.any([p.state[..., 0].any(0) for p in splits["train"]], axis=0))
    assert (played.min() + 21, played.max() + 21) == (43, 96)


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize(
    "file, counts",
    [
        ("nottingham.pickle", (694, 173, 170)),
        ("musedata.pickle", (524, 135, 124)),
        ("piano_midi_de.pickle", (87, 12, 25)),
    ],
)
def test_other_benchmarks_sequence_counts(file, counts):
    splits = datasets.load_benchmark(SHARED / file)
    assert tuple(len(splits[s]) for s in ("train", "valid", "test")) == counts


def test_download_benchmark_from_file_url_checks_hash(tmp_path):
    source = _write_pickle(tmp_path / "src.pickle", {"train": [], "valid": [], "test": []})
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "out"
    path = datasets.download_benchmark("mine", out, url=source.as_uri(), sha256=digest)
    assert path == out / "mine.pickle" and path.read_bytes() == source.read_bytes()
    assert datasets.load_benchmark(path) == {"train": [], "valid": [], "test": []}
    with pytest.raises(DataError, match="SHA-256"):
        datasets.download_benchmark("other", out, url=source.as_uri(), sha256="0" * 64)
    assert sorted(p.name for p in out.iterdir()) == ["mine.pickle"]  # nothing half-written


def test_download_benchmark_known_names_and_unknown():
    assert set(datasets.BENCHMARKS) == {"jsb", "nottingham", "musedata", "piano"}
    assert datasets.BENCHMARKS["jsb"].sha256.startswith("69dc4c3e")
    with pytest.raises(DataError, match="unknown benchmark"):
        datasets.download_benchmark("nope", "/nonexistent")


@needs_shared
def test_download_known_name_with_local_mirror_verifies_known_hash(tmp_path):
    # A mirror URL with the known hash: what a user does when the original page is down.
    source = SHARED / "jsb_chorales.pickle"
    path = datasets.download_benchmark(
        "jsb", tmp_path, url=source.as_uri(), sha256=datasets.BENCHMARKS["jsb"].sha256
    )
    assert path.name == "jsb_chorales.pickle" and path.stat().st_size == source.stat().st_size


# ---------------------------------------------------------------------------------------------
# Splits.


def test_split_pieces_by_whole_piece_and_deterministic():
    pieces = [piece(8, seed=i, name=f"p{i}") for i in range(20)]
    train, valid = datasets.split_pieces(pieces, 0.25, seed=3)
    assert len(valid) == 5 and len(train) == 15
    assert {p.name for p in train}.isdisjoint(p.name for p in valid)
    again = datasets.split_pieces(pieces, 0.25, seed=3)
    assert [p.name for p in again[1]] == [p.name for p in valid]
    other = datasets.split_pieces(pieces, 0.25, seed=4)
    assert [p.name for p in other[1]] != [p.name for p in valid]
    assert datasets.split_pieces(pieces[:2], 0.1)[1] != []  # at least one held out
    assert datasets.split_pieces(pieces, 0.0)[1] == []
    with pytest.raises(DataError):
        datasets.split_pieces(pieces, 1.0)


# ---------------------------------------------------------------------------------------------
# Segments.


def test_piece_of_exactly_one_segment_yields_it():
    exact = piece(16)
    sampler = datasets.SegmentSampler([exact], 16)
    assert len(sampler) == 1 and sampler.skipped == []
    state, beat = sampler.batch(3, seed=0, index=0)
    for b in range(3):
        np.testing.assert_array_equal(state[b], exact.state)
    np.testing.assert_array_equal(beat[0], exact.bar_position())


def test_short_pieces_are_skipped_and_counted_never_crash():
    sampler = datasets.SegmentSampler([piece(15, name="short"), piece(40, name="long")], 16)
    assert sampler.skipped == ["short"] and sampler.used == 1
    assert "1 pieces shorter than a segment left out" in sampler.describe()
    with pytest.raises(DataError, match="use a shorter segment length"):
        datasets.SegmentSampler([piece(15)], 16)


def test_segments_start_on_bar_lines_with_meter_changes():
    p = piece(50, meter=(3, 4), steps_per_beat=2)  # bars of 6 steps
    p.meters = [(0, 3, 4), (12, 4, 4)]  # from step 12, bars of 8 steps
    sampler = datasets.SegmentSampler([p], 10)
    np.testing.assert_array_equal(sampler.starts, [0, 6, 12, 20, 28, 36])  # 44 + 10 > 50
    state, beat = sampler.batch(64, seed=1, index=5)
    assert np.all(beat[:, 0] == 0)
    # Each segment is the piece's own steps from one of the starts.
    windows = np.stack([p.state[s : s + 10] for s in sampler.starts])
    for segment in state:
        assert np.any(np.all(windows == segment, axis=(1, 2, 3)))


def test_sampling_is_proportional_to_piece_length():
    short, long = piece(16, seed=1, name="short"), piece(64, seed=2, name="long")
    sampler = datasets.SegmentSampler([short, long], 8)
    assert list(sampler.segments_per_piece) == [3, 15]  # bars start every 4 steps
    state, _ = sampler.batch(2000, seed=0, index=0)
    short_windows = np.stack([short.state[s : s + 8] for s in (0, 4, 8)])  # (3, 8, N, 2)
    from_short = np.any(np.all(state[:, None] == short_windows[None], axis=(2, 3, 4)), axis=1)
    assert 0.79 < 1 - from_short.mean() < 0.88  # expected 15/18 = 0.833 (sd 0.008)


def test_batches_are_a_function_of_seed_and_index():
    sampler = datasets.SegmentSampler([piece(64, seed=i) for i in range(4)], 8)
    a, _ = sampler.batch(5, seed=7, index=3)
    b, _ = sampler.batch(5, seed=7, index=3)
    c, _ = sampler.batch(5, seed=7, index=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # The dataset started at batch 3 yields batch 3 first (what a resumed run relies on).
    ((inputs, target),) = sampler.dataset(5, seed=7, first_batch=3).take(1)
    np.testing.assert_array_equal(inputs["state"].numpy(), a)
    np.testing.assert_array_equal(target.numpy(), a)


def test_dataset_shapes_and_dtypes():
    sampler = datasets.SegmentSampler([piece(64, seed=i) for i in range(3)], 16)
    inputs, target = next(iter(sampler.dataset(4, seed=0, transpose=2)))
    assert inputs["state"].shape == (4, 16, 6, 2) and inputs["state"].dtype.name == "uint8"
    assert inputs["beat"].shape == (4, 16) and inputs["beat"].dtype.name == "int32"
    assert target.shape == (4, 16, 6, 2)


def test_ranges_must_agree():
    other = from_state(np.zeros((16, 7, 2), np.uint8), lowest=40)
    with pytest.raises(DataError, match="different pitch ranges"):
        datasets.SegmentSampler([piece(16), other], 8)


# ---------------------------------------------------------------------------------------------
# Transposition.


def test_transpose_state_moves_and_drops():
    state = np.zeros((2, 1, 5, 2), np.uint8)
    state[:, 0, [0, 4], :] = 1
    out = datasets.transpose_state(state, np.array([1, -2]))
    np.testing.assert_array_equal(out[0, 0, :, 0], [0, 1, 0, 0, 0])  # top note dropped
    np.testing.assert_array_equal(out[1, 0, :, 0], [0, 0, 1, 0, 0])  # bottom note dropped
    np.testing.assert_array_equal(datasets.transpose_state(state, 0), state)


def test_dataset_transposition_matches_numpy_and_stays_in_range():
    pieces = [piece(32, n_notes=12, seed=i) for i in range(3)]
    sampler = datasets.SegmentSampler(pieces, 8)
    plain, _ = sampler.batch(200, seed=2, index=0)
    moved, _ = sampler.batch(200, seed=2, index=0, transpose=3)
    shifts = []
    for before, after in zip(plain, moved, strict=True):
        matches = [
            k
            for k in range(-3, 4)
            if np.array_equal(datasets.transpose_state(before[None], k)[0], after)
        ]
        assert matches, "each segment is its untransposed self moved by -3..3 semitones"
        shifts.append(matches[0])
    assert len(set(shifts)) >= 5  # several different shifts are drawn
    assert not np.any(moved[..., 1] > moved[..., 0])


# ---------------------------------------------------------------------------------------------
# Padded whole pieces.


def test_padded_batches_cover_every_step_once():
    pieces = [piece(n, seed=n) for n in (5, 30, 7, 12, 3)]
    batches = list(datasets.padded_batches(pieces, batch_size=2, max_steps=40))
    assert sum(int(mask.sum()) for _, _, mask in batches) == 57
    assert all(s.shape[0] * s.shape[1] <= 40 or s.shape[0] == 1 for s, _, _ in batches)
    for state, beat, mask in batches:
        assert state.shape[:2] == beat.shape == mask.shape
        assert not np.any(state[mask == 0])  # padding is silence
    by_length = {int(m.sum()): s[0, : int(m.sum())] for s, _, m in batches if len(s) == 1}
    assert np.array_equal(by_length.get(30, pieces[1].state), pieces[1].state)
