"""BiaxialModel: shapes, step API = teacher-forced pass, likelihood, saving, training."""

import json

import numpy as np
import pytest

from musicutils import CheckpointError
from musicutils._tf import keras, tf
from musicutils.model import (
    PRECISIONS,
    BiaxialModel,
    BiaxialNLL,
    PlayNLL,
    flops_per_forward,
    flops_per_train_step,
    load_model,
    nll_per_step,
    resolve_precision,
    save_model,
    use_precision,
)

SMALL = dict(n_notes=16, lowest=50, time_sizes=(12, 10), note_sizes=(8, 6), dropout=0.5)


def random_batch(rng, batch=3, steps=6, n_notes=16, density=0.3):
    play = rng.random((batch, steps, n_notes)) < density
    articulate = play & (rng.random(play.shape) < 0.5)
    state = np.stack([play, articulate], axis=-1).astype(np.float32)
    beat = np.tile(np.arange(steps) % 4, (batch, 1)).astype(np.int32)
    return {"state": state, "beat": beat}


@pytest.fixture(
    params=[(False, False), (True, False), (True, True), (False, True)],
    ids=["johnson", "chord_below", "chord_and_struck_below", "struck_below"],
)
def model(request):
    keras.utils.set_random_seed(1)
    chord_below, struck_below = request.param
    return BiaxialModel(**SMALL, chord_below=chord_below, struck_below=struck_below)


def test_logit_shapes_and_parameter_count(model):
    inputs = random_batch(np.random.default_rng(0))
    logits = model(inputs)
    assert logits.shape == (3, 6, 16, 2)
    assert logits.dtype == tf.float32

    def lstm(inp, units):
        return 4 * units * (inp + units + 1)

    choice = 2 + 24 * model.chord_below + 24 * model.struck_below
    expected = lstm(81, 12) + lstm(12, 10) + lstm(10 + choice, 8) + lstm(8, 6) + 6 * 2 + 2
    assert model.count_params() == expected


def test_default_sizes_match_the_paper():
    model = BiaxialModel()
    assert model.n_notes == 78 and model.lowest == 24
    assert model.time_sizes == (300, 300) and model.note_sizes == (100, 50)
    assert model.dropout == 0.5
    assert model.note_input_size == 400


#: Largest |probability difference| between the step API and the teacher-forced pass. In
#: float32 both sum the same products in another order (rounding ~1e-7). In bfloat16 each
#: product's result is rounded to 8 significant bits, so a sum that differs in its last float32
#: bit can round to the neighbouring bfloat16 (2**-8 relative apart); a few such flips on the
#: way to a logit move a probability by under 1e-3 in these small models.
STEP_API_ATOL = {"float32": 1e-5, "bfloat16": 2e-3}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_step_api_reproduces_teacher_forced_probabilities(model, precision):
    model.precision = precision
    rng = np.random.default_rng(3)
    inputs = random_batch(rng, batch=2, steps=5)
    state, beat = inputs["state"], inputs["beat"]
    expected = model.probabilities(inputs).numpy()

    got = np.zeros_like(expected)
    carry = model.initial_time_carry(2)
    prev = np.zeros((2, 16, 2), np.float32)
    for t in range(5):
        time_out, carry = model.time_step(prev, beat[:, t], carry)
        assert time_out.shape == (2, 16, 10)
        note_input = model.note_inputs(time_out)
        assert note_input.shape == (2, 16, model.note_input_size)
        note_carry = model.initial_note_carry(2)
        choice = np.zeros((2, 2), np.float32)
        for n in range(16):
            logits, note_carry = model.note_step(note_input[:, n], choice, note_carry)
            got[:, t, n] = tf.sigmoid(logits).numpy()
            choice = state[:, t, n]
        prev = state[:, t]
    np.testing.assert_allclose(got, expected, atol=STEP_API_ATOL[precision])


