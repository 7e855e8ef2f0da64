"""Compose with a trained biaxial model: the whole sampling loop inside one `tf.function`.

The biaxial model predicts a time step note by note, from the lowest pitch up: whether note n
plays depends on what was chosen for the notes below it in the same step. So composing is two
nested loops, over time steps and, inside each step, over the N notes. Here both are
`tf.while_loop`s inside one traced (and by default XLA-compiled) function; the per-note inputs of
the next step are computed in the graph from the step just sampled (`model.time_step` calls
`features.note_features`), so no Python runs between steps.

    >>> from musicutils import generate, model as biaxial
    >>> net = biaxial.load_model("pretrained")
    >>> states = generate.generate(net, 256, batch_size=4, seed=1)   # (4, 256, 78, 2) uint8

Sampling rules (per note, per step, for every piece of the batch):

* temperature `T`: both logits are divided by `T` before the sigmoid. `T < 1` sharpens the
  probabilities (more predictable music), `T > 1` flattens them; `T -> 0` picks the more likely
  choice every time.
* articulate is only sampled where play was: a note that does not sound cannot be struck.
* the adaptive rule (`AdaptiveRule`), see there: it raises P(play) to a power below 1 while a piece
  has been (nearly) silent, which pushes a model that has fallen into silence back into playing.
* the voice rule (`voices`, per step, not per note): each step is drawn `draws` times (2 by
  default) and the first draw whose number of sounding notes is closest to `voices` is kept. A
  model trained on music of a fixed texture knows its number of voices (`model.voices`, 4 for
  the chorales; `train` measures it), and the rule is on by default for it. Without it a model
  that drops a voice tends to go on in the thinner texture for bars, because that is the music
  it then reads back; with it the texture stays that of the training music. Between draws
  equally close to `voices` it keeps the first that does not move two voices in parallel fifths
  or octaves from the step before (`parallel_motion`; `avoid_parallels=False` lets the count
  alone decide): the first rule of four-part writing, which the model breaks far more often
  than Bach.

* a note that starts sounding is articulated (as in every state `midi.read` returns).

Randomness is stateless: the uniform numbers of step t are drawn with a key derived from
`(seed, t)` (and, for the voice rule's extra draws, the draw's number), so the same seed gives
the same music, and the traced function is reused by every call (the seed is a tensor
argument, not a Python constant baked into the graph). t counts from
the start of the piece, primer included: continuing the first P steps of a composition with the
same seed (and the adaptive rule off) composes its steps P, P+1, ... again.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import midi, stats
from ._checks import checked
from ._resources import PRETRAINED_PACKAGE, package_folder
from ._tf import tf
from .errors import CheckpointError, DataError

__all__ = [
    "AdaptiveRule",
    "closest_draw",
    "compose_demo",
    "DEFAULT_CHECKPOINT",
    "XLA_MODES",
    "generate",
    "generate_from_args",
    "generate_reference",
    "load_checkpoint",
    "parallel_motion",
    "save_compositions",
    "step_uniforms",
]

#: The small pretrained model bundled with the package (a run folder; pretrained/ in a checkout).
DEFAULT_CHECKPOINT = package_folder(PRETRAINED_PACKAGE)


@dataclass(frozen=True)
class AdaptiveRule:
    """The anti-silence rule: while a piece is too quiet, sample `play` from P(play) ** exponent.

    An exponent below 1 raises every probability (0.01 ** 0.5 = 0.1) while keeping their order,
    so the model's own favourite notes come back first. Per piece of the batch, after each step:

    * if fewer than `min_notes` notes sounded in the step, the exponent drops by `step`
      (linearly), but never below `floor`;
    * otherwise it moves back towards 1 by the fraction `recovery` of the remaining distance.

    The exponent applies to the step after the one that was measured. It starts at 1.

    This is Daniel Johnson's 2015 `conservativity` rule (his `gen_adaptive`: fewer than 2 notes
    -> minus 0.02, else 30 % of the way back to 1), with these changes:

    * a floor. The original has none: after 50 quiet steps its exponent reaches 0, every one of
      the 78 notes plays with probability 1 (a full-keyboard cluster), and on the way there it
      already plays many notes the model thinks very unlikely. With the floor the push stays a
      bias towards the notes the model already likes;
    * per piece: in a batch each piece keeps its own exponent, so one silent piece does not make
      the others louder;
    * it runs inside the compiled sampling loop (the original round-tripped to Python each step).
    """

    min_notes: int = 2
    step: float = 0.02
    floor: float = 0.25
    recovery: float = 0.3

    def __post_init__(self):
        for name in ("min_notes", "step", "floor", "recovery"):
            checked(f"AdaptiveRule.{name}", getattr(self, name), kind=name)

    def as_tensor(self) -> tf.Tensor:
        return tf.constant([self.min_notes, self.step, self.floor, self.recovery], tf.float32)

    def update(self, exponent: np.ndarray, notes_playing: np.ndarray) -> np.ndarray:
        """Next exponent (B,) from this one (B,) and the notes sounding in the step (B,)."""
        quiet = notes_playing < self.min_notes
        lowered = np.maximum(self.floor, np.minimum(exponent, 1.0) - self.step)
        return np.where(quiet, lowered, exponent + (1.0 - exponent) * self.recovery).astype(
            np.float32
        )


def _update_exponent(exponent, notes_playing, rule):
    """In-graph twin of `AdaptiveRule.update`; `rule` = AdaptiveRule.as_tensor()."""
    min_notes, step, floor, recovery = rule[0], rule[1], rule[2], rule[3]
    lowered = tf.maximum(floor, tf.minimum(exponent, 1.0) - step)
    return tf.where(notes_playing < min_notes, lowered, exponent + (1.0 - exponent) * recovery)


def _step_seed(seed, t, draw=0):
    """Key of the random numbers of time step t: (2,) int64 from the call's seed (2,) int64.

    Draw 0 (every step's first draw) keys on (seed, t) alone; draw d > 0 of the voice rule on
    (seed, t, d), so the rule's first draw is exactly what plain sampling draws.
    """
    key = tf.random.experimental.stateless_fold_in(seed, tf.cast(t, tf.int64), alg="philox")
    extra = tf.random.experimental.stateless_fold_in(key, tf.cast(draw, tf.int64), alg="philox")
    return tf.where(tf.cast(draw, tf.int64) > 0, extra, key)


@tf.function(jit_compile=True, reduce_retracing=True)
def _step_uniforms(seed, t, batch_size, n_notes, draw):
    """Uniform numbers of draw `draw` of time step t: (2, N, B) float32; [0] decides play, [1]
    articulate.

    Always XLA-compiled, also when the sampling loop is not: XLA's generator gives other numbers
    than TensorFlow's own kernel for the same key, and the plain and compiled loops (and
    `generate_reference`) must compose the same music from the same seed.
    """
    shape = tf.stack([2, n_notes, batch_size])
    return tf.random.stateless_uniform(shape, seed=_step_seed(seed, t, draw), alg="philox")


def step_uniforms(seed: int, t: int, batch_size: int, n_notes: int, draw: int = 0) -> np.ndarray:
    """The uniform random numbers `generate` draws at time step t for `seed`: float32 (2, N, B).

    [0, n, b] decides whether note n of piece b plays, [1, n, b] whether it is articulated.
    `draw` numbers the voice rule's draws of the step (0: the first, the only one without the
    rule). They depend only on (seed, t, draw), not on the music so far: notebook 05 uses them
    to redo composed steps by hand and get the same notes.
    """
    return _step_uniforms(
        _seed_tensor(seed), tf.constant(t), tf.constant(batch_size), int(n_notes), tf.constant(draw)
    ).numpy()


def closest_draw(
    counts: np.ndarray, voices: int, parallels: np.ndarray | None = None
) -> np.ndarray:
    """The voice rule's choice: counts (D, B), notes sounding in each of D draws of a step for B
    pieces -> (B,) index of the first draw whose count is closest to `voices`.

    `parallels` (D, B) bool, from `parallel_motion`, breaks ties between equally close draws:
    of those, the first without parallel fifths or octaves is kept (the first of all when every
    one has them). None: the count alone decides.
    """
    # int64: counts summed from uint8 states are unsigned, and count - voices would wrap around
    distance = np.abs(np.asarray(counts, np.int64) - voices).astype(np.float64)
    if parallels is not None:
        distance += 0.5 * np.asarray(parallels, bool)  # below 1: only ties on the count change
    return np.argmin(distance, axis=0)


#: The most voices `parallel_motion` reads (a static size, so that the in-graph check stays a
#: small kernel: 16 x 16 voice pairs instead of N x N).
MAX_PARALLEL_VOICES = 16


def parallel_motion(before: np.ndarray, after: np.ndarray, voices: int) -> np.ndarray:
    """Whether two steps move in parallel fifths or octaves: play bits (..., N) -> bool (...).

    True where both steps sound exactly `voices` notes, read as voices from the bottom up, and
    two voices both move in the same direction from a fifth to a fifth (compound ones too) or
    from an octave (or unison) to an octave (`stats.parallel_motion_pairs`, which
    `stats.parallel_perfects` counts over pieces). The arrays broadcast against each other,
    e.g. the step before (B, N) against D draws (D, B, N).
    Textures of more than `MAX_PARALLEL_VOICES` voices are never flagged.
    """
    if voices > MAX_PARALLEL_VOICES:
        return np.zeros(np.broadcast_shapes(np.shape(before), np.shape(after))[:-1], bool)
    fifths, octaves = stats.parallel_motion_pairs(before, after, voices)
    return (fifths + octaves) > 0


@tf.function(jit_compile=True, reduce_retracing=True)
def _parallel_motion(before, after, voices):
    """In-graph twin of `parallel_motion`: play bits (B, N) and (D, B, N) float -> (D, B) bool.

    `voices` is a float scalar tensor. Voice k of a step is its k-th lowest sounding note.
    XLA-compiled, so that its few dozen small operations cost one kernel per step.
    """
    n_notes = tf.shape(after)[-1]
    pitch = tf.cast(tf.range(n_notes), tf.float32)

    def voice_pitches(play):  # (..., N) -> (..., V): pitch of voice k (k < count; else 0)
        voice = tf.cast(tf.cumsum(play, axis=-1), tf.int32) - 1  # -1 and >= V: no one-hot
        onehot = tf.one_hot(voice, MAX_PARALLEL_VOICES) * play[..., None]
        return tf.einsum("...nk,n->...k", onehot, pitch)

    was_at, now_at = voice_pitches(before)[None], voice_pitches(after)  # (1|D, B, V)
    move = now_at - was_at
    k = tf.range(MAX_PARALLEL_VOICES)
    pair = (k[:, None] < k[None, :]) & (tf.cast(k, tf.float32)[None, :] < voices)  # (low, high)
    together = (move[..., :, None] != 0) & (
        tf.sign(move[..., :, None]) == tf.sign(move[..., None, :])
    )
    was = tf.math.floormod(was_at[..., None, :] - was_at[..., :, None], 12.0)
    now = tf.math.floormod(now_at[..., None, :] - now_at[..., :, None], 12.0)
    perfect = ((was == 7) & (now == 7)) | ((was == 0) & (now == 0))
    moving = tf.reduce_any(together & perfect & pair, axis=[-2, -1])
    full = (tf.reduce_sum(before, -1) == voices)[None] & (tf.reduce_sum(after, -1) == voices)
    return moving & full & (voices <= MAX_PARALLEL_VOICES)


def _choose(logits, u_play, u_artic, inv_temperature, exponent, was_playing):
    """Sample one note for every piece: logits (B, 2), the rest (B,) -> choice (B, 2) float32.

    play ~ Bernoulli(sigmoid(l0 / T) ** exponent), compared in log space so that a very small
    P(play) does not underflow; articulate ~ Bernoulli(sigmoid(l1 / T)), only where play. A note
    that plays but did not play in the previous step (`was_playing` 0) is a new note, so it is
    articulated whatever the draw: every training state looks like that (`midi.read`), and so
    the model is fed, and `midi.write` / `midi.read` give back, exactly the state composed.
    """
    scaled = logits * inv_temperature
    log_p_play = exponent * tf.math.log_sigmoid(scaled[:, 0])
    play = tf.math.log(u_play) < log_p_play
    artic = play & ((u_artic < tf.sigmoid(scaled[:, 1])) | (was_playing < 0.5))
    return tf.cast(tf.stack([play, artic], axis=-1), tf.float32)


# ---------------------------------------------------------------------------------------------
# The compiled sampler.


#: Where XLA compiles the sampler: "notes" (the default) compiles the note loop of each step and
#: leaves the time step's large matrix products to TensorFlow's own multi-threaded kernels; "all"
#: compiles the whole loop (recompiled for every new number of steps); "off" compiles nothing.
XLA_MODES = ("notes", "all", "off")


class _Sampler:
    """The traced sampling functions of one model and precision (built once, reused by every
    call). They are traced with `model.precision` set to `precision`, whatever the model's own
    setting is at the time."""

    def __init__(self, model, xla: str, precision: str = "float32"):
        if xla not in XLA_MODES:
            raise ValueError(f"xla must be one of {XLA_MODES}, got {xla!r}")
        self.model = model
        self.precision = precision
        self.n_notes = int(model.n_notes)
        self.note_loop = (
            tf.function(self._note_loop, jit_compile=True) if xla == "notes" else self._note_loop
        )
        self._loop = self._traced_in_precision(self._loop)
        carry_spec = tf.nest.map_structure(
            lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), model.initial_time_carry(1)
        )
        self.loop = tf.function(
            self._loop,
            jit_compile=xla == "all",
            input_signature=[
                carry_spec,
                tf.TensorSpec([None, self.n_notes, 2], tf.float32),  # state before the first step
                tf.TensorSpec([None], tf.int32),  # bar position of every step to generate
                tf.TensorSpec([], tf.int32),  # index of the first step (primer length)
                tf.TensorSpec([2], tf.int64),  # seed
                tf.TensorSpec([], tf.float32),  # 1 / temperature
                tf.TensorSpec([4], tf.float32),  # AdaptiveRule.as_tensor()
                tf.TensorSpec([], tf.bool),  # adaptive on/off
                tf.TensorSpec([], tf.float32),  # voices (any value when draws is 1)
                tf.TensorSpec([], tf.int32),  # draws per step (1: the voice rule is off)
                tf.TensorSpec([], tf.bool),  # avoid parallel fifths and octaves between draws
            ],
        )
        self.prime = tf.function(
            self._traced_in_precision(lambda state, beat: model.time_axis(state, beat)[1]),
            input_signature=[
                tf.TensorSpec([None, None, self.n_notes, 2], tf.float32),
                tf.TensorSpec([None, None], tf.int32),
            ],
        )

    def _traced_in_precision(self, function):
        """`function` run (so traced) with the model's matrix products in `self.precision`."""
        from .model import use_precision

        @functools.wraps(function)
        def traced(*args):
            with use_precision(self.model, self.precision):
                return function(*args)

        return traced

    def _note_loop(self, note_inputs, uniforms, inv_temperature, exponent, prev_state):
        """Sample the N notes of one step, lowest first: note_inputs (B, N, G) -> (B, N, 2).

        uniforms (2, N, B) from `_step_uniforms`, exponent (B,), prev_state (B, N, 2) the step
        before.
        """
        model, n_notes = self.model, self.n_notes
        batch_size = tf.shape(note_inputs)[0]
        per_note = tf.transpose(note_inputs, [1, 0, 2])  # (N, B, G): note n is a cheap slice
        was_playing = tf.transpose(prev_state[..., 0])  # (N, B)

        def body(n, choice, carry, chosen):
            logits, carry = model.note_step(per_note[n], choice, carry)
            choice = _choose(
                logits, uniforms[0, n], uniforms[1, n], inv_temperature, exponent, was_playing[n]
            )
            choice.set_shape([per_note.shape[1], 2])
            return n + 1, choice, carry, chosen.write(n, choice)

        _, _, _, chosen = tf.while_loop(
            lambda n, *_: n < n_notes,
            body,
            (
                tf.constant(0),
                tf.zeros(tf.stack([batch_size, 2])),
                model.initial_note_carry(batch_size),
                tf.TensorArray(tf.float32, size=n_notes, element_shape=tf.TensorShape([None, 2])),
            ),
        )
        return tf.transpose(chosen.stack(), [1, 0, 2])

    def _loop(
        self,
        carry,
        prev_state,
        beats,
        first_step,
        seed,
        inv_temperature,
        rule,
        adaptive,
        voices,
        draws,
        avoid_parallels,
    ):
        model, n_notes = self.model, self.n_notes
        batch_size = tf.shape(prev_state)[0]
        n_steps = tf.shape(beats)[0]

        def draw_uniforms(t):
            """(2, N, draws * B): the numbers of every draw of step t, draw-major."""
            per_draw = tf.map_fn(
                lambda d: _step_uniforms(seed, first_step + t, batch_size, n_notes, d),
                tf.range(draws),
                fn_output_signature=tf.TensorSpec([2, n_notes, None], tf.float32),
            )
            return tf.reshape(tf.transpose(per_draw, [1, 2, 0, 3]), [2, n_notes, -1])

        def body(t, prev, carry, exponent, states):
            beat = tf.fill(tf.reshape(batch_size, [1]), beats[t])
            time_out, carry = model.time_step(prev, beat, carry)
            note_inputs = model.note_inputs(time_out)
            # All draws of the step go through the note loop as one batch (draw-major copies).
            candidates = self.note_loop(
                tf.tile(note_inputs, [draws, 1, 1]),
                draw_uniforms(t),
                inv_temperature,
                tf.tile(exponent, [draws]),
                tf.tile(prev, [draws, 1, 1]),
            )
            candidates = tf.reshape(candidates, tf.stack([draws, batch_size, n_notes, 2]))
            counts = tf.reduce_sum(candidates[..., 0], axis=-1)  # (draws, B)
            # Distance to `voices`, + 0.5 for parallel fifths or octaves, ties broken towards
            # the earlier draw (as `closest_draw`): both additions stay below 1.
            distance = tf.abs(counts - voices)
            parallel = tf.cond(  # skipped with one draw (the rule off) or when allowed
                tf.logical_and(avoid_parallels, draws > 1),
                lambda: _parallel_motion(prev[..., 0], candidates[..., 0], voices),
                lambda: tf.zeros(tf.shape(counts), tf.bool),
            )
            distance += 0.5 * tf.cast(parallel, tf.float32)
            order = tf.cast(tf.range(draws), tf.float32)[:, None] / tf.cast(2 * draws, tf.float32)
            best = tf.argmin(distance + order, axis=0, output_type=tf.int32)
            step = tf.gather(tf.transpose(candidates, [1, 0, 2, 3]), best, batch_dims=1)
            playing = tf.reduce_sum(step[..., 0], axis=-1)
            exponent = tf.where(adaptive, _update_exponent(exponent, playing, rule), exponent)
            return t + 1, step, carry, exponent, states.write(t, tf.cast(step, tf.uint8))

        _, _, _, _, states = tf.while_loop(
            lambda t, *_: t < n_steps,
            body,
            (
                tf.constant(0),
                prev_state,
                carry,
                tf.ones(tf.reshape(batch_size, [1])),
                tf.TensorArray(tf.uint8, size=n_steps, element_shape=[None, n_notes, 2]),
            ),
        )
        return tf.transpose(states.stack(), [1, 0, 2, 3])  # (B, T, N, 2)


