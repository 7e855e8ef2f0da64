"""Johnson's biaxial LSTM as a Keras 3 model, with a single-step API for sampling.

Two stacks of LSTMs look at the note-state matrix along its two axes:

```
                 time axis (shared by all notes)           note axis (shared by all steps)
state[t-1] ─ features ─▶ LSTM ─▶ LSTM ─▶ time_out[t, n] ─┐
 (B, N, 2)   (B, N, 81)   ... along t, batch B*N ...       ├─▶ LSTM ─▶ LSTM ─▶ 2 logits[t, n]
                                  choice of note n-1 at t ─┘   ... along n, batch B*T ...
```

- The time axis runs along the steps, once per note (B*N sequences), with the same weights for
  every note: it sees the previous step through `features.note_features` and the bar position
  of the step being predicted.
- The note axis runs upward across the notes of each step (B*T sequences). For note n it sees
  the time axis output for n and what was chosen for note n-1 (play, articulate), and ends in
  two logits: play, and articulate given play.
- Training uses teacher forcing on both axes: the true previous step and the true note below.
  Sampling (musicutils.generate) uses the single-step methods and feeds its own choices.
- Optional, not in Johnson's model: `chord_below=True` also hands the note axis the chord chosen
  so far at the step (the 12 notes just below, and how many notes below lie at each interval
  class; `chord_below_inputs`). On the JSB Chorales benchmark it takes the test NLL from 5.11 to
  4.79 nats per step, with the same sizes and seed and in fewer epochs (README, Figures).
  `struck_below=True` adds the same numbers for the notes struck anew at the step (play and
  articulate): the chord alone cannot tell a note struck with n from one held into the step,
  and a dissonance is treated differently in the two cases (a suspension is held, not struck).

Speed (the time axis is ~85 % of the arithmetic). Every input projection (x @ W for all rows
of a layer) is one large matmul outside the recurrence, and the layers run one after another
over the whole sequence, so inside each `tf.while_loop` step only one (rows, H) @ (H, 4H)
product and the gate arithmetic remain (gates ordered i, f, o, g: one sigmoid covers three).
The backward pass is written by hand (`_scan_lstm_fused`): one (rows, 4H) @ (4H, H) product
per step, the recurrent kernel's gradient as ONE big matmul over all steps, and the per-step
gate arithmetic compiled by XLA into one fused pass (`XLA_CELLS`). Measured on 2 cores
(benchmarks/bench_train_step.py, batch 10 x 128 x 78): about 65-80 % of the machine's float32
matmul rate and 3.6 GB, against 45 % and 5.9 GB with TensorFlow's automatic gradient of the
loop. XLA on the whole step (`compile(jit_compile=True)`, the benchmark's --jit) gained under
10 % for 50 % more memory, so training leaves it off.

Precision (`precision="bfloat16"`): the LSTMs' matrix products (input projections, recurrent
products, forward and backward) read bfloat16 operands (`matmul`), which CPUs with
`avx512_bf16` or AMX and GPUs from compute capability 8.0 multiply natively; the weights the
optimizer updates, the cell state, the gate arithmetic, the two output logits (a (50, 2)
product) and the loss stay float32. Without native support the products gain nothing (on the
development machine on a day its CPU was AVX2-only, bfloat16 trained and composed slower:
README, Figures). With it (`avx512_bf16`) a full-size training step ran 1.2 times as fast and
JSB trained to float32's likelihood (4.779 against 4.785), but small models and composing did
not gain, so "float32" is the default and "auto" (`resolve_precision`) picks bfloat16 only
where native.

Likelihood: `nll_per_step` gives nats per time step (summed over notes, averaged over steps),
play bits plus the articulate bits of the notes that play; `BiaxialNLL` / `PlayNLL` wrap it for
`model.compile`.
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._checks import checked
from ._io import atomic_open, atomic_path
from ._resources import model_folder
from ._tf import keras, tf
from .errors import CheckpointError
from .features import N_FEATURES, note_features

__all__ = [
    "BiaxialModel",
    "BiaxialNLL",
    "CHORD_BELOW_WIDTH",
    "PRECISIONS",
    "PlayNLL",
    "chord_below_inputs",
    "flops_per_forward",
    "flops_per_train_step",
    "load_model",
    "matmul",
    "native_bfloat16",
    "nats_of_each_step",
    "nll_per_step",
    "resolve_precision",
    "save_model",
    "use_precision",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"


# --------------------------------------------------------------------------------------------
# LSTM pieces
# --------------------------------------------------------------------------------------------


def _forget_bias_init(units: int):
    """Bias initializer: zeros, except 1 for the forget gate (Jozefowicz et al. 2015)."""

    def init(shape, dtype=None):
        bias = np.zeros(shape, dtype=np.float32)
        bias[units : 2 * units] = 1.0
        return tf.constant(bias, dtype=dtype or tf.float32)

    return init


@keras.saving.register_keras_serializable(package="musicutils")
class LSTMWeights(keras.layers.Layer):
    """The weights of one LSTM layer; the recurrence itself lives in the model's methods.

    kernel (input_dim, 4H), recurrent_kernel (H, 4H), bias (4H,), gates in the order
    input, forget, output, candidate. Created at construction so they exist under a
    distribution strategy's scope.
    """

    def __init__(self, input_dim: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.units = int(units)
        self.kernel = self.add_weight(
            shape=(self.input_dim, 4 * self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(
            shape=(4 * self.units,), initializer=_forget_bias_init(self.units), name="bias"
        )
        self.built = True

    def project(self, x: tf.Tensor, precision: str = "float32") -> tf.Tensor:
        """x @ kernel + bias for inputs of any leading shape (..., input_dim) -> (..., 4H).

        The product runs in `precision` (see `matmul`); the result is float32.
        """
        flat = tf.reshape(x, [-1, self.input_dim])
        out = matmul(flat, self.kernel, precision) + self.bias
        return tf.reshape(out, tf.concat([tf.shape(x)[:-1], [4 * self.units]], axis=0))


# --------------------------------------------------------------------------------------------
# Precision of the matrix products
# --------------------------------------------------------------------------------------------

#: Precisions of the matrix products ("auto" is resolved by `resolve_precision`).
PRECISIONS = ("float32", "bfloat16")


def matmul(a, b, precision: str = "float32", transpose_a=False, transpose_b=False) -> tf.Tensor:
    """a @ b, float32 result; with precision "bfloat16" both operands are rounded to bfloat16.

    bfloat16 keeps float32's 8 exponent bits (same range: no loss scaling is needed) and 8
    significant bits (a relative rounding error of at most 2**-9 per number). The products are
    summed in float32 inside the CPU and GPU kernels, but TensorFlow's CPU matmul returns
    bfloat16, so the result is rounded once more before it is widened back to float32. Only
    the products change: the callers keep the LSTM cell state, the gate arithmetic, the logits
    and the loss in float32, and the weights (what the optimizer updates) stay float32.
    """
    if precision == "float32":
        return tf.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    out = tf.matmul(
        tf.cast(a, tf.bfloat16),
        tf.cast(b, tf.bfloat16),
        transpose_a=transpose_a,
        transpose_b=transpose_b,
    )
    return tf.cast(out, tf.float32)


def _raw_matmul(a, b):
    """a @ b in b's dtype (a rounded to it); a bfloat16 result is widened by the XLA cell."""
    return tf.matmul(tf.cast(a, b.dtype), b)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bfloat16() -> str | None:
    """Why this machine multiplies bfloat16 natively (a short reason), or None.

    A GPU with compute capability 8.0 or more (Ampere and later), or an x86 CPU with the
    `avx512_bf16` (AMD Zen 4, Intel Cooper Lake) or `amx_bf16` (Intel Sapphire Rapids) flag.
    Without them TensorFlow converts bfloat16 to float32 for the products, which gains nothing.
    """
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= (8, 0):
            return f"GPU compute capability {capability[0]}.{capability[1]}"
    flags = _cpu_flags() & {"avx512_bf16", "amx_bf16"}
    return f"CPU flags {' '.join(sorted(flags))}" if flags else None