def test_bfloat16_logits_agree_with_float32(model):
    """bfloat16 keeps 8 significant bits: each operand of a product is rounded by at most
    2**-9 (0.2 %) of itself, and so is the product's result. The LSTM outputs are below 1, so
    each layer's output moves by a few 2**-9, and these errors do not grow through the gates
    (sigmoid and tanh have slopes <= 1). The logits sum 6 such outputs with weights below 1:
    we allow 0.01 (about five bfloat16 steps of a number near 1), and 0.002 on average."""
    inputs = random_batch(np.random.default_rng(15), batch=3, steps=24)
    single = model(inputs).numpy()
    with use_precision(model, "bfloat16"):
        assert model.precision == "bfloat16"
        half = model(inputs)
    assert model.precision == "float32"  # restored
    assert half.dtype == tf.float32  # logits stay float32
    difference = np.abs(half.numpy() - single)
    assert difference.max() < 0.01
    assert difference.mean() < 0.002
    assert difference.max() > 0  # the products really ran in bfloat16


def test_precision_is_checked_and_auto_resolves(monkeypatch):
    from musicutils import model as model_module

    with pytest.raises(ValueError, match="precision"):
        BiaxialModel(**SMALL, precision="float16")
    monkeypatch.setattr(model_module, "native_bfloat16", lambda: None)
    assert resolve_precision("auto") == "float32"
    monkeypatch.setattr(model_module, "native_bfloat16", lambda: "CPU flags avx512_bf16")
    assert resolve_precision("auto") == "bfloat16"
    assert BiaxialModel(**SMALL, precision="auto").get_config()["precision"] == "bfloat16"


def test_native_bfloat16_reads_the_cpu_flags(monkeypatch):
    from musicutils import model as model_module

    monkeypatch.setattr(model_module.tf.config, "list_physical_devices", lambda kind: [])
    monkeypatch.setattr(model_module, "_cpu_flags", lambda: {"avx2", "avx512f"})
    assert model_module.native_bfloat16() is None
    monkeypatch.setattr(model_module, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert "amx_bf16" in model_module.native_bfloat16()


def test_chord_below_inputs_match_a_per_note_reference():
    from musicutils.model import chord_below_inputs

    play = (np.random.default_rng(8).random((2, 3, 30)) < 0.3).astype(np.float32)
    got = chord_below_inputs(play).numpy()
    assert got.shape == (2, 3, 30, 24)
    expected = np.zeros_like(got)
    for index in np.ndindex(play.shape[:2]):
        for n in range(30):
            for m in range(n):
                if play[index][m]:
                    if n - m <= 12:
                        expected[index][n, n - m - 1] += 1  # window: n-1 first
                    expected[index][n, 12 + (n - m) % 12] += 1
    np.testing.assert_array_equal(got, expected)


def test_time_axis_continues_from_a_carry(model):
    inputs = random_batch(np.random.default_rng(4), steps=8)
    state, beat = inputs["state"], inputs["beat"]
    whole, _ = model.time_axis(state, beat)
    first, carry = model.time_axis(state[:, :5], beat[:, :5])
    rest, _ = model.time_axis(state[:, 5:], beat[:, 5:], carry=carry, prev_state=state[:, 4])
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, atol=1e-6)
    # time_step on the primer's last step gives the next step's view
    step, _ = model.time_step(state[:, 4], beat[:, 5], carry)
    np.testing.assert_allclose(step, whole[:, 5], atol=1e-6)


def test_future_does_not_leak(model):
    # Changing step 3 changes nothing before it (nor the lowest note of step 3, which sees no
    # note below); changing note 7 changes nothing at notes <= 7 of the same step.
    inputs = random_batch(np.random.default_rng(5))
    base = model(inputs).numpy()
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["state"][:, 3] = 1 - changed["state"][:, 3]
    after = model(changed).numpy()
    np.testing.assert_array_equal(after[:, :3], base[:, :3])
    np.testing.assert_array_equal(after[:, 3, 0], base[:, 3, 0])
    assert not np.allclose(after[:, 3, 1:], base[:, 3, 1:])
    assert not np.allclose(after[:, 4:], base[:, 4:])

    changed = {k: v.copy() for k, v in inputs.items()}
    changed["state"][:, :, 7, 0] = 1 - changed["state"][:, :, 7, 0]
    after = model(changed).numpy()
    np.testing.assert_array_equal(after[:, 0, :8], base[:, 0, :8])
    assert not np.allclose(after[:, 0, 8:], base[:, 0, 8:])