def _sampler(model, xla: str, precision: str | None = None) -> _Sampler:
    """The model's sampler for this XLA mode and precision (None: `model.precision`), built on
    first use and kept on the model.

    Stored with object.__setattr__ so that Keras does not track it as part of the model (it
    holds no weights); the model <-> sampler cycle is collected with the model.
    """
    per_model = model.__dict__.get("_musicutils_samplers")
    if per_model is None:
        per_model = {}
        object.__setattr__(model, "_musicutils_samplers", per_model)
    if precision is None:
        precision = getattr(model, "precision", "float32")
    else:
        from .model import resolve_precision

        precision = resolve_precision(precision)
    if (xla, precision) not in per_model:
        per_model[xla, precision] = _Sampler(model, xla, precision)
    return per_model[xla, precision]


# ---------------------------------------------------------------------------------------------
# Public API.


def _seed_tensor(seed: int | None) -> tf.Tensor:
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    return tf.constant([0, int(seed)], tf.int64)


def _voice_rule(model, voices, draws) -> tuple[int, int]:
    """(voices, draws) of the voice rule for `generate`'s arguments: (0, 1) when it is off.

    `voices` None takes the model's own (`model.voices`; absent or None: off); 0 turns it off.
    """
    draws = checked("draws", draws)
    if voices is None:
        voices = getattr(model, "voices", None)
    if voices is None:
        return 0, 1
    voices = checked("voices", voices)
    return (voices, draws) if voices > 0 else (0, 1)


