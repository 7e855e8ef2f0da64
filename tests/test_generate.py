"""The in-graph sampler: validity, reproducibility, primer, temperature, adaptive rule, CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from musicutils import generate, midi
from musicutils._tf import keras, tf
from musicutils.errors import CheckpointError, DataError
from musicutils.model import BiaxialModel, load_model, save_model

N_NOTES = 14
PRETRAINED = generate.DEFAULT_CHECKPOINT


def tiny_model(seed: int, **sizes) -> BiaxialModel:
    keras.utils.set_random_seed(seed)  # the initial weights, so every run tests the same model
    sizes = {"time_sizes": (8, 8), "note_sizes": (6, 4), **sizes}
    return BiaxialModel(n_notes=N_NOTES, lowest=55, seed=seed, **sizes)


@pytest.fixture(scope="module")
def model():
    return tiny_model(0)


@pytest.fixture(scope="module")
def quiet_model():
    """A model that (untrained) almost never plays: P(play) around sigmoid(-5)."""
    net = tiny_model(1, time_sizes=(8,), note_sizes=(6,))
    net.out_bias.assign([-5.0, 0.0])
    return net


def check_valid(states: np.ndarray, shape: tuple[int, ...]) -> None:
    assert states.shape == shape
    assert states.dtype == np.uint8
    assert set(np.unique(states)) <= {0, 1}
    assert not (states[..., 1] & ~states[..., 0] & 1).any(), "articulate without play"
    # A note that starts sounding is articulated (silence assumed before step 0).
    playing = states[..., 0].astype(bool)
    before = np.concatenate([np.zeros_like(playing[:, :1]), playing[:, :-1]], axis=1)
    assert (states[..., 1][playing & ~before] == 1).all()


def test_shapes_and_validity(model):
    states = generate.generate(model, 9, batch_size=3, seed=1)
    check_valid(states, (3, 9, N_NOTES, 2))
    assert states[..., 0].sum() > 0  # an untrained model plays about half its notes


def test_zero_steps(model):
    assert generate.generate(model, 0, batch_size=2, seed=1).shape == (2, 0, N_NOTES, 2)


def test_same_seed_same_music_other_seed_other_music(model):
    first = generate.generate(model, 12, batch_size=2, seed=7)
    again = generate.generate(model, 12, batch_size=2, seed=7)
    other = generate.generate(model, 12, batch_size=2, seed=8)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    assert (first[0] != first[1]).any()  # pieces of a batch differ too


def test_traced_once_for_every_call(model):
    """Seeds, temperatures, lengths and rules are tensors: no retracing between calls."""
    for steps, seed, temperature, adaptive in [(3, 1, 1.0, True), (5, 2, 0.5, False)]:
        generate.generate(model, steps, seed=seed, temperature=temperature, adaptive=adaptive)
    loop = generate._sampler(model, "notes").loop
    assert loop.experimental_get_tracing_count() == 1


def test_bfloat16_sampler_is_its_own_trace_and_leaves_the_model_alone(model):
    """A bfloat16 composition traces its own sampler (the float32 one is kept) and leaves the
    model's precision as it was; its music is valid and close to float32's: rounding moves a
    probability by about 1e-3, so only draws that fall that close to it decide otherwise."""
    kwargs = dict(batch_size=4, seed=11, adaptive=False)
    single = generate.generate(model, 12, **kwargs)
    half = generate.generate(model, 12, **kwargs, precision="bfloat16")
    assert model.precision == "float32"
    check_valid(half, (4, 12, N_NOTES, 2))
    assert generate._sampler(model, "notes", "bfloat16") is not generate._sampler(model, "notes")
    # the first step sees the same silence: its notes differ only where a draw is that close
    assert (half[:, 0] != single[:, 0]).mean() < 0.05
    again = generate.generate(model, 12, **kwargs, precision="bfloat16")
    np.testing.assert_array_equal(half, again)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("adaptive", [True, False])
def test_every_xla_mode_and_the_naive_loop_compose_the_same(model, adaptive, precision):
    kwargs = dict(batch_size=2, seed=3, adaptive=adaptive, temperature=0.8, precision=precision)
    reference = generate.generate_reference(model, 6, **kwargs)
    for mode in generate.XLA_MODES:
        np.testing.assert_array_equal(generate.generate(model, 6, xla=mode, **kwargs), reference)


@pytest.mark.slow
@pytest.mark.parametrize("struck_below", [False, True], ids=["chord_below", "and_struck_below"])
def test_chord_below_model_composes_like_the_naive_loop(struck_below):
    net = tiny_model(2, chord_below=True, struck_below=struck_below)
    kwargs = dict(batch_size=2, seed=4, temperature=0.8)
    reference = generate.generate_reference(net, 6, **kwargs)
    check_valid(reference, (2, 6, N_NOTES, 2))
    for mode in generate.XLA_MODES:
        np.testing.assert_array_equal(generate.generate(net, 6, xla=mode, **kwargs), reference)


def test_step_uniforms_are_the_numbers_generate_draws(model):
    """Two steps redone by hand from `step_uniforms` and the step API give generate's notes."""
    batch, steps, inv_t = 2, 2, tf.constant(1 / 0.8)
    composed = generate.generate(
        model, steps, batch_size=batch, seed=9, temperature=0.8, adaptive=False
    )
    uniforms = generate.step_uniforms(9, 0, batch, N_NOTES)
    assert uniforms.shape == (2, N_NOTES, batch) and uniforms.dtype == np.float32
    assert 0.0 <= uniforms.min() and uniforms.max() < 1.0
    carry, prev = model.initial_time_carry(batch), np.zeros((batch, N_NOTES, 2), np.float32)
    beats = midi.bar_positions([(0, 4, 4)], steps, 4)
    for t in range(steps):
        time_out, carry = model.time_step(prev, tf.fill([batch], int(beats[t])), carry)
        note_inputs = model.note_inputs(time_out)
        u = generate.step_uniforms(9, t, batch, N_NOTES)
        note_carry, choice = model.initial_note_carry(batch), tf.zeros([batch, 2])
        for n in range(N_NOTES):
            logits, note_carry = model.note_step(note_inputs[:, n], choice, note_carry)
            choice = generate._choose(logits, u[0, n], u[1, n], inv_t, 1.0, prev[:, n, 0])
            np.testing.assert_array_equal(choice.numpy(), composed[:, t, n])
        prev = composed[:, t].astype(np.float32)


