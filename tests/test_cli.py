"""The light CLI commands, run as users run them: `python -m musicutils ...`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from musicutils import cli, data

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "musicutils", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def chorales() -> list[Path]:
    return sorted(data.bundled_chorales_dir().glob("*.mid"))[:2]


def test_info_reports_bad_file_and_keeps_good_ones(chorales, tmp_path: Path) -> None:
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")  # a header cut short
    missing = tmp_path / "missing.mid"
    result = _run("info", str(chorales[0]), str(bad), str(chorales[1]), str(missing))
    assert result.returncode == 2
    assert chorales[0].name in result.stdout and chorales[1].name in result.stdout
    assert "steps per beat" in result.stdout and "bpm" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith("error: broken.mid: ")
    assert errors[1].startswith("error: ") and "missing.mid" in errors[1]
    assert "Traceback" not in result.stderr


def test_info_ok(chorales) -> None:
    result = _run("info", str(chorales[0]))
    assert result.returncode == 0 and not result.stderr and "notes:" in result.stdout


def test_roll_writes_png(chorales, tmp_path: Path) -> None:
    out = tmp_path / "roll.png"
    result = _run("roll", str(chorales[0]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == b"\x89PNG" and str(out) in result.stdout


def test_render_writes_wav(chorales, tmp_path: Path) -> None:
    out = tmp_path / "x.wav"
    result = _run("render", str(chorales[0]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as file:
        assert file.getnframes() / file.getframerate() > 10


def test_roll_on_bad_file_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"nonsense")
    result = _run("roll", str(bad), "--out", str(tmp_path / "r.png"))
    assert result.returncode == 2 and result.stderr.startswith("error: bad.mid: ")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.png").exists()


def test_light_commands_do_not_import_tensorflow(chorales, tmp_path: Path) -> None:
    song, png, wav = str(chorales[0]), str(tmp_path / "r.png"), str(tmp_path / "r.wav")
    code = (
        "import sys, musicutils.cli as c\n"
        f"assert c.main(['info', {song!r}]) == 0\n"
        f"assert c.main(['roll', {song!r}, '--out', {png!r}]) == 0\n"
        f"assert c.main(['render', {song!r}, '--out', {wav!r}]) == 0\n"
        "assert 'tensorflow' not in sys.modules, 'a light command imported TensorFlow'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_demo_writes_outputs(tmp_path: Path) -> None:
    env_cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "musicutils", "demo", "--out", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MUSICUTILS_CACHE": str(env_cache)},
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "bwv269.wav", "bwv269_roll.png", "bwv269_roundtrip.mid",
        "composed.mid", "composed.png", "composed.wav",
    ]  # fmt: skip
    assert "30 pieces read" in result.stdout and "reads back identical" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("generate", "--out", "x.mid", "--temperature", "nan"),
        ("train", "--data", "d", "--out", "r", "--seed", "-1"),
    ],
)
def test_bad_numbers_are_usage_errors_without_traceback(args, tmp_path):
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: argument {args[-2]}: expected ")
    assert not list(tmp_path.iterdir())  # nothing composed, no run folder made


def _numeric_options():
    """(command, option, allowed range) of every numeric option of every command."""
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = []
    for command, subparser in commands.choices.items():
        for action in subparser._actions:
            # a plain int or float would let nan, inf and any size through
            assert action.type not in (int, float), f"{command} {action.option_strings}"
            if isinstance(action.type, cli.InRange):
                found.append((command, action.option_strings[0], action.type.range))
    return found


NUMERIC_OPTIONS = _numeric_options()


def _required_arguments(command: str) -> list[str]:
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    args = []
    for action in commands.choices[command]._actions:
        if action.required and action.option_strings:
            args += [action.option_strings[0], "x"]
    return args


def test_every_numeric_option_is_range_checked():
    options = {(command, option) for command, option, _ in NUMERIC_OPTIONS}
    expected_train = {
        "--epochs", "--steps-per-epoch", "--batch-size", "--segment-length", "--time-sizes",
        "--note-sizes", "--dropout", "--learning-rate", "--ema", "--transpose",
        "--validation-split", "--patience", "--seed",
    }  # fmt: skip
    assert {("train", o) for o in expected_train} <= options
    expected_generate = {
        "--steps", "--batch-size", "--seed", "--temperature", "--voices", "--draws",
    }  # fmt: skip
    assert {("generate", o) for o in expected_generate} <= options
    assert ("evaluate", "--batch-size") in options


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "-1", "1" + "0" * 30])
@pytest.mark.parametrize(
    "command, option, allowed", NUMERIC_OPTIONS, ids=[f"{c} {o}" for c, o, _ in NUMERIC_OPTIONS]
)
def test_bad_number_is_one_line_naming_option_and_range(command, option, allowed, value, capsys):
    argv = [command, *_required_arguments(command), f"{option}={value}"]  # = lets -inf through
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: argument {option}: ") and str(allowed) in lines[0]


@pytest.mark.parametrize(
    "command, option, allowed", NUMERIC_OPTIONS, ids=[f"{c} {o}" for c, o, _ in NUMERIC_OPTIONS]
)
def test_numeric_option_bounds_are_accepted_when_closed(command, option, allowed):
    ends = ((allowed.low, allowed.low_open), (allowed.high, allowed.high_open))
    bounds = [bound for bound, is_open in ends if not is_open]
    for bound in bounds:
        text = str(int(bound)) if allowed.integer else repr(float(bound))
        args = cli.build_parser().parse_args([command, *_required_arguments(command), option, text])
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        assert value == ([bound] if option.endswith("-sizes") else bound)


def test_seed_range_is_what_numpy_accepts():
    top = str(2**32 - 1)
    args = cli.build_parser().parse_args(["train", "--data", "d", "--out", "r", "--seed", top])
    assert args.seed == 2**32 - 1
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["generate", "--out", "x", "--seed", str(2**32)])


def test_train_options_reach_train(monkeypatch):
    """Every model option of `musicutils train` arrives in train.train under its own name."""
    from musicutils import train

    received = {}

    def fake_train(data, out, **settings):
        received.update(settings, data=data, out=out)
        raise SystemExit(0)

    monkeypatch.setattr(train, "train", fake_train)
    argv = ["train", "--data", "d", "--out", "r", "--chord-below", "--struck-below"]
    args = cli.build_parser().parse_args(argv)
    with pytest.raises(SystemExit):
        train.train_from_args(args)
    assert received["chord_below"] is True and received["struck_below"] is True
    assert (str(received["data"]), str(received["out"])) == ("d", "r")
    args = cli.build_parser().parse_args(["train", "--data", "d", "--out", "r"])
    with pytest.raises(SystemExit):
        train.train_from_args(args)
    assert received["chord_below"] is False and received["struck_below"] is False
