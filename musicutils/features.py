"""The per-note inputs of the time axis, as in Johnson's biaxial RNN, vectorised in TensorFlow.

For every note n of the range (MIDI pitch `lowest + n`) and every time step, the time-axis LSTMs
see a vector of `N_FEATURES` = 81 numbers, built from the PREVIOUS step's note states and the
bar position of the step being predicted:

- `position` (1): where the note lies on the piano, (pitch - 21) / 87, so A0 = 0 and C8 = 1.
- `pitch_class` (12): one-hot of the absolute pitch class (pitch % 12, C = 0).
- `vicinity` (50): play, articulate of notes n-12 .. n+12 at the previous step, lowest first;
  notes outside the range read as silent (zero padding).
- `context` (12): how many notes of each pitch class played at the previous step, rotated so
  index 0 is this note's own pitch class (index 7 = its fifth above).
- `beat` (6): bits 0..4 of the step's position in its bar as -1/+1, then 1 on a downbeat
  (else 0).

Differences from the original Theano code (danieldjohnson/biaxial-rnn-music-composition, data.py),
all on purpose:

- The vicinity is zero-padded. The original indexed a Python list with `n + i`, and negative
  indices wrapped around, so the lowest notes "saw" the top of the keyboard.
- The position is scaled to [0, 1] over the piano (A0..C8) instead of a raw 0..77 index that
  swamps the other inputs; it depends on the absolute pitch, so models over different ranges
  agree on what a position means.
- The beat is the real position in the bar from the piece's meters (`Piece.bar_position()`),
  not the segment's step counter modulo 16, so 3/4 bars and pickups line up. Five binary digits
  cover bars of up to 32 steps (2/1 at 4 steps per beat); each bit is -1/+1 so every bit carries
  signal both ways, as in the original. The extra downbeat flag makes the bar start one unit
  instead of a conjunction of five bits, which matters in 3/4 where 12 steps are not a power
  of two. Binary digits rather than sin/cos because the positions are discrete and the
  model should tell "the 2nd sixteenth" from "the 4th" exactly, with no period to choose.
- The original's constant trailing 0 input is dropped (the LSTM biases do its job).

Everything is computed with broadcasts and two `tf.gather`s: no Python loop over notes or steps,
so the same function serves a whole batch (B, T, N, 2) and one step of generation (B, N, 2).
"""

from __future__ import annotations

import numpy as np

from ._tf import tf

__all__ = [
    "BEAT_BITS",
    "FEATURE_SLICES",
    "N_FEATURES",
    "VICINITY",
    "note_features",
    "position_of",
]

#: Notes on each side of a note whose previous state it sees.
VICINITY = 12
#: Binary digits of the bar position.
BEAT_BITS = 5
#: Where each group of inputs lies in the last axis of `note_features`.
FEATURE_SLICES: dict[str, slice] = {
    "position": slice(0, 1),
    "pitch_class": slice(1, 13),
    "vicinity": slice(13, 13 + 2 * (2 * VICINITY + 1)),
    "context": slice(63, 75),
    "beat": slice(75, 75 + BEAT_BITS + 1),
}
#: Length of the per-note input vector F.
N_FEATURES = 81
assert FEATURE_SLICES["beat"].stop == N_FEATURES

#: MIDI pitch of the piano's lowest key (A0) and the span to its highest (C8 = 108).
_PIANO_LOW, _PIANO_SPAN = 21, 87


def position_of(pitch: np.ndarray | int) -> np.ndarray:
    """The scaled `position` input of a MIDI pitch: (pitch - 21) / 87, float32."""
    return ((np.asarray(pitch) - _PIANO_LOW) / _PIANO_SPAN).astype(np.float32)


def _static_note_inputs(n_notes: int, lowest: int) -> np.ndarray:
    """Position and pitch-class one-hot of every note: float32 (N, 13)."""
    pitch = lowest + np.arange(n_notes)
    one_hot = np.eye(12, dtype=np.float32)[pitch % 12]
    return np.concatenate([position_of(pitch)[:, None], one_hot], axis=1)


def _vicinity_index(n_notes: int) -> np.ndarray:
    """Index into the zero-padded note axis (N + 24) of each note's 25 neighbours: (N, 25)."""
    return np.arange(n_notes)[:, None] + np.arange(2 * VICINITY + 1)[None, :]


def _context_index(n_notes: int, lowest: int) -> np.ndarray:
    """Index into the 12 pitch-class counts that rotates them to each note's own class: (N, 12)."""
    pitch_class = (lowest + np.arange(n_notes)) % 12
    return (pitch_class[:, None] + np.arange(12)[None, :]) % 12


def note_features(prev_state, beat, *, lowest: int) -> tf.Tensor:
    """Per-note inputs of the time axis for the steps whose previous states are given.

    Args:
        prev_state: play (channel 0) and articulate (channel 1) of every note at the PREVIOUS
            step, shape (..., N, 2), any numeric dtype. N must be known statically.
        beat: int, shape (...): position in its bar, in steps (0 = downbeat), of the step being
            predicted.
        lowest: MIDI pitch of note 0.

    Returns:
        float32 (..., N, N_FEATURES), laid out as in `FEATURE_SLICES`.

    Leading axes are free: (B, T, N, 2) with beat (B, T) for a batch, (B, N, 2) with beat (B,)
    for one step of generation; the result for a batch equals the one-step result at each step.
    """
    prev_state = tf.cast(tf.convert_to_tensor(prev_state), tf.float32)
    beat = tf.cast(tf.convert_to_tensor(beat), tf.int32)
    n_notes = prev_state.shape[-2]
    if n_notes is None:
        raise ValueError("note_features: the number of notes must be known statically")
    lead_shape = tf.shape(prev_state)[:-2]

    def spread(per_note: tf.Tensor) -> tf.Tensor:
        """Broadcast a (N, k) constant over the leading axes."""
        k = per_note.shape[-1]
        return tf.broadcast_to(per_note, tf.concat([lead_shape, [n_notes, k]], axis=0))

    static = spread(tf.constant(_static_note_inputs(n_notes, int(lowest))))

    # Neighbours: pad the note axis with 12 silent notes on each side, gather 25-note windows.
    rank = len(prev_state.shape)
    padded = tf.pad(prev_state, [[0, 0]] * (rank - 2) + [[VICINITY, VICINITY], [0, 0]])
    windows = tf.gather(padded, _vicinity_index(n_notes), axis=rank - 2)  # (..., N, 25, 2)
    vicinity = tf.reshape(windows, tf.concat([lead_shape, [n_notes, 2 * (2 * VICINITY + 1)]], 0))

    # Pitch-class counts of the notes playing, then rotated per note.
    class_of_note = np.eye(12, dtype=np.float32)[(int(lowest) + np.arange(n_notes)) % 12]
    counts = tf.tensordot(prev_state[..., 0], tf.constant(class_of_note), axes=1)  # (..., 12)
    context = tf.gather(counts, _context_index(n_notes, int(lowest)), axis=-1)  # (..., N, 12)

    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(beat[..., None], tf.range(BEAT_BITS)), 1)
    beat_code = tf.concat(
        [tf.cast(2 * bits - 1, tf.float32), tf.cast(tf.equal(beat, 0), tf.float32)[..., None]],
        axis=-1,
    )  # (..., 6)
    beat_code = tf.broadcast_to(
        beat_code[..., None, :], tf.concat([lead_shape, [n_notes, BEAT_BITS + 1]], 0)
    )

    return tf.concat([static, vicinity, context, beat_code], axis=-1)
