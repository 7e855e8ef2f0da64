"""The light CLI commands, run as users run them: `python -m musicutils ...`."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from musicutils import data

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
        ("generate", "--out", "x.mid", "--temperature", "0"),
        ("generate", "--out", "x.mid", "--batch-size", "0"),
        ("train", "--data", "d", "--out", "r", "--transpose", "-1"),
        ("train", "--data", "d", "--out", "r", "--learning-rate", "-0.1"),
    ],
)
def test_bad_numbers_are_usage_errors_without_traceback(args, tmp_path):
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "expected a value" in result.stderr
