"""The peer of `bench_train_step.py`: a biaxial LSTM written the obvious way in Keras 3.

What a Keras user would write first, with the same sizes and data shapes as our default model
and nothing of ours inside the step:

- time axis: `keras.layers.LSTM(300)` twice over the steps, one sequence per note
  (B*N sequences of T steps), input the 81 note features of the previous step;
- note axis: `keras.layers.LSTM(100)` and `keras.layers.LSTM(50)` over the notes, one sequence
  per step (B*T sequences of N notes), input the time axis' output and the choice of the note
  below (teacher forcing), then `Dense(2)`: the play and articulate logits;
- the same loss (nats per step: play bits plus the articulate bits of the notes that play),
  Adam, `compile` + `train_on_batch`.

Left out on purpose (they would only make the peer slower): feature building inside the step
(the features are computed once, outside the timed step, and fed as an input), dropout.
Keras picks its own LSTM implementation (cuDNN on a GPU; a `while_loop` over a fused cell on
the CPU); its gradient is TensorFlow's automatic one.
"""

from __future__ import annotations

import numpy as np

from musicutils._tf import keras, tf
from musicutils.features import N_FEATURES, note_features

__all__ = ["PeerBiaxial", "peer_inputs"]


def _nll(state, logits):
    """Nats per step, play + articulate where playing (as `musicutils.model.nll_per_step`)."""
    state = tf.cast(state, tf.float32)
    bits = tf.nn.sigmoid_cross_entropy_with_logits(labels=state, logits=logits)
    per_step = tf.reduce_sum(bits[..., 0] + bits[..., 1] * state[..., 0], axis=-1)
    return tf.reduce_mean(per_step, axis=-1)


class PeerBiaxial(keras.Model):
    """Biaxial LSTM from stock Keras layers: inputs {"features": (B, T, N, F), "below": (B, T,
    N, 2)} -> logits (B, T, N, 2)."""

    def __init__(self, n_notes=78, time_sizes=(300, 300), note_sizes=(100, 50), **kwargs):
        super().__init__(**kwargs)
        self.n_notes = n_notes
        self.time_lstms = [keras.layers.LSTM(u, return_sequences=True) for u in time_sizes]
        self.note_lstms = [keras.layers.LSTM(u, return_sequences=True) for u in note_sizes]
        self.out = keras.layers.Dense(2)

    def call(self, inputs):
        features, below = inputs["features"], inputs["below"]
        batch, steps = tf.shape(features)[0], tf.shape(features)[1]
        # Time axis: one sequence per (piece, note).
        x = tf.reshape(tf.transpose(features, [0, 2, 1, 3]), [-1, steps, N_FEATURES])
        for lstm in self.time_lstms:
            x = lstm(x)
        x = tf.transpose(tf.reshape(x, [batch, self.n_notes, steps, -1]), [0, 2, 1, 3])
        # Note axis: one sequence per (piece, step), upward over the notes.
        x = tf.concat([x, tf.cast(below, x.dtype)], axis=-1)
        x = tf.reshape(x, [batch * steps, self.n_notes, x.shape[-1]])
        for lstm in self.note_lstms:
            x = lstm(x)
        return tf.reshape(self.out(x), [batch, steps, self.n_notes, 2])


def peer_inputs(state: np.ndarray, beat: np.ndarray, lowest: int = 24) -> dict:
    """The peer's inputs for a batch of states (B, T, N, 2) and bar positions (B, T).

    features: the note features of the previous step (silence before step 0), as our model
    builds them inside its step; below: the (play, articulate) of the note below at the same
    step (zeros under the lowest note).
    """
    state = np.asarray(state, np.float32)
    prev = np.concatenate([np.zeros_like(state[:, :1]), state[:, :-1]], axis=1)
    features = note_features(
        tf.transpose(prev, [1, 0, 2, 3]), tf.transpose(tf.constant(beat, tf.int32)), lowest=lowest
    )
    features = tf.transpose(features, [1, 0, 2, 3])
    below = np.concatenate([np.zeros_like(state[:, :, :1]), state[:, :, :-1]], axis=2)
    return {"features": tf.constant(features), "below": tf.constant(below)}


def compiled_peer(learning_rate: float = 1e-3, **sizes) -> PeerBiaxial:
    """A `PeerBiaxial` compiled with Adam and the biaxial NLL."""
    peer = PeerBiaxial(**sizes)
    peer.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=_nll)
    return peer
