"""Corpus loading: a folder of MIDI files -> a list of `Piece`s, cached on disk.

    corpus = load_corpus(bundled_chorales_dir())
    print(corpus.summary())

Bad files are skipped and reported (`Corpus.errors`), never fatal: one broken download must
not cost the other thousand pieces. Parsing is cached so the second load of a folder is fast;
the cache (no pickle) is keyed on every file's path, size and modification time, the read
parameters and the reader's own source code, so any change re-parses.

Large folders. Parsing streams: each piece's note states go to the cache's states file as soon
as the file is read, so one piece at a time is in memory, and a load (cold or warm) hands out
pieces whose states are views into that file, memory-mapped read-only: the pages of a piece
are read when it is used, and the operating system can drop them again. The cost of a load is
the metadata (a few hundred bytes per piece), not the music (benchmarks/bench_corpus.py).
Without a cache (`cache=False`, or a cache folder that cannot be written) the pieces are
parsed into memory as before.

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
_CACHE_FORMAT = 2


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
        from_cache: True when the pieces came from the cache (parsed on an earlier load).
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
        if corpus is None:
            corpus = _parse_into_cache(paths, params, cache_path, progress)
        if corpus is not None:
            corpus.folder = folder
            return corpus

    corpus = Corpus(folder=folder)  # no cache: every piece in memory
    for path in _progress(paths, progress):
        try:
            piece = midi.read(path, **params)
        except (MusicutilsError, OSError, ValueError, EOFError) as exc:
            corpus.errors.append((str(path), _reason(exc, path)))
            continue
        corpus.pieces.append(piece)
        corpus.paths.append(path)
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
# The cache, per (folder contents, read parameters, reader version): corpus-KEY.states, every
# piece's states (sum T, N, 2) uint8 back to back, raw, memory-mapped on load; and
# corpus-KEY.npz, the index: offsets (P + 1,) int64 into the states, n_notes, and JSON strings
# (unicode arrays, never object arrays) for each piece's metadata and the errors. The index is
# written last: it is the commit point (a states file without a matching index is rewritten).


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


def _states_path(cache_path: Path) -> Path:
    return cache_path.with_suffix(".states")


def _piece_meta(piece: midi.Piece, path: Path) -> str:
    return json.dumps(
        {
            "lowest": piece.lowest,
            "steps_per_beat": piece.steps_per_beat,
            "tempos": piece.tempos,
            "meters": piece.meters,
            "name": piece.name,
            "ticks_per_beat": piece.ticks_per_beat,
            "dropped_notes": piece.dropped_notes,
            "path": str(path),
        }
    )


def _parse_into_cache(
    paths: list[Path], params: dict, cache_path: Path, progress: bool
) -> Corpus | None:
    """Parse `paths` one by one into the cache (one piece in memory at a time), then open it.

    Returns None when the cache cannot be written (read-only or full disk): the caller then
    parses into memory.
    """
    n_notes = params["highest"] - params["lowest"]
    offsets, meta, errors = [0], [], []
    try:
        with atomic_open(_states_path(cache_path)) as states:
            for path in _progress(paths, progress):
                try:
                    piece = midi.read(path, **params)
                except (MusicutilsError, OSError, ValueError, EOFError) as exc:
                    errors.append(json.dumps([str(path), _reason(exc, path)]))
                    continue
                states.write(np.ascontiguousarray(piece.state, dtype=np.uint8).tobytes())
                offsets.append(offsets[-1] + piece.n_steps)
                meta.append(_piece_meta(piece, path))
        with atomic_open(cache_path) as file:
            np.savez(
                file,
                offsets=np.array(offsets, np.int64),
                n_notes=np.array(n_notes),
                meta=np.array(meta, dtype=np.str_),
                errors=np.array(errors, dtype=np.str_),
                format=np.array(_CACHE_FORMAT),
            )
    except OSError:
        return None  # no cache folder we can write in
    corpus = _load_cache(cache_path)
    if corpus is not None:
        corpus.from_cache = False  # parsed just now
    return corpus


def _load_cache(cache_path: Path) -> Corpus | None:
    """The cached corpus, its states memory-mapped; None when there is no usable cache."""
    try:
        with np.load(cache_path, allow_pickle=False) as npz:
            if int(npz["format"]) != _CACHE_FORMAT:
                return None
            offsets, n_notes = npz["offsets"], int(npz["n_notes"])
            meta = [json.loads(str(m)) for m in npz["meta"]]
            errors = [tuple(json.loads(str(e))) for e in npz["errors"]]
        shape = (int(offsets[-1]), n_notes, 2)
        if _states_path(cache_path).stat().st_size != np.prod(shape):
            return None  # the states file does not belong to this index
        if shape[0] == 0:
            states = np.zeros(shape, np.uint8)
        else:
            states = np.memmap(_states_path(cache_path), np.uint8, mode="r", shape=shape)
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