def test_dropout_only_in_training(model):
    inputs = random_batch(np.random.default_rng(6))
    a = model(inputs, training=False).numpy()
    np.testing.assert_array_equal(a, model(inputs, training=False).numpy())
    b = model(inputs, training=True).numpy()
    assert not np.allclose(a, b)


def numpy_nll(state, logits, articulation=True):
    """Hand-written NLL: -log of the probability of each observed bit, in nats."""
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    play, artic = state[..., 0], state[..., 1]
    nll = -(play * np.log(p[..., 0]) + (1 - play) * np.log(1 - p[..., 0]))
    if articulation:
        nll += -play * (artic * np.log(p[..., 1]) + (1 - artic) * np.log(1 - p[..., 1]))
    return nll.sum(axis=2).mean(axis=1)  # sum over notes, mean over steps


def test_base_rate_logits_by_hand():
    from musicutils.model import base_rate_logits

    states = np.zeros((2, 5, 4, 2), np.uint8)  # 40 note-steps
    states[0, :, 1, 0] = 1  # one note held for 5 steps, struck once
    states[0, 0, 1, 1] = 1
    states[1, 2:4, 3] = 1  # two steps, struck both times
    # play 7 of 40; struck 3 of the 7 playing
    expected = [np.log(7 / 33), np.log(3 / 4)]
    np.testing.assert_allclose(base_rate_logits(states), expected, rtol=1e-6)
    silent = base_rate_logits(np.zeros((3, 4, 2)))  # no notes: finite, very negative
    assert np.isfinite(silent).all() and silent[0] < -9


def test_nll_matches_numpy():
    rng = np.random.default_rng(8)
    state = random_batch(rng, batch=2, steps=3, n_notes=5)["state"]
    logits = rng.normal(size=state.shape).astype(np.float32) * 2
    np.testing.assert_allclose(
        nll_per_step(state, logits).numpy(), numpy_nll(state, logits), rtol=1e-5
    )
    np.testing.assert_allclose(
        nll_per_step(state, logits, articulation=False).numpy(),
        numpy_nll(state, logits, articulation=False),
        rtol=1e-5,
    )


def test_articulation_counted_only_where_playing():
    state = np.zeros((1, 2, 4, 2), np.float32)
    state[0, 0, 1] = (1, 1)
    logits = np.zeros_like(state)
    # coin flips: 4 notes x ln 2 per step, plus ln 2 for the one playing note's articulation
    np.testing.assert_allclose(
        nll_per_step(state, logits).numpy(), [(8 + 1) * np.log(2) / 2], rtol=1e-6
    )
    # the articulate logit of silent notes does not matter
    logits[..., 1] = 30.0
    logits[0, 0, 1, 1] = 0.0
    np.testing.assert_allclose(
        nll_per_step(state, logits).numpy(), [(8 + 1) * np.log(2) / 2], rtol=1e-6
    )


def test_nll_is_finite_for_confident_wrong_logits():
    state = np.ones((1, 1, 2, 2), np.float32)
    logits = np.full_like(state, -200.0)
    value = nll_per_step(state, logits).numpy()
    assert np.isfinite(value).all()
    np.testing.assert_allclose(value, [800.0], rtol=1e-6)


def test_loss_and_metric_objects():
    rng = np.random.default_rng(9)
    state = random_batch(rng, batch=4, steps=3, n_notes=5)["state"]
    logits = rng.normal(size=state.shape).astype(np.float32)
    loss = float(BiaxialNLL()(state.astype(np.uint8), logits))
    assert loss == pytest.approx(numpy_nll(state, logits).mean(), rel=1e-5)
    metric = PlayNLL()
    metric.update_state(state, logits)
    assert float(metric.result()) == pytest.approx(
        numpy_nll(state, logits, articulation=False).mean(), rel=1e-5
    )


