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

Optional, not in Johnson's model: with `key=` the vector grows by `KEY_WIDTH` = 12 numbers
(`KEY_SLICE`), the pitch-class profile of the music so far rotated like `context`. The profile
is a memory of the sounding notes that fades by half every `KEY_HALF_LIFE_BEATS` = 16 beats
(`key_memory`), scaled so that its 12 numbers average 1 (`key_shares`). `context` says what
sounded one step ago; this says which key the piece has been in, which the time-axis LSTMs
would otherwise have to remember for themselves (`model.BiaxialModel(key_profile=True)`).

Everything is computed with broadcasts and two `tf.gather`s: no Python loop over notes or steps,
so the same function serves a whole batch (B, T, N, 2) and one step of generation (B, N, 2).
"""

from __future__ import annotations

import numpy as np

from ._tf import tf

__all__ = [
    "BEAT_BITS",
    "FEATURE_SLICES",
    "KEY_HALF_LIFE_BEATS",
    "KEY_SLICE",
    "KEY_WIDTH",
    "N_FEATURES",
    "VICINITY",
    "key_decay",
    "key_memory",
    "key_shares",
    "note_features",
    "pitch_class_counts",
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
#: Length of the optional key profile, and where it lies when `note_features` is given `key=`.
KEY_WIDTH = 12
KEY_SLICE = slice(N_FEATURES, N_FEATURES + KEY_WIDTH)
#: Beats after which a note's weight in the key memory has halved.
KEY_HALF_LIFE_BEATS = 16

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


def pitch_class_counts(play, *, lowest: int) -> tf.Tensor:
    """How many notes of each pitch class (C = 0) sound: play (..., N) -> float32 (..., 12)."""
    play = tf.cast(tf.convert_to_tensor(play), tf.float32)
    class_of_note = np.eye(12, dtype=np.float32)[(int(lowest) + np.arange(play.shape[-1])) % 12]
    return tf.tensordot(play, tf.constant(class_of_note), axes=1)


def key_decay(steps_per_beat: int) -> float:
    """The factor the key memory is multiplied by at every step: its weight halves every
    `KEY_HALF_LIFE_BEATS` beats (0.989 per step at 4 steps per beat, 0.958 at 1)."""
    return 0.5 ** (1.0 / (KEY_HALF_LIFE_BEATS * int(steps_per_beat)))


def key_memory(counts, start, decay: float) -> tf.Tensor:
    """The key memory over a stretch of steps, in one product (no loop over steps).

    The memory m fades and takes in the pitch-class counts of each step: m_t = decay * m_(t-1)
    + counts_t, so m_t = decay^(t+1) * start + sum over s <= t of decay^(t-s) * counts_s. The
    weights decay^(t-s) are a (T, T) float32 matrix: 64 MB for a stretch of 4096 steps (a
    whole piece of 17 minutes at 4 steps per beat and 60 beats a minute, as `evaluate` scores
    it), against the LSTMs' (T, B*N, 4H) projections of every step.

    Args:
        counts: float32 (T, ..., 12), `pitch_class_counts` of steps 0..T-1, time-major.
        start: float32 (..., 12), the memory before step 0 (zeros at the start of a piece).
        decay: `key_decay(steps_per_beat)`.

    Returns:
        float32 (T, ..., 12): m_0 .. m_(T-1).
    """
    counts = tf.cast(tf.convert_to_tensor(counts), tf.float32)
    steps = tf.shape(counts)[0]
    t = tf.cast(tf.range(steps), tf.float32)
    log_decay = float(np.log(decay))
    lag = t[:, None] - t[None, :]  # (T, T): t - s
    weights = tf.where(lag >= 0, tf.exp(tf.maximum(lag, 0.0) * log_decay), 0.0)
    flat = tf.reshape(counts, [steps, -1])
    memory = tf.reshape(tf.matmul(weights, flat), tf.shape(counts))
    carried = tf.exp((t + 1.0) * log_decay)  # (T,)
    carried = tf.reshape(carried, tf.concat([[steps], tf.ones([tf.rank(counts) - 1], tf.int32)], 0))
    return memory + carried * tf.cast(start, tf.float32)[None]


def key_shares(memory) -> tf.Tensor:
    """The key input from a key memory (..., 12): each pitch class's share of it, times 12 (so
    the 12 numbers average 1); all zeros while nothing has sounded."""
    memory = tf.cast(tf.convert_to_tensor(memory), tf.float32)
    total = tf.reduce_sum(memory, axis=-1, keepdims=True)
    return tf.math.divide_no_nan(12.0 * memory, total)


def note_features(prev_state, beat, *, lowest: int, key=None) -> tf.Tensor:
    """Per-note inputs of the time axis for the steps whose previous states are given.

    Args:
        prev_state: play (channel 0) and articulate (channel 1) of every note at the PREVIOUS
            step, shape (..., N, 2), any numeric dtype. N must be known statically.
        beat: int, shape (...): position in its bar, in steps (0 = downbeat), of the step being
            predicted.
        lowest: MIDI pitch of note 0.
        key: None, or float32 (..., 12): the `key_shares` of the music before the step being
            predicted (absolute pitch classes, C = 0), appended rotated to each note's own
            pitch class like `context` (`KEY_SLICE`).

    Returns:
        float32 (..., N, N_FEATURES), laid out as in `FEATURE_SLICES`; (..., N, N_FEATURES +
        KEY_WIDTH) with `key`.

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
    counts = pitch_class_counts(prev_state[..., 0], lowest=lowest)  # (..., 12)
    rotate = _context_index(n_notes, int(lowest))
    context = tf.gather(counts, rotate, axis=-1)  # (..., N, 12)

    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(beat[..., None], tf.range(BEAT_BITS)), 1)
    beat_code = tf.concat(
        [tf.cast(2 * bits - 1, tf.float32), tf.cast(tf.equal(beat, 0), tf.float32)[..., None]],
        axis=-1,
    )  # (..., 6)
    beat_code = tf.broadcast_to(
        beat_code[..., None, :], tf.concat([lead_shape, [n_notes, BEAT_BITS + 1]], 0)
    )

    parts = [static, vicinity, context, beat_code]
    if key is not None:
        parts.append(tf.gather(tf.cast(key, tf.float32), rotate, axis=-1))  # (..., N, 12)
    return tf.concat(parts, axis=-1)