def resolve_precision(precision: str) -> str:
    """The precision to run: "float32" and "bfloat16" as they are; "auto" is "bfloat16" where
    the machine multiplies bfloat16 natively (`native_bfloat16`), else "float32"."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {(*PRECISIONS, 'auto')}, got {precision!r}")
    return precision


def _lstm_update(z: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One LSTM cell update from the gate pre-activations z (rows, 4H) and the cell c (rows, H)."""
    h, c, _, _ = _cell_forward(z, 0.0, c)
    return h, c


def _scan_lstm_autodiff(
    projected: tf.Tensor, recurrent_kernel, h: tf.Tensor, c: tf.Tensor, precision="float32"
):
    """`run_lstm` with TensorFlow's automatic gradient of the while loop (the reference)."""
    if precision != "float32":
        recurrent_kernel = tf.cast(recurrent_kernel, tf.bfloat16)  # once, not at every step
    steps = tf.shape(projected)[0]
    inputs = tf.TensorArray(projected.dtype, size=steps, element_shape=projected.shape[1:])
    inputs = inputs.unstack(projected)
    outputs = tf.TensorArray(projected.dtype, size=steps, element_shape=h.shape)

    def body(t, h, c, outputs):
        z = inputs.read(t) + matmul(h, recurrent_kernel, precision)
        h, c = _lstm_update(z, c)
        return t + 1, h, c, outputs.write(t, h)

    _, h, c, outputs = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h, c, outputs),
        maximum_iterations=_max_iterations(projected),
    )
    return outputs.stack(), h, c


def _max_iterations(projected: tf.Tensor):
    """Static loop length when known (XLA needs it for the loop's gradient), else dynamic."""
    static = projected.shape[0]
    return static if static is not None else tf.shape(projected)[0]


def _cell_forward(x_proj, h_proj, c):
    """Gate arithmetic of one step: z = x_proj + h_proj -> (h, c, sigmoid gates, candidate)."""
    units = c.shape[-1]
    z = x_proj + tf.cast(h_proj, x_proj.dtype)  # h_proj may come in bfloat16
    sig = tf.sigmoid(z[:, : 3 * units])
    cand = tf.tanh(z[:, 3 * units :])
    new_c = sig[:, units : 2 * units] * c + sig[:, :units] * cand
    h = sig[:, 2 * units :] * tf.tanh(new_c)
    return h, new_c, sig, cand


def _cell_backward(d_h_out, d_h_next, d_c_next, sig, cand, c_prev):
    """Backward of `_cell_forward` for one step -> (dz (rows, 4H), gradient of c_prev)."""
    units = c_prev.shape[-1]
    d_h = d_h_out + d_h_next
    i, f, o = sig[:, :units], sig[:, units : 2 * units], sig[:, 2 * units :]
    tanh_c = tf.tanh(f * c_prev + i * cand)
    d_c = d_c_next + d_h * o * (1.0 - tanh_c * tanh_c)
    d_sig = tf.concat([d_c * cand, d_c * c_prev, d_h * tanh_c], axis=1) * sig * (1.0 - sig)
    d_cand = d_c * i * (1.0 - cand * cand)
    return tf.concat([d_sig, d_cand], axis=1), d_c * f