def _checked_arguments(steps, batch_size, temperature, seed, meter, steps_per_beat, adaptive):
    """`generate`'s numbers, each in its range (`_checks.RANGES`), and the adaptive rule.

    Returns (steps, batch_size, temperature, seed, meter, steps_per_beat, rule) with rule an
    `AdaptiveRule` or None (off); raises DataError naming the argument and its range.
    """
    steps = checked("steps", steps)
    batch_size = checked("batch_size", batch_size)
    temperature = checked("temperature", temperature)
    seed = None if seed is None else checked("seed", seed)
    try:
        numerator, denominator = meter
    except (TypeError, ValueError):
        raise DataError(f"meter must be (numerator, denominator), got {meter!r}") from None
    meter = (
        checked("meter numerator", numerator, kind="meter_numerator"),
        checked("meter denominator", denominator, kind="meter_denominator"),
    )
    if steps_per_beat is not None:
        steps_per_beat = checked("steps_per_beat", steps_per_beat)
    if adaptive is True:
        rule = AdaptiveRule()
    elif adaptive is False or adaptive is None:
        rule = None
    elif isinstance(adaptive, AdaptiveRule):
        rule = adaptive
    else:
        raise DataError(f"adaptive must be True, False or an AdaptiveRule, got {adaptive!r}")
    return steps, batch_size, temperature, seed, meter, steps_per_beat, rule