def test_closest_draw_takes_the_first_of_the_closest():
    counts = np.array([[3, 5, 2], [4, 4, 6], [5, 3, 4]])  # (draws, pieces)
    np.testing.assert_array_equal(generate.closest_draw(counts, 4), [1, 1, 2])
    np.testing.assert_array_equal(generate.closest_draw(counts[[0, 2]], 4), [0, 0, 1])  # ties
    unsigned = np.array([[7], [2]], np.uint64)  # as summed from uint8 states: 2 - 4 must not wrap
    np.testing.assert_array_equal(generate.closest_draw(unsigned, 4), [1])


def test_closest_draw_breaks_ties_by_parallel_motion():
    counts = np.array([[4, 4, 3], [4, 5, 4], [4, 4, 5]])  # (draws, pieces)
    parallels = np.array([[True, True, False], [False, False, True], [True, False, False]])
    # piece 0: draws 0-2 all 4 notes, draw 1 has no parallels; piece 1: draw 0 has them, draw 2
    # (as close) not; piece 2: the count decides before the parallels do
    np.testing.assert_array_equal(generate.closest_draw(counts, 4, parallels), [1, 2, 1])
    np.testing.assert_array_equal(generate.closest_draw(counts, 4), [0, 0, 1])
    every = np.ones_like(parallels)  # all have them: the first of the closest, as without
    np.testing.assert_array_equal(generate.closest_draw(counts, 4, every), [0, 0, 1])


def _step(*pitches, n=N_NOTES + 10) -> np.ndarray:
    play = np.zeros(n, np.uint8)
    play[list(pitches)] = 1
    return play