#: Compile the per-step gate arithmetic with XLA (one fused pass over memory instead of a dozen
#: separate element-wise ops); the matmuls stay with TensorFlow's own kernels. Turn off with
#: MUSICUTILS_XLA_CELLS=0.
XLA_CELLS = os.environ.get("MUSICUTILS_XLA_CELLS", "1") != "0"
_XLA_CELL_FUNCTIONS = None


def _cell_functions():
    """(cell_forward, cell_backward): XLA-compiled when XLA_CELLS, else plain TensorFlow."""
    global _XLA_CELL_FUNCTIONS
    if not XLA_CELLS:
        return _cell_forward, _cell_backward
    if _XLA_CELL_FUNCTIONS is None:
        _XLA_CELL_FUNCTIONS = (
            tf.function(_cell_forward, jit_compile=True),
            tf.function(_cell_backward, jit_compile=True),
        )
    return _XLA_CELL_FUNCTIONS


def _make_scan_lstm_fused(precision: str):
    """`_scan_lstm_fused` for one precision of its matrix products."""

    @tf.custom_gradient
    def scan(projected, recurrent_kernel, h0, c0):
        return _scan_lstm_fused(projected, recurrent_kernel, h0, c0, precision)

    return scan


_FUSED_SCANS = {}


def _scan_lstm_fused(projected, recurrent_kernel, h0, c0, precision):
    """`run_lstm` with a hand-written backward pass (wrapped by `_make_scan_lstm_fused`).

    The forward loop keeps only what the backward pass needs: the gate activations (4H) and
    the cell entering each step (H), beside the outputs. The backward loop does one
    (rows, 4H) @ (4H, H) product per step; the recurrent kernel's gradient is then ONE large
    matmul over all steps, (H, S*rows) @ (S*rows, 4H), instead of S small ones.

    In bfloat16 the kernel is rounded once before the loops, and every product reads bfloat16
    operands (`matmul`); the saved activations, the cell and the gradients stay float32.
    """
    kernel = recurrent_kernel if precision == "float32" else tf.cast(recurrent_kernel, tf.bfloat16)
    units = h0.shape[-1]
    steps = tf.shape(projected)[0]
    dtype = projected.dtype

    def array(width):
        return tf.TensorArray(dtype, size=steps, element_shape=[h0.shape[0], width])

    cell_forward, cell_backward = _cell_functions()

    def body(t, h, c, outputs, sigmoids, candidates, cells):
        # No gradient is traced through this loop, so slicing the captured input is safe, and
        # TensorFlow slices the leading axis without a copy.
        h, new_c, sig, cand = cell_forward(projected[t], _raw_matmul(h, kernel), c)
        return (
            t + 1,
            h,
            new_c,
            outputs.write(t, h),
            sigmoids.write(t, sig),
            candidates.write(t, cand),
            cells.write(t, c),
        )

    _, h_last, c_last, outputs, sigmoids, candidates, cells = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, array(units), array(3 * units), array(units), array(units)),
        maximum_iterations=_max_iterations(projected),
    )
    hs = outputs.stack()

    def grad(d_hs, d_h_last, d_c_last):
        d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
        d_h_last = tf.zeros_like(h0) if d_h_last is None else d_h_last
        d_c_last = tf.zeros_like(c0) if d_c_last is None else d_c_last

        def back(t, d_h_next, d_c_next, d_z):
            t = t - 1
            dz, d_c_prev = cell_backward(
                d_hs[t], d_h_next, d_c_next, sigmoids.read(t), candidates.read(t), cells.read(t)
            )
            d_h_prev = matmul(dz, kernel, precision, transpose_b=True)
            return t, d_h_prev, d_c_prev, d_z.write(t, dz)

        _, d_h0, d_c0, d_z = tf.while_loop(
            lambda t, *_: t > 0,
            back,
            (steps, d_h_last, d_c_last, array(4 * units)),
            maximum_iterations=_max_iterations(projected),
        )
        d_z = d_z.stack()  # (S, rows, 4H) = gradient of the projected inputs
        h_prev = tf.concat([h0[None], hs[:-1]], axis=0)
        d_kernel = matmul(
            tf.reshape(h_prev, [-1, units]),
            tf.reshape(d_z, [-1, 4 * units]),
            precision,
            transpose_a=True,
        )
        return d_z, d_kernel, d_h0, d_c0

    return (hs, h_last, c_last), grad


#: "fused" (hand-written backward pass, less memory) or "autodiff" (TensorFlow's own gradient
#: of the loop; kept as the reference the tests and the benchmark compare with).
LSTM_GRADIENT = "fused"


def run_lstm(
    projected: tf.Tensor, recurrent_kernel, h: tf.Tensor, c: tf.Tensor, precision="float32"
):
    """Run an LSTM over the first axis of its projected inputs.

    Args:
        projected: (S, rows, 4H) x @ kernel + bias of every step.
        recurrent_kernel: (H, 4H).
        h, c: (rows, H) state before the first step.
        precision: of the recurrent products, forward and backward (`matmul`).

    Returns:
        (outputs (S, rows, H), h, c) with h, c the state after the last step.
    """
    if LSTM_GRADIENT == "autodiff":
        return _scan_lstm_autodiff(projected, recurrent_kernel, h, c, precision)
    if precision not in _FUSED_SCANS:
        _FUSED_SCANS[precision] = _make_scan_lstm_fused(precision)
    kernel = tf.convert_to_tensor(recurrent_kernel)
    return _FUSED_SCANS[precision](projected, kernel, h, c)


