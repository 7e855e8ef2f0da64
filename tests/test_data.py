"""Corpus loading: bad files reported, good ones kept; the .npz cache."""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from musicutils import data, midi
from musicutils.errors import DataError


def _piece(pitches: list[int], *, bpm: float = 100.0, meter=(4, 4)) -> midi.Piece:
    """A tiny piece: one quarter note per pitch (MIDI numbers), 4 steps per beat."""
    state = np.zeros((4 * len(pitches), 78, 2), np.uint8)
    for i, pitch in enumerate(pitches):
        state[4 * i : 4 * i + 4, pitch - 24, 0] = 1
        state[4 * i, pitch - 24, 1] = 1
    return midi.from_state(state, bpm=bpm, meter=meter)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two good files (one in a subfolder, one .MIDI), one garbage file, one empty file."""
    root = tmp_path / "midi"
    (root / "sub").mkdir(parents=True)
    midi.write(_piece([60, 62, 64]), root / "a.mid")
    midi.write(_piece([67, 65], bpm=60, meter=(3, 4)), root / "sub" / "b.MIDI")
    (root / "broken.mid").write_bytes(b"this is not MIDI")
    (root / "empty.midi").write_bytes(b"")
    (root / "notes.txt").write_text("not a MIDI file name, ignored")
    return root


def test_bad_files_reported_good_ones_kept(folder: Path, tmp_path: Path) -> None:
    corpus = data.load_corpus(folder, cache_dir=tmp_path / "cache", progress=False)
    assert [p.name for p in corpus.paths] == ["a.mid", "b.MIDI"]  # sorted, recursive
    assert len(corpus) == 2 and [p.note_count for p in corpus] == [3, 2]
    assert sorted(Path(path).name for path, _ in corpus.errors) == ["broken.mid", "empty.midi"]
    for path, reason in corpus.errors:
        assert reason and not reason.startswith(Path(path).name)  # the name is not repeated
    summary = corpus.summary()
    assert "4 MIDI files, 2 pieces read, 2 skipped" in summary
    assert "skipped broken.mid" in summary and "skipped empty.midi" in summary
    assert "3/4 in 1" in summary and "4/4 in 1" in summary
    assert "60–100 bpm" in summary and "C4–G4 used" in summary


def test_read_parameters_are_passed(folder: Path, tmp_path: Path) -> None:
    corpus = data.load_corpus(
        folder,
        steps_per_beat=2,
        lowest=48,
        highest=84,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert all(p.state.shape[1:] == (36, 2) and p.steps_per_beat == 2 for p in corpus)
    assert corpus.pieces[0].n_steps == 6


def test_cache_hit_returns_equal_pieces(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = data.load_corpus(folder, cache_dir=cache, progress=False)
    warm = data.load_corpus(folder, cache_dir=cache, progress=False)
    assert not cold.from_cache and warm.from_cache
    assert len(list(cache.glob("*.npz"))) == 1
    assert warm.errors == cold.errors and warm.paths == cold.paths
    for a, b in zip(cold, warm, strict=True):
        assert np.array_equal(a.state, b.state) and a.state.dtype == b.state.dtype == np.uint8
        assert (a.tempos, a.meters, a.name, a.lowest, a.steps_per_beat, a.ticks_per_beat) == (
            b.tempos,
            b.meters,
            b.name,
            b.lowest,
            b.steps_per_beat,
            b.ticks_per_beat,
        )


def test_cache_spares_parsing_the_bundled_chorales(tmp_path: Path, monkeypatch) -> None:
    # Counted, not timed (a time limit flakes on a loaded machine): the warm load parses nothing.
    folder = data.bundled_chorales_dir()
    parsed = []
    read = midi.read
    monkeypatch.setattr(midi, "read", lambda path, **kw: parsed.append(path) or read(path, **kw))
    cold = data.load_corpus(folder, cache_dir=tmp_path, progress=False)
    assert len(parsed) == 30 and not cold.from_cache
    warm = data.load_corpus(folder, cache_dir=tmp_path, progress=False)
    assert len(parsed) == 30 and warm.from_cache  # no file read again
    assert len(cold) == len(warm) == 30 and not cold.errors


def test_cache_invalidated_by_changes(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    data.load_corpus(folder, cache_dir=cache, progress=False)
    # Change a file's content (and its mtime, in case the clock is coarse).
    midi.write(_piece([60, 62, 64, 65]), folder / "a.mid")
    os.utime(folder / "a.mid", ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = data.load_corpus(folder, cache_dir=cache, progress=False)
    assert not changed.from_cache and changed.pieces[0].note_count == 4
    # A new file, and different read parameters, are new keys too.
    shutil.copy(folder / "a.mid", folder / "c.mid")
    assert len(data.load_corpus(folder, cache_dir=cache, progress=False)) == 3
    again = data.load_corpus(folder, cache_dir=cache, progress=False, steps_per_beat=8)
    assert not again.from_cache and again.pieces[0].steps_per_beat == 8


def test_cache_has_no_pickled_objects(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    data.load_corpus(folder, cache_dir=cache, progress=False)
    (npz_path,) = cache.glob("*.npz")
    with np.load(npz_path, allow_pickle=False) as npz:  # would raise on object arrays
        for key in npz.files:
            assert npz[key].dtype != object
        assert npz["offsets"].tolist() == [0, 12, 20] and int(npz["n_notes"]) == 78
    with zipfile.ZipFile(npz_path) as archive:
        assert not any(name.endswith(".pkl") for name in archive.namelist())
    # the states: raw uint8 (20 steps, 78 notes, 2) beside the index
    assert npz_path.with_suffix(".states").stat().st_size == 20 * 78 * 2
    assert not list(cache.glob("*.tmp"))  # atomic write left nothing behind


def test_cached_pieces_are_read_only_views_of_one_mapped_file(folder: Path, tmp_path: Path):
    """Large folders: the states stay in the cache file (memory-mapped), not in memory."""
    cache = tmp_path / "cache"
    for corpus in (data.load_corpus(folder, cache_dir=cache, progress=False),) * 2:
        mapped = [p.state for p in corpus]
        assert all(isinstance(state, np.memmap) for state in mapped)
        assert len({id(state.base) for state in mapped}) == 1  # one mapping for the corpus
        with pytest.raises(ValueError, match="read-only"):
            mapped[0][0, 0, 0] = 1
    # a states file that does not match its index (cut short) is rebuilt, never fatal
    (states_path,) = cache.glob("*.states")
    states_path.write_bytes(states_path.read_bytes()[:100])
    rebuilt = data.load_corpus(folder, cache_dir=cache, progress=False)
    assert not rebuilt.from_cache and rebuilt.pieces[0].n_steps == 12
    assert states_path.stat().st_size == 20 * 78 * 2


def test_unwritable_cache_is_skipped(folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    corpus = data.load_corpus(folder, cache_dir=blocker / "cache", progress=False)
    assert len(corpus) == 2 and not corpus.from_cache


def test_no_cache_and_env_location(folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MUSICUTILS_CACHE", str(tmp_path / "env"))
    assert data.default_cache_dir() == tmp_path / "env"
    data.load_corpus(folder, cache=False, progress=False)
    assert not (tmp_path / "env").exists()
    data.load_corpus(folder, progress=False)
    assert len(list((tmp_path / "env").glob("*.npz"))) == 1
    monkeypatch.delenv("MUSICUTILS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg" / "musicutils"


def test_missing_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        data.load_corpus(tmp_path / "nowhere", progress=False)


def test_light_import() -> None:
    import subprocess
    import sys

    code = "import sys, musicutils.data; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_damaged_cache_is_rebuilt(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = data.load_corpus(folder, cache_dir=cache, progress=False)
    (npz_path,) = cache.glob("*.npz")
    for damage in (b"", b"PK\x03\x04 not really a zip"):
        npz_path.write_bytes(damage)
        again = data.load_corpus(folder, cache_dir=cache, progress=False)
        assert not again.from_cache
        assert [p.n_steps for p in again.pieces] == [p.n_steps for p in first.pieces]
