"""The notebooks in a real browser: what `make test-browser` runs.

    .venv/bin/python scripts/browser_check.py                     # all five notebooks
    .venv/bin/python scripts/browser_check.py 01_midi_parsing     # just one

Starts JupyterLab with the command `make lab` uses (scripts/lab.py) on a free loopback port with
a random token and MUSICUTILS_FAST=1, and drives headless Chromium (Debian's `chromium`, never a
browser Playwright downloads) through Playwright. For each notebook it does what a learner does:
opens it, clears the stored outputs (Edit > Clear Outputs of All Cells) and runs it (Run > Run
All Cells), waits until the kernel is idle, then checks the page: every code cell got an
execution count, no cell shows an error, every cell that draws a figure shows a decoded image,
every cell that plays audio shows an <audio> element. A full-page screenshot of each notebook
goes to out/browser/NAME.png, the server's log to out/browser/jupyterlab.log.

Autosave is switched off in a private settings folder, so the run never writes the notebooks;
the server, its kernels and the browser are stopped on every exit path.

Exit status: 0 all passed, 1 a notebook failed its checks, 2 the run could not start (no
Chromium, no Playwright, the server did not come up).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab  # noqa: E402  (scripts/lab.py: the one JupyterLab command)

REPO = lab.REPO
DEFAULT_OUT = REPO / "out" / "browser"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    "install it with `sudo apt-get install -y chromium` (Debian/Ubuntu; `.ci/run` does this "
    "itself when run as root), or pass --chromium PATH"
)
#: What a headless run in a container needs, and nothing that reaches the network on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: JupyterLab settings for the test only: no autosave (the run must not write the notebooks),
#: every cell in the DOM (no windowing, so the page can be checked and photographed whole), no
#: blank page after the last cell, no news pop-up over the page.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
VIEWPORT = {"width": 1400, "height": 1000}
#: Chromium cannot draw a page taller than this in one screenshot.
MAX_SCREENSHOT_HEIGHT = 16000

#: Top-level calls that put a figure in the cell's output.
FIGURE_CALLS = re.compile(r"^(plt\.(show|subplots|figure)|plotting\.(plot_\w+|show\w*))$")
#: Top-level calls that put an audio player in the cell's output.
AUDIO_CALLS = re.compile(r"^(audio\.play\w*|Audio|IPython\.display\.Audio)$")

#: Reads every code cell of the open notebook, in page order.
READ_CELLS_JS = """
() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')]
  .map((cell, index) => {
    if (!cell.classList.contains('jp-CodeCell')) return null;
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')];
    const stderr = outputs.filter(
      o => o.dataset.mimeType === 'application/vnd.jupyter.stderr').map(o => o.innerText);
    const images = [...cell.querySelectorAll('.jp-OutputArea-output img')];
    return {
      index,
      prompt: prompt ? prompt.innerText.trim() : '',
      errors: stderr.filter(
        t => /Traceback \\(most recent call last\\)|^\\w*(Error|Exception)\\b/m.test(t)),
      images: images.length,
      decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
      audio: cell.querySelectorAll('.jp-OutputArea-output audio').length,
      unrendered_figures: outputs.map(o => o.innerText)
        .filter(t => /<Figure size [^>]* with \\d+ Axes>/.test(t)).length,
    };
  }).filter(c => c !== null)
"""


class SetupError(Exception):
    """The run could not start (exit status 2)."""


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    screenshot: Path | None = None
    failures: list[str] = field(default_factory=list)
    summary: str = ""


# ---------------------------------------------------------------------------------------------
# What the notebook file says each cell should show.


def _call_names(source: str) -> list[str]:
    """Dotted names of the calls made at the top level of a cell (not inside a def or class)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    names = []
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            names.append(ast.unparse(node.func))
        stack.extend(ast.iter_child_nodes(node))
    return names


