"""One writer per run folder: an advisory lock that dies with its process.

`train.train` holds `run_lock(RUN_DIR)` while it reads and writes the folder, and the CLI takes
it before importing TensorFlow, so a second `python -m musicutils train` on a live run is
refused in about a second. No TensorFlow here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CheckpointError

#: The lock file in the run folder (empty but for the holder's process id).
LOCK_FILE = "train.lock"

_held: dict[str, int] = {}  # folders this process holds -> nesting depth


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold RUN_DIR/train.lock's advisory lock (`fcntl.flock`) for the block.

    Another process holding it: a CheckpointError at once, naming its process id. The kernel
    drops the lock when its holder exits, however it ends (SIGKILL included), so a killed run
    never leaves a stale lock; the file that stays behind means nothing by itself. Nested calls
    for the same folder in one process share the lock (the CLI takes it, then `train` again).
    The folder must exist. Where `fcntl` does not exist (Windows), there is no lock.
    """
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is None or key in _held:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    with open(run_dir / LOCK_FILE, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another open file holds it
            handle.seek(0)
            holder = handle.read().strip()
            who = f"another process (pid {holder})" if holder.isdigit() else "another process"
            raise CheckpointError(
                f"{run_dir}: {who} is training in this run folder; wait for it to end, or "
                "use another --out folder"
            ) from None
        _held[key] = 1
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            del _held[key]
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
