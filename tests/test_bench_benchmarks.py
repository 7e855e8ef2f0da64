"""Tests for benchmarks/bench_benchmarks.py: the command and result line of a run, recording,
the mean over seeds, and one tiny end-to-end run (a made-up pickle, a model of a few weights)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import statistics
import sys
from pathlib import Path

import pytest
from midi_factory import benchmark_pickle

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "bench_benchmarks", ROOT / "benchmarks" / "bench_benchmarks.py"
)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_benchmarks"] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)

#: A result line: `SET: key=value ...`, values unquoted or "quoted".
LINE = re.compile(r'^(\w+): ((?:\w+=(?:"[^"]*"|\S+) ?)+)$')


def fields(line: str) -> dict:
    match = LINE.match(line)
    assert match, line
    pairs = re.findall(r'(\w+)=("[^"]*"|\S+)', match.group(2))
    return {"set": match.group(1), **{k: v.strip('"') for k, v in pairs}}


def test_command_names_one_run_and_drops_what_does_not_change_it():
    argv = [
        "--sets=jsb,nottingham",
        "--seeds",
        "0,1,2",
        "--minutes",
        "60",
        "--chord-below",
        "--out",
        "/tmp/x",
        "--no-record",
        "--patience=15",
        "--verbose",
        "0",
    ]
    args = bench.parse_args(argv)
    assert args.set_names == ["jsb", "nottingham"] and args.run_seeds == [0, 1, 2]
    command = bench.command_of(args, "jsb", 2)
    assert command == (
        "benchmarks/bench_benchmarks.py --sets jsb --seed 2 --minutes 60 --chord-below "
        "--patience=15"
    )
    # The command parses back to the same run settings.
    again = bench.parse_args(shlex.split(command)[1:])
    assert again.run_seeds == [2] and again.set_names == ["jsb"]
    for key in ("minutes", "chord_below", "patience", "time_sizes", "learning_rate"):
        assert getattr(again, key) == getattr(args, key)


def test_bad_options_are_refused(capsys):
    for argv in (["--sets", "mozart"], ["--average-epochs", "3-5"], ["--seeds", ","]):
        with pytest.raises(SystemExit) as exit_info:
            bench.parse_args(argv)
        assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        bench.parse_args(["--keep-epochs", "--average-epochs", "9-3"])
    assert "FIRST" in capsys.readouterr().err
    for argv in (
        ["--average-around", "2"],  # without --keep-epochs
        ["--keep-epochs", "--average-around", "0"],
        ["--keep-epochs", "--average-around", "2", "--average-epochs", "1-3"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            bench.parse_args(argv)
        assert exit_info.value.code == 2


def test_per_set_sizes_and_their_overrides():
    args = bench.parse_args(["--sets", "musedata"])
    assert bench.sizes_of(args, "jsb") == bench.SetDefaults(32, 16, 25)
    assert bench.sizes_of(args, "musedata") == bench.SETS["musedata"]
    args = bench.parse_args(["--segment-length", "64", "--batch-size", "8"])
    assert bench.sizes_of(args, "piano") == bench.SetDefaults(
        64, 8, bench.SETS["piano"].steps_per_epoch
    )


def test_record_appends_whole_lines(tmp_path):
    path = bench.record("jsb: test_nll_per_step=1.000", "jsb", tmp_path)
    path.write_text(path.read_text().rstrip("\n"))  # a file whose last line lacks its newline
    bench.record("jsb: test_nll_per_step=2.000", "jsb", tmp_path)
    assert path.read_text().splitlines() == [
        "jsb: test_nll_per_step=1.000",
        "jsb: test_nll_per_step=2.000",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["jsb.txt"]  # no temporary file left


def test_seeds_summary_is_mean_and_sample_standard_deviation():
    line = bench.seeds_summary("jsb", [4.98, 4.90, 5.02], [0, 1, 2])
    assert f"mean={statistics.fmean([4.98, 4.90, 5.02]):.3f}" in line
    assert f"std={statistics.stdev([4.98, 4.90, 5.02]):.3f}" in line and "n=3" in line
    assert line.startswith("jsb: seeds 0,1,2: test_nll_per_step")
    averaged = bench.seeds_summary("jsb", [4.7, 4.8], [0, 1], "averaged weights")
    assert averaged.startswith("jsb: seeds 0,1: averaged weights: test_nll_per_step mean=4.750")


def test_baselines_by_hand(tmp_path, capsys):
    import math
    import pickle

    (tmp_path / "data").mkdir()
    with open(tmp_path / "data" / "jsb_chorales.pickle", "wb") as f:  # middle C held 4 steps
        pickle.dump({"train": [[[60]] * 4], "valid": [[[60]]], "test": [[[60]] * 2]}, f)
    assert bench.main(["--data-dir", str(tmp_path / "data"), "--baselines"]) == 0
    line = dict(re.findall(r"(\w+)=(\S+)", capsys.readouterr().out.splitlines()[-1]))
    # Add-half smoothing over the 4 train steps: middle C plays with 4.5 / 5 = 0.9, the 87 other
    # keys with 0.5 / 5 = 0.1; given the step before, C plays with 1.5 / 2 after silence and
    # 3.5 / 4 after itself. Two test steps.
    silent = -87 * 2 * math.log(0.9)
    assert float(line["base_rate"]) == pytest.approx((silent - 2 * math.log(0.9)) / 2, abs=1e-3)
    markov = silent - math.log(0.75) - math.log(0.875)
    assert float(line["markov"]) == pytest.approx(markov / 2, abs=1e-3)


def _tiny_set(folder: Path) -> None:
    folder.mkdir()
    lengths = {
        "train": [6, 20, 24, 30, 12, 40],  # two shorter than a segment
        "valid": [20, 9],
        "test": [16, 28],
    }
    benchmark_pickle(folder / "jsb_chorales.pickle", lengths)


@pytest.mark.slow
def test_tiny_run_prints_records_and_averages(tmp_path, capsys):
    _tiny_set(tmp_path / "data")
    argv = [
        "--data-dir", str(tmp_path / "data"),
        "--out", str(tmp_path / "out"),
        "--results-dir", str(tmp_path / "results"),
        "--minutes", "0.01",
        "--time-sizes", "8",
        "--note-sizes", "4",
        "--batch-size", "4",
        "--segment-length", "16",
        "--steps-per-epoch", "2",
        "--keep-epochs",
        "--average-epochs", "1-1",
        "--verbose", "0",
    ]  # fmt: skip
    assert bench.main(argv) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("jsb: ")]
    recorded = (tmp_path / "results" / "jsb.txt").read_text().splitlines()
    assert recorded == printed[:2]
    run, averaged = fields(recorded[0]), fields(recorded[1])
    assert run["seed"] == "0" and run["epochs"] == "1" and run["stopped"] == "time"
    assert run["command"].startswith("benchmarks/bench_benchmarks.py --sets jsb --seed 0 ")
    assert float(run["test_nll_per_step"]) < float(run["test_nll_with_articulation"])
    # The average of epoch 1 alone is epoch 1's weights: it scores what the run logged for it.
    assert averaged["averaged_epochs"] == "1-1"
    assert float(averaged["valid"]) == pytest.approx(
        float(averaged["best_single_epoch_valid"]), abs=1e-3
    )
    assert averaged["test_nll_per_step"] == run["test_nll_per_step"]
    # Again with --no-record: the same run folder, resumed; nothing recorded; epochs that were
    # never trained cannot be averaged, which is said and is not fatal.
    again = [*argv[:-4], "--average-epochs", "1-9", "--verbose", "0", "--no-record"]
    assert bench.main(again) == 0
    # (each call trains one more epoch: the time limit allows one per session)
    assert "epochs 1-9 not averaged: the run ended after epoch 2" in capsys.readouterr().out
    assert (tmp_path / "results" / "jsb.txt").read_text().splitlines() == recorded
    # Around the best epoch, as far as the run goes: its three epochs, whichever is the best.
    around = [*argv[:-4], "--average-around", "3", "--verbose", "0", "--no-record"]
    assert bench.main(around) == 0
    assert "averaged_epochs=1-3" in capsys.readouterr().out


def test_committed_results_parse_and_appear_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    files = sorted((ROOT / "benchmarks" / "results").glob("*.txt"))
    assert {f.stem for f in files} >= {"jsb", "nottingham"}
    for path in files:
        for line in path.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            run = fields(line)
            assert run["set"] == path.stem and run["set"] in bench.SETS
            assert run["command"].startswith("benchmarks/bench_benchmarks.py --sets " + path.stem)
            assert "seed" in run
            figure = float(run["test_nll_per_step"])
            assert f"{figure:.2f}" in readme, f"{path.name}: {figure} is not in the README"
