"""Tests for musicutils.train: learning, the run folder, exact resume, kill-and-resume, the CLI,
benchmark pickles and the distributed path. Tiny models (time 16, note 8, segments of 16 steps).
"""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from midi_factory import benchmark_pickle

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
        {**settings, "struck_below": False},  # added later: counts only when set
    ]
    for other in same:
        assert train.run_folder(tmp_path, other) == folder, other
    different = [
        {**settings, "learning_rate": 2e-3},
        {**settings, "epochs": 8},  # fewer epochs is another run, not "nothing to do"
        {**settings, "time_sizes": (150,)},
        {**settings, "chord_below": True},
        {**settings, "struck_below": True},
        {**settings, "data": "elsewhere"},
    ]
    names = {train.run_folder(tmp_path, other).name for other in different}
    assert len(names) == len(different) and folder.name not in names


def test_run_folders_named_before_struck_below_keep_their_names():
    """Names computed by the code before `struck_below` existed (commit 5d0e448): the runs
    of the README's commands resume in the folders they were started in."""
    root = Path("/r")
    assert train.run_folder(root, {"data": "/x/y.pickle"}).name == "run-b024108ef8"
    settings = {"data": "/x/y.pickle", "epochs": 7, "chord_below": True}
    assert train.run_folder(root, settings).name == "run-fea3568ff6"


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


def test_run_from_before_a_setting_existed_resumes(trained, tmp_path):
    # A train.json written before a setting (here `ema`) was added reads it as its default,
    # and the run trains on (a copy: the shared run stays as it is).
    run_dir = _copy_of(trained, tmp_path)
    path = run_dir / "train.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in stored.items() if k != "ema"}))
    again = train.train(CHORALES, run_dir, epochs=5, **TINY)
    assert again.resumed_from == 4 and again.epochs_completed == 5
    assert json.loads(path.read_text())["ema"] == 0.0  # rewritten with every setting


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


def _copy_of(trained, tmp_path: Path) -> Path:
    """A copy of the shared 4-epoch run, for a test that changes its files."""
    return Path(shutil.copytree(trained.run_dir, tmp_path / "copy"))


def _drop(key: str):
    return lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != key})


def _set(key: str, value):
    return lambda text: json.dumps({**json.loads(text), key: value})


DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "not JSON": lambda text: "<html>502 Bad Gateway</html>",
    "a list": lambda text: "[4, 10]",
}
DAMAGED_FILES = [
    *[("backup/state.json", name, damage) for name, damage in DAMAGE.items()],
    ("backup/state.json", "no epoch", _drop("epoch")),
    ("backup/state.json", "epoch as text", _set("epoch", "four")),
    ("backup/state.json", "a row short", _set("rows", [])),
    ("backup/state.json", "weights outside", _set("weights", "../../etc/passwd")),
    *[("train.json", name, damage) for name, damage in DAMAGE.items()],
    ("train.json", "unknown key", _set("learning_rat", 0.1)),
    ("train.json", "batch size as text", _set("batch_size", "4")),
    ("train.json", "no data", _drop("data")),
    *[("config.json", name, damage) for name, damage in DAMAGE.items()],
    ("config.json", "no n_notes", _drop("n_notes")),
    ("config.json", "unknown key", _set("colour", "blue")),
    ("config.json", "infinite n_notes", _set("n_notes", float("inf"))),  # written as Infinity
    ("config.json", "range past 127", _set("lowest", 100)),
    ("config.json", "voices as nan", _set("voices", float("nan"))),  # written as NaN
]