@contextmanager
def use_precision(model, precision: str | None):
    """Run the block with `model.precision` set to `precision` (None: leave it), then restore.

    What is traced inside (a `tf.function` first called there) keeps that precision, so cache
    traced functions per precision (as `generate` does).
    """
    if precision is None:
        yield model
        return
    before = model.precision
    model.precision = resolve_precision(precision)
    try:
        yield model
    finally:
        model.precision = before


def base_rate_logits(states: np.ndarray) -> np.ndarray:
    """Output biases that predict the data's base rates before any training.

    A fresh model with zero output biases says P(play) = 1/2 for every note, where a chorale
    step sounds about 4 of 78 (5 %): its first loss is ~3x the loss of simply guessing the
    base rate, and its first updates go into unlearning that, which leaves a long plateau
    (measured on the bundled chorales, time 64,64, note 32,16, 20 batches of 8 x 64 steps per
    epoch: validation 16.2 nats/step after 8 epochs from zero biases, 9.1 from these). Starting
    the biases at the base rates' logits removes that phase (Karpathy, "A recipe for training
    neural networks", 2019: "init well").

    Args:
        states: (..., N, 2) 0/1 play and articulate bits of the training music.

    Returns:
        float32 (2,): logit(P(play)), logit(P(articulate | play)), each rate kept in
        [1e-4, 1 - 1e-4] (a corpus without notes, or where every note is struck, stays finite).
    """
    states = np.asarray(states)
    playing = float(np.count_nonzero(states[..., 0]))
    struck = float(np.count_nonzero(states[..., 1]))
    total = float(np.prod(states.shape[:-1]))
    rates = np.array([playing / max(total, 1.0), struck / max(playing, 1.0)])
    rates = np.clip(rates, 1e-4, 1 - 1e-4)
    return np.log(rates / (1 - rates)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The chord below a note (optional note-axis inputs)
# --------------------------------------------------------------------------------------------

#: Extra note-axis inputs with `chord_below`: the 12 notes just below, and 12 interval classes
#: (as many again with `struck_below`, for the notes struck at the step).
CHORD_BELOW_WIDTH = 24


def chord_below_inputs(play: tf.Tensor) -> tf.Tensor:
    """What the notes below n already chose at the same step, for every note n at once.

    The note axis runs upward, and in Johnson's model note n sees only the choice of note n-1;
    anything lower it must remember in its LSTM state. Harmony is about the intervals to
    everything already sounding, and because the note axis shares its weights across the
    keyboard its memory would have to "rotate" by a semitone at every note to keep intervals.
    These inputs hand it the intervals directly:

    - window (12): play bits of notes n-1 .. n-12 (the octave just below), nearest first;
    - intervals (12): how many notes below n play at each interval class: index k counts the
      notes m < n with (n - m) mod 12 == k (k = 0: octaves below, 7: a fifth below, ...).

    Args:
        play: (..., N) 0/1 play bits of one step (the teacher-forced choices).

    Returns:
        float32 (..., N, 24): window then intervals. `BiaxialModel.note_step` builds the same
        numbers one note at a time (tested equal).
    """
    play = tf.cast(play, tf.float32)
    n_notes = play.shape[-1]
    below = np.arange(n_notes)[:, None] - np.arange(n_notes)[None, :]  # n - m, (N, N)
    window = np.stack([below == d for d in range(1, 13)], axis=-1)  # (N, N, 12)
    intervals = (below > 0)[..., None] & (below[..., None] % 12 == np.arange(12))
    table = tf.constant(np.concatenate([window, intervals], axis=-1), tf.float32)  # (N, N, 24)
    return tf.einsum("...m,nmc->...nc", play, table)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="musicutils")