def expectations(notebook: Path) -> list[dict]:
    """For each code cell in file order: its source and whether it must show a figure or audio.

    A cell must show a figure when its committed output holds an image or it calls a plotting
    function at top level; audio likewise for an <audio> output or an `audio.play` call.
    """
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    expected = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        outputs = cell.get("outputs", [])
        stored_image = any("image/png" in o.get("data", {}) for o in outputs)
        stored_audio = any(
            "<audio" in "".join(o.get("data", {}).get("text/html", "")) for o in outputs
        )
        calls = _call_names(source)
        expected.append(
            {
                "source": source,
                "figure": stored_image or any(FIGURE_CALLS.match(c) for c in calls),
                "audio": stored_audio or any(AUDIO_CALLS.match(c) for c in calls),
            }
        )
    return expected


# ---------------------------------------------------------------------------------------------
# The server.


def _descendants(pid: int) -> list[int]:
    """Process ids below `pid` (Linux /proc), so kernels in their own session are found too."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class LabServer:
    """JupyterLab started with scripts/lab.py's command, in its own process group."""

    def __init__(self, notebook_dir: Path, work: Path, log_path: Path):
        self.port = lab.free_port()
        self.token = secrets.token_hex(24)
        self.notebook_dir = notebook_dir
        self.log_path = log_path
        settings = work / "lab-settings"
        for plugin, values in LAB_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.env = {
            **os.environ,
            "MUSICUTILS_FAST": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(work / "lab-workspaces"),
        }
        self.command = lab.lab_command(
            self.port, self.token, ip="127.0.0.1", notebook_dir=notebook_dir, open_browser=False
        )
        self.process: subprocess.Popen | None = None

    def url(self, path: str) -> str:
        return lab.lab_url(self.port, self.token, host="127.0.0.1", path=path)

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def start(self, timeout: float = 180) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError(
                    f"JupyterLab exited with status {self.process.returncode} at start:\n"
                    + self.log_tail()
                )
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.5)
        raise SetupError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def session(self, notebook: str) -> dict | None:
        return next((s for s in self.api("sessions") if s["path"] == notebook), None)

    def stop(self) -> None:
        """SIGTERM (JupyterLab shuts its kernels down), then SIGKILL whatever is left."""
        if self.process is None or self.process.poll() is not None:
            return
        below = _descendants(self.process.pid)
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass
        for pid in below:  # kernels live in sessions of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------------------------
# One notebook in the browser.


