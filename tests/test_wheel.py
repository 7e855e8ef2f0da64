"""`pip install .` gives a working package: the wheel composes with no checkout in sight.

The wheel is built from a copy of the files pyproject.toml packages, installed into a temporary
venv that reuses this environment's dependencies (a .pth line to its site-packages, so nothing is
downloaded), and the commands are run from an empty temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import musicutils

REPO = Path(__file__).resolve().parents[1]
#: What the wheel is built from (pyproject.toml's package-dir names the folders).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "musicutils", "pretrained", "data/chorales")
MODEL_FILES = ("README.md", "config.json", "model.weights.h5", "train.json", "log.csv")


def _run(args, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _copy_sources(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        source, target = REPO / name, dest / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, environment, empty working folder) with the freshly built wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    source, dist, env_dir, work = root / "src", root / "dist", root / "venv", root / "work"
    _copy_sources(source)
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", MUSICUTILS_CACHE=str(root / "cache"), PIP_NO_INDEX="1")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # The build backend (setuptools, pinned in requirements-dev.txt) comes from this environment.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            dist,
            ".",
        ],
        cwd=source,
        env=env,
    )
    (wheel,) = dist.glob("musicutils-*.whl")

    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Reuse what is installed here (tensorflow, numpy, pip...) without its .pth hooks, so the
    # editable install of the checkout stays invisible and only the wheel provides musicutils.
    reused = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    Path(purelib, "_reuse_parent_env.pth").write_text("\n".join(reused) + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", wheel], cwd=work, env=env)
    # The wheel's declared dependencies are what the pinned environment provides.
    check = subprocess.run(
        [python, "-m", "pip", "check"], cwd=work, env=env, capture_output=True, text=True
    )
    assert "musicutils" not in check.stdout.lower(), check.stdout
    return env_dir, env, work


def test_this_install_finds_the_bundled_files_through_importlib_resources():
    from musicutils import data
    from musicutils._resources import PRETRAINED_PACKAGE, package_folder

    pretrained = package_folder(PRETRAINED_PACKAGE)
    assert all((pretrained / name).is_file() for name in MODEL_FILES)
    assert len(data.midi_files(data.BUNDLED_CHORALES)) == 30


def test_version_has_one_source():
    from importlib.metadata import version

    assert version("musicutils") == musicutils.__version__


def test_console_script_and_python_m_behave_the_same(tmp_path):
    script = Path(sys.executable).with_name("musicutils")
    if not script.exists():
        pytest.skip(f"{script}: console script not installed (run `make venv`)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for args in (["--version"], ["info", "missing.mid"], ["generate", "--steps"]):
        by_script = subprocess.run(
            [script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        by_module = subprocess.run(
            [sys.executable, "-m", "musicutils", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (by_script.returncode, by_script.stdout, by_script.stderr) == (
            by_module.returncode,
            by_module.stdout,
            by_module.stderr,
        ), args
    assert by_module.returncode == 2


@pytest.mark.slow
def test_wheel_carries_the_model_and_the_chorales(installed):
    env_dir, env, work = installed
    code = (
        "import sys, musicutils, musicutils.data as d, musicutils._resources as r\n"
        "print(musicutils.__file__)\n"
        "print(r.package_folder(r.PRETRAINED_PACKAGE))\n"
        "print(d.BUNDLED_CHORALES)\n"
        "print(len(d.midi_files(d.BUNDLED_CHORALES)))\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = _run([env_dir / "bin" / "python", "-c", code], cwd=work, env=env).stdout.split("\n")
    package, pretrained, chorales, count, tf_loaded = (Path(line) for line in out[:5])
    assert package.is_relative_to(env_dir) and not package.is_relative_to(REPO)
    assert pretrained.is_relative_to(env_dir) and chorales.is_relative_to(env_dir)
    assert sorted(p.name for p in pretrained.iterdir() if p.name in MODEL_FILES) == sorted(
        MODEL_FILES
    )
    assert str(count) == "30"
    assert str(tf_loaded) == "False"


@pytest.mark.slow
def test_installed_commands_compose_from_any_folder(installed):
    env_dir, env, work = installed
    script = env_dir / "bin" / "musicutils"
    version = _run([script, "--version"], cwd=work, env=env).stdout.strip()
    assert version == f"musicutils {musicutils.__version__}"
    module = _run([env_dir / "bin" / "python", "-m", "musicutils", "--version"], cwd=work, env=env)
    assert module.stdout.strip() == version

    _run([script, "demo", "--out", "demo_out"], cwd=work, env=env, timeout=300)
    for name in ("composed.mid", "composed.png", "composed.wav", "bwv269_roll.png"):
        assert (work / "demo_out" / name).stat().st_size > 0, name

    _run([script, "generate", "--steps", "64", "--out", "x.mid"], cwd=work, env=env)
    from musicutils import midi

    piece = midi.read(work / "x.mid")
    assert piece.n_steps >= 60 and piece.note_count > 0
    assert not (work / "out").exists()  # nothing written outside the folders asked for
