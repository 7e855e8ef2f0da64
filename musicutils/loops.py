"""Run-time loops in TensorFlow: a toy autoregressive sampler, written twice (notebook 02).

The biaxial model generates music one time step after another, and inside a step one note after
another; each draw depends on the draws before it, so neither the number of iterations' results
nor their values are known until the loop runs. This module holds the small pieces notebook 02
uses to teach that loop before `musicutils.generate` relies on it:

- a Markov chain over pitches, its transition matrix counted from a melody
  (`transitions_from_melody`, `ODE_TO_JOY`);
- `MarkovSampler`, which samples the chain either as a Python loop of eager TF ops
  (`sample_eager`) or as one `tf.function` holding a `tf.while_loop` that collects the states in
  a `tf.TensorArray` (`sample_graph`). Both read the same seeded `tf.random.Generator` and run
  the same ops in the same order, so they return the same sequence for the same seed by
  construction;
- `time_call`, the median wall-clock time of a call.

Pitch is an index from `lowest` (as everywhere past `musicutils.midi`); time is counted in steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ._tf import tf
from .midi import note_name

__all__ = [
    "ODE_TO_JOY",
    "MarkovSampler",
    "next_state",
    "pitch_name",
    "time_call",
    "transitions_from_melody",
]

#: The "Ode to Joy" theme (Beethoven, Symphony no. 9), as MIDI pitches, one per quarter note
#: (held notes repeated, dotted rhythms flattened): C major, G3 (55) up to G4 (67).
ODE_TO_JOY: tuple[int, ...] = (
    # E E F G | G F E D | C C D E | E D D
    64, 64, 65, 67, 67, 65, 64, 62, 60, 60, 62, 64, 64, 62, 62,
    # E E F G | G F E D | C C D E | D C C
    64, 64, 65, 67, 67, 65, 64, 62, 60, 60, 62, 64, 62, 60, 60,
    # D D E C | D E F E C | D E F E D | C D G3
    62, 62, 64, 60, 62, 64, 65, 64, 60, 62, 64, 65, 64, 62, 60, 62, 55,
    # E E F G | G F E D | C C D E | D C C
    64, 64, 65, 67, 67, 65, 64, 62, 60, 60, 62, 64, 62, 60, 60,
)  # fmt: skip

#: Scientific pitch name of a MIDI pitch: 60 -> 'C4', 55 -> 'G3', 61 -> 'C#4'.
pitch_name = note_name


def transitions_from_melody(
    pitches: Sequence[int], lowest: int = 48, n_states: int = 25, wrap: bool = True
) -> np.ndarray:
    """First-order Markov transition matrix counted from a melody.

    Args:
        pitches: MIDI pitches of the melody in order, each in [lowest, lowest + n_states).
        lowest: MIDI pitch of state 0 (default 48 = C3).
        n_states: number of states, consecutive semitones (default 25: C3 up to C5).
        wrap: also count the step from the last note back to the first, so every pitch the
            melody plays has at least one successor (a chain started on one never gets stuck).

    Returns:
        float32 array (n_states, n_states); row i holds P(next = j | current = i), the share of
        the melody's steps out of pitch `lowest + i` that went to `lowest + j`. Most entries are
        exactly zero: a sampled chain can only make moves the melody made. Rows of pitches the
        melody never leaves (it never plays them) are uniform, so the matrix is a valid
        stochastic matrix; a chain started on a melody pitch never reaches them.

    Raises:
        ValueError: a pitch outside the range, or fewer than two notes.
    """
    index = np.asarray(pitches, dtype=np.int64) - lowest
    if index.ndim != 1 or len(index) < 2:
        raise ValueError("a melody needs at least two notes to have transitions")
    if index.min() < 0 or index.max() >= n_states:
        raise ValueError(
            f"melody pitches must lie in [{lowest}, {lowest + n_states}) "
            f"({pitch_name(lowest)} to {pitch_name(lowest + n_states - 1)}); "
            f"got {pitch_name(lowest + int(index.min()))} to "
            f"{pitch_name(lowest + int(index.max()))}"
        )
    sources, targets = index[:-1], index[1:]
    if wrap:
        sources = np.append(sources, index[-1])
        targets = np.append(targets, index[0])
    counts = np.zeros((n_states, n_states), np.float64)
    np.add.at(counts, (sources, targets), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    transition = np.where(totals > 0, counts / np.maximum(totals, 1.0), 1.0 / n_states)
    return transition.astype(np.float32)


def next_state(cdf: tf.Tensor, state: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
    """One draw of the chain by inverting the CDF of the current row.

    Args:
        cdf: float32 (S, S), cumulative sums of the transition matrix along each row.
        state: int32 scalar, the current state.
        uniform: float32 scalar in [0, 1).

    Returns:
        int32 scalar, the next state: the first j with cdf[state, j] > uniform * cdf[state, -1].
        Scaling by the row's own total (instead of trusting float sums to reach 1) means the
        chosen j always has cdf[j] > cdf[j - 1], i.e. positive probability: zero entries of the
        matrix are never sampled, whatever the rounding.
    """
    row = tf.gather(cdf, state)
    threshold = uniform * row[-1]
    return tf.reduce_sum(tf.cast(row <= threshold, tf.int32))


class MarkovSampler:
    """Samples a pitch sequence from a Markov chain, as an eager Python loop or in one graph.

    Both methods draw one `generator.uniform([])` per step from the same seeded
    `tf.random.Generator` and pass it to `next_state`, so for equal generator states they return
    equal sequences: the graph version is the eager one with the Python `for` replaced by a
    `tf.while_loop`, not a different algorithm. (`tf.random.categorical` would not give this:
    its stateless seeds differ between the two styles.)

    Args:
        transition: (S, S) row-stochastic matrix, e.g. from `transitions_from_melody`; rows are
            normalised by their sums, which must be positive.
        seed: seed of the generator; `reseed` starts it over.

    Attributes:
        generator: the `tf.random.Generator` both samplers draw from.
        traces: how many times `sample_graph`'s `tf.function` has been traced (1 after the first
            call, whatever the lengths asked for later, thanks to its input signature).
    """

    def __init__(self, transition: np.ndarray, seed: int = 0):
        transition = np.asarray(transition, dtype=np.float32)
        if transition.ndim != 2 or transition.shape[0] != transition.shape[1]:
            raise ValueError(f"transition must be a square matrix; got shape {transition.shape}")
        if (transition < 0).any() or not (transition.sum(axis=1) > 0).all():
            raise ValueError("transition must be non-negative with a positive sum in every row")
        self.n_states = transition.shape[0]
        self.cdf = tf.constant(np.cumsum(transition, axis=1, dtype=np.float32))
        self.generator = tf.random.Generator.from_seed(seed)
        self.traces = 0
        # A scalar int32 signature: one trace serves every start and length, and Python ints
        # passed in are converted to tensors instead of being baked into a new graph each time.
        self._graph_loop = tf.function(
            self._while_loop,
            input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)],
        )

    def reseed(self, seed: int) -> None:
        """Put the generator back at the start of the stream for `seed`."""
        self.generator.reset_from_seed(seed)

    def _check(self, start: int, steps: int) -> None:
        if not 0 <= start < self.n_states:
            raise ValueError(f"start must be a state in [0, {self.n_states}); got {start}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1; got {steps}")

    def sample_eager(self, start: int, steps: int) -> np.ndarray:
        """Python loop, one eager `uniform` + `next_state` per step.

        Returns:
            int32 array (steps,): state 0 is `start`, each later one drawn given the one before.
        """
        self._check(start, steps)
        state = tf.constant(start, tf.int32)
        states = [state]
        for _ in range(steps - 1):
            state = next_state(self.cdf, state, self.generator.uniform([]))
            states.append(state)
        return tf.stack(states).numpy()

    def sample_graph(self, start: int, steps: int) -> np.ndarray:
        """Same draws as `sample_eager`, as one call of a `tf.function` with a `tf.while_loop`.

        Returns:
            int32 array (steps,), equal to what `sample_eager` returns from the same generator
            state.
        """
        self._check(start, steps)
        return self._graph_loop(start, steps).numpy()

    def _while_loop(self, start: tf.Tensor, steps: tf.Tensor) -> tf.Tensor:
        self.traces += 1  # Python side effect: runs when traced, not when the graph runs
        states = tf.TensorArray(tf.int32, size=steps, element_shape=[]).write(0, start)

        def body(t, state, states):
            state = next_state(self.cdf, state, self.generator.uniform([]))
            return t + 1, state, states.write(t, state)

        # Each step needs the state before it, so iterations cannot overlap: parallel_iterations
        # would buy nothing here.
        _, _, states = tf.while_loop(
            lambda t, state, states: t < steps, body, (tf.constant(1), start, states)
        )
        return states.stack()


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of `fn()` over `repeats` calls, after `warmup` untimed calls.

    The warm-up calls absorb one-off costs (a `tf.function`'s tracing, first-call allocation),
    so the result is the steady-state cost of a call; time a first call separately if that
    one-off cost is what you want. The median resists the odd slow call on a shared machine.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - begin)
    return float(np.median(seconds))