def _wait(condition, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _accept_dialogs(page) -> None:
    """A 'Select Kernel' dialog can come up while the kernel starts: accept the notebook's own."""
    dialog = page.query_selector(".jp-Dialog .jp-mod-accept")
    if dialog is not None:
        dialog.click()


def _menu(page, menu: str, item: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def _kernel_idle(server: LabServer, name: str) -> bool:
    session = server.session(name)
    kernel = session["kernel"] if session else None
    return bool(kernel and kernel["execution_state"] == "idle" and kernel["connections"] > 0)


#: How much of the notebook lies below the visible part, in CSS pixels.
_OVERFLOW_JS = """() => {
  const scroller = document.querySelector(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
  return scroller ? scroller.scrollHeight - scroller.clientHeight : 0;
}"""


def _screenshot(page, path: Path) -> None:
    """The whole notebook in one picture: grow the viewport by the part of the notebook that is
    scrolled out of view (shrinking the notebook with CSS zoom when that would be taller than
    Chromium can draw), show it from its top, photograph the page."""
    overflow = page.evaluate(_OVERFLOW_JS)
    if VIEWPORT["height"] + overflow > MAX_SCREENSHOT_HEIGHT:
        zoom = MAX_SCREENSHOT_HEIGHT / (VIEWPORT["height"] + overflow + 200)
        page.evaluate(
            """zoom => document.querySelectorAll(
                 '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-viewport')
                 .forEach(v => { v.style.zoom = zoom; })""",
            zoom,
        )
        page.wait_for_timeout(500)
        overflow = page.evaluate(_OVERFLOW_JS)
    tall = min(VIEWPORT["height"] + int(overflow), MAX_SCREENSHOT_HEIGHT)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": tall})
    page.wait_for_timeout(500)  # let the layout settle at the new size
    page.evaluate(  # Run All leaves the last cell in view: show the notebook from its top
        """() => document.querySelectorAll('.jp-WindowedPanel-outer')
                   .forEach(s => { s.scrollTop = 0; })"""
    )
    page.wait_for_timeout(300)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)


def check_cells(cells: list[dict], expected: list[dict]) -> list[str]:
    """The failures shown by one notebook's page (`cells` from READ_CELLS_JS, `expected` from
    `expectations`), each with the cell's text."""
    failures = []
    if len(cells) != len(expected):
        failures.append(f"the page shows {len(cells)} code cells, the file has {len(expected)}")
    not_run_after_error = 0
    for number, (cell, want) in enumerate(zip(cells, expected, strict=False), start=1):
        where = f"code cell {number} (cell {cell['index'] + 1} of the notebook)"
        source = "\n".join("    | " + line for line in want["source"].splitlines()[:12])
        ran = re.fullmatch(r"\[\d+\]:", cell["prompt"]) is not None
        if cell["errors"]:
            error = cell["errors"][0].strip().splitlines()
            shown = "\n".join("    ! " + line for line in error[-6:])
            failures.append(f"{where} shows an error:\n{source}\n{shown}")
        elif not want["source"].strip():
            continue
        elif not ran and failures and "shows an error" in failures[-1]:
            not_run_after_error += 1  # Run All stops at an error: one line for the rest
        elif not ran:
            failures.append(f"{where} was not run (prompt {cell['prompt']!r}):\n{source}")
        else:
            if want["figure"] and (cell["decoded"] == 0 or cell["unrendered_figures"]):
                failures.append(
                    f"{where} should draw a figure but shows {cell['decoded']} image(s):\n{source}"
                )
            if want["audio"] and cell["audio"] == 0:
                failures.append(f"{where} should show an audio player but has none:\n{source}")
    if not_run_after_error:
        failures.append(f"{not_run_after_error} later code cell(s) did not run after the error")
    return failures


def run_notebook(context, server: LabServer, name: str, out_dir: Path, timeout: float) -> Result:
    """Open `name`, clear and run all its cells through the menus, check the page, photograph it."""
    result = Result(name=name, screenshot=out_dir / f"{Path(name).stem}.png")
    expected = expectations(server.notebook_dir / name)
    started = time.monotonic()
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)
    step = "opening the notebook"
    try:
        # A workspace of its own: JupyterLab must not reopen the notebooks of earlier pages.
        workspace = re.sub(r"\W", "-", Path(name).stem)
        page.goto(server.url(f"lab/workspaces/{workspace}/tree/{name}"))
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)

        def kernel_ready():
            _accept_dialogs(page)
            return _kernel_idle(server, name)

        step = "starting the kernel"
        _wait(kernel_ready, 120, "the kernel to start")
        step = "clicking through the menus"
        # Close the file browser as a person would (click its tab): the notebook gets the width.
        open_tab = page.query_selector(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if open_tab is not None:
            open_tab.click()
        _menu(page, "Edit", "Clear Outputs of All Cells")
        _menu(page, "Run", "Run All Cells")

        step = "running all cells"
        idle_polls = 0

        def finished():
            nonlocal idle_polls
            cells = page.evaluate(READ_CELLS_JS)
            busy = any("*" in c["prompt"] for c in cells)
            ran = any(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells)
            idle = not busy and ran and _kernel_idle(server, name)
            idle_polls = idle_polls + 1 if idle else 0
            return cells if idle_polls >= 3 else None  # idle for 3 polls in a row: done

        cells = _wait(finished, timeout, "Run All Cells to finish", interval=1.0)
        result.failures = check_cells(cells, expected)
        result.summary = (
            f"{len(cells)} code cells run, {sum(c['decoded'] for c in cells)} images, "
            f"{sum(c['audio'] for c in cells)} audio players"
        )
    except Exception as exc:  # a timeout or a page that never came up: report, photograph
        result.failures.append(f"{step}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        result.seconds = time.monotonic() - started
        try:
            _screenshot(page, result.screenshot)
        except Exception as exc:
            result.failures.append(f"no screenshot: {exc}")
            result.screenshot = None
        page.close()
        session = server.session(name)
        if session:  # free the kernel's memory before the next notebook
            server.api(f"sessions/{session['id']}", method="DELETE")
    return result


# ---------------------------------------------------------------------------------------------
# The whole run.


def _check_chromium(chromium: str) -> str:
    path = shutil.which(chromium) or chromium
    if not Path(path).is_file() or not os.access(path, os.X_OK):
        raise SetupError(f"Chromium not found at {chromium}: {INSTALL_HINT}")
    try:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise SetupError(f"{path} does not run ({exc}): {INSTALL_HINT}") from exc
    return version


def _import_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise SetupError(
            "Playwright is not installed in this environment: run `make venv` (it installs "
            "requirements-dev.txt)"
        ) from exc
    return sync_playwright


def notebook_names(notebook_dir: Path, wanted: list[str]) -> list[str]:
    names = sorted(p.name for p in notebook_dir.glob("*.ipynb"))
    if not wanted:
        return names
    chosen = []
    for word in wanted:
        match = [n for n in names if n == word or Path(n).stem == word or n.startswith(word)]
        if len(match) != 1:
            raise SetupError(f"{word}: no single notebook in {notebook_dir} matches ({names})")
        chosen.append(match[0])
    return chosen


def run(args) -> int:
    version = _check_chromium(args.chromium)
    sync_playwright = _import_playwright()
    names = notebook_names(args.notebook_dir, args.notebooks)
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"browser: {version}; {len(names)} notebook(s); screenshots in {out_dir}", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="musicutils-browser-") as work_dir:
        work = Path(work_dir)
        server = LabServer(args.notebook_dir, work, out_dir / "jupyterlab.log")
        try:
            started = time.monotonic()
            server.start()
            print(
                f"JupyterLab up in {time.monotonic() - started:.0f} s: "
                + " ".join(server.command).replace(server.token, "<token>"),
                flush=True,
            )
            with sync_playwright() as playwright:
                context = playwright.chromium.launch_persistent_context(
                    str(work / "chromium-profile"),
                    executable_path=str(shutil.which(args.chromium) or args.chromium),
                    headless=True,
                    args=CHROMIUM_ARGS,
                    viewport=VIEWPORT,
                )
                try:
                    for name in names:
                        result = run_notebook(context, server, name, out_dir, args.timeout)
                        results.append(result)
                        status = "FAILED" if result.failures else "ok"
                        print(
                            f"  {status:6s} {name}: {result.summary or 'not checked'} "
                            f"({result.seconds:.0f} s) -> {result.screenshot}",
                            flush=True,
                        )
                        for failure in result.failures:
                            print(f"    {failure}", flush=True)
                finally:
                    context.close()
        finally:
            server.stop()
    saved = [line for line in server.log_tail(10_000).splitlines() if "Saving file at" in line]
    if saved:
        print("error: JupyterLab wrote notebooks during the run:\n" + "\n".join(saved))
        return 1
    failed = [r for r in results if r.failures]
    for result in failed:
        print(f"error: {result.name} failed in the browser; screenshot: {result.screenshot}")
    print(f"browser: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="names or prefixes (default: all)")
    parser.add_argument("--chromium", default=DEFAULT_CHROMIUM, help="the Chromium executable")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="screenshot folder")
    parser.add_argument(
        "--notebook-dir", type=Path, default=lab.NOTEBOOKS, help="folder JupyterLab serves"
    )
    parser.add_argument(
        "--timeout", type=float, default=420, help="seconds one notebook may take to run"
    )
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout, kill) unwinds through the finally blocks like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