def _model_steps_per_beat(model, steps_per_beat: int | None) -> int:
    if steps_per_beat is not None:
        return int(steps_per_beat)
    return int(model.steps_per_beat)


def _primer_arrays(primer, model, batch_size, meter, steps_per_beat):
    """Primer as float32 (B, P, N, 2) on the model's pitch range + its bar positions (B, P).

    Returns (state, beat, meters, steps_per_beat, name) where meters continue after the primer.
    """
    n_notes, lowest = int(model.n_notes), int(model.lowest)
    if isinstance(primer, midi.Piece):
        if primer.steps_per_beat != steps_per_beat:
            # Its steps would be read as the model's: twice too fast, or four times too slow.
            raise DataError(
                f"primer {primer.name or ''}: {primer.steps_per_beat} steps per beat, but the "
                f"model composes on {steps_per_beat}; read it with midi.read(path, "
                f"steps_per_beat={steps_per_beat})"
            )
        state = _to_range(primer.state, primer.lowest, lowest, n_notes)
        meters, spb = primer.meters, primer.steps_per_beat
        beat = primer.bar_position()
    else:
        state = np.asarray(primer)
        if state.ndim not in (3, 4) or state.shape[-2:] != (n_notes, 2):
            raise DataError(
                f"primer: expected a state array (steps, {n_notes}, 2) or (pieces, steps, "
                f"{n_notes}, 2) for this model, got shape {state.shape}"
            )
        meters, spb = [(0, *meter)], steps_per_beat
        beat = midi.bar_positions(meters, state.shape[-3], spb)
    if state.shape[-3] == 0:
        raise DataError("primer: it has no time steps")
    if state.ndim == 3:
        state = np.broadcast_to(state, (batch_size, *state.shape))
    elif state.shape[0] != batch_size:
        raise DataError(f"primer: holds {state.shape[0]} pieces but batch_size is {batch_size}")
    if ((state[..., 1] > 0) & (state[..., 0] == 0)).any():
        raise DataError("primer: a note is articulated without playing (articulate needs play)")
    beat = np.broadcast_to(beat.astype(np.int32), state.shape[:2])
    return state.astype(np.float32), beat, meters, spb