class BiaxialModel(keras.Model):
    """Biaxial LSTM over note-state matrices (Johnson 2015); outputs logits.

    Args:
        n_notes: N, notes in the range.
        lowest: MIDI pitch of note 0 (enters the features: pitch class, position).
        time_sizes: units of the time-axis LSTMs, bottom to top.
        note_sizes: units of the note-axis LSTMs, bottom to top.
        dropout: rate applied to every LSTM layer's output during training. As in the original,
            one mask per sequence (the same units are dropped at every step of a sequence).
        seed: seed of the dropout masks (None: random).
        steps_per_beat: time steps per quarter note of the music it models (4 for MIDI read at
            the default grid, 1 for JSB's quarter-note frames). The network never uses it; it is
            kept with the weights so that a composition gets the bar positions and the tempo of
            the data the model learnt from.
        chord_below: also give the note axis the chord chosen so far at this step (an addition
            to Johnson's model; `CHORD_BELOW_WIDTH` more inputs, see `chord_below_inputs`).
            Off by default, so that models trained without it load unchanged.
        struck_below: also give the note axis the same `CHORD_BELOW_WIDTH` numbers for the notes
            below that are struck at this step (play and articulate), so that it can tell a
            chord struck together from notes held into the step. Off by default.
        precision: "float32" or "bfloat16", the precision of the LSTMs' matrix products
            (`matmul`; "auto" picks by `resolve_precision` and is stored resolved). The weights,
            the cell state, the gate arithmetic and the logits are float32 in both. Saved
            models from before the setting existed load as float32. It may be changed on a
            built model (`use_precision`); functions traced before keep the old one.
        voices: the number of notes sounding in most steps of the music it models (4 for
            four-part chorales; `stats.typical_voices`), or None when that music has no fixed
            texture. Like `steps_per_beat` the network never uses it: `generate`'s voice rule
            does, by default. `train` measures it on the training pieces.

    Call: `model({"state": (B, T, N, 2), "beat": (B, T) int}, training=False)` returns logits
    float32 (B, T, N, 2): channel 0 for P(play), channel 1 for P(articulate | play). Step t is
    predicted from the true steps before it (a silent step before t = 0) and the true choices of
    the notes below it at step t.
    """

    def __init__(
        self,
        n_notes: int = 78,
        lowest: int = 24,
        time_sizes=(300, 300),
        note_sizes=(100, 50),
        dropout: float = 0.5,
        seed: int | None = None,
        steps_per_beat: int = 4,
        chord_below: bool = False,
        precision: str = "float32",
        voices: int | None = None,
        struck_below: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.precision = resolve_precision(precision)
        self.n_notes = int(n_notes)
        self.lowest = int(lowest)
        self.time_sizes = tuple(int(s) for s in time_sizes)
        self.note_sizes = tuple(int(s) for s in note_sizes)
        self.dropout = float(dropout)
        self.seed = seed
        self.steps_per_beat = int(steps_per_beat)
        self.chord_below = bool(chord_below)
        self.struck_below = bool(struck_below)
        self.voices = None if voices is None else int(voices)
        if not self.time_sizes or not self.note_sizes:
            raise ValueError("BiaxialModel: time_sizes and note_sizes need at least one layer")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"BiaxialModel: dropout must be in [0, 1), got {self.dropout}")

        self.time_layers = []
        width = N_FEATURES
        for i, units in enumerate(self.time_sizes):
            self.time_layers.append(LSTMWeights(width, units, name=f"time_lstm_{i}"))
            width = units
        self.note_layers = []
        # Time output of the note + choice of the note below (+ the chord below it).
        width = self.time_sizes[-1] + self.choice_width
        for i, units in enumerate(self.note_sizes):
            self.note_layers.append(LSTMWeights(width, units, name=f"note_lstm_{i}"))
            width = units
        # The two logits: play, articulate. A built Dense gives the weights stable paths
        # ("output/kernel") whatever the model is named; its call is not used.
        self.output_layer = keras.layers.Dense(2, name="output")
        self.output_layer.build((None, width))
        self._dropout_seed = keras.random.SeedGenerator(seed)
        self.built = True

    # -- configuration ------------------------------------------------------------------------

    def get_config(self) -> dict:
        """Constructor arguments as JSON-ready values."""
        return {
            "name": self.name,
            "n_notes": self.n_notes,
            "lowest": self.lowest,
            "time_sizes": list(self.time_sizes),
            "note_sizes": list(self.note_sizes),
            "dropout": self.dropout,
            "seed": self.seed,
            "steps_per_beat": self.steps_per_beat,
            "chord_below": self.chord_below,
            "precision": self.precision,
            "voices": self.voices,
            "struck_below": self.struck_below,
        }

    @classmethod
    def from_config(cls, config: dict) -> BiaxialModel:
        """Rebuild (untrained) from `get_config()`."""
        return cls(**config)

    @property
    def out_kernel(self):
        """(H_last, 2) weights of the two logits."""
        return self.output_layer.kernel

    @property
    def out_bias(self):
        """(2,) biases of the two logits."""
        return self.output_layer.bias

    @property
    def choice_width(self) -> int:
        """Inputs of the note axis read from the current step's notes below: 2 (play,
        articulate of the note just below), plus `CHORD_BELOW_WIDTH` with `chord_below` and as
        many with `struck_below`."""
        return 2 + CHORD_BELOW_WIDTH * self._n_chords_below

    @property
    def _n_chords_below(self) -> int:
        """How many chords below the note axis reads: 0, 1 or 2 (see `_chord_bits`)."""
        return int(self.chord_below) + int(self.struck_below)

    def _chord_bits(self, choices: tf.Tensor) -> list[tf.Tensor]:
        """The bits each chord below is made of, in input order, from (..., 2) play and
        articulate choices: the play bits (`chord_below`), then the struck bits, play and
        articulate both 1 (`struck_below`). Each (...)."""
        play = choices[..., 0]
        return ([play] if self.chord_below else []) + (
            [play * choices[..., 1]] if self.struck_below else []
        )

    @property
    def note_input_size(self) -> int:
        """G, the width of `note_inputs` (the first note layer's 4 gates)."""
        return 4 * self.note_sizes[0]

    # -- helpers ------------------------------------------------------------------------------

    def _drop(self, x: tf.Tensor, training) -> tf.Tensor:
        """Dropout on an LSTM output (S, rows, H) with one mask per sequence (row)."""
        if not training or self.dropout == 0.0:
            return x
        noise_shape = tf.concat([[1], tf.shape(x)[1:]], axis=0)
        keep = keras.random.uniform(noise_shape, seed=self._dropout_seed) >= self.dropout
        return x * (tf.cast(keep, x.dtype) / (1.0 - self.dropout))

    def _time_layers(self, features: tf.Tensor, carry, training):
        """Time-axis LSTMs on time-major features (T, rows, F) -> ((T, rows, Ht), carry)."""
        x, new_carry = features, []
        for layer, (h, c) in zip(self.time_layers, carry, strict=True):
            x, h, c = run_lstm(
                layer.project(x, self.precision), layer.recurrent_kernel, h, c, self.precision
            )
            x = self._drop(x, training)
            new_carry.append((h, c))
        return x, tuple(new_carry)

    def _choice_kernel(self) -> tf.Tensor:
        """Rows of the first note layer's kernel that read the choice of the note below."""
        return self.note_layers[0].kernel[self.time_sizes[-1] :]

    def _note_layers(self, note_input: tf.Tensor, prev_choice: tf.Tensor, training):
        """Teacher-forced note axis, note-major: (N, rows, G), (N, rows, C) -> (N, rows, 2)."""
        n_notes, rows = tf.shape(note_input)[0], tf.shape(note_input)[1]
        choice = tf.reshape(prev_choice, [-1, self.choice_width])
        projected = note_input + tf.reshape(
            matmul(choice, self._choice_kernel(), self.precision), tf.shape(note_input)
        )
        x = None
        for i, layer in enumerate(self.note_layers):
            if i > 0:
                projected = layer.project(x, self.precision)
            zeros = tf.zeros([rows, layer.units], projected.dtype)
            x, _, _ = run_lstm(projected, layer.recurrent_kernel, zeros, zeros, self.precision)
            x = self._drop(x, training)
        logits = tf.matmul(tf.reshape(x, [-1, self.note_sizes[-1]]), self.out_kernel)
        return tf.reshape(logits + self.out_bias, [n_notes, rows, 2])

    def _check_notes(self, state: tf.Tensor) -> None:
        if state.shape[-2] is not None and state.shape[-2] != self.n_notes:
            raise ValueError(
                f"BiaxialModel: this model covers {self.n_notes} notes, the state has "
                f"{state.shape[-2]}"
            )

    # -- the teacher-forced pass --------------------------------------------------------------

    def call(self, inputs, training=False):
        """Logits (B, T, N, 2) of every step and note, teacher-forced on both axes."""
        state = tf.convert_to_tensor(inputs["state"])
        beat = inputs["beat"]
        self._check_notes(state)
        state = tf.cast(state, tf.float32)
        batch = tf.shape(state)[0]
        time_out, _ = self._time_axis_major(
            state, beat, self.initial_time_carry(batch), None, training
        )  # (T, B*N, Ht)
        steps = tf.shape(time_out)[0]
        # Note-major layout for the note axis: (N, B, T, .) -> rows = B*T.
        ht = self.time_sizes[-1]
        time_out = tf.transpose(
            tf.reshape(time_out, [steps, batch, self.n_notes, ht]), [2, 1, 0, 3]
        )
        note_input = self.note_inputs(tf.reshape(time_out, [self.n_notes, -1, ht]))
        below = tf.transpose(state, [2, 0, 1, 3])  # (N, B, T, 2)
        below = tf.concat([tf.zeros_like(below[:1]), below[:-1]], axis=0)
        for bits in self._chord_bits(state):
            chord = tf.transpose(chord_below_inputs(bits), [2, 0, 1, 3])  # (N, B, T, C)
            below = tf.concat([below, chord], axis=-1)
        below = tf.reshape(below, [self.n_notes, -1, self.choice_width])
        logits = self._note_layers(note_input, below, training)
        logits = tf.reshape(logits, [self.n_notes, batch, steps, 2])
        return tf.transpose(logits, [1, 2, 0, 3])

    def probabilities(self, inputs) -> tf.Tensor:
        """sigmoid(logits): P(play), P(articulate | play), float32 (B, T, N, 2); no dropout."""
        return tf.sigmoid(self(inputs, training=False))

    # -- the single-step API (time axis) ------------------------------------------------------

    def initial_time_carry(self, batch_size):
        """Zero state of the time axis: ((h, c) per layer), each (batch_size * N, H)."""
        rows = batch_size * self.n_notes
        return tuple(
            (tf.zeros([rows, units]), tf.zeros([rows, units])) for units in self.time_sizes
        )

    def _time_axis_major(self, state, beat, carry, prev_state, training):
        """Time axis on (B, T, N, 2) float state -> time-major output (T, B*N, Ht), carry."""
        state_tm = tf.transpose(state, [1, 0, 2, 3])  # (T, B, N, 2)
        if prev_state is None:
            first = tf.zeros_like(state_tm[:1])
        else:
            first = tf.cast(prev_state, tf.float32)[None]
        prev = tf.concat([first, state_tm[:-1]], axis=0)
        beat_tm = tf.transpose(tf.cast(beat, tf.int32))  # (T, B)
        features = note_features(prev, beat_tm, lowest=self.lowest)  # (T, B, N, F)
        steps = tf.shape(features)[0]
        features = tf.reshape(features, [steps, -1, N_FEATURES])
        return self._time_layers(features, carry, training)

    def time_axis(self, state, beat, carry=None, prev_state=None, training=False):
        """Teacher-forced time axis over a whole stretch of steps.

        Args:
            state: (B, T, N, 2) note states of steps 0..T-1.
            beat: (B, T) int bar position of steps 0..T-1.
            carry: time-axis state to start from (default `initial_time_carry(B)`).
            prev_state: (B, N, 2) the step before step 0 (default silence).

        Returns:
            time_out (B, T, N, Ht): the time axis' view for predicting each step t (made from
            steps < t), and the carry after the input of step T-1. That input was built from
            state[:, T-2]; the last step state[:, T-1] has not been seen yet, so continue with
            `time_step(state[:, -1], beat_of_step_T, carry)`.
        """
        state = tf.cast(tf.convert_to_tensor(state), tf.float32)
        self._check_notes(state)
        batch = tf.shape(state)[0]
        if carry is None:
            carry = self.initial_time_carry(batch)
        out, carry = self._time_axis_major(state, beat, carry, prev_state, training)
        steps = tf.shape(out)[0]
        out = tf.reshape(out, [steps, batch, self.n_notes, self.time_sizes[-1]])
        return tf.transpose(out, [1, 0, 2, 3]), carry

    def time_step(self, prev_state, beat, carry):
        """One step of the time axis.

        Args:
            prev_state: (B, N, 2) note states of the previous step.
            beat: (B,) int bar position of the step being predicted.
            carry: from `initial_time_carry`, `time_axis` or an earlier `time_step`.

        Returns:
            (time_out (B, N, Ht), carry).
        """
        prev_state = tf.convert_to_tensor(prev_state)
        self._check_notes(prev_state)
        batch = tf.shape(prev_state)[0]
        x = tf.reshape(note_features(prev_state, beat, lowest=self.lowest), [-1, N_FEATURES])
        new_carry = []
        for layer, (h, c) in zip(self.time_layers, carry, strict=True):
            z = layer.project(x, self.precision) + matmul(h, layer.recurrent_kernel, self.precision)
            x, c = _lstm_update(z, c)
            new_carry.append((x, c))
        return tf.reshape(x, [batch, self.n_notes, self.time_sizes[-1]]), tuple(new_carry)

    # -- the single-step API (note axis) ------------------------------------------------------

    def note_inputs(self, time_out):
        """The first note layer's input projection of the time output, for every note at once.

        time_out (..., N, Ht) -> (..., N, G), G = `note_input_size`. The choice of the note below
        is added inside `note_step` (or the teacher-forced pass).
        """
        first = self.note_layers[0]
        ht = self.time_sizes[-1]
        flat = tf.reshape(time_out, [-1, ht])
        out = matmul(flat, first.kernel[:ht], self.precision) + first.bias
        return tf.reshape(out, tf.concat([tf.shape(time_out)[:-1], [self.note_input_size]], 0))

    def initial_note_carry(self, batch_size):
        """Zero state of the note axis: ((h, c) per layer), each (batch_size, H); with
        `chord_below` and/or `struck_below`, then each chord below so far (sounding, then
        struck): (window, intervals), each (batch_size, 12)."""
        layers = tuple(
            (tf.zeros([batch_size, units]), tf.zeros([batch_size, units]))
            for units in self.note_sizes
        )
        for _ in range(self._n_chords_below):
            layers += ((tf.zeros([batch_size, 12]), tf.zeros([batch_size, 12])),)
        return layers

    def note_step(self, note_input, prev_choice, carry):
        """One note of the note axis.

        Args:
            note_input: (B, G) this note's row of `note_inputs`.
            prev_choice: (B, 2) play, articulate chosen for the note below (zeros for note 0).
            carry: from `initial_note_carry` or the previous `note_step` (with `chord_below` or
                `struck_below` it also carries the chords chosen so far, so the loop stays the
                same).

        Returns:
            (logits (B, 2), carry).
        """
        choice = tf.cast(prev_choice, note_input.dtype)
        new_carry, chords = [], []
        n_chords = self._n_chords_below
        if n_chords:
            inputs = [choice]
            for bits, (window, intervals) in zip(
                self._chord_bits(choice), carry[-n_chords:], strict=True
            ):
                # Move up one note: the note just below joins the chord (if it sounds, or is
                # struck), and every interval grows by a semitone.
                below = bits[:, None]  # (B, 1)
                window = tf.concat([below, window[:, :-1]], axis=1)
                semitone = tf.one_hot(1, 12, dtype=intervals.dtype)  # interval class of n-1
                intervals = tf.roll(intervals, shift=1, axis=1) + below * semitone
                chords.append((window, intervals))
                inputs += [window, intervals]
            carry = carry[:-n_chords]
            choice = tf.concat(inputs, axis=1)
        projected = note_input + matmul(choice, self._choice_kernel(), self.precision)
        x = None
        for i, (layer, (h, c)) in enumerate(zip(self.note_layers, carry, strict=True)):
            if i > 0:
                projected = layer.project(x, self.precision)
            z = projected + matmul(h, layer.recurrent_kernel, self.precision)
            x, c = _lstm_update(z, c)
            new_carry.append((x, c))
        new_carry.extend(chords)
        return tf.matmul(x, self.out_kernel) + self.out_bias, tuple(new_carry)


