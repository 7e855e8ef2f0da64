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
    assert len(sampler) == 1 and sampler.padded == []
    state, beat = sampler.batch(3, seed=0, index=0)
    for b in range(3):
        np.testing.assert_array_equal(state[b], exact.state)
    np.testing.assert_array_equal(beat[0], exact.bar_position())


def test_short_pieces_are_padded_with_masked_silence_and_counted():
    short, long = piece(15, seed=1, name="short"), piece(40, seed=2, name="long")
    sampler = datasets.SegmentSampler([short, long], 16)
    assert sampler.padded == ["short"] and sampler.used == 2
    assert list(sampler.segments_per_piece) == [1, 7]  # long: bar lines 0, 4, ..., 24
    text = sampler.describe()
    assert "1 pieces shorter than a segment padded with masked silence" in text
    assert "left out" not in text
    state, beat, weight = sampler.batch(200, seed=0, index=0, weights=True)
    from_short = np.all(state[:, :15] == short.state, axis=(1, 2, 3))
    assert 10 < from_short.sum() < 50  # 1 segment in 8: expected 25
    # The short piece's segment: its 15 steps, then one step of silence at bar position 0.
    np.testing.assert_array_equal(
        beat[from_short, :15], np.broadcast_to(short.bar_position(), (from_short.sum(), 15))
    )
    assert not state[from_short, 15:].any() and not beat[from_short, 15:].any()
    np.testing.assert_array_equal(
        weight[from_short], np.broadcast_to([1.0] * 15 + [0.0], (from_short.sum(), 16))
    )
    assert np.all(weight[~from_short] == 1.0) and weight.dtype == np.float32
    # A corpus of one short piece trains on it instead of failing.
    assert len(datasets.SegmentSampler([piece(15)], 16)) == 1


def test_padded_segment_starts_at_the_first_bar_line():
    pickup = piece(18, name="pickup")
    pickup.meters = [(3, 4, 4)]  # a 3-step pickup: bar lines at 3, 7, 11, 15; 3 + 16 > 18
    tiny = piece(2, name="tiny")
    tiny.meters = [(2, 4, 4)]  # bar positions 2, 3: no bar line, so it starts at its first step
    sampler = datasets.SegmentSampler([pickup, tiny], 16)
    assert sampler.padded == ["pickup", "tiny"]
    np.testing.assert_array_equal(sampler.starts, [3, 18])
    np.testing.assert_array_equal(sampler.real_steps, [15, 2])
    state, beat, weight = sampler.batch(40, seed=0, index=0, weights=True)
    real = weight.sum(axis=1)
    assert set(real) == {15.0, 2.0}
    first = real == 15
    np.testing.assert_array_equal(state[first][0, :15], pickup.state[3:])
    np.testing.assert_array_equal(beat[first][0, :15], pickup.bar_position()[3:])
    np.testing.assert_array_equal(state[~first][0, :2], tiny.state)
    assert not state[first][:, 15:].any() and not state[~first][:, 2:].any()


def test_padded_batches_are_a_function_of_seed_and_index():
    sampler = datasets.SegmentSampler([piece(40, seed=1), piece(9, seed=2)], 16)
    a = sampler.batch(6, seed=3, index=5, weights=True)
    b = sampler.batch(6, seed=3, index=5, weights=True)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # The dataset yields the weights as a third element (Keras' sample_weight) ...
    ((inputs, target, weight),) = sampler.dataset(6, seed=3, first_batch=5).take(1)
    np.testing.assert_array_equal(inputs["state"].numpy(), a[0])
    np.testing.assert_array_equal(inputs["beat"].numpy(), a[1])
    np.testing.assert_array_equal(target.numpy(), a[0])
    np.testing.assert_array_equal(weight.numpy(), a[2])
    # ... and refuses to leave them out when there is padding to mask.
    with pytest.raises(DataError, match="need the per-step weights"):
        sampler.dataset(6, weights=False)
    # Without short pieces the stream keeps its two-element form unless asked.
    whole = datasets.SegmentSampler([piece(40, seed=1)], 16)
    assert len(next(iter(whole.dataset(2)))) == 2
    assert len(next(iter(whole.dataset(2, weights=True)))) == 3


def _numpy_nats(state, logits):
    """(B, T) nats per step by hand: sigmoid cross-entropy of every play bit, plus the articulate
    bit of each note that plays; and the play bits alone."""
    y, x = state.astype(np.float64), logits.astype(np.float64)
    bits = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    play = bits[..., 0].sum(-1)
    return play + (bits[..., 1] * y[..., 0]).sum(-1), play


def test_loss_of_a_padded_batch_is_the_mean_over_its_real_steps():
    from musicutils import model as model_lib
    from musicutils._tf import keras

    short = piece(6, n_notes=12, seed=1, name="short")
    sampler = datasets.SegmentSampler([short, piece(40, n_notes=12, seed=2)], 16)
    inputs, target, weight = next(iter(sampler.dataset(24, seed=0)))
    w = weight.numpy()
    assert 0 < (w == 0).sum() and (w == 1).sum() > w.size / 2  # padded and whole segments
    model = model_lib.BiaxialModel(
        n_notes=12, lowest=40, time_sizes=(8,), note_sizes=(4,), steps_per_beat=1, seed=0
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=model_lib.BiaxialNLL(),
        weighted_metrics=[model_lib.PlayNLL()],  # as train.train compiles it
    )
    logits = model(inputs).numpy()
    nats, play = _numpy_nats(target.numpy(), logits)
    expected = (nats * w).sum() / w.sum()  # every real step counts once, padding not at all
    scores = model.test_on_batch(inputs, target, sample_weight=weight, return_dict=True)
    assert scores["loss"] == pytest.approx(expected, rel=1e-5)
    assert scores["play_nll"] == pytest.approx((play * w).sum() / w.sum(), rel=1e-5)
    assert abs(nats.mean() - expected) > 1e-3 * expected  # the padded steps would have moved it
    # Without weights (no padding anywhere) the loss is the plain mean over all steps.
    unweighted = model.test_on_batch(inputs, target, return_dict=True)
    assert unweighted["loss"] == pytest.approx(nats.mean(), rel=1e-5)
    # The padding changes nothing on the real steps: the short piece alone, unpadded.
    row = int(np.flatnonzero(w[:, 6] == 0)[0])
    alone = model({"state": short.state[None], "beat": short.bar_position()[None]}).numpy()
    np.testing.assert_allclose(logits[row, :6], alone[0], rtol=1e-5, atol=1e-5)
    # And fit trains on the weighted stream.
    history = model.fit(
        sampler.dataset(4, seed=1), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False
    )
    assert np.isfinite(history.history["loss"][0])


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
    # Each piece appears once, whole and unchanged, in the unpadded part of one batch row.
    rows = [(s[b, : int(m[b].sum())], t[b, : int(m[b].sum())]) for s, t, m in batches
            for b in range(len(s))]  # fmt: skip
    assert sorted(len(state) for state, _ in rows) == [3, 5, 7, 12, 30]
    for p in pieces:
        found = [beat for state, beat in rows if np.array_equal(state, p.state)]
        assert len(found) == 1 and np.array_equal(found[0], p.bar_position())
