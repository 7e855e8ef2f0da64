"""Corpus loading: a folder of MIDI files -> a list of `Piece`s, cached as .npz.

    corpus = load_corpus(bundled_chorales_dir())
    print(corpus.summary())

Bad files are skipped and reported (`Corpus.errors`), never fatal: one broken download must
not cost the other thousand pieces. Parsing is cached so the second load of a folder is fast;
the cache is a plain .npz (no pickle) keyed on every file's path, size and modification time,
the read parameters and the reader's own source code, so any change re-parses.

No TensorFlow here (training segments and tf.data live in `musicutils.datasets`).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import midi
from ._io import atomic_open
from ._resources import CHORALES_PACKAGE, package_folder
from .errors import DataError, MusicutilsError

__all__ = [
    "BUNDLED_CHORALES",
    "Corpus",
    "bundled_chorales_dir",
    "default_cache_dir",
    "load_corpus",
    "midi_files",
]

#: The 30 Bach chorales bundled with the package (data/chorales/ in a checkout; data/README.md).
BUNDLED_CHORALES = package_folder(CHORALES_PACKAGE)

MIDI_SUFFIXES = (".mid", ".midi")
_CACHE_FORMAT = 1


def bundled_chorales_dir() -> Path:
    """The folder of bundled chorales, checking that it holds MIDI files.

    Raises:
        DataError: the folder is missing or holds no MIDI files.
    """
    if not midi_files(BUNDLED_CHORALES):
        raise DataError(
            f"{BUNDLED_CHORALES}: bundled chorales not found; reinstall musicutils, or in a "
            "checkout rebuild them with scripts/build_dataset.py"
        )
    return BUNDLED_CHORALES


def midi_files(folder: str | os.PathLike) -> list[Path]:
    """Every .mid/.midi file under `folder` (recursive, any case of suffix), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


@dataclass
class Corpus:
    """Pieces read from a folder, plus the files that could not be read.

    Attributes:
        pieces: the pieces, in sorted path order.
        paths: the file each piece came from (same order as `pieces`).
        errors: (path, reason) for every file that was skipped.
        folder: the folder that was read.
        from_cache: True when the pieces came from the .npz cache.
    """

    pieces: list[midi.Piece] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    folder: Path | None = None
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.pieces)

    def __iter__(self) -> Iterator[midi.Piece]:
        return iter(self.pieces)

    def __getitem__(self, index: int) -> midi.Piece:
        return self.pieces[index]

    @property
    def total_steps(self) -> int:
        """Time steps summed over the pieces."""
        return sum(p.n_steps for p in self.pieces)

    def summary(self, max_errors: int = 10) -> str:
        """One screen about the corpus: files, pieces, skipped files and why, total length
        (steps, hours), notes, the pitch range used, meters (pieces per meter) and tempi."""
        n_files = len(self.pieces) + len(self.errors)
        lines = [
            f"corpus: {self.folder}" if self.folder else "corpus",
            f"  files:   {n_files} MIDI files, {len(self.pieces)} pieces read, "
            f"{len(self.errors)} skipped",
        ]
        for path, reason in self.errors[:max_errors]:
            lines.append(f"    skipped {Path(path).name}: {reason}")
        if len(self.errors) > max_errors:
            lines.append(f"    ... and {len(self.errors) - max_errors} more")
        if not self.pieces:
            return "\n".join(lines)
        seconds = sum(midi.duration_seconds(p) for p in self.pieces)
        notes = sum(p.note_count for p in self.pieces)
        dropped = sum(p.dropped_notes for p in self.pieces)
        used = [np.flatnonzero(p.state[..., 0].any(axis=0)) + p.lowest for p in self.pieces]
        used = np.concatenate(used) if used else np.zeros(0, int)
        meters = Counter()
        for p in self.pieces:
            meters.update({f"{n}/{d}" for _, n, d in p.meters})
        bpms = [bpm for p in self.pieces for _, bpm in p.tempos]
        sp = self.pieces[0]
        lines += [
            f"  length:  {self.total_steps} steps at {sp.steps_per_beat} per beat, "
            f"{seconds / 3600:.2f} hours (mean {seconds / len(self.pieces):.0f} s per piece)",
            f"  notes:   {notes}" + (f" ({dropped} outside the window dropped)" if dropped else ""),
            "  range:   "
            + (
                f"{midi.note_name(used.min())}–{midi.note_name(used.max())} used, "
                if used.size
                else "no notes, "
            )
            + f"window {midi.note_name(sp.lowest)}–{midi.note_name(sp.highest - 1)}",
            "  meters:  " + ", ".join(f"{m} in {c}" for m, c in meters.most_common(8)) + " pieces",
            f"  tempo:   {min(bpms):g}–{max(bpms):g} bpm",
        ]
        return "\n".join(lines)