def _to_range(state: np.ndarray, from_lowest: int, lowest: int, n_notes: int) -> np.ndarray:
    """Re-index a (T, N', 2) state from pitch range [from_lowest, ...) onto the model's range."""
    if from_lowest == lowest and state.shape[1] == n_notes:
        return state
    out = np.zeros((state.shape[0], n_notes, 2), np.uint8)
    lo = max(from_lowest, lowest)
    hi = min(from_lowest + state.shape[1], lowest + n_notes)
    if hi > lo:
        out[:, lo - lowest : hi - lowest] = state[:, lo - from_lowest : hi - from_lowest]
    return out


def generate(
    model,
    steps: int,
    *,
    batch_size: int = 1,
    primer: midi.Piece | np.ndarray | None = None,
    temperature: float = 1.0,
    adaptive: bool | AdaptiveRule = True,
    seed: int | None = None,
    meter: tuple[int, int] = (4, 4),
    steps_per_beat: int | None = None,
    include_primer: bool = False,
    voices: int | None = None,
    draws: int = 2,
    avoid_parallels: bool = True,
    xla: str = "notes",
    precision: str | None = None,
) -> np.ndarray:
    """Compose `batch_size` pieces of `steps` time steps: uint8 (B, steps, N, 2).

    Args:
        model: a `BiaxialModel` (or anything with its single-step API).
        steps: number of new time steps per piece.
        batch_size: pieces composed together; they share every matrix product, so eight cost
            far less than eight single runs.
        primer: music to continue: a `midi.Piece` on the model's grid (read it with
            `midi.read(path, steps_per_beat=model.steps_per_beat)`; another grid is refused; its
            meter and bar positions carry on, notes outside the model's range are left out), a
            state array (P, N, 2) shared by all pieces, or (B, P, N, 2), one per piece. It is fed
            through the time axis first; the composition starts at step P.
        temperature: in [1e-6, 100] (`_checks.RANGES`); logits are divided by it. Below 1 is
            more conservative.
        adaptive: True for the default `AdaptiveRule`, False for plain sampling, or a rule.
        seed: same seed (and arguments) -> same music. None draws a fresh one.
        meter: (numerator, denominator) of the new steps when the primer is not a Piece.
        steps_per_beat: time steps per quarter note of the model's training data (bar
            positions); default `model.steps_per_beat`, the grid of its training data.
        include_primer: return the primer (unchanged, on the model's pitch range) followed by
            the new steps instead of the new steps only.
        voices: the voice rule: draw every step `draws` times and keep the first draw whose
            number of sounding notes is closest to `voices`. None (default): the model's own
            `voices` (what `train` measured on its training music; None there, as in models
            trained before it was measured, leaves the rule off); 0: off. With the rule off,
            or `draws` 1, each step is drawn once, as plain sampling.
        draws: draws per step when the voice rule is on, in [1, 64]; the note loop runs over
            all of them at once, so 2 draws cost less than twice the time.
        avoid_parallels: with the voice rule on, of the draws equally close to `voices`, keep
            the first that does not move two voices in parallel fifths or octaves from the
            step before (`parallel_motion`). False: the count alone decides.
        xla: which part of the loop XLA compiles, one of `XLA_MODES` ("notes": the note loop,
            fastest on CPU; "all"; "off"). The music is the same in every mode.
        precision: of the model's matrix products: "float32", "bfloat16" or "auto"
            (`model.resolve_precision`); None (default) keeps the model's own `precision`.

    Returns:
        uint8 (B, T, N, 2) with T = steps (+ P with include_primer); articulate implies play.
    """
    steps, batch_size, temperature, seed, meter, steps_per_beat, rule = _checked_arguments(
        steps, batch_size, temperature, seed, meter, steps_per_beat, adaptive
    )
    voices, draws = _voice_rule(model, voices, draws)
    spb = _model_steps_per_beat(model, steps_per_beat)
    sampler = _sampler(model, xla, precision)
    n_notes = sampler.n_notes

    if primer is None:
        start, meters = 0, [(0, *meter)]
        carry = model.initial_time_carry(batch_size)
        prev = tf.zeros([batch_size, n_notes, 2])
        primer_state = np.zeros((batch_size, 0, n_notes, 2), np.uint8)
    else:
        primer_state, primer_beat, meters, spb = _primer_arrays(
            primer, model, batch_size, meter, spb
        )
        start = primer_state.shape[1]
        carry = sampler.prime(tf.constant(primer_state), tf.constant(primer_beat))
        prev = tf.constant(primer_state[:, -1])
    beats = midi.bar_positions(meters, steps, spb, start=start)

    if steps == 0:  # TensorArray.stack cannot stack nothing of an unknown batch size
        states = np.zeros((batch_size, 0, n_notes, 2), np.uint8)
    else:
        states = sampler.loop(
            carry,
            prev,
            tf.constant(beats, tf.int32),
            tf.constant(start, tf.int32),
            _seed_tensor(seed),
            tf.constant(1.0 / temperature, tf.float32),
            (rule or AdaptiveRule()).as_tensor(),
            tf.constant(bool(rule)),
            tf.constant(voices, tf.float32),
            tf.constant(draws, tf.int32),
            tf.constant(bool(avoid_parallels)),
        ).numpy()
    if include_primer:
        states = np.concatenate([primer_state.astype(np.uint8), states], axis=1)
    return states


