"""Tests for musicutils.train: learning, the run folder, exact resume, kill-and-resume, the CLI,
benchmark pickles and the distributed path. Tiny models (time 16, note 8, segments of 16 steps).
"""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from musicutils import cli, datasets, train
from musicutils.errors import CheckpointError, DataError
from musicutils.midi import from_state

ROOT = Path(__file__).resolve().parents[1]
CHORALES = ROOT / "data" / "chorales"
TINY = dict(
    steps_per_epoch=3,
    batch_size=4,
    segment_length=16,
    time_sizes=(16,),
    note_sizes=(8,),
    learning_rate=0.01,
    verbose=0,
)
TINY_ARGS = [
    "--steps-per-epoch",
    "3",
    "--batch-size",
    "4",
    "--segment-length",
    "16",
    "--time-sizes",
    "16",
    "--note-sizes",
    "8",
    "--learning-rate",
    "0.01",
]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _log_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 4-epoch run on the bundled chorales, shared by several tests."""
    run_dir = tmp_path_factory.mktemp("runs") / "four"
    return train.train(CHORALES, run_dir, epochs=4, **TINY)


@pytest.mark.slow
def test_validation_nll_drops_far_below_coin_flip(trained):
    # Coin flips for the 78 play bits cost 78 ln 2 = 54.1 nats per step (before articulation);
    # an untrained model starts near there. Learning that most notes are silent most of the time
    # and that sounding notes go on already halves it.
    coin_flip = 78 * math.log(2)
    history = trained.history
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["val_play_nll"] < 0.5 * coin_flip
    assert history[-1]["val_nll"] < history[0]["val_nll"]
    assert history[-1]["nll"] < history[0]["nll"]


def test_run_folder_contents(trained):
    run_dir = trained.run_dir
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.json",
        "model.weights.h5",
        "train.json",
        "log.csv",
        "backup",
    }
    rows = _log_rows(run_dir)
    assert list(rows[0]) == list(train.LOG_COLUMNS)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["seconds"]) > 0 for r in rows)
    settings = json.loads((run_dir / "train.json").read_text())
    assert settings["data"] == str(CHORALES) and settings["segment_length"] == 16
    assert settings["time_sizes"] == [16] and settings["validation_split"] == 0.1
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    assert state["epoch"] == 4 and [p.name for p in (run_dir / "backup").glob("*.h5")] == [
        "epoch-0004.weights.h5"
    ]
    # The saved model holds the best epoch's weights: its validation NLL is the best one.
    best = min(r["val_nll"] for r in trained.history)
    assert trained.best_val_nll == pytest.approx(best)
    again = train.evaluate_checkpoint(run_dir, CHORALES, split="valid")
    assert again["nll"] == pytest.approx(best, rel=1e-4)
    assert not list(run_dir.glob(".*"))  # no temporary files left behind


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(trained, tmp_path):
    run_dir = tmp_path / "resumed"
    first = train.train(CHORALES, run_dir, epochs=2, **TINY)
    assert first.resumed_from == 0 and first.epochs_completed == 2
    assert first.outcome == "new run: trained epochs 1-2"
    second = train.train(CHORALES, run_dir, epochs=4, **TINY)
    assert second.resumed_from == 2
    assert second.outcome == "resumed after epoch 2: trained epochs 3-4"
    for a, b in zip(trained.history, second.history, strict=True):
        assert a["epoch"] == b["epoch"]
        assert a["nll"] == pytest.approx(b["nll"], rel=1e-5)
        assert a["val_nll"] == pytest.approx(b["val_nll"], rel=1e-5)
    # Nothing left to do: a third call trains nothing and keeps the log.
    third = train.train(CHORALES, run_dir, epochs=4, **TINY)
    assert third.epochs_completed == 4 and len(_log_rows(run_dir)) == 4
    assert third.outcome.startswith("already finished: the run in resumed has 4 epochs")


def test_run_folder_is_keyed_by_the_settings_that_change_the_run(tmp_path):
    settings = dict(data="data/chorales", epochs=12, learning_rate=1e-3, time_sizes=(150, 150))
    folder = train.run_folder(tmp_path, settings)
    assert folder.parent == tmp_path and folder.name.startswith("run-") and not folder.exists()
    assert len(folder.name) == len("run-") + 10
    same = [
        {**settings, "verbose": 0, "strategy": "mirrored", "time_limit": 60.0},  # not the run
        {**settings, "learning_rate": 0.001, "time_sizes": [150, 150], "epochs": 12.0},
        {**settings, "ema": 0.0, "seed": 0, "dropout": 0.5},  # train's defaults, spelt out
        {**settings, "data": Path("data/chorales")},
    ]
    for other in same:
        assert train.run_folder(tmp_path, other) == folder, other
    different = [
        {**settings, "learning_rate": 2e-3},
        {**settings, "epochs": 8},  # fewer epochs is another run, not "nothing to do"
        {**settings, "time_sizes": (150,)},
        {**settings, "chord_below": True},
        {**settings, "data": "elsewhere"},
    ]
    names = {train.run_folder(tmp_path, other).name for other in different}
    assert len(names) == len(different) and folder.name not in names


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"data": "d", "learning_rte": 0.1}, "learning_rte"),
        ({"data": "d", "out": "x"}, "out"),
        ({"epochs": 3}, "need 'data'"),
    ],
)
def test_run_folder_refuses_what_train_would_not_take(settings, message, tmp_path):
    with pytest.raises(TypeError, match=message):
        train.run_folder(tmp_path, settings)


def test_outcome_says_what_the_call_did(tmp_path):
    def result(completed, resumed, stopped=False):
        return train.TrainResult(tmp_path / "run-x", [], completed, None, None, stopped, resumed)

    assert result(12, 0).outcome == "new run: trained epochs 1-12"
    assert result(15, 12).outcome == "resumed after epoch 12: trained epochs 13-15"
    assert result(12, 12).outcome == (
        "already finished: the run in run-x has 12 epochs (no epoch left to train)"
    )
    assert result(7, 7, stopped=True).outcome.endswith("(early stopping ended it)")


def test_changed_settings_are_refused(trained):
    with pytest.raises(CheckpointError, match="batch_size=4, not 8"):
        train.train(CHORALES, trained.run_dir, epochs=4, **{**TINY, "batch_size": 8})


def test_run_from_before_a_setting_existed_resumes(trained):
    # A train.json written before a setting (here `ema`) was added reads it as its default.
    path = trained.run_dir / "train.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in stored.items() if k != "ema"}))
    again = train.train(CHORALES, trained.run_dir, epochs=4, **TINY)
    assert again.epochs_completed == 4


@pytest.mark.slow
def test_weight_averaging_validates_saves_and_resumes_the_average(tmp_path):
    from musicutils import model as model_lib
    from musicutils._tf import keras

    settings = {**TINY, "ema": 0.9}
    whole = train.train(CHORALES, tmp_path / "whole", epochs=3, patience=10, **settings)
    # The saved best model is the average: scoring it reproduces its logged validation NLL ...
    pieces = train.load_data(CHORALES, verbose=0)["valid"]
    best = whole.history[whole.best_epoch - 1]
    assert train.evaluate(whole.model, pieces)["nll"] == pytest.approx(best["val_nll"], rel=1e-4)
    # ... and differs from the raw weights that training goes on from (kept in the backup).
    state = json.loads((tmp_path / "whole" / "backup" / "state.json").read_text())
    raw = model_lib.BiaxialModel.from_config(whole.model.get_config())
    raw.compile(optimizer=keras.optimizers.Adam(use_ema=True), loss=model_lib.BiaxialNLL())
    raw(next(iter(datasets.SegmentSampler(pieces, 16).dataset(1).take(1)))[0])
    raw.optimizer.build(raw.trainable_variables)
    raw.load_weights(tmp_path / "whole" / "backup" / state["weights"])
    if whole.best_epoch == 3:
        averaged = raw.optimizer._model_variables_moving_average
        for saved, ema in zip(whole.model.trainable_variables, averaged, strict=True):
            np.testing.assert_allclose(saved.numpy(), ema.numpy(), rtol=1e-6, atol=1e-7)
    assert not all(
        np.allclose(a.numpy(), b.numpy())
        for a, b in zip(raw.trainable_variables, whole.model.trainable_variables, strict=True)
    )
    # Resuming restores the average with the optimizer: the same log as the uninterrupted run.
    train.train(CHORALES, tmp_path / "split", epochs=1, patience=10, **settings)
    split = train.train(CHORALES, tmp_path / "split", epochs=3, patience=10, **settings)
    for a, b in zip(whole.history, split.history, strict=True):
        assert a["nll"] == pytest.approx(b["nll"], rel=1e-5)
        assert a["val_nll"] == pytest.approx(b["val_nll"], rel=1e-5)


def test_folder_with_a_foreign_model_is_refused(trained, tmp_path):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no train.json"):
        train.train(CHORALES, folder, epochs=1, **TINY)


@pytest.mark.slow
def test_uncommitted_epoch_rows_are_dropped_on_resume(tmp_path):
    run_dir = tmp_path / "run"
    train.train(CHORALES, run_dir, epochs=1, **TINY)
    # Simulate a kill after log.csv got epoch 2's row but before state.json committed it.
    with open(run_dir / "log.csv", "a") as f:
        f.write("2,1,1,1,1,1\n")
    result = train.train(CHORALES, run_dir, epochs=2, **TINY)
    assert [int(r["epoch"]) for r in _log_rows(run_dir)] == [1, 2]
    assert result.history[1]["nll"] != 1.0


@pytest.mark.slow
def test_early_stopping_keeps_best(tmp_path):
    # A learning rate of 0 never improves after epoch 1: patience 1 stops after epoch 2.
    result = train.train(
        CHORALES, tmp_path / "run", epochs=10, patience=1, **{**TINY, "learning_rate": 0.0}
    )
    assert result.stopped_early and result.epochs_completed == 2
    assert result.best_epoch == 1
    again = train.train(
        CHORALES, tmp_path / "run", epochs=10, patience=1, **{**TINY, "learning_rate": 0.0}
    )
    assert again.epochs_completed == 2  # a finished run is not restarted


def test_evaluate_matches_model_nll_and_ignores_padding(trained):
    from musicutils import model as model_lib
    from musicutils._tf import tf

    model = trained.model
    rng = np.random.default_rng(0)
    play = (rng.random((3, 24, 78)) < 0.1).astype(np.uint8)
    state = np.stack([play, play], axis=-1)
    pieces = [from_state(s) for s in state]
    beat = np.stack([p.bar_position() for p in pieces])
    logits = model({"state": tf.constant(state), "beat": tf.constant(beat)})
    expected = float(tf.reduce_mean(model_lib.nll_per_step(state, logits)))
    expected_play = float(tf.reduce_mean(model_lib.nll_per_step(state, logits, False)))
    scores = train.evaluate(model, pieces)
    assert scores["nll"] == pytest.approx(expected, rel=1e-5)
    assert scores["play_nll"] == pytest.approx(expected_play, rel=1e-5)
    # A shorter piece batched (padded) with longer ones scores as it does alone.
    short = from_state(state[0, :10])
    alone = train.evaluate(model, [short])
    mixed = train.evaluate(model, [short, pieces[1]], batch_size=2)
    single = train.evaluate(model, [pieces[1]])
    total = (alone["nll"] * 10 + single["nll"] * 24) / 34
    assert mixed["nll"] == pytest.approx(total, rel=1e-5) and mixed["steps"] == 34


@pytest.mark.slow
def test_cli_train_and_evaluate(tmp_path, capsys):
    run_dir = tmp_path / "cli"
    status = cli.main(
        [
            "train",
            "--data",
            str(CHORALES),
            "--out",
            str(run_dir),
            "--epochs",
            "1",
            "--quiet",
            *TINY_ARGS,
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "best epoch 1: validation NLL" in out
    assert cli.main(["evaluate", "--checkpoint", str(run_dir), "--data", str(CHORALES)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("data: ") and "3 pieces" in lines[0]  # the held-out 10 %
    assert lines[-1].startswith("nll_per_step=") and float(lines[-1].split("=")[1]) > 0
    # A MIDI folder has no test split: one line on stderr, status 2.
    assert (
        cli.main(
            ["evaluate", "--checkpoint", str(run_dir), "--data", str(CHORALES), "--split", "test"]
        )
        == 2
    )
    assert "no test split" in capsys.readouterr().err
    assert (
        cli.main(["evaluate", "--checkpoint", str(tmp_path / "nothing"), "--data", str(CHORALES)])
        == 2
    )


def _tiny_benchmark(path: Path) -> Path:
    rng = np.random.default_rng(1)

    def sequence(n):
        return [
            sorted(int(p) for p in rng.choice(np.arange(48, 72), 3, replace=False))
            for _ in range(n)
        ]

    data = {
        "train": [sequence(24) for _ in range(6)],
        "valid": [sequence(20)],
        "test": [sequence(16), sequence(28)],
    }
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


@pytest.mark.slow
def test_benchmark_pickle_train_and_evaluate(tmp_path, capsys):
    data = _tiny_benchmark(tmp_path / "tiny.pickle")
    result = train.train(data, tmp_path / "run", epochs=1, **{**TINY, "segment_length": 8})
    assert result.model.n_notes == 88 and result.model.lowest == 21
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "tiny.pickle, test split: 2 pieces, 44 steps" in out
    assert "articulation derived from onsets" in out and "nll_per_step=" in out


@pytest.mark.slow
def test_training_uses_pieces_shorter_than_a_segment(tmp_path, capsys):
    data = _tiny_benchmark(tmp_path / "tiny.pickle")  # six training pieces of 24 steps
    settings = {**TINY, "segment_length": 32, "verbose": 2}
    result = train.train(data, tmp_path / "run", epochs=2, **settings)
    out = capsys.readouterr().out
    assert "6 pieces, 6 segments of 32 steps" in out
    assert "6 pieces shorter than a segment padded with masked silence" in out
    rows = result.history
    assert all(np.isfinite(row[key]) for row in rows for key in ("nll", "play_nll", "val_nll"))
    assert rows[-1]["nll"] < rows[0]["nll"]


def test_bad_data_paths(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        train.load_data(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="folder of MIDI files or a .pickle"):
        train.load_data(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="no readable MIDI files"):
        train.load_data(tmp_path, verbose=0)


def test_segment_sampler_is_what_training_uses():
    pieces = train.load_data(CHORALES, verbose=0)
    sampler = datasets.SegmentSampler(pieces["train"], 16)
    assert len(pieces["train"]) == 27 and len(pieces["valid"]) == 3
    assert sampler.n_notes == 78 and sampler.lowest == 24


@pytest.mark.slow
def test_kill_during_training_then_resume(tmp_path):
    run_dir = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "musicutils",
        "train",
        "--data",
        str(CHORALES),
        "--out",
        str(run_dir),
        "--quiet",
        *TINY_ARGS,
    ]
    process = subprocess.Popen(
        [*command, "--epochs", "200"],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state_path = run_dir / "backup" / "state.json"
    deadline = time.monotonic() + 120
    try:
        while not state_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state_path.exists(), "the first epoch never finished"
        process.send_signal(signal.SIGKILL)  # at a random point of a later epoch
    finally:
        process.kill()
        process.wait()
    done = json.loads(state_path.read_text())["epoch"]
    assert done >= 1
    finished = subprocess.run(
        [*command, "--epochs", str(done + 2)],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stderr
    epochs = [int(r["epoch"]) for r in _log_rows(run_dir)]
    assert epochs == list(range(1, done + 3))  # continued, no epoch twice, none lost
    assert json.loads(state_path.read_text())["epoch"] == done + 2


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = f"""
from musicutils._tf import tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from musicutils import train
result = train.train({str(CHORALES)!r}, {str(tmp_path / "run")!r}, epochs=2, strategy="mirrored",
                     **{TINY!r})
