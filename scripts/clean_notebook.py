"""Make an executed notebook ready to commit: the real run's outputs, small and diff-friendly.

    cd notebooks && ../.venv/bin/jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.timeout=3600 01_midi_parsing.ipynb
    ../.venv/bin/python ../scripts/clean_notebook.py 01_midi_parsing.ipynb

What a learner should see is kept: printed text (stdout), results (`text/plain`, HTML tables),
Markdown and LaTeX displays, figures and audio players. What only adds noise or size goes:

- stderr streams (TensorFlow / absl start-up lines, warnings, tqdm bars) are dropped;
- consecutive stdout streams are merged (not across a figure or player between them, so the
  order a learner saw is kept) and carriage-return / backspace updates (Keras and
  tqdm progress bars) are collapsed to the text the terminal finally showed;
- in cells without `# NBVAL_CHECK_OUTPUT`, a stdout text longer than MAX_STREAM_LINES lines
  keeps its head and tail with a "[... N lines omitted ...]" line between (checked cells are
  never shortened: nbval compares them with a fresh run);
- PNG figures over MAX_IMAGE_BYTES are re-encoded with a 256-colour palette and, if still too
  large, downscaled until they fit;
- an audio player (HTML `<audio>` with embedded data) over MAX_AUDIO_BYTES is replaced by a
  one-line note (make it smaller with `musicutils.audio.play(..., seconds=...)` and re-run);
- widget state, JavaScript and other MIME types a static viewer cannot show are dropped;
- execution metadata (timestamps), papermill metadata and widget state are removed; cell ids
  and tags are kept; every code cell gets the execution count of a clean top-to-bottom run
  (1, 2, 3, ...), which is also what nbval needs to compare a cell's stored output.

Error outputs are kept (and reported on stderr, exit code 1), so a failed run is never
committed by accident: tests/test_notebooks.py fails on them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import re
import sys
from pathlib import Path

import nbformat

from musicutils._io import atomic_open

#: Largest PNG figure kept as it is, in bytes of base64 text.
MAX_IMAGE_BYTES = 150_000
#: Largest embedded audio player kept, in bytes of HTML (base64 audio included).
MAX_AUDIO_BYTES = 350_000
#: Longest stdout text kept whole in a cell that nbval does not check, in lines.
MAX_STREAM_LINES = 60
_HEAD_LINES, _TAIL_LINES = 20, 20

#: MIME types a static viewer (GitHub, nbviewer, JupyterLab without a kernel) can show.
KEPT_MIME_TYPES = (
    "text/plain",
    "text/html",
    "text/markdown",
    "text/latex",
    "image/png",
    "image/jpeg",
    "image/svg+xml",
)
CHECK_MARKER = "NBVAL_CHECK_OUTPUT"
_CR = re.compile(r"[^\n]*\r(?=[^\n])")  # a line's text before a carriage return that rewrites it
_BACKSPACE = re.compile(r"[^\n]\x08")


def terminal_text(text: str) -> str:
    """The text a terminal finally shows: `\\r` rewrites its line, `\\b` erases a character."""
    previous = None
    while previous != text:
        previous, text = text, _BACKSPACE.sub("", text)
    text = _CR.sub("", text)
    return text.replace("\r\n", "\n").replace("\r", "")


def shorten(text: str, max_lines: int = MAX_STREAM_LINES) -> str:
    """`text` itself, or its first and last lines around an "omitted" line if it is longer."""
    lines = text.splitlines(keepends=True)
    if len(lines) <= max_lines:
        return text
    omitted = len(lines) - _HEAD_LINES - _TAIL_LINES
    middle = f"[... {omitted} lines omitted ...]\n"
    return "".join(lines[:_HEAD_LINES]) + middle + "".join(lines[-_TAIL_LINES:])


def shrink_png(encoded: str, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[str, float]:
    """Re-encode a base64 PNG to at most `max_bytes`: palette first, then downscaling.

    Returns the new base64 text and the scale applied to its width and height (1.0 if none).
    """
    from PIL import Image

    if len(encoded) <= max_bytes:
        return encoded, 1.0
    image = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    scale = 1.0
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        resized.quantize(colors=256).save(buffer, format="PNG", optimize=True)
        shrunk = base64.b64encode(buffer.getvalue()).decode("ascii")
        if len(shrunk) <= max_bytes or scale < 0.2:
            return shrunk, scale
        scale *= 0.8


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def clean_outputs(outputs: list, checked: bool, notes: list[str]) -> list:
    """The outputs of one code cell as committed (see the module docstring)."""
    kept: list = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") != "stdout":
                continue
            if kept and kept[-1].get("name") == "stdout":  # merge with the stdout just before
                kept[-1]["text"] += _text(out["text"])
            else:
                kept.append(nbformat.from_dict({**out, "text": _text(out["text"])}))
        elif kind in ("display_data", "execute_result"):
            data = {k: v for k, v in out.get("data", {}).items() if k in KEPT_MIME_TYPES}
            if not data:
                continue
            html = _text(data.get("text/html", ""))
            if "<audio" in html and len(html) > MAX_AUDIO_BYTES:
                notes.append(f"audio player of {len(html) // 1000} KB replaced by a note")
                data = {"text/plain": f"[audio player of {len(html) // 1000} KB left out]"}
            if "image/png" in data:
                before = _text(data["image/png"]).replace("\n", "")
                data["image/png"], scale = shrink_png(before)
                after = len(data["image/png"])
                if after < len(before):
                    notes.append(f"figure {len(before) // 1000} -> {after // 1000} KB")
                if scale != 1.0:
                    size = out.get("metadata", {}).get("image/png", {})
                    for key in ("width", "height"):
                        if key in size:
                            size[key] = round(size[key] * scale)
            out["data"] = data
            kept.append(out)
        elif kind == "error":
            notes.append(f"ERROR output kept: {out.get('ename')}: {out.get('evalue')}")
            kept.append(out)
    for out in kept:
        if out.get("name") == "stdout":
            out["text"] = terminal_text(out["text"])
            if not checked:
                out["text"] = shorten(out["text"])
    return [out for out in kept if out.get("name") != "stdout" or out["text"]]


def clean(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """Clean a notebook in place; returns it and notes on what was changed beyond the routine."""
    notes: list[str] = []
    count = 0
    for index, cell in enumerate(nb.cells):
        metadata = cell.setdefault("metadata", {})
        for key in ("execution", "ExecuteTime", "papermill", "collapsed", "scrolled"):
            metadata.pop(key, None)
        if "id" not in cell:  # a stable id, so that the next clean gives the same file
            digest = hashlib.sha1(f"{index}:{_text(cell.source)}".encode()).hexdigest()
            cell["id"] = digest[:8]
        if cell.cell_type != "code":
            continue
        count += 1
        checked = CHECK_MARKER in _text(cell.source)
        cell.outputs = clean_outputs(cell.get("outputs", []), checked, notes)
        cell.execution_count = count
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
    for key in ("papermill", "widgets", "toc", "varInspector"):
        nb.metadata.pop(key, None)
    return nb, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args()
    failed = False
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        nb, notes = clean(nb)
        nbformat.validate(nb)
        text = nbformat.writes(nb) + "\n"
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{path}: {len(text.encode()) / 1e6:.2f} MB")
        for note in notes:
            print(f"  {note}", file=sys.stderr if note.startswith("ERROR") else sys.stdout)
        failed = failed or any(note.startswith("ERROR") for note in notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