@pytest.mark.parametrize("precision", PRECISIONS)
def test_gradients_reach_every_weight(model, precision):
    model.precision = precision
    inputs = random_batch(np.random.default_rng(10))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(nll_per_step(inputs["state"], model(inputs, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    # 4 LSTM layers x (kernel, recurrent kernel, bias) + the output layer's kernel and bias
    assert len(model.trainable_variables) == 4 * 3 + 2
    for var, grad in zip(model.trainable_variables, grads, strict=True):
        assert grad is not None, var.path
        assert grad.dtype == var.dtype == tf.float32, var.path  # the optimizer sees float32
        assert np.isfinite(grad.numpy()).all()
        assert np.abs(grad.numpy()).sum() > 0, var.path


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_fit_reduces_the_loss(precision):
    keras.utils.set_random_seed(2)
    model = BiaxialModel(**{**SMALL, "dropout": 0.0}, precision=precision)
    # A learnable pattern: each note repeats every 3 steps, struck when it starts.
    steps, notes = np.arange(12)[:, None], np.arange(16)[None, :]
    play = ((steps + notes) % 3 == 0).astype(np.float32)
    state = np.repeat(np.stack([play, play], axis=-1)[None], 4, axis=0).astype(np.uint8)
    inputs = {"state": state, "beat": np.tile(np.arange(12) % 4, (4, 1)).astype(np.int32)}
    data = tf.data.Dataset.from_tensor_slices((inputs, inputs["state"])).batch(4).repeat()
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=BiaxialNLL(), metrics=[PlayNLL()])
    before = model.evaluate(data, steps=1, verbose=0, return_dict=True)
    model.fit(data, steps_per_epoch=20, epochs=1, verbose=0, shuffle=False)
    after = model.evaluate(data, steps=1, verbose=0, return_dict=True)
    assert after["loss"] < 0.8 * before["loss"]
    # the weights and Adam's moments stay float32 (the step counter is an integer)
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert {v.dtype for v in model.optimizer.variables} <= {"float32", "int64"}
    assert after["play_nll"] < 0.95 * before["play_nll"]  # the play bits learned too (-12 %)


def test_config_round_trip(model):
    config = model.get_config()
    json.dumps(config)
    clone = BiaxialModel.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    assert clone.time_sizes == (12, 10)


def test_voices_is_kept_with_the_weights(tmp_path):
    net = BiaxialModel(n_notes=8, lowest=60, time_sizes=(4,), note_sizes=(3,), voices=4)
    assert load_model(save_model(net, tmp_path / "run")).voices == 4
    old = BiaxialModel.from_config({k: v for k, v in net.get_config().items() if k != "voices"})
    assert old.voices is None  # a model saved before `voices` existed: no texture known


def test_save_load_gives_identical_outputs(model, tmp_path):
    inputs = random_batch(np.random.default_rng(12))
    folder = save_model(model, tmp_path / "run")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.weights.h5"]
    loaded = load_model(folder)
    assert isinstance(loaded, BiaxialModel)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded(inputs).numpy(), model(inputs).numpy())
    save_model(model, folder)  # overwriting in place works
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.weights.h5"]


def test_load_errors_are_plain(model, tmp_path):
    with pytest.raises(CheckpointError, match="no such model folder"):
        load_model(tmp_path / "nowhere")
    folder = save_model(model, tmp_path / "run")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(folder)
    config = {**model.get_config(), "time_sizes": [5, 5]}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="weights"):
        load_model(folder)
    (folder / "model.weights.h5").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_model(folder)


def test_wrong_note_count_is_reported(model):
    inputs = random_batch(np.random.default_rng(13), n_notes=20)
    with pytest.raises(ValueError, match="16 notes"):
        model(inputs)


