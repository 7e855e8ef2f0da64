"""Atomic file writes: a crash or a kill never leaves a half-written file behind.

Everything the package writes (MIDI, WAV, PNG, weights, JSON, logs, caches) goes to a temporary
file in the destination's folder first and is then renamed over the destination, which POSIX
and Windows both do in one step.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds, move it over `path`.

    `suffix` is the temporary name's ending, for writers that insist on one (Keras wants
    `.weights.h5`). On an exception the temporary file is deleted and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        yield Path(temp)
        os.chmod(temp, 0o644)  # mkstemp makes the file private; ours are ordinary files
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """`open(path, mode)` for writing, made atomic with `atomic_path`."""
    with atomic_path(path) as temp, open(temp, mode, **kwargs) as file:
        yield file