def default_cache_dir() -> Path:
    """$MUSICUTILS_CACHE, else $XDG_CACHE_HOME/musicutils, else ~/.cache/musicutils."""
    if os.environ.get("MUSICUTILS_CACHE"):
        return Path(os.environ["MUSICUTILS_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "musicutils"
    return Path.home() / ".cache" / "musicutils"


def load_corpus(
    folder: str | os.PathLike,
    *,
    steps_per_beat: int = 4,
    lowest: int = midi.DEFAULT_LOWEST,
    highest: int = midi.DEFAULT_HIGHEST,
    cache: bool = True,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Corpus:
    """Read every .mid/.midi file under `folder` (recursive, sorted by path).

    Args:
        folder: the folder to read.
        steps_per_beat, lowest, highest: passed to `midi.read`; every piece gets the state shape
            (T, highest - lowest, 2).
        cache: reuse / write the .npz cache. A cache folder that cannot be written is skipped.
        progress: show a tqdm progress bar while parsing (nothing is shown on a cache hit).
        cache_dir: where caches live; default `default_cache_dir()`.

    Returns:
        A `Corpus`; files that could not be read are in `.errors` as (path, reason), where the
        reason is the `MidiError` message without the repeated file name.

    Raises:
        DataError: `folder` does not exist or is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of MIDI files")
    paths = midi_files(folder)
    params = {"steps_per_beat": steps_per_beat, "lowest": lowest, "highest": highest}
    cache_path = None
    if cache:
        cache_path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache_path = cache_path / f"corpus-{_cache_key(folder, paths, params)}.npz"
        corpus = _load_cache(cache_path)
        if corpus is not None:
            corpus.folder = folder
            return corpus

    corpus = Corpus(folder=folder)
    for path in _progress(paths, progress):
        try:
            piece = midi.read(path, **params)
        except (MusicutilsError, OSError, ValueError, EOFError) as exc:
            corpus.errors.append((str(path), _reason(exc, path)))
            continue
        corpus.pieces.append(piece)
        corpus.paths.append(path)
    if cache_path is not None:
        _save_cache(corpus, cache_path)
    return corpus


def _progress(paths: list[Path], enabled: bool):
    if not enabled or not paths:
        return paths
    from tqdm import tqdm

    return tqdm(paths, desc="reading MIDI", unit="file", leave=False)


def _reason(exc: BaseException, path: Path) -> str:
    """The error message without the leading 'file name: ' our errors carry."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for prefix in (f"{path}: ", f"{path.name}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


# ---------------------------------------------------------------------------------------------
# The cache: one .npz per (folder contents, read parameters, reader version).
# Arrays: states (sum T, N, 2) uint8 concatenated along time, offsets (P + 1,) int64, and
# JSON strings (unicode arrays, never object arrays) for each piece's metadata and the errors.


def _cache_key(folder: Path, paths: list[Path], params: dict) -> str:
    reader = Path(midi.__file__).read_bytes()  # a change to the reader invalidates every cache
    files = []
    for path in paths:
        stat = path.stat()
        files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    blob = json.dumps(
        {
            "format": _CACHE_FORMAT,
            "folder": str(folder.resolve()),
            "params": params,
            "files": files,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(blob.encode())
    digest.update(hashlib.sha256(reader).digest())
    return digest.hexdigest()[:24]


def _save_cache(corpus: Corpus, cache_path: Path) -> None:
    """Write the cache atomically; any file-system failure (read-only, full) just skips it."""
    pieces = corpus.pieces
    n_notes = pieces[0].n_notes if pieces else 0
    states = (
        np.concatenate([p.state for p in pieces]) if pieces else np.zeros((0, n_notes, 2), np.uint8)
    )
    offsets = np.cumsum([0] + [p.n_steps for p in pieces]).astype(np.int64)
    meta = [
        json.dumps(
            {
                "lowest": p.lowest,
                "steps_per_beat": p.steps_per_beat,
                "tempos": p.tempos,
                "meters": p.meters,
                "name": p.name,
                "ticks_per_beat": p.ticks_per_beat,
                "dropped_notes": p.dropped_notes,
                "path": str(path),
            }
        )
        for p, path in zip(pieces, corpus.paths, strict=True)
    ]
    errors = [json.dumps(list(e)) for e in corpus.errors]
    try:
        with atomic_open(cache_path) as file:
            np.savez_compressed(
                file,
                states=states.astype(np.uint8),
                offsets=offsets,
                meta=np.array(meta, dtype=np.str_),
                errors=np.array(errors, dtype=np.str_),
                format=np.array(_CACHE_FORMAT),
            )
    except OSError:
        pass  # a cache that cannot be written (read-only disk) is simply not kept


def _load_cache(cache_path: Path) -> Corpus | None:
    """The cached corpus, or None when there is no usable cache."""
    try:
        with np.load(cache_path, allow_pickle=False) as npz:
            if int(npz["format"]) != _CACHE_FORMAT:
                return None
            states, offsets = npz["states"], npz["offsets"]
            meta = [json.loads(str(m)) for m in npz["meta"]]
            errors = [tuple(json.loads(str(e))) for e in npz["errors"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # a damaged or foreign cache is rebuilt, never fatal
    corpus = Corpus(errors=[(str(p), str(r)) for p, r in errors], from_cache=True)
    for info, begin, end in zip(meta, offsets[:-1], offsets[1:], strict=True):
        corpus.pieces.append(
            midi.Piece(
                state=states[begin:end],
                lowest=int(info["lowest"]),
                steps_per_beat=int(info["steps_per_beat"]),
                tempos=[(int(s), float(b)) for s, b in info["tempos"]],
                meters=[(int(s), int(n), int(d)) for s, n, d in info["meters"]],
                name=info["name"],
                ticks_per_beat=info["ticks_per_beat"],
                dropped_notes=int(info["dropped_notes"]),
            )
        )
        corpus.paths.append(Path(info["path"]))
    return corpus