@pytest.mark.parametrize(
    "before, after, expected",
    [
        ((0, 7, 12, 16), (2, 9, 14, 17), True),  # bass-tenor fifths, bass-alto octaves up
        ((0, 7, 12, 16), (2, 5, 11, 16), False),  # tenor moves against the bass: contrary
        ((0, 7, 12, 16), (0, 9, 12, 17), False),  # the bass holds: oblique motion
        ((0, 7, 12, 16), (0, 7, 12, 16), False),  # nothing moves
        ((0, 4, 10, 19), (2, 4, 11, 21), True),  # a compound fifth (19) to another
        ((0, 4, 10, 19), (2, 4, 11, 20), False),  # fifth to a minor sixth
        ((0, 7, 12, 16), (2, 9, 14), False),  # three voices after: not counted
        ((0, 12, 16, 19), (1, 13, 17, 20), True),  # all up a semitone: the octave 0-12 too
    ],
)
def test_parallel_motion_hand_examples(before, after, expected):
    assert generate.parallel_motion(_step(*before), _step(*after), 4) == expected
    graph = generate._parallel_motion(
        tf.constant(_step(*before)[None], tf.float32),
        tf.constant(_step(*after)[None, None], tf.float32),
        tf.constant(4.0),
    )
    assert graph.numpy()[0, 0] == expected


def test_parallel_motion_reads_at_most_sixteen_voices():
    wide = np.zeros((2, 40), np.uint8)
    wide[0, :17] = 1  # 17 voices all moving up a semitone: octaves 0-12 to 1-13 among them,
    wide[1, 1:18] = 1  # but a texture of more than 16 voices is not read
    assert not generate.parallel_motion(wide[0], wide[1], 17)
    sixteen = np.zeros((2, 40), np.uint8)
    sixteen[0, list(range(0, 14)) + [19, 26]] = 1  # 16 voices with a fifth (19-26) and octaves
    sixteen[1] = np.roll(sixteen[0], 1)
    assert generate.MAX_PARALLEL_VOICES == 16
    assert generate.parallel_motion(sixteen[0], sixteen[1], 16)
    graph = generate._parallel_motion(
        tf.constant(sixteen[:1], tf.float32),
        tf.constant(sixteen[None, 1:], tf.float32),
        tf.constant(16.0),
    )
    assert graph.numpy()[0, 0]
    wide_graph = generate._parallel_motion(
        tf.constant(wide[:1], tf.float32),
        tf.constant(wide[None, 1:], tf.float32),
        tf.constant(17.0),
    )
    assert not wide_graph.numpy()[0, 0]  # 17 voices: never flagged, as in numpy


def test_parallel_motion_agrees_with_stats_and_with_its_graph_twin():
    from musicutils import stats

    rng = np.random.default_rng(3)
    steps = np.zeros((400, N_NOTES + 10), np.uint8)
    for t in range(len(steps)):  # 3, 4 or 5 notes, a random walk so that voices move by steps
        steps[t, np.sort(rng.choice(N_NOTES + 10, rng.choice([3, 4, 4, 4, 5]), replace=False))] = 1
    steps[1::2] = np.where(rng.random((200, 1)) < 0.5, np.roll(steps[::2], 2, axis=1), steps[1::2])
    before, after = steps[:-1], steps[1:]
    flags = generate.parallel_motion(before, after, 4)
    expected = []
    for b, a in zip(before, after, strict=True):
        state = np.stack([np.stack([b, b], -1), np.stack([a, a], -1)])
        found = stats.parallel_perfects(midi.Piece(state, lowest=21), 4)
        expected.append(found["fifths"] + found["octaves"] > 0)
    np.testing.assert_array_equal(flags, expected)
    assert 20 < flags.sum() < len(flags) - 20  # both outcomes are tested
    graph = generate._parallel_motion(
        tf.constant(before, tf.float32), tf.constant(after[None], tf.float32), tf.constant(4.0)
    )
    np.testing.assert_array_equal(graph.numpy()[0], flags)


def test_voice_rule_avoids_parallel_motion_between_equally_close_draws():
    # untrained, about 7 of 14 notes sound: with 7 voices and 8 draws many tie on the count
    net = tiny_model(5, voices=7)
    kwargs = dict(batch_size=8, seed=3, adaptive=False, draws=8)
    avoided = generate.generate(net, 40, **kwargs)
    allowed = generate.generate(net, 40, avoid_parallels=False, **kwargs)
    check_valid(avoided, (8, 40, N_NOTES, 2))

    def share(states):
        play = states[..., 0]
        return generate.parallel_motion(play[:, :-1], play[:, 1:], 7).mean()

    assert share(avoided) < 0.5 * share(allowed)
    counts = avoided[..., 0].sum(-1).astype(int)  # the count still comes first
    assert np.abs(counts - 7).mean() < 0.3


