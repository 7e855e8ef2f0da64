"""Tests for musicutils.loops: the Markov sampler's two styles agree, and obey the matrix."""

import numpy as np
import pytest

from musicutils import loops
from musicutils._tf import tf
from musicutils.loops import (
    ODE_TO_JOY,
    MarkovSampler,
    next_state,
    pitch_name,
    time_call,
    transitions_from_melody,
)

LOWEST = 48


@pytest.fixture(scope="module")
def ode_matrix():
    return transitions_from_melody(ODE_TO_JOY, lowest=LOWEST, n_states=25)


@pytest.fixture(scope="module")
def sampler(ode_matrix):
    return MarkovSampler(ode_matrix, seed=0)


def test_pitch_names():
    assert [pitch_name(p) for p in (60, 55, 61, 21, 108)] == ["C4", "G3", "C#4", "A0", "C8"]


def test_transitions_count_the_melody():
    # C D C E, wrapped back to C: C->D, D->C, C->E, E->C
    matrix = transitions_from_melody([60, 62, 60, 64], lowest=60, n_states=5)
    assert matrix.dtype == np.float32 and matrix.shape == (5, 5)
    np.testing.assert_allclose(matrix[0], [0, 0, 0.5, 0, 0.5])
    np.testing.assert_allclose(matrix[2], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(matrix[4], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(matrix[1], np.full(5, 0.2))  # never played: uniform
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)


def test_transitions_without_wrap_and_bad_input():
    matrix = transitions_from_melody([60, 62], lowest=60, n_states=3, wrap=False)
    np.testing.assert_allclose(matrix[0], [0, 0, 1])
    np.testing.assert_allclose(matrix[2], np.full(3, 1 / 3))  # last note has no successor
    with pytest.raises(ValueError, match="G4"):
        transitions_from_melody([60, 67], lowest=60, n_states=5)
    with pytest.raises(ValueError, match="two notes"):
        transitions_from_melody([60], lowest=60, n_states=5)


def test_next_state_inverts_the_cdf_and_skips_zero_entries():
    cdf = tf.constant(np.cumsum([[0.0, 0.5, 0.0, 0.5]], axis=1), tf.float32)
    state = tf.constant(0)
    draws = [int(next_state(cdf, state, tf.constant(u))) for u in (0.0, 0.49, 0.5, 0.999999)]
    assert draws == [1, 1, 3, 3]
    # a row whose float sum falls short of 1: the largest uniform must still land on a state
    # with positive probability, not run off the end or onto a trailing zero
    short = tf.constant([[0.3, 0.6, 0.6]], tf.float32)
    largest_uniform = np.nextafter(np.float32(1), np.float32(0))
    assert int(next_state(short, state, tf.constant(largest_uniform))) == 1


@pytest.mark.parametrize("steps", [1, 2, 50])
def test_eager_and_graph_give_the_same_sequence(sampler, steps):
    start = 64 - LOWEST
    sampler.reseed(123)
    eager = sampler.sample_eager(start, steps)
    sampler.reseed(123)
    graph = sampler.sample_graph(start, steps)
    assert eager.dtype == np.int32 and eager.shape == graph.shape == (steps,)
    assert eager[0] == start
    np.testing.assert_array_equal(eager, graph)


def test_graph_is_traced_once_for_all_lengths(ode_matrix):
    sampler = MarkovSampler(ode_matrix, seed=1)
    for steps in (3, 7, 11):
        sampler.sample_graph(60 - LOWEST, steps)
    assert sampler.traces == 1


def test_seeds_matter_and_generator_advances(sampler):
    start = 60 - LOWEST
    sequences = []
    for seed in (1, 2):
        sampler.reseed(seed)
        sequences.append(sampler.sample_graph(start, 40))
    assert not np.array_equal(sequences[0], sequences[1])
    sampler.reseed(1)
    sampler.sample_graph(start, 40)
    # without reseeding, the next call continues the stream instead of repeating it
    assert not np.array_equal(sampler.sample_eager(start, 40), sequences[0])


def test_samples_only_make_moves_the_melody_made(sampler, ode_matrix):
    sampler.reseed(5)
    sequence = sampler.sample_graph(67 - LOWEST, 2000)
    assert np.all(ode_matrix[sequence[:-1], sequence[1:]] > 0)
    played = np.unique(np.asarray(ODE_TO_JOY) - LOWEST)
    assert set(np.unique(sequence)) <= set(played)
    # visits follow the melody: E4, its most frequent note, far more often than G3, heard once
    counts = np.bincount(sequence, minlength=25)
    assert counts[64 - LOWEST] > counts[55 - LOWEST]


def test_sampler_rejects_bad_arguments(ode_matrix):
    with pytest.raises(ValueError, match="square"):
        MarkovSampler(np.ones((2, 3)))
    with pytest.raises(ValueError, match="positive sum"):
        MarkovSampler(np.zeros((2, 2)))
    sampler = MarkovSampler(ode_matrix)
    with pytest.raises(ValueError, match="start"):
        sampler.sample_eager(25, 4)
    with pytest.raises(ValueError, match="steps"):
        sampler.sample_graph(0, 0)


def test_time_call_takes_the_median_after_warmup(monkeypatch):
    # A fake clock that only the calls advance: exact figures, whatever the machine's load.
    clock = [0.0]
    monkeypatch.setattr(loops.time, "perf_counter", lambda: clock[0])
    calls = []
    durations = iter([0.5, 0.01, 0.03, 0.02])  # the warm-up call is slow; then 10, 30, 20 ms

    def fn():
        calls.append(1)
        clock[0] += next(durations)

    seconds = time_call(fn, repeats=3, warmup=1)
    assert len(calls) == 4
    assert seconds == pytest.approx(0.02)  # median of (0.01, 0.03, 0.02), warm-up not counted
    with pytest.raises(ValueError):
        time_call(fn, repeats=0)
