"""scripts/lab.py (`make lab`) and scripts/browser_check.py (`make test-browser`).

The fast tests check the command line and the page checks on made-up page states. The one
marked `browser` starts JupyterLab and headless Chromium on a small notebook that fails, and
checks the report a developer gets; `make test-browser` runs it (`make test` leaves it out).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


lab = _load("lab")
browser_check = _load("browser_check")


def _notebook(path: Path, cells: list[dict]) -> Path:
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path


def _code(source: str, outputs: list | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": outputs or [],
        "source": source,
    }


def test_lab_command_is_the_one_make_lab_runs():
    command = lab.lab_command(8890, "abc", root=False)
    assert command[1:4] == ["-m", "jupyter", "lab"]
    assert f"--notebook-dir={REPO / 'notebooks'}" in command
    assert "--ServerApp.port=8890" in command and "--ServerApp.port_retries=0" in command
    assert "--IdentityProvider.token=abc" in command
    assert "--allow-root" not in command and "--no-browser" not in command
    assert "--allow-root" in lab.lab_command(8890, "abc", root=True)
    assert "--no-browser" in lab.lab_command(8890, "abc", open_browser=False, root=False)
    assert lab.lab_url(8890, "abc") == "http://localhost:8890/lab?token=abc"
    makefile = (REPO / "Makefile").read_text()
    assert "scripts/lab.py" in makefile and "scripts/browser_check.py" in makefile


def test_free_port_moves_off_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port = lab.free_port(taken)
    assert port != taken
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # really free


def test_missing_chromium_says_how_to_install_it(tmp_path):
    result = subprocess.run(
        [sys.executable, SCRIPTS / "browser_check.py", "--chromium", tmp_path / "no-chromium"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Chromium not found" in result.stderr
    assert "apt-get install -y chromium" in result.stderr


def test_expectations_come_from_the_cells_and_their_stored_outputs(tmp_path):
    stored_png = [{"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}]
    path = _notebook(
        tmp_path / "n.ipynb",
        [
            {"cell_type": "markdown", "metadata": {}, "source": "# title"},
            _code("x = 1"),
            _code("plotting.plot_piano_roll(piece)\nplt.show()"),
            _code("def draw():\n    plt.show()"),  # only defines: draws nothing yet
            _code("%matplotlib inline\nfig, ax = plt.subplots()"),
            _code("show_it(x)", outputs=stored_png),
            _code("audio.play(piece)"),
            _code("plt.rcParams['figure.dpi'] = 100"),
        ],
    )
    found = browser_check.expectations(path)
    assert [c["figure"] for c in found] == [False, True, False, True, True, False, False]
    assert [c["audio"] for c in found] == [False, False, False, False, False, True, False]


def _page_cell(index, prompt="[1]:", errors=(), decoded=0, audio=0, unrendered=0):
    return {
        "index": index,
        "prompt": prompt,
        "errors": list(errors),
        "images": decoded,
        "decoded": decoded,
        "audio": audio,
        "unrendered_figures": unrendered,
    }


def _want(source, figure=False, audio=False):
    return {"source": source, "figure": figure, "audio": audio}


def test_check_cells_passes_a_good_page():
    cells = [_page_cell(1), _page_cell(2, "[2]:", decoded=1), _page_cell(3, "[3]:", audio=1)]
    wanted = [_want("x = 1"), _want("plt.show()", figure=True), _want("audio.play(p)", audio=True)]
    assert browser_check.check_cells(cells, wanted) == []


def test_check_cells_reports_each_kind_of_failure_with_the_cell_text():
    traceback = "-----\nValueError   Traceback (most recent call last)\nValueError: a wrong note"
    cells = [
        _page_cell(1, "[1]:"),  # figure expected, none shown
        _page_cell(2, "[2]:", decoded=1, unrendered=1),  # a figure printed as text
        _page_cell(3, "[3]:"),  # audio expected, none shown
        _page_cell(4, "[4]:", errors=[traceback]),
        _page_cell(5, "[ ]:"),
        _page_cell(6, "[ ]:"),
    ]
    wanted = [
        _want("plt.show()", figure=True),
        _want("fig = plt.figure()", figure=True),
        _want("audio.play(piece)", audio=True),
        _want('raise ValueError("a wrong note")'),
        _want("print(1)"),
        _want("print(2)"),
    ]
    failures = browser_check.check_cells(cells, wanted)
    assert len(failures) == 5, failures
    assert "code cell 1" in failures[0] and "should draw a figure" in failures[0]
    assert "plt.show()" in failures[0]
    assert "code cell 2" in failures[1] and "should draw a figure" in failures[1]
    assert "audio player" in failures[2] and "audio.play(piece)" in failures[2]
    assert "shows an error" in failures[3] and 'raise ValueError("a wrong note")' in failures[3]
    assert "ValueError: a wrong note" in failures[3]
    assert "2 later code cell(s) did not run" in failures[4]

    not_run = browser_check.check_cells([_page_cell(1, "[ ]:")], [_want("x = 1")])
    assert len(not_run) == 1 and "was not run" in not_run[0]


@pytest.mark.browser
@pytest.mark.slow
def test_a_failing_notebook_is_reported_with_its_cell_and_screenshot(tmp_path):
    if shutil.which(browser_check.DEFAULT_CHROMIUM) is None:
        pytest.skip(f"{browser_check.DEFAULT_CHROMIUM} not installed: {browser_check.INSTALL_HINT}")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(
        notebooks / "broken.ipynb",
        [
            _code("import matplotlib.pyplot as plt\n\nplt.plot([1, 3, 2])\nplt.show()"),
            _code('raise ValueError("a wrong note")'),
            _code('print("never reached")'),
        ],
    )
    before = (notebooks / "broken.ipynb").read_bytes()
    out = tmp_path / "shots"
    result = subprocess.run(
        [sys.executable, SCRIPTS / "browser_check.py", "--notebook-dir", notebooks, "--out", out],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert 'raise ValueError("a wrong note")' in report
    assert "ValueError: a wrong note" in report
    assert "1 later code cell(s) did not run" in report
    assert "code cell 1" not in report  # the figure cell passed: its image was found
    screenshot = out / "broken.png"
    assert f"screenshot: {screenshot}" in report
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "browser: 0 passed, 1 failed" in report
    assert (notebooks / "broken.ipynb").read_bytes() == before  # the run never saves