print("replicas", train.make_strategy("mirrored").num_replicas_in_sync)
print("val_nll", result.history[0]["val_nll"], result.history[-1]["val_nll"])
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines())
    assert lines["replicas"] == "2"
    first, last = map(float, lines["val_nll"].split())
    assert last < first
    assert (tmp_path / "run" / "model.weights.h5").exists()


@pytest.mark.slow
def test_bfloat16_run_learns_and_keeps_its_precision(tmp_path):
    result = train.train(CHORALES, tmp_path / "run", epochs=2, precision="bfloat16", **TINY)
    run_dir = result.run_dir
    assert json.loads((run_dir / "train.json").read_text())["precision"] == "bfloat16"
    assert json.loads((run_dir / "config.json").read_text())["precision"] == "bfloat16"
    assert result.model.precision == "bfloat16"
    assert result.history[-1]["val_nll"] < result.history[0]["val_nll"]
    with pytest.raises(CheckpointError, match="precision='bfloat16', not 'float32'"):
        train.train(CHORALES, run_dir, epochs=3, **TINY)  # resumed without --precision
    # the same weights scored both ways: bfloat16 rounding moves the NLL by well under 1 %
    half = train.evaluate_checkpoint(run_dir, CHORALES)
    single = train.evaluate_checkpoint(run_dir, CHORALES, precision="float32")
    assert 0 < abs(half["nll"] - single["nll"]) < 0.01 * single["nll"]