@pytest.mark.slow
def test_parallel_avoidance_composes_like_the_naive_loop():
    net = tiny_model(6, chord_below=True, voices=7)
    kwargs = dict(batch_size=3, seed=2, adaptive=False, draws=4)
    reference = generate.generate_reference(net, 6, **kwargs)
    assert not np.array_equal(reference, generate.generate(net, 6, avoid_parallels=False, **kwargs))
    for mode in generate.XLA_MODES:
        np.testing.assert_array_equal(generate.generate(net, 6, xla=mode, **kwargs), reference)


def test_voice_rule_off_is_plain_sampling(model):
    kwargs = dict(batch_size=3, seed=6)
    plain = generate.generate(model, 8, **kwargs)  # model.voices is None: the rule is off
    np.testing.assert_array_equal(generate.generate(model, 8, voices=0, draws=5, **kwargs), plain)
    np.testing.assert_array_equal(generate.generate(model, 8, voices=3, draws=1, **kwargs), plain)
    assert not np.array_equal(generate.generate(model, 8, voices=3, **kwargs), plain)


def test_voice_rule_keeps_the_texture_and_is_the_models_default():
    net = tiny_model(3, voices=3)  # untrained: about 7 of its 14 notes sound in a step
    kwargs = dict(batch_size=4, seed=2, adaptive=False)
    plain = generate.generate(net, 12, voices=0, **kwargs)[..., 0].sum(-1).astype(int)
    ruled = generate.generate(net, 12, draws=8, **kwargs)
    check_valid(ruled, (4, 12, N_NOTES, 2))
    counts = ruled[..., 0].sum(-1).astype(int)
    assert np.abs(counts - 3).mean() < np.abs(plain - 3).mean() - 1.0
    # the rule's first draw is the plain draw: at step 0, where both start from silence, the
    # kept draw is never farther from 3 notes than the plain one
    assert (np.abs(counts[:, 0] - 3) <= np.abs(plain[:, 0] - 3)).all()
    np.testing.assert_array_equal(generate.generate(net, 12, voices=3, draws=8, **kwargs), ruled)


@pytest.mark.slow
def test_voice_rule_composes_like_the_naive_loop():
    net = tiny_model(4, chord_below=True, voices=4)
    kwargs = dict(batch_size=2, seed=5, temperature=0.9, draws=3)
    reference = generate.generate_reference(net, 5, **kwargs)
    for mode in generate.XLA_MODES:
        np.testing.assert_array_equal(generate.generate(net, 5, xla=mode, **kwargs), reference)


@pytest.mark.parametrize(
    "name, value",
    [
        ("voices", -1),
        ("voices", float("nan")),
        ("voices", 129),
        ("draws", 0),
        ("draws", float("inf")),
    ],
)
def test_voice_rule_refuses_bad_numbers(model, name, value):
    with pytest.raises(DataError, match=rf"^{name} must be an integer in \["):
        generate.generate(model, 2, **{"voices": 3, name: value})


def test_primer_is_continued_and_kept(model):
    """Continuing the first steps of a composition with the same seed composes the rest again.

    This checks that the primer reaches the time axis' state (carry), that the step index and
    bar positions carry on after it, and that include_primer returns it unchanged.
    """
    whole = generate.generate(model, 10, batch_size=2, seed=5, adaptive=False)
    primer = whole[:, :4]
    continued = generate.generate(model, 6, batch_size=2, seed=5, adaptive=False, primer=primer)
    np.testing.assert_array_equal(continued, whole[:, 4:])
    with_primer = generate.generate(
        model, 6, batch_size=2, seed=5, adaptive=False, primer=primer, include_primer=True
    )
    np.testing.assert_array_equal(with_primer, whole)


def test_piece_primer_on_another_pitch_range(model):
    state = np.zeros((8, 20, 2), np.uint8)
    state[:, 10, 0] = 1  # MIDI 60 held for 8 steps
    state[0, 10, 1] = 1
    piece = midi.from_state(state, lowest=50, meter=(3, 4))
    out = generate.generate(model, 5, batch_size=2, seed=1, primer=piece, include_primer=True)
    check_valid(out, (2, 13, N_NOTES, 2))
    np.testing.assert_array_equal(out[:, :8, 60 - 55], np.broadcast_to(state[:, 10], (2, 8, 2)))
    assert out[:, :8].sum() == 2 * 9  # nothing else of the primer was in the model's range