def generate_reference(
    model,
    steps: int,
    *,
    batch_size: int = 1,
    temperature: float = 1.0,
    adaptive: bool | AdaptiveRule = True,
    seed: int | None = None,
    meter: tuple[int, int] = (4, 4),
    steps_per_beat: int | None = None,
    voices: int | None = None,
    draws: int = 2,
    avoid_parallels: bool = True,
    precision: str | None = None,
) -> np.ndarray:
    """The same sampler written naively: a Python loop calling the model's step API eagerly.

    Draws the same random numbers as `generate`, so with the same seed it composes the same
    music (up to float rounding at the decision thresholds). It is the correctness and speed
    reference for the compiled loop (tests, benchmarks/bench_generate.py); use `generate`.
    """
    steps, batch_size, temperature, seed, meter, steps_per_beat, rule = _checked_arguments(
        steps, batch_size, temperature, seed, meter, steps_per_beat, adaptive
    )
    if precision is not None:  # run the whole loop in that precision, then restore the model's
        from .model import use_precision

        with use_precision(model, precision):
            return generate_reference(
                model,
                steps,
                batch_size=batch_size,
                temperature=temperature,
                adaptive=rule or False,
                seed=seed,
                meter=meter,
                steps_per_beat=steps_per_beat,
                voices=voices,
                draws=draws,
                avoid_parallels=avoid_parallels,
            )
    voices, draws = _voice_rule(model, voices, draws)
    n_notes = int(model.n_notes)
    seed_t = _seed_tensor(seed)
    inv_t = tf.constant(1.0 / temperature, tf.float32)
    beats = midi.bar_positions([(0, *meter)], steps, _model_steps_per_beat(model, steps_per_beat))
    carry = model.initial_time_carry(batch_size)
    prev = tf.zeros([batch_size, n_notes, 2])
    exponent = np.ones(batch_size, np.float32)
    out = np.zeros((batch_size, steps, n_notes, 2), np.uint8)
    for t in range(steps):
        beat = tf.fill([batch_size], int(beats[t]))
        time_out, carry = model.time_step(prev, beat, carry)
        note_inputs = model.note_inputs(time_out)
        candidates = np.zeros((draws, batch_size, n_notes, 2), np.uint8)
        for d in range(draws):
            uniforms = _step_uniforms(
                seed_t, tf.constant(t), tf.constant(batch_size), n_notes, tf.constant(d)
            )
            note_carry = model.initial_note_carry(batch_size)
            choice = tf.zeros([batch_size, 2])
            for n in range(n_notes):
                logits, note_carry = model.note_step(note_inputs[:, n], choice, note_carry)
                choice = _choose(
                    logits, uniforms[0, n], uniforms[1, n], inv_t, exponent, prev[:, n, 0]
                )
                candidates[d, :, n] = choice.numpy()
        parallels = None
        if avoid_parallels and voices:
            parallels = parallel_motion(prev.numpy()[..., 0], candidates[..., 0], voices)
        best = closest_draw(candidates[..., 0].sum(-1), voices, parallels)
        out[:, t] = candidates[best, np.arange(batch_size)]
        if rule:
            exponent = rule.update(exponent, out[:, t, :, 0].sum(-1))
        prev = tf.constant(out[:, t], tf.float32)
    return out