# --------------------------------------------------------------------------------------------
# Likelihood
# --------------------------------------------------------------------------------------------


def nats_of_each_step(state, logits) -> tuple[tf.Tensor, tf.Tensor]:
    """-ln P of the true play bits and of the articulate bits of the notes that play.

    Returns two float32 (B, T) tensors, nats summed over the notes of each step: (play,
    articulate). Whether a silent note is "articulated" means nothing, so those bits count 0.
    Computed from logits with sigmoid cross-entropy, so it is finite however confident the
    model is.
    """
    state = tf.cast(state, tf.float32)
    logits = tf.cast(logits, tf.float32)
    bits = tf.nn.sigmoid_cross_entropy_with_logits(labels=state, logits=logits)
    play = tf.reduce_sum(bits[..., 0], axis=-1)
    articulate = tf.reduce_sum(bits[..., 1] * state[..., 0], axis=-1)
    return play, articulate


def nll_per_step(state, logits, articulation: bool = True) -> tf.Tensor:
    """Negative log-likelihood of the true states, in nats per time step: float32 (B,).

    Summed over notes, averaged over the steps of each sequence. Counts every play bit and,
    with `articulation`, the articulate bit of each note that plays (`nats_of_each_step`).
    """
    play, articulate = nats_of_each_step(state, logits)
    return tf.reduce_mean(play + articulate if articulation else play, axis=-1)