def test_bad_primer_is_refused(model):
    with pytest.raises(DataError, match="primer"):
        generate.generate(model, 3, primer=np.zeros((4, N_NOTES + 1, 2)))
    with pytest.raises(DataError, match="primer"):
        generate.generate(model, 3, batch_size=2, primer=np.zeros((3, 4, N_NOTES, 2)))
    with pytest.raises(ValueError, match="temperature"):
        generate.generate(model, 3, temperature=0.0)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -1, 10**30], ids=["nan", "inf", "negative", "huge"]
)
@pytest.mark.parametrize("name", ["steps", "batch_size", "temperature", "seed", "steps_per_beat"])
def test_generate_refuses_bad_numbers(model, name, value):
    with pytest.raises(DataError, match=rf"^{name} must be (an integer|a number) in [\[(]"):
        generate.generate(model, **{"steps": 2, name: value})
    with pytest.raises(DataError, match=rf"^{name} must be"):
        generate.generate_reference(model, **{"steps": 2, name: value})


def test_generate_refuses_bad_meters_and_rules(model):
    with pytest.raises(DataError, match="meter denominator"):
        generate.generate(model, 2, meter=(4, 0))
    with pytest.raises(DataError, match="meter must be"):
        generate.generate(model, 2, meter=4)
    with pytest.raises(DataError, match="adaptive must be"):
        generate.generate(model, 2, adaptive="yes")
    for field in ("min_notes", "step", "floor", "recovery"):
        with pytest.raises(DataError, match=f"AdaptiveRule.{field} must be"):
            generate.AdaptiveRule(**{field: float("nan")})
    with pytest.raises(DataError, match=r"AdaptiveRule.floor must be a number in \(0, 1\]"):
        generate.AdaptiveRule(floor=0.0)  # P(play) ** 0 = 1: every note would play


def test_tiny_temperature_is_deterministic():
    """T -> 0 takes the likelier choice everywhere: the seed no longer matters."""
    model = tiny_model(2)
    model.out_kernel.assign(model.out_kernel * 100.0)  # logits far from 0 (untrained: ~1e-3)
    a = generate.generate(model, 8, batch_size=2, seed=1, temperature=1e-6, adaptive=False)
    b = generate.generate(model, 8, batch_size=2, seed=2, temperature=1e-6, adaptive=False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], a[1])