@pytest.mark.parametrize(
    "name, damage",
    [(f, d) for f, _, d in DAMAGED_FILES],
    ids=[f"{f}: {n}" for f, n, _ in DAMAGED_FILES],
)
def test_damaged_run_files_are_one_line_checkpoint_errors(trained, tmp_path, name, damage):
    run_dir = _copy_of(trained, tmp_path)
    path = run_dir / name
    path.write_text(damage(path.read_text()))
    with pytest.raises(CheckpointError) as error:
        train.train(CHORALES, run_dir, epochs=4, **TINY)  # the run is complete: nothing to train
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    if name != "backup/state.json":  # evaluate reads the other two
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: "):
            train.evaluate_checkpoint(run_dir, CHORALES)


@pytest.mark.parametrize("name", ["backup/state.json", "train.json", "config.json"])
def test_damaged_run_file_on_the_command_line(trained, tmp_path, capsys, name):
    run_dir = _copy_of(trained, tmp_path)
    (run_dir / name).write_text('{"epoch": 4, "rows"')  # cut short mid-write
    args = ["--data", str(CHORALES), "--out", str(run_dir), "--epochs", "4", "--quiet"]
    assert cli.main(["train", *args, *TINY_ARGS]) == 2
    if name == "config.json":
        assert cli.main(["generate", "--checkpoint", str(run_dir), "--out", "x.mid"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith(f"error: {run_dir / name}: ") for line in lines)


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


def test_new_run_starts_at_the_base_rates(tmp_path):
    """A new run's output biases are the training data's base-rate logits (learning rate 0
    keeps them there), not zeros; the training data's states are the sampler's."""
    from musicutils.datasets import SegmentSampler
    from musicutils.model import base_rate_logits

    result = train.train(CHORALES, tmp_path / "run", epochs=1, **{**TINY, "learning_rate": 0.0})
    pieces = train.load_data(CHORALES, validation_split=0.1, seed=0, verbose=0)["train"]
    expected = base_rate_logits(SegmentSampler(pieces, 16).states)
    assert expected[0] < -2.5 and expected[1] < 0  # ~5 % of notes sound; most are held
    np.testing.assert_allclose(result.model.output_layer.bias.numpy(), expected, rtol=1e-6)


def test_init_from_starts_a_new_run_from_a_models_weights(trained, tmp_path, capsys, monkeypatch):
    """A new run from the 4-epoch run's model, with learning rate 0, keeps exactly its weights
    (not the base-rate start of a fresh run); train.json records where it started from; the
    run's folder name changes with it; a mismatched architecture or a missing folder is refused
    with the settings that would match, before any training."""
    source = trained.run_dir
    frozen = {**TINY, "learning_rate": 0.0}
    result = train.train(CHORALES, tmp_path / "tuned", epochs=1, init_from=source, **frozen)
    for mine, theirs in zip(result.model.get_weights(), trained.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    stored = json.loads((tmp_path / "tuned" / "train.json").read_text())
    assert stored["init_from"] == str(source.resolve())
    # the run opens again: resumed (one more epoch) and evaluated, its train.json read back
    resumed = train.train(CHORALES, tmp_path / "tuned", epochs=2, init_from=source, **frozen)
    assert resumed.resumed_from == 1 and resumed.epochs_completed == 2
    assert train.evaluate_checkpoint(tmp_path / "tuned", CHORALES)["play_nll"] > 0
    # stopped in its first epoch (train.json written, no epoch committed): it starts from the
    # source again, not from random weights
    shutil.rmtree(tmp_path / "tuned" / "backup")
    again = train.train(CHORALES, tmp_path / "tuned", epochs=1, init_from=source, **frozen)
    assert again.resumed_from == 0
    for mine, theirs in zip(again.model.get_weights(), trained.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    plain = {"data": str(CHORALES), "epochs": 1}
    assert train.run_folder(tmp_path, plain) != train.run_folder(
        tmp_path, {**plain, "init_from": str(source)}
    )

    with pytest.raises(DataError, match=r"--time-sizes 16 --note-sizes 8$"):
        train.train(
            CHORALES, tmp_path / "other", init_from=source, **{**frozen, "note_sizes": (6,)}
        )
    assert not (tmp_path / "other" / "train.json").exists()  # so the right flags can use it
    with pytest.raises(CheckpointError, match="no saved model there"):
        train.train(CHORALES, tmp_path / "none", init_from=tmp_path / "missing", **frozen)
    # "pretrained" names the bundled model where no such folder is (here: its architecture)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="--time-sizes 150,150 --note-sizes 80,40 --chord-below"):
        train.train(CHORALES, tmp_path / "bundled", init_from="pretrained", **frozen)
    assert not (tmp_path / "none").exists()
    code = cli.main(
        [
            "train",
            "--data",
            str(CHORALES),
            "--out",
            str(tmp_path / "cli"),
            *TINY_ARGS,
            "--note-sizes",
            "6",
            "--init-from",
            str(source),
            "--quiet",
        ]
    )
    assert code == 2
    assert "--time-sizes 16 --note-sizes 8" in capsys.readouterr().err


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
    # More patience resumes it: two more epochs without improvement, then it stops again.
    patient = train.train(
        CHORALES, tmp_path / "run", epochs=10, patience=3, **{**TINY, "learning_rate": 0.0}
    )
    assert patient.resumed_from == 2 and patient.epochs_completed == 4
    assert patient.stopped_early and patient.best_epoch == 1
    assert [row["epoch"] for row in train.read_log(tmp_path / "run")] == [1, 2, 3, 4]


def test_time_limit_and_a_run_without_validation_pieces(tmp_path):
    run_dir = tmp_path / "run"
    # A budget shorter than any epoch: the first epoch is trained, then the run stops, resumable.
    first = train.train(CHORALES, run_dir, epochs=3, validation_split=0.0, time_limit=1e-3, **TINY)
    assert first.epochs_completed == 1 and not first.stopped_early
    assert json.loads((run_dir / "backup" / "state.json").read_text())["epoch"] == 1
    # Without validation pieces the latest weights are the model kept, and no NLL is made up.
    assert first.best_epoch == 1 and first.best_val_nll is None
    assert np.isnan(first.history[0]["val_nll"]) and np.isnan(first.history[0]["val_play_nll"])
    assert _log_rows(run_dir)[0]["val_nll"] == "" and float(_log_rows(run_dir)[0]["nll"]) > 0
    with pytest.raises(DataError, match="no pieces to score"):  # nothing was held out
        train.evaluate_checkpoint(run_dir, CHORALES, split="valid")


def test_train_settings_reach_the_model_the_data_and_train_json(tmp_path, monkeypatch):
    """chord_below and struck_below reach the model, transpose the training stream, and a
    relative data path is stored absolute: evaluate and a resumed run find the folder from
    another directory."""
    streams = []  # the `transpose` of every data stream train() asks for
    dataset = datasets.SegmentSampler.dataset

    def spy(self, batch_size, **kwargs):
        streams.append(kwargs.get("transpose", 0))
        return dataset(self, batch_size, **kwargs)

    monkeypatch.setattr(datasets.SegmentSampler, "dataset", spy)
    monkeypatch.chdir(ROOT)
    run_dir = tmp_path / "run"
    settings = {**TINY, "chord_below": True, "struck_below": True, "transpose": 2}
    result = train.train("data/chorales", run_dir, epochs=1, **settings)
    assert streams[-1] == 2  # the training stream (an earlier one only builds the weights)
    assert result.model.chord_below and result.model.struck_below
    config = json.loads((run_dir / "config.json").read_text())
    assert config["chord_below"] is True and config["struck_below"] is True
    # the training chorales' texture, measured for generate's voice rule
    assert result.model.voices == 4 and config["voices"] == 4
    stored = json.loads((run_dir / "train.json").read_text())
    assert stored["chord_below"] is True and stored["struck_below"] is True
    assert stored["transpose"] == 2
    assert stored["data"] == str(CHORALES)
    with pytest.raises(CheckpointError, match="transpose=2, not 3"):
        train.train(CHORALES, run_dir, epochs=2, **{**settings, "transpose": 3})

    monkeypatch.chdir(ROOT / "notebooks")  # where a notebook runs
    scores = train.evaluate_checkpoint(run_dir, "../data/chorales")
    assert scores["pieces"] == 3 and "valid pieces" in scores["split"]  # the held-out ones
    again = train.train("../data/chorales", run_dir, epochs=1, **settings)  # the same data
    assert again.epochs_completed == 1 and again.resumed_from == 1


def test_evaluate_an_empty_split_and_a_pitch_range_mismatch(trained, tmp_path, capsys):
    assert np.isnan(train.evaluate(trained.model, [])["nll"])  # the API: nothing scored
    data = _tiny_benchmark(tmp_path / "tiny.pickle")  # 88 keys from A0
    with pytest.raises(DataError, match=r"covers MIDI 24\.\.101 but the data 21\.\.108"):
        train.evaluate_checkpoint(trained.run_dir, data)
    with open(tmp_path / "empty.pickle", "wb") as f:
        pickle.dump({"train": [[[60]]], "valid": [], "test": [[[60]]]}, f)
    empty = str(tmp_path / "empty.pickle")
    args = ["evaluate", "--checkpoint", str(trained.run_dir), "--data", empty, "--split", "valid"]
    assert cli.main(args) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: empty.pickle, valid split: there are no pieces to score"
    ]


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
    return benchmark_pickle(path, {"train": [24] * 6, "valid": [20], "test": [16, 28]})


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
def test_second_writer_refused_then_kill_and_resume(tmp_path):
    """One run folder, one writer: a second `train` on a live run is refused at once, before
    TensorFlow loads; after SIGKILL the lock is gone and the same command resumes the run."""
    run_dir = tmp_path / "killed"
    command = [
        sys.executable, "-m", "musicutils", "train", "--data", str(CHORALES),
        "--out", str(run_dir), "--quiet", *TINY_ARGS,
    ]  # fmt: skip
    state_path = run_dir / "backup" / "state.json"
    with open(tmp_path / "first.err", "w") as stderr:
        first = subprocess.Popen(
            [*command, "--epochs", "200"], env=_env(), cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 600  # a generous wait: a loaded machine starts slowly
        while not state_path.exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert state_path.exists(), (tmp_path / "first.err").read_text()[-2000:]
        refused = _cli_in_subprocess(["train", *command[4:], "--epochs", "200"])
        assert first.poll() is None  # still training
        first.send_signal(signal.SIGKILL)  # at a random point of a later epoch
    finally:
        first.kill()
        first.wait()
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines() == [
        f"error: {run_dir}: another process (pid {first.pid}) is training in this run folder; "
        "wait for it to end, or use another --out folder"
    ]
    assert refused.stdout == "tensorflow not imported\n"
    done = json.loads(state_path.read_text())["epoch"]
    assert done >= 1
    finished = subprocess.run(
        [*command, "--epochs", str(done + 2)], env=_env(), cwd=ROOT, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    epochs = [int(r["epoch"]) for r in _log_rows(run_dir)]
    assert epochs == list(range(1, done + 3))  # continued, no epoch twice, none lost
    assert json.loads(state_path.read_text())["epoch"] == done + 2


def _cli_in_subprocess(argv: list[str]) -> subprocess.CompletedProcess:
    """`cli.main(argv)` in a fresh Python; prints whether TensorFlow was imported."""
    code = (
        "import sys\nfrom musicutils import cli\n"
        f"status = cli.main({argv!r})\n"
        "print('tensorflow', 'imported' if 'tensorflow' in sys.modules else 'not imported')\n"
        "sys.exit(status)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=_env(), cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_run_lock_dies_with_its_process(tmp_path):
    from musicutils._lock import run_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom musicutils._lock import run_lock\n"
         f"with run_lock({str(tmp_path)!r}):\n    print('held', flush=True)\n    time.sleep(300)"],
        env=_env(), cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(CheckpointError, match=rf"another process \(pid {holder.pid}\)"):
            with run_lock(tmp_path):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path):  # no stale lock; and nested use in one process shares it
        with run_lock(tmp_path):
            assert (tmp_path / "train.lock").read_text() == f"{os.getpid()}\n"
    assert (tmp_path / "train.lock").read_text() == ""  # released


def test_ctrl_c_leaves_a_resumable_run_and_exits_130(tmp_path, monkeypatch, capsys):
    # Ctrl-C raises KeyboardInterrupt wherever Python runs next; here, in the second epoch.
    original = train._RunCallback.on_train_batch_end

    def ctrl_c_in_epoch_2(self, batch, logs=None):
        original(self, batch, logs)
        if self._epoch == 1 and batch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train._RunCallback, "on_train_batch_end", ctrl_c_in_epoch_2)
    run_dir = tmp_path / "run"
    args = ["train", "--data", str(CHORALES), "--out", str(run_dir), "--quiet", *TINY_ARGS]
    assert cli.main([*args, "--epochs", "3"]) == 130
    assert capsys.readouterr().err.splitlines() == [
        f"error: {run_dir}: interrupted; epoch 1 is saved; run the same command again to resume"
    ]
    # Resumable: epoch 1 committed, nothing half-written, the lock released.
    from musicutils import _lock

    assert json.loads((run_dir / "backup" / "state.json").read_text())["epoch"] == 1
    assert [row["epoch"] for row in train.read_log(run_dir)] == [1]
    assert not list(run_dir.glob(".*")) and not list((run_dir / "backup").glob(".*"))
    assert not _lock._held
    with _lock.run_lock(run_dir):  # a new flock on the file: free
        pass


def test_non_finite_loss_stops_and_keeps_the_last_good_epoch(tmp_path, monkeypatch):
    from musicutils import model as model_lib
    from musicutils._tf import tf

    poison = tf.Variable(np.nan)  # added to every loss: NaN, or 0 (a tf.where would make NaN
    # gradients even where it picks the finite branch)

    class PoisonedNLL(model_lib.BiaxialNLL):
        def call(self, y_true, y_pred):
            return super().call(y_true, y_pred) + poison

    monkeypatch.setattr(model_lib, "BiaxialNLL", PoisonedNLL)
    fresh = tmp_path / "fresh"
    # NaN from the first batch: nothing is saved, so no NaN model can pass for the best one.
    with pytest.raises(DataError, match="the loss is nan in epoch 1, batch 1; .*holds no"):
        train.train(CHORALES, fresh, epochs=2, **TINY)
    assert not (fresh / "model.weights.h5").exists() and not (fresh / "backup").exists()

    # NaN from epoch 2 on: epoch 1 stays the run's state and its best model.
    saved = {}
    begin = train._RunCallback.on_epoch_begin

    def poison_epoch_2(self, epoch, logs=None):
        if epoch == 1:
            saved["best"] = (self.run_dir / "model.weights.h5").read_bytes()
            saved["state"] = (self.run_dir / "backup" / "state.json").read_text()
            poison.assign(np.nan)
        return begin(self, epoch, logs)

    poison.assign(0.0)
    monkeypatch.setattr(train._RunCallback, "on_epoch_begin", poison_epoch_2)
    run_dir = tmp_path / "run"
    with pytest.raises(DataError, match=r"in epoch 2, batch 1; .* keeps epoch 1 \(best model: "):
        train.train(CHORALES, run_dir, epochs=3, **TINY)
    assert (run_dir / "model.weights.h5").read_bytes() == saved["best"]
    assert (run_dir / "backup" / "state.json").read_text() == saved["state"]
    assert [row["epoch"] for row in train.read_log(run_dir)] == [1]


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
