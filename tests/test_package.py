"""Package-level promises: quiet TensorFlow import, light modules stay light."""

import os
import subprocess
import sys
from pathlib import Path


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_tensorflow_import_prints_nothing():
    result = run_python("from musicutils._tf import tf; print(int(tf.reduce_sum(tf.ones(3))))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
    assert result.stderr == ""


def test_light_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import musicutils, musicutils.cli, musicutils.midi, musicutils.errors\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_errors_are_value_errors_with_a_common_base():
    from musicutils.errors import CheckpointError, DataError, MidiError, MusicutilsError

    for error in (MidiError, DataError, CheckpointError):
        assert issubclass(error, ValueError)
        assert issubclass(error, MusicutilsError)


def test_atomic_open_replaces_only_on_success(tmp_path):
    import pytest

    from musicutils._io import atomic_open

    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as file:
            file.write("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left behind

    with atomic_open(target, "w") as file:
        file.write("new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644


def test_tests_cache_in_a_temporary_folder_and_ci_derandomises_hypothesis():
    import tempfile

    from musicutils import data, notebook

    # tests/conftest.py: no corpus cache in ~/.cache, no notebook files in the checkout's out/
    # (subprocesses and notebook kernels inherit both folders)
    session = data.default_cache_dir().parent
    assert session.parent == Path(tempfile.gettempdir()) and session.name.startswith("musicutils-")
    assert notebook.output_root() == session / "out"
    code = (
        "import conftest\nfrom hypothesis import settings\n"
        "print(settings.default.derandomize, settings.default.database, settings.default.deadline)"
    )
    tests = Path(__file__).parent
    local = {key: value for key, value in os.environ.items() if key != "CI"}
    for env, derandomized in (({**local, "CI": "true"}, "True"), (local, "False")):
        shown = subprocess.run(
            [sys.executable, "-c", code], cwd=tests, env=env,
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout.split()  # fmt: skip
        assert shown == [derandomized, "None", "None"]  # no .hypothesis/ folder, no time limit