# ---------------------------------------------------------------------------------------------
# Checkpoints and the command line.


def load_checkpoint(folder: str | os.PathLike | None = None):
    """Load the model of a run folder (default: the bundled `pretrained/`)."""
    from . import model as biaxial

    folder = Path(folder) if folder is not None else DEFAULT_CHECKPOINT
    if not folder.exists():
        hint = " (the bundled pretrained model is missing)" if folder == DEFAULT_CHECKPOINT else ""
        raise CheckpointError(f"{folder}: no such run folder{hint}")
    return biaxial.load_model(folder)


def _out_paths(out: Path, count: int) -> list[Path]:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(count)]


def save_compositions(
    states: np.ndarray,
    out: str | os.PathLike,
    *,
    lowest: int,
    steps_per_beat: int = 4,
    tempos: list[tuple[int, float]] | None = None,
    meters: list[tuple[int, int, int]] | None = None,
    png: bool = False,
    wav: bool = False,
) -> list[Path]:
    """Write composed states (B, T, N, 2) as MIDI files, plus piano-roll PNGs and WAVs.

    One piece is written to `out` (e.g. out/piece.mid); several to out/piece_0.mid,
    out/piece_1.mid, ... The PNG and WAV of each go beside it with the same stem. Tempos and
    meters default to 80 quarter notes per minute (the chorales' tempo) and 4/4. Returns every
    path written.
    """
    from . import audio, plotting

    written = []
    paths = _out_paths(Path(out), len(states))
    for path, state in zip(paths, states, strict=True):
        piece = midi.Piece(
            state=np.asarray(state, np.uint8),
            lowest=int(lowest),
            steps_per_beat=int(steps_per_beat),
            tempos=list(tempos or [(0, 80.0)]),
            meters=list(meters or [(0, 4, 4)]),
            name=path.name,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(midi.write(piece, path))
        if png:
            written.append(plotting.save_piano_roll(piece, path.with_suffix(".png")))
        if wav:
            written.append(audio.write_wav(piece, path.with_suffix(".wav")))
    return written


def compose_demo(
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    steps: int = 128,
    seed: int = 0,
) -> list[Path]:
    """The compose step of `make demo`: one piece of `steps` steps (eight 4/4 bars by default)
    from the checkpoint (default: the bundled pretrained model), written to out_dir as
    composed.mid, composed.png (piano roll) and composed.wav. Returns the paths written.
    """
    net = load_checkpoint(checkpoint)
    states = generate(net, steps, seed=seed)
    return save_compositions(
        states, Path(out_dir) / "composed.mid", lowest=int(net.lowest), png=True, wav=True
    )


def generate_from_args(args: argparse.Namespace) -> list[Path]:
    """`python -m musicutils generate ...`: compose and write OUT.mid (OUT_0.mid, ... for B > 1).

    With --png / --wav, a piano roll and an audio rendering are written beside each MIDI file.
    With --primer, each file holds the primer followed by its continuation. Returns the paths
    written.
    """
    net = load_checkpoint(args.checkpoint)
    primer = None
    if args.primer is not None:
        # On the model's own grid and pitch range (a JSB model: 1 step per beat, 88 keys).
        lowest = int(net.lowest)
        primer = midi.read(
            args.primer,
            steps_per_beat=_model_steps_per_beat(net, None),
            lowest=lowest,
            highest=lowest + int(net.n_notes),
        )
        if primer.dropped_notes:
            print(
                f"primer: {primer.dropped_notes} notes outside the model's range "
                f"{midi.note_name(lowest)}..{midi.note_name(lowest + int(net.n_notes) - 1)} "
                "left out"
            )
    # Draw the seed here when none is given, so that it can be printed and the piece recomposed.
    seed = args.seed if args.seed is not None else int(np.random.default_rng().integers(2**31))
    voices, draws = _voice_rule(net, getattr(args, "voices", None), getattr(args, "draws", 2))
    started = time.perf_counter()
    states = generate(
        net,
        args.steps,
        batch_size=args.batch_size,
        primer=primer,
        temperature=args.temperature,
        adaptive=args.adaptive,
        seed=seed,
        include_primer=primer is not None,
        voices=voices,
        draws=draws,
        avoid_parallels=getattr(args, "avoid_parallels", True),
        precision=getattr(args, "precision", None),
    )
    seconds = time.perf_counter() - started
    written = save_compositions(
        states,
        args.out,
        lowest=int(net.lowest),
        steps_per_beat=primer.steps_per_beat if primer else _model_steps_per_beat(net, None),
        tempos=primer.tempos if primer else None,
        meters=primer.meters if primer else None,
        png=args.png,
        wav=args.wav,
    )
    for path in written:
        print(f"wrote {path}")
    if voices:
        leading = (
            ", without parallel fifths or octaves where one as close has none"
            if getattr(args, "avoid_parallels", True) and draws > 1
            else ""
        )
        print(
            f"voice rule: the closest to {voices} voices of {draws} draws per step{leading} "
            "(--voices 0 turns it off)"
        )
    print(f"composed {len(states)} x {args.steps} steps in {seconds:.1f} s (--seed {seed})")
    return written