def test_flop_count_of_the_default_model():
    config = BiaxialModel().get_config()
    forward = flops_per_forward(config, 10, 128)
    # By hand: 10 x 128 x 78 cells; multiply-adds per cell: 4 gates x units x (inputs + units)
    # for time LSTMs 81 -> 300 -> 300 and note LSTMs 302 -> 100 -> 50, plus 50 x 2 outputs.
    macs = 4 * 300 * (81 + 300) + 4 * 300 * 600 + 4 * 100 * (302 + 100) + 4 * 50 * 150 + 100
    assert forward == 2 * (10 * 128 * 78) * macs == 273_182_208_000  # about 0.27 TFLOP
    assert flops_per_train_step(config, 10, 128) == 819_546_624_000  # + backward: 2x forward


#: Tolerances (rtol, atol) of the hand-written LSTM gradient against autodiff. In bfloat16 the
#: two sum the recurrent kernel's gradient differently (one product over all steps against
#: one bfloat16 product per step, summed), each result rounded to 8 significant bits.
GRADIENT_TOLERANCE = {"float32": (1e-5, 1e-6), "bfloat16": (3e-2, 3e-2)}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("xla_cells", [True, False])
def test_hand_written_lstm_gradient_matches_autodiff(monkeypatch, xla_cells, precision):
    from musicutils import model as model_module

    monkeypatch.setattr(model_module, "XLA_CELLS", xla_cells)
    rng = np.random.default_rng(14)
    steps, rows, units = 6, 5, 4
    projected = tf.constant(rng.normal(size=(steps, rows, 4 * units)).astype(np.float32))
    kernel = tf.Variable(rng.normal(size=(units, 4 * units)).astype(np.float32) * 0.5)
    h0 = tf.constant(rng.normal(size=(rows, units)).astype(np.float32))
    c0 = tf.constant(rng.normal(size=(rows, units)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(steps, rows, units)).astype(np.float32))

    def outputs_and_gradients(kind):
        monkeypatch.setattr(model_module, "LSTM_GRADIENT", kind)

        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch([projected, h0, c0])
                hs, h, c = model_module.run_lstm(projected, kernel, h0, c0, precision)
                loss = tf.reduce_sum(hs * weights) + tf.reduce_sum(h) + tf.reduce_sum(c * c)
            return [hs, h, c, *tape.gradient(loss, [projected, kernel, h0, c0])]

        return [t.numpy() for t in run()]

    rtol, atol = GRADIENT_TOLERANCE[precision]
    fused_results = outputs_and_gradients("fused")
    for fused, reference in zip(fused_results, outputs_and_gradients("autodiff"), strict=True):
        assert fused.dtype == np.float32
        np.testing.assert_allclose(fused, reference, rtol=rtol, atol=atol)
    if precision == "bfloat16":  # and the products really ran in bfloat16
        monkeypatch.setattr(model_module, "LSTM_GRADIENT", "fused")
        single = model_module.run_lstm(projected, kernel, h0, c0)[0].numpy()
        assert np.abs(fused_results[0] - single).max() > 1e-4


def test_steps_per_beat_travels_with_the_weights(tmp_path):
    model = BiaxialModel(**SMALL, steps_per_beat=1, precision="bfloat16")
    assert model.get_config()["steps_per_beat"] == 1
    assert load_model(save_model(model, tmp_path / "run")).steps_per_beat == 1
    # checkpoints written before the field existed mean the default grid of 4 steps per beat
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    del config["steps_per_beat"]
    assert BiaxialModel.from_config(config).steps_per_beat == 4


def test_precision_travels_with_the_weights(tmp_path):
    model = BiaxialModel(**SMALL, precision="bfloat16")
    assert load_model(save_model(model, tmp_path / "run")).precision == "bfloat16"
    # checkpoints written before the setting existed run in float32
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    del config["precision"]
    assert BiaxialModel.from_config(config).precision == "float32"