def _play_nats(state, logits):
    """(B, T) nats of the play bits of each step, for `PlayNLL`."""
    return nats_of_each_step(state, logits)[0]


@keras.saving.register_keras_serializable(package="musicutils")
class BiaxialNLL(keras.losses.Loss):
    """Keras loss: nats per time step, play + articulate-where-playing (see `nll_per_step`).

    y_true = state (B, T, N, 2), y_pred = logits (B, T, N, 2), optional sample_weight (B, T).
    `call` returns the nats of each step (B, T) and the reduction "mean_with_sample_weight"
    divides their weighted sum by the sum of the weights: with per-step weights of 1 on real
    steps and 0 on padding (`datasets.SegmentSampler`), the loss is the mean over the real steps
    only. Without weights it is the mean over all B * T steps, the mean of `nll_per_step`.
    (Keras' "sum_over_batch_size" would divide by B * T even where weights are 0, diluting a
    padded batch's loss.) Under a multi-device strategy each replica averages its own share of
    the batch.
    """

    def __init__(self, name: str = "biaxial_nll", reduction="mean_with_sample_weight", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        play, articulate = nats_of_each_step(y_true, y_pred)
        return play + articulate


@keras.saving.register_keras_serializable(package="musicutils")
class PlayNLL(keras.metrics.MeanMetricWrapper):
    """Keras metric: nats per time step counting the play bits only.

    With per-step sample weights (B, T) it is the weighted mean over every step seen since the
    last reset (Keras' `Mean`: sum of weight * nats over sum of weights), so padding (weight 0)
    never counts. Keras 3 passes sample weights only to `compile(weighted_metrics=...)`, not
    to `metrics=`, so `train.train` compiles it as a weighted metric.
    """

    def __init__(self, name: str = "play_nll", dtype=None):
        super().__init__(fn=_play_nats, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


# --------------------------------------------------------------------------------------------
# Cost model
# --------------------------------------------------------------------------------------------


def flops_per_forward(config: dict, batch_size: int, n_steps: int) -> float:
    """Floating-point operations of one teacher-forced forward pass (matmuls, 2 per multiply-add).

    Counts the LSTM input projections, recurrent products and the output layer; the gate
    arithmetic and features (a few percent) are left out. `config` is `model.get_config()`.
    """
    n_notes = config.get("n_notes", 78)
    time_sizes = config.get("time_sizes", (300, 300))
    note_sizes = config.get("note_sizes", (100, 50))
    rows = batch_size * n_steps * n_notes  # every (piece, step, note) cell
    flops, width = 0.0, N_FEATURES
    for units in time_sizes:
        flops += 2.0 * rows * (width + units) * 4 * units
        width = units
    chords = bool(config.get("chord_below", False)) + bool(config.get("struck_below", False))
    width += 2 + CHORD_BELOW_WIDTH * chords
    for units in note_sizes:
        flops += 2.0 * rows * (width + units) * 4 * units
        width = units
    return flops + 2.0 * rows * width * 2


def flops_per_train_step(config: dict, batch_size: int, n_steps: int) -> float:
    """FLOPs of a training step: forward + backward (twice the forward's matmuls) = 3x forward."""
    return 3.0 * flops_per_forward(config, batch_size, n_steps)


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------


def save_model(model: BiaxialModel, folder) -> Path:
    """Write `folder/config.json` (the model's get_config) and `folder/model.weights.h5`.

    Each file is written to a temp file in the same folder and moved into place, so a crash
    never leaves a half-written file under the final name. Returns the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(model.get_config(), indent=2) + "\n"

    with atomic_path(folder / WEIGHTS_FILE, suffix=".weights.h5") as temp:
        temp.unlink()  # h5py wants to create the file itself
        with warnings.catch_warnings():
            # Keras' h5 writer calls np.array(variable); numpy 2 warns about the copy keyword.
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            model.save_weights(temp)
    with atomic_open(folder / CONFIG_FILE, "w", encoding="utf-8") as file:
        file.write(text)
    return folder


def _check_config(config: dict, path: Path) -> None:
    """A CheckpointError naming config.json unless its shape settings are present and sane.

    The pitch range has no weights of its own, so a wrong n_notes or lowest would otherwise
    load without complaint and compose on the wrong keys.
    """
    required = ("n_notes", "lowest", "time_sizes", "note_sizes")
    missing = [key for key in required if key not in config]
    if missing:
        raise CheckpointError(
            f"{path}: {', '.join(missing)} missing (not the settings of a biaxial model)"
        )
    try:
        n_notes = checked("n_notes", config["n_notes"], error=CheckpointError)
        lowest = checked("lowest", config["lowest"], error=CheckpointError)
        if "steps_per_beat" in config:
            checked("steps_per_beat", config["steps_per_beat"], error=CheckpointError)
        if config.get("voices") is not None:
            checked("voices", config["voices"], error=CheckpointError)
        for axis in ("time_sizes", "note_sizes"):
            sizes = config[axis]
            if not isinstance(sizes, list) or not sizes:
                raise CheckpointError(f"{axis} should list layer sizes, not {sizes!r}")
            for i, size in enumerate(sizes):
                checked(f"{axis}[{i}]", size, kind="layer_size", error=CheckpointError)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if lowest + n_notes > 128:
        raise CheckpointError(
            f"{path}: notes MIDI {lowest}..{lowest + n_notes - 1} go past the highest, 127"
        )


def load_model(folder) -> BiaxialModel:
    """Rebuild a model saved by `save_model` ("pretrained": the bundled model, wherever the
    package is); raises CheckpointError saying what is wrong."""
    folder = model_folder(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such model folder")
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"{folder}: {path.name} is missing; not a saved model folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not readable JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object of model settings")
    _check_config(config, config_path)
    try:
        model = BiaxialModel.from_config(config)
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. an unknown key
        raise CheckpointError(f"{config_path}: settings do not describe a model ({exc})") from exc
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            model.load_weights(str(weights_path))
    except Exception as exc:  # h5py / keras raise many types for broken files
        raise CheckpointError(
            f"{weights_path}: weights do not load into the model of {CONFIG_FILE} ({exc})"
        ) from exc
    return model
