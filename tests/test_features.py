"""The vectorised features against a plain per-note Python reference."""

import numpy as np
import pytest

from musicutils.features import (
    BEAT_BITS,
    FEATURE_SLICES,
    N_FEATURES,
    note_features,
    position_of,
)


def reference_note_input(prev_step, beat: int, lowest: int, note: int) -> list[float]:
    """Obviously-correct input vector of one note, written the slow way.

    prev_step: (N, 2) states of the previous step.
    """
    n_notes = len(prev_step)
    pitch = lowest + note
    position = [(pitch - 21) / 87]
    pitch_class = [1.0 if c == pitch % 12 else 0.0 for c in range(12)]
    vicinity = []
    for offset in range(-12, 13):
        other = note + offset
        if 0 <= other < n_notes:
            vicinity += [float(prev_step[other][0]), float(prev_step[other][1])]
        else:
            vicinity += [0.0, 0.0]  # outside the range: silent
    counts = [0.0] * 12
    for other in range(n_notes):
        if prev_step[other][0]:
            counts[(lowest + other) % 12] += 1
    context = [counts[(pitch % 12 + j) % 12] for j in range(12)]
    bits = [1.0 if (beat >> k) & 1 else -1.0 for k in range(BEAT_BITS)]
    downbeat = [1.0 if beat == 0 else 0.0]
    return position + pitch_class + vicinity + context + bits + downbeat


def reference_features(prev_state, beat, lowest):
    """Reference for a (B, T, N, 2) batch with beat (B, T): (B, T, N, F)."""
    b_size, t_size, n_notes, _ = prev_state.shape
    return np.array(
        [
            [
                [
                    reference_note_input(prev_state[b, t], int(beat[b, t]), lowest, n)
                    for n in range(n_notes)
                ]
                for t in range(t_size)
            ]
            for b in range(b_size)
        ],
        dtype=np.float32,
    )


def random_state(rng, shape, density=0.3):
    play = rng.random(shape) < density
    articulate = play & (rng.random(shape) < 0.5)
    return np.stack([play, articulate], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("lowest,n_notes", [(24, 78), (21, 88), (55, 30), (0, 13)])
def test_matches_reference(lowest, n_notes):
    rng = np.random.default_rng(lowest)
    prev = random_state(rng, (2, 3, n_notes))
    beat = rng.integers(0, 40, size=(2, 3)).astype(np.int32)
    beat[0, 0] = 0
    got = note_features(prev, beat, lowest=lowest).numpy()
    assert got.shape == (2, 3, n_notes, N_FEATURES)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference_features(prev, beat, lowest), atol=1e-6)


def test_edges_are_zero_padded_not_wrapped():
    # Only the top note plays: the lowest note must not see it (the original's negative
    # indices made it wrap around), and the top note sees itself at the window centre.
    n_notes = 78
    prev = np.zeros((1, n_notes, 2), np.uint8)
    prev[0, -1] = (1, 1)
    feats = note_features(prev, np.array([0]), lowest=24).numpy()[0]
    vicinity = feats[:, FEATURE_SLICES["vicinity"]].reshape(n_notes, 25, 2)
    assert vicinity[0].sum() == 0
    assert vicinity[-1, 12].tolist() == [1.0, 1.0]
    assert vicinity[-1, 13:].sum() == 0  # above the top: padding
    assert vicinity[-13, 24].tolist() == [1.0, 1.0]  # 12 below the top sees it at offset +12
    assert vicinity[:-13].sum() == 0


def test_single_step_equals_batch():
    rng = np.random.default_rng(7)
    prev = random_state(rng, (3, 5, 40))
    beat = rng.integers(0, 16, size=(3, 5)).astype(np.int32)
    batch = note_features(prev, beat, lowest=30).numpy()
    for t in range(5):
        step = note_features(prev[:, t], beat[:, t], lowest=30).numpy()
        np.testing.assert_array_equal(step, batch[:, t])


def test_pitch_class_and_context_use_absolute_pitch():
    # A C major triad (C4 E4 G4) sounding: every C sees counts rotated from C, every G from G.
    lowest = 57  # A3: index 0 is an A, so relative indices would get the classes wrong
    prev = np.zeros((1, 24, 2), np.float32)
    for pitch in (60, 64, 67):
        prev[0, pitch - lowest, 0] = 1
    feats = note_features(prev, np.array([3]), lowest=lowest).numpy()[0]
    c4, g4 = 60 - lowest, 67 - lowest
    assert feats[c4, FEATURE_SLICES["pitch_class"]].argmax() == 0
    assert feats[g4, FEATURE_SLICES["pitch_class"]].argmax() == 7
    context_c = feats[c4, FEATURE_SLICES["context"]]
    context_g = feats[g4, FEATURE_SLICES["context"]]
    assert np.flatnonzero(context_c).tolist() == [0, 4, 7]  # root, third, fifth
    assert np.flatnonzero(context_g).tolist() == [0, 5, 9]  # seen from G: G, C, E


def test_position_is_scaled_over_the_piano():
    assert position_of(21) == 0.0
    assert position_of(108) == 1.0
    feats = note_features(np.zeros((78, 2)), 0, lowest=24).numpy()
    position = feats[:, FEATURE_SLICES["position"]][:, 0]
    assert np.all(np.diff(position) > 0)
    assert 0.0 < position.min() and position.max() < 1.0


def test_beat_encoding_distinguishes_positions_in_a_bar():
    beats = np.arange(32, dtype=np.int32)
    codes = note_features(np.zeros((32, 4, 2)), beats, lowest=60).numpy()[:, 0]
    codes = codes[:, FEATURE_SLICES["beat"]]
    assert len({tuple(c) for c in codes}) == 32
    assert codes[0, -1] == 1.0 and codes[1:, -1].sum() == 0  # downbeat flag
    assert set(np.unique(codes[:, :BEAT_BITS])) == {-1.0, 1.0}


def test_inside_tf_function_with_unknown_batch():
    import tensorflow as tf

    fn = tf.function(
        lambda s, b: note_features(s, b, lowest=24),
        input_signature=[
            tf.TensorSpec([None, None, 78, 2], tf.uint8),
            tf.TensorSpec([None, None], tf.int32),
        ],
    )
    rng = np.random.default_rng(1)
    prev = random_state(rng, (2, 3, 78))
    beat = rng.integers(0, 16, (2, 3)).astype(np.int32)
    np.testing.assert_array_equal(
        fn(prev, beat).numpy(), note_features(prev, beat, lowest=24).numpy()
    )