def test_run_from_before_precision_existed_resumes_in_float32(trained):
    path = trained.run_dir / "train.json"
    stored = json.loads(path.read_text())
    assert stored["precision"] == "float32"
    path.write_text(json.dumps({k: v for k, v in stored.items() if k != "precision"}))
    again = train.train(CHORALES, trained.run_dir, epochs=4, **TINY)
    assert again.epochs_completed == 4 and again.model.precision == "float32"


def test_unknown_precision_is_refused(tmp_path, capsys):
    with pytest.raises(DataError, match="precision must be one of float32, bfloat16, auto"):
        train.train(CHORALES, tmp_path / "run", precision="float16", **TINY)
    assert not (tmp_path / "run").exists()
    args = cli.build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--precision", "bfloat16"]
    )
    assert args.precision == "bfloat16"
    evaluate_args = ["evaluate", "--checkpoint", "c", "--data", "d"]
    assert cli.build_parser().parse_args(evaluate_args).precision is None  # the model's own
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["generate", "--out", "x.mid", "--precision", "half"])
    assert exit_info.value.code == 2
    assert "precision" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Bad values: every number in its range (musicutils/_checks.py), refused before any file is made.

BAD_NUMBERS = [float("nan"), float("inf"), -1, 10**30]
NUMERIC_SETTINGS = [
    "epochs", "steps_per_epoch", "batch_size", "segment_length", "dropout", "learning_rate",
    "ema", "transpose", "validation_split", "patience", "seed", "time_limit",
]  # fmt: skip


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=["nan", "inf", "negative", "huge"])
@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_train_refuses_bad_numbers_before_touching_the_folder(tmp_path, name, value):
    with pytest.raises(DataError, match=rf"^{name} must be (an integer|a number) in [\[(]"):
        train.train(CHORALES, tmp_path / "run", **{**TINY, name: value})
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("sizes", [(16, float("nan")), (16, -4), (10**9,), ()])
def test_train_refuses_bad_layer_sizes(tmp_path, sizes):
    with pytest.raises(DataError, match="time_sizes"):
        train.train(CHORALES, tmp_path / "run", **{**TINY, "time_sizes": sizes})


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=["nan", "inf", "negative", "huge"])
def test_evaluate_refuses_bad_batch_size(tmp_path, value):
    with pytest.raises(DataError, match=r"^batch_size must be an integer in \[1, "):
        train.evaluate_checkpoint(tmp_path, CHORALES, batch_size=value)
    with pytest.raises(DataError, match="batch_size"):
        train.evaluate(None, [], batch_size=value)