def _choose_many(logits, temperature, exponent, was_playing, draws, seed):
    """`_choose` on each row of `logits` (K, 2) `draws` times, with independent uniforms:
    (K, draws, 2) choices. Vectorised: one call on K * draws rows."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.asarray(logits, np.float32), draws, axis=0)
    # uniforms in (0, 1), as many as the sampler's per note and step: one for play, one for
    # articulate (exact zeros left out: log(0) would play even a note of probability 0)
    uniforms = (rng.integers(1, 2**24, size=(2, len(rows))) / 2**24).astype(np.float32)
    choice = generate._choose(
        tf.constant(rows),
        tf.constant(uniforms[0]),
        tf.constant(uniforms[1]),
        tf.constant(1.0 / temperature, tf.float32),
        tf.fill([len(rows)], float(exponent)),
        tf.fill([len(rows)], float(was_playing)),
    ).numpy()
    return choice.reshape(len(logits), draws, 2)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


LOGITS = [[-3.0, 2.0], [-0.5, -1.5], [0.0, 0.0], [1.2, 0.7], [4.0, -3.0]]


@pytest.mark.parametrize("exponent", [1.0, 0.5], ids=["plain", "anti-silence exponent 0.5"])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_choice_frequencies_follow_the_tempered_probabilities(temperature, exponent):
    """Over 40 000 independent draws per pair of logits (l_play, l_articulate):
    P(play) = sigmoid(l_play / T) ** exponent and, for a note held from the step before,
    P(articulate | play) = sigmoid(l_articulate / T); each frequency within 4.5 binomial
    standard errors (a true sampler fails that about once in 150 000 checks)."""
    draws = 40_000
    choice = _choose_many(LOGITS, temperature, exponent, 1.0, draws, seed=int(temperature * 10))
    logits = np.array(LOGITS, np.float64)
    p_play = _sigmoid(logits[:, 0] / temperature) ** exponent
    p_artic = _sigmoid(logits[:, 1] / temperature)
    plays = choice[..., 0].astype(bool)
    assert not (choice[..., 1].astype(bool) & ~plays).any()  # articulate only where play
    for k in range(len(LOGITS)):
        freq = plays[k].mean()
        error = np.sqrt(p_play[k] * (1 - p_play[k]) / draws)
        assert abs(freq - p_play[k]) <= 4.5 * error + 1e-9, (k, freq, p_play[k])
        struck = choice[k, plays[k], 1]
        error = np.sqrt(p_artic[k] * (1 - p_artic[k]) / len(struck))
        assert abs(struck.mean() - p_artic[k]) <= 4.5 * error + 1e-9, (k, struck.mean())


def test_a_note_that_starts_is_always_articulated():
    choice = _choose_many(LOGITS, 1.0, 1.0, 0.0, 2_000, seed=5)  # silent in the step before
    np.testing.assert_array_equal(choice[..., 1], choice[..., 0])


@pytest.mark.parametrize("exponent", [1.0, 0.5])
def test_low_temperature_picks_the_likelier_choice(exponent):
    logits = [[0.05, -0.05], [-0.05, 0.05], [0.3, 0.02], [-0.02, -0.3]]  # all near 1/2 at T=1
    # T = 1e-4: |logit| / T >= 200, so the unlikelier choice has P < exp(-100) even when the
    # exponent halves the log-probability
    choice = _choose_many(logits, 1e-4, exponent, 1.0, 20_000, seed=6)
    expected = np.array(logits) > 0  # (K, 2): the likelier choice of each bit
    expected[:, 1] &= expected[:, 0]  # articulate only where play
    np.testing.assert_array_equal(choice, np.broadcast_to(expected[:, None], choice.shape))


def test_huge_temperature_is_a_coin_toss(quiet_model):
    """The largest temperature allowed (100) makes every probability about 1/2, however sure
    the model is (here sigmoid(-5 / 100) = 0.49)."""
    states = generate.generate(
        quiet_model, 40, batch_size=4, seed=1, temperature=100.0, adaptive=False
    )
    assert 0.4 < states[..., 0].mean() < 0.6


def test_adaptive_rule_numbers():
    rule = generate.AdaptiveRule()
    exponent = np.ones(2, np.float32)
    for _ in range(3):  # piece 0 silent, piece 1 plays 4 notes
        exponent = rule.update(exponent, np.array([0, 4]))
    np.testing.assert_allclose(exponent, [0.94, 1.0], rtol=1e-6)  # 1 - 3 x 0.02
    for _ in range(100):
        exponent = rule.update(exponent, np.array([1, 4]))
    np.testing.assert_allclose(exponent, [0.25, 1.0], rtol=1e-6)  # never below the floor
    recovered = rule.update(exponent, np.array([2, 2]))
    np.testing.assert_allclose(recovered, [0.475, 1.0], rtol=1e-6)  # 30 % back: 0.25 + 0.225
    graph = generate._update_exponent(
        tf.constant(exponent), tf.constant([2.0, 2.0]), rule.as_tensor()
    )
    np.testing.assert_allclose(graph.numpy(), recovered, rtol=1e-6)


def test_adaptive_rule_brings_back_notes(quiet_model):
    plain = generate.generate(quiet_model, 60, batch_size=4, seed=2, adaptive=False)
    adaptive = generate.generate(quiet_model, 60, batch_size=4, seed=2)
    assert plain[..., 0].sum(axis=-1).mean() < 0.2  # about 14 * 0.0067 notes per step
    assert adaptive[..., 0].sum(axis=-1).mean() > 2 * plain[..., 0].sum(axis=-1).mean() + 0.2
    assert adaptive[..., 0].sum(axis=-1).max() < N_NOTES  # the floor prevents full clusters


def test_custom_adaptive_rule_is_the_one_applied(quiet_model):
    # A rule that gives up on silence fast: after 3 quiet steps P(play) = 0.0067 ** 0.1 = 0.6.
    eager = generate.AdaptiveRule(min_notes=3, step=0.3, floor=0.05, recovery=0.5)
    kwargs = dict(batch_size=2, seed=2)
    custom = generate.generate(quiet_model, 6, adaptive=eager, **kwargs)
    default = generate.generate(quiet_model, 6, **kwargs)
    assert custom[..., 0].sum() > default[..., 0].sum() + 10  # about 24 notes against 0.5
    # every field reaches the compiled loop: it composes what the naive loop does with the rule
    reference = generate.generate_reference(quiet_model, 6, adaptive=eager, **kwargs)
    np.testing.assert_array_equal(custom, reference)


def test_cli_no_adaptive_and_the_printed_seed(quiet_model, tmp_path, capsys, monkeypatch):
    from musicutils.cli import main

    run = save_model(quiet_model, tmp_path / "run")
    out = tmp_path / "plain.mid"
    drawing = np.random.default_rng
    monkeypatch.setattr(np.random, "default_rng", lambda *seed: drawing(*(seed or (7,))))
    assert main(["generate", "--checkpoint", str(run), "--steps", "30", "--out", str(out),
                 "--no-adaptive"]) == 0  # fmt: skip
    # No --seed: the seed drawn is printed, and with it the API composes the same piece ...
    seed = int(re.search(r"\(--seed (\d+)\)$", capsys.readouterr().out.strip()).group(1))
    state = midi.read(out, lowest=55, highest=55 + N_NOTES).state
    plain = generate.generate(quiet_model, 30, seed=seed, adaptive=False)[0]
    np.testing.assert_array_equal(state, plain)
    # ... without the anti-silence rule, which would change it (for 200 seeds tried, the rule
    # changed 2 to 21 of these play bits; the seed drawn here is fixed by the patch above).
    assert (state != generate.generate(quiet_model, 30, seed=seed)[0]).any()


def test_cli_voice_rule_is_the_models_and_said(tmp_path, capsys):
    from musicutils.cli import main

    net = tiny_model(5, time_sizes=(6,), note_sizes=(4,), voices=3)
    run = save_model(net, tmp_path / "run")
    out = tmp_path / "x.mid"
    common = ["generate", "--checkpoint", str(run), "--steps", "6", "--seed", "4", "--out"]
    assert main([*common, str(out)]) == 0
    said = capsys.readouterr().out
    assert "the closest to 3 voices of 2 draws per step, without parallel fifths" in said
    state = midi.read(out, lowest=55, highest=55 + N_NOTES).state
    np.testing.assert_array_equal(state, generate.generate(net, 6, seed=4)[0])
    assert main([*common, str(out), "--voices", "7", "--draws", "8", "--allow-parallels"]) == 0
    said = capsys.readouterr().out
    assert "the closest to 7 voices of 8 draws per step (" in said
    state = midi.read(out, lowest=55, highest=55 + N_NOTES).state
    counted = generate.generate(net, 6, seed=4, voices=7, draws=8, avoid_parallels=False)
    np.testing.assert_array_equal(state, counted[0])
    assert main([*common, str(out), "--voices", "0"]) == 0
    assert "voice rule" not in capsys.readouterr().out
    state = midi.read(out, lowest=55, highest=55 + N_NOTES).state
    np.testing.assert_array_equal(state, generate.generate(net, 6, seed=4, voices=0)[0])


def test_cli_writes_midi_that_reads_back(model, tmp_path):
    from musicutils.cli import main

    run = save_model(model, tmp_path / "run")
    out = tmp_path / "piece.mid"
    status = main(
        ["generate", "--checkpoint", str(run), "--steps", "12", "--out", str(out),
         "--seed", "4", "--batch-size", "2", "--png", "--wav"]
    )  # fmt: skip
    assert status == 0
    expected = generate.generate(load_model(run), 12, batch_size=2, seed=4)
    for i in range(2):
        piece = midi.read(tmp_path / f"piece_{i}.mid", lowest=55, highest=55 + N_NOTES)
        assert piece.n_steps == 12 and piece.dropped_notes == 0
        np.testing.assert_array_equal(piece.state, expected[i])
        assert (tmp_path / f"piece_{i}.png").stat().st_size > 0
        assert (tmp_path / f"piece_{i}.wav").stat().st_size > 0


def test_cli_missing_checkpoint(tmp_path, capsys):
    from musicutils.cli import main

    status = main(["generate", "--checkpoint", str(tmp_path / "nope"), "--out", "x.mid"])
    assert status == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        generate.load_checkpoint(tmp_path / "nope")


def test_pretrained_model_composes():
    if not (PRETRAINED / "config.json").exists():
        pytest.skip("pretrained/ has no model yet (it is trained by the train command)")
    net = generate.load_checkpoint()
    states = generate.generate(net, 16, batch_size=2, seed=0)
    check_valid(states, (2, 16, net.n_notes, 2))
    assert states[..., 1].sum() > 0


def test_load_model_pretrained_names_the_bundled_model_from_anywhere(tmp_path, monkeypatch):
    if not (PRETRAINED / "config.json").exists():
        pytest.skip("pretrained/ has no model yet (it is trained by the train command)")
    from musicutils.model import load_model

    monkeypatch.chdir(tmp_path)  # no pretrained/ folder here
    bundled, by_name = generate.load_checkpoint(), load_model("pretrained")
    for mine, theirs in zip(by_name.get_weights(), bundled.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    (tmp_path / "pretrained").mkdir()  # a folder of that name here is taken as the path
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_model("pretrained")


def test_default_checkpoint_is_the_bundled_folder():
    assert PRETRAINED == Path(generate.__file__).resolve().parents[1] / "pretrained"


def test_compose_demo_writes_midi_png_wav(model, tmp_path):
    run = save_model(model, tmp_path / "run")
    written = generate.compose_demo(tmp_path / "out", run, steps=8, seed=1)
    assert [p.name for p in written] == ["composed.mid", "composed.png", "composed.wav"]
    assert all(p.stat().st_size > 0 for p in written)
    assert midi.read(written[0]).n_steps == 8


def test_cli_primer_file_is_continued(model, tmp_path):
    from musicutils.cli import main

    run = save_model(model, tmp_path / "run")
    state = np.zeros((6, N_NOTES, 2), np.uint8)
    state[:, [0, 4, 7], 0] = 1  # a C major triad (MIDI 55 = G3 is note 0) held for 6 steps
    state[0, [0, 4, 7], 1] = 1
    primer = midi.write(midi.from_state(state, lowest=55, meter=(3, 4)), tmp_path / "primer.mid")
    out = tmp_path / "more.mid"
    args = ["generate", "--checkpoint", str(run), "--steps", "5", "--out", str(out)]
    assert main([*args, "--seed", "2", "--primer", str(primer)]) == 0
    piece = midi.read(out, lowest=55, highest=55 + N_NOTES)
    np.testing.assert_array_equal(piece.state[:6], state)
    assert piece.meters == [(0, 3, 4)] and piece.n_steps == 11


def test_cli_primer_is_read_on_the_model_grid_and_range(tmp_path):
    """A JSB-like model (1 step per beat, 88 keys from A0) reads a primer on its own grid: each
    quarter note stays one step, and A0 and C8 (outside the default 24..101) are kept. (No new
    steps: what is read is the point, and composing would only add a sampler compile.)"""
    from musicutils.cli import main

    keras.utils.set_random_seed(3)
    net = BiaxialModel(
        n_notes=88, lowest=21, steps_per_beat=1, time_sizes=(8,), note_sizes=(6,), seed=3
    )
    run = save_model(net, tmp_path / "jsb")
    state = np.zeros((6, 88, 2), np.uint8)
    for step, pitch in enumerate([21, 60, 108, 64, 21, 67]):  # one quarter note per beat
        state[step, pitch - 21] = 1
    primer = midi.from_state(state, lowest=21, steps_per_beat=1)
    primer_file = midi.write(primer, tmp_path / "primer.mid")
    out = tmp_path / "more.mid"
    args = ["generate", "--checkpoint", str(run), "--steps", "0", "--out", str(out)]
    assert main([*args, "--seed", "1", "--primer", str(primer_file)]) == 0
    piece = midi.read(out, steps_per_beat=1, lowest=21, highest=109)
    assert piece.n_steps == 6 and piece.steps_per_beat == 1 and piece.dropped_notes == 0
    np.testing.assert_array_equal(piece.state[:6], state)
    # A Piece on another grid would be read as the model's: refused.
    on_sixteenths = midi.from_state(np.repeat(state, 4, axis=0), lowest=21, steps_per_beat=4)
    with pytest.raises(DataError, match="4 steps per beat, but the model composes on 1"):
        generate.generate(net, 2, primer=on_sixteenths)
