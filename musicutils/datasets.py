"""Training data: benchmark pickles, piece splits, random segments as `tf.data`, padded batches.

What goes in and out (axis order batch, time, note, channel; channel 0 = play, 1 = articulate):

- `load_benchmark(path)` reads one of the four Boulanger-Lewandowski (ICML 2012) benchmark
  pickles into `{"train", "valid", "test"}` lists of `Piece` (88 keys from MIDI 21, one step per
  frame, 4/4 assumed). This is the one place the package unpickles anything.
- `download_benchmark(name, folder)` fetches a named benchmark for users who are online.
- `split_pieces(pieces, fraction, seed)` holds out whole pieces (never segments) for validation.
- `SegmentSampler(pieces, segment_length)` indexes every segment that starts on a bar line
  (and one padded segment of each piece too short to have one);
  `.dataset(batch_size, seed=...)` turns it into an endless `tf.data.Dataset` of
  `({"state": uint8 (B, L, N, 2), "beat": int32 (B, L)}, state)` pairs, sampled in-graph, with
  a third element, the per-step weight float32 (B, L), when some segments are padded.
- `padded_batches(pieces, ...)` groups whole pieces into padded batches with a step mask, for
  evaluation (validation during training and `python -m musicutils evaluate`).

Segments. A training example is `segment_length` consecutive steps starting on a bar line
(`Piece.bar_position() == 0`). Every such segment of every piece is equally likely, so pieces are
drawn in proportion to their length (to their number of bar lines, precisely). A piece of exactly
`segment_length` steps has its one segment.

Short pieces. A piece with no whole segment (shorter than a segment; Johnson's original code left
such pieces out) is still trained on: it gets one segment that starts at its first bar line (at
its first step if it has none) and runs past its end, padded with silence (state 0, bar position
0) and a per-step weight of 0 there (`SegmentSampler.padded` names these pieces). The dataset
then yields the weights as Keras' `sample_weight`, and `model.BiaxialNLL` / `model.PlayNLL`
average the nats over the weighted (real) steps only, so the model is never taught to predict
the padding and a padded segment's real steps count exactly like any other steps. The model is
causal in time, so the padding changes nothing on the real steps before it. With the MuseData
benchmark and 128-step segments, 163 of its 524 training pieces are such pieces. Evaluation always
scores whole pieces. A segment length no longer than your typical piece still uses the data best
(the JSB benchmark, one step per quarter note, has pieces of 25 to 160 steps; 32 steps = 8 bars
works well there).

Randomness. Batch number `i` is drawn from the stateless seed `(seed, i)`, so the data stream is a
pure function of `(seed, i)`: a resumed run that starts at batch `epoch * steps_per_epoch` sees
exactly the batches an uninterrupted run would have seen.

TensorFlow is imported only by the functions that build datasets, so `load_benchmark` and the
split helpers stay light.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle  # only for the read-only benchmark loader below; our own files never use pickle
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import atomic_open
from .errors import DataError
from .midi import Piece, from_state

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_LOWEST",
    "BENCHMARK_NOTES",
    "Benchmark",
    "DataError",
    "SegmentSampler",
    "check_compatible",
    "download_benchmark",
    "frames_to_state",
    "load_benchmark",
    "padded_batches",
    "split_pieces",
    "transpose_state",
]

#: The benchmark pickles use the 88 piano keys, MIDI 21 (A0) to 108 (C8).
BENCHMARK_LOWEST = 21
BENCHMARK_NOTES = 88


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: where to download it and what one step is.

    Attributes:
        file: file name `download_benchmark` writes.
        url: the original distribution (Boulanger-Lewandowski's page at Université de Montréal).
        sha256: hex digest of that original file, or None where we could not obtain the original
            to hash it (then the download is written unverified; pass `sha256=` to pin it).
        steps_per_beat: frames per quarter note: 1 for JSB (a frame is a quarter note), 2 for
            the others (an eighth note).
    """

    file: str
    url: str
    sha256: str | None
    steps_per_beat: int


_BL_PAGE = "http://www-etud.iro.umontreal.ca/~boulanni"
# The dataset page says the piano rolls were made "by transposing each sequence in C major or C
# minor and sampling frames every eighth note (quarter note for JSB chorales) following the beat
# information present in the MIDI file".

#: The four Boulanger-Lewandowski benchmarks. Only JSB's hash is of the original file (the copy in
#: the shared data folder is byte for byte the original). The shared folder's other three files
#: are conversions of the TCN repository's .mat copies, so their hashes would not match the
#: originals and are not used here.
BENCHMARKS: dict[str, Benchmark] = {
    "jsb": Benchmark(
        "jsb_chorales.pickle",
        f"{_BL_PAGE}/JSB%20Chorales.pickle",
        "69dc4c3e52800959ac0ab3b82aa3e5f55285ce64f1705acb3e3a8ef77a5c051c",
        1,
    ),
    "nottingham": Benchmark("nottingham.pickle", f"{_BL_PAGE}/Nottingham.pickle", None, 2),
    "musedata": Benchmark("musedata.pickle", f"{_BL_PAGE}/MuseData.pickle", None, 2),
    "piano": Benchmark("piano_midi_de.pickle", f"{_BL_PAGE}/Piano-midi.de.pickle", None, 2),
}

_SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------------------------------
# Benchmark pickles.


def frames_to_state(
    frames: Sequence[Sequence[int]],
    *,
    lowest: int = BENCHMARK_LOWEST,
    n_notes: int = BENCHMARK_NOTES,
    name: str = "sequence",
) -> np.ndarray:
    """Turn a list of frames (each the MIDI pitches sounding) into a note-state matrix.

    The frames carry no articulation, so a note is articulated where it plays and did not play in
    the previous frame (a repeated note tied across frames is one long note).

    Args:
        frames: T frames; each a sequence of MIDI pitches in `[lowest, lowest + n_notes)`.
        lowest: MIDI pitch of note index 0.
        n_notes: N.
        name: used in error messages.

    Returns:
        uint8 array (T, N, 2).

    Raises:
        DataError: a frame that is not a sequence of integers, or a pitch out of range.
    """
    if not isinstance(frames, (list, tuple)):
        raise DataError(f"{name}: expected a list of frames, got {type(frames).__name__}")
    for frame in frames:
        if not isinstance(frame, (list, tuple, np.ndarray)):
            raise DataError(f"{name}: a frame should list pitches, got {type(frame).__name__}")
    lengths = np.fromiter((len(frame) for frame in frames), dtype=np.int64, count=len(frames))
    try:
        pitches = np.array(list(itertools.chain.from_iterable(frames)), dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name}: frames should hold MIDI pitch numbers") from None
    if pitches.size and (np.any(pitches != np.round(pitches))):
        raise DataError(f"{name}: pitches should be whole numbers")
    pitches = pitches.astype(np.int64)
    outside = (pitches < lowest) | (pitches >= lowest + n_notes)
    if np.any(outside):
        raise DataError(
            f"{name}: pitch {int(pitches[outside][0])} is outside the range "
            f"{lowest}..{lowest + n_notes - 1}"
        )
    steps = np.repeat(np.arange(len(frames)), lengths)
    play = np.zeros((len(frames), n_notes), dtype=np.uint8)
    play[steps, pitches - lowest] = 1
    before = np.concatenate([np.zeros((1, n_notes), np.uint8), play[:-1]], axis=0)
    articulate = play & (1 - before)
    return np.stack([play, articulate], axis=-1)


def load_benchmark(
    path: str | os.PathLike, *, steps_per_beat: int | None = None
) -> dict[str, list[Piece]]:
    """Read a Boulanger-Lewandowski polyphonic-music benchmark pickle.

    The file is a dict with the keys 'train', 'valid' and 'test'; each holds a list of sequences,
    each a list of frames, each frame the MIDI pitches (21..108) sounding. Steps are frames: a
    quarter note for JSB Chorales, an eighth note for Nottingham, MuseData and Piano-midi.de (as
    the dataset page says; `BENCHMARKS[name].steps_per_beat`). The pieces come out with 88 notes
    from MIDI 21, `steps_per_beat` 1 for JSB and 2 for the others (a beat is a quarter note), a
    4/4 meter (the files carry no meter, so `bar_position()` is `t % 4` for
    JSB, `t % 8` for the others) and articulation derived from onsets (see `frames_to_state`).

    Security: this is the ONE place the package unpickles anything, because that is the format
    these benchmarks are distributed in. Unpickling can run code hidden in the file: load only
    the benchmark files you downloaded from their known source (`download_benchmark` checks the
    hash where one is known).

    Args:
        path: a `.pickle` file.
        steps_per_beat: frames per quarter note; by default that of the benchmark whose key
            the file name contains (`BENCHMARKS`: "nottingham", "musedata", "piano", "jsb"),
            else 1.

    Returns:
        {"train": [Piece], "valid": [Piece], "test": [Piece]}; piece names are
        `"<file stem>/<split>/<index>"`.

    Raises:
        DataError: not a benchmark pickle (with the reason); OSError when the file cannot be read.
    """
    path = Path(path)
    if steps_per_beat is None:
        named = [b for key, b in BENCHMARKS.items() if key in path.name.lower()]
        steps_per_beat = named[0].steps_per_beat if named else 1
    with open(path, "rb") as f:
        try:
            # latin1: the original files are Python-2 pickles holding numpy scalars.
            raw = pickle.load(f, encoding="latin1")  # noqa: S301 - see the docstring
        except Exception as exc:  # a broken pickle can raise almost anything
            raise DataError(f"{path.name}: not a readable pickle ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path.name}: expected a dict of splits, found {type(raw).__name__}")
    missing = [split for split in _SPLITS if split not in raw]
    if missing:
        raise DataError(f"{path.name}: the split(s) {', '.join(missing)} are missing")
    splits: dict[str, list[Piece]] = {}
    for split in _SPLITS:
        sequences = raw[split]
        if not isinstance(sequences, (list, tuple)):
            raise DataError(f"{path.name}: split {split!r} should be a list of sequences")
        pieces = []
        for i, sequence in enumerate(sequences):
            name = f"{path.stem}/{split}/{i}"
            state = frames_to_state(sequence, name=name)
            if len(state) == 0:
                raise DataError(f"{name}: empty sequence")
            pieces.append(
                from_state(
                    state,
                    lowest=BENCHMARK_LOWEST,
                    steps_per_beat=steps_per_beat,
                    meter=(4, 4),
                    name=name,
                )
            )
        splits[split] = pieces
    return splits


def download_benchmark(
    name: str,
    folder: str | os.PathLike,
    *,
    url: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Download a benchmark pickle into `folder` (kept if already there and its hash matches).

    Args:
        name: a key of `BENCHMARKS` ("jsb", "nottingham", "musedata", "piano"), or any name when
            `url` is given (then the file is `<name>.pickle`).
        folder: where to write; created if missing.
        url: override the source (any URL urllib reads, `file://` included).
        sha256: expected hex digest; defaults to the known one. When neither is known (the
            original Nottingham, MuseData and Piano-midi.de files, which we could not hash), the
            file is written unverified.

    Returns:
        The path of the file, written atomically (a temporary file renamed into place only
        after the hash matched).

    Raises:
        DataError: unknown name, or the download's SHA-256 differs from the expected one.
        OSError: network or file-system errors (urllib's URLError is an OSError).
    """
    known = BENCHMARKS.get(name)
    if known is None and url is None:
        raise DataError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    if url is None:
        url = known.url
    if sha256 is None and known is not None and url == known.url:
        sha256 = known.sha256
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (known.file if known is not None else f"{name}.pickle")
    if target.exists() and sha256 is not None and _sha256_file(target) == sha256.lower():
        return target
    digest = hashlib.sha256()
    with atomic_open(target) as out, urllib.request.urlopen(url) as response:  # noqa: S310
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DataError(  # raised inside the block, so the download is not kept
                f"{target.name}: the download from {url} has SHA-256 {digest.hexdigest()}, "
                f"expected {sha256.lower()}; the file was not kept"
            )
    return target


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Splits and segments (numpy).


def check_compatible(pieces: Sequence[Piece], what: str = "data") -> tuple[int, int]:
    """The common `(lowest, n_notes)` of the pieces; DataError if they differ or there are none."""
    if not pieces:
        raise DataError(f"{what}: no pieces")
    ranges = {(p.lowest, p.n_notes) for p in pieces}
    if len(ranges) > 1:
        raise DataError(f"{what}: pieces use different pitch ranges {sorted(ranges)}")
    return next(iter(ranges))


def split_pieces(
    pieces: Sequence[Piece], validation_fraction: float, seed: int = 0
) -> tuple[list[Piece], list[Piece]]:
    """Hold out whole pieces for validation, deterministically for a given seed.

    Args:
        pieces: the corpus.
        validation_fraction: in [0, 1); the number held out is rounded, and at least 1 when the
            fraction is positive and there are at least 2 pieces.
        seed: the same seed and pieces give the same split (the pieces are shuffled by a
            `numpy.random.default_rng(seed)` permutation, so their order matters).

    Returns:
        (train, validation), each in the corpus order.
    """
    if not 0 <= validation_fraction < 1:
        raise DataError(f"validation fraction must be in [0, 1), got {validation_fraction}")
    count = len(pieces)
    held = int(round(count * validation_fraction))
    if validation_fraction > 0 and count >= 2:
        held = min(max(held, 1), count - 1)
    chosen = np.zeros(count, dtype=bool)
    chosen[np.random.default_rng(seed).permutation(count)[:held]] = True
    train = [p for p, c in zip(pieces, chosen, strict=True) if not c]
    valid = [p for p, c in zip(pieces, chosen, strict=True) if c]
    return train, valid


def transpose_state(state: np.ndarray, shifts: np.ndarray | int) -> np.ndarray:
    """Transpose note states by whole semitones, dropping notes shifted out of the range.

    Args:
        state: (B, T, N, 2) array.
        shifts: (B,) integers (or one integer for the whole batch); +1 moves every note a
            semitone up.

    Returns:
        Array like `state`: `out[b, :, n] = state[b, :, n - shifts[b]]`, zero where
        `n - shifts[b]` is outside `[0, N)`.
    """
    state = np.asarray(state)
    n_notes = state.shape[2]
    shifts = np.broadcast_to(np.asarray(shifts, dtype=np.int64), (state.shape[0],))
    source = np.arange(n_notes)[None, :] - shifts[:, None]  # (B, N)
    inside = (source >= 0) & (source < n_notes)
    gathered = np.take_along_axis(state, np.clip(source, 0, n_notes - 1)[:, None, :, None], 2)
    return gathered * inside[:, None, :, None].astype(state.dtype)


class SegmentSampler:
    """Every `segment_length`-step segment of a corpus that starts on a bar line, and one padded
    segment of each piece that has none.

    The pieces are concatenated into one array so that a batch is one vectorised gather.

    Attributes:
        segment_length: L, steps per segment.
        lowest, n_notes: the common pitch range of the pieces.
        states: uint8 (S, N, 2), all pieces end to end.
        beats: int32 (S,), each step's position within its bar.
        starts: int64 (K,), index into `states` of the first step of every segment, ascending.
        real_steps: int64 (K,), steps of each segment inside its piece: L, or fewer for the
            segment of a piece too short for a whole one (the rest is padding, weight 0).
        padded: names of the pieces trained on as one padded segment (no whole segment fits).
        segments_per_piece: int64 (P,), segments of each piece (at least 1).
        used: number of pieces with at least one segment (all of them).
    """

    def __init__(self, pieces: Sequence[Piece], segment_length: int):
        if segment_length < 1:
            raise DataError(f"segment length must be at least 1 step, got {segment_length}")
        self.segment_length = int(segment_length)
        self.lowest, self.n_notes = check_compatible(pieces, "training data")
        lengths = np.array([p.n_steps for p in pieces], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.states = np.concatenate([p.state for p in pieces], axis=0).astype(np.uint8)
        self.beats = np.concatenate([p.bar_position() for p in pieces]).astype(np.int32)
        owner = np.repeat(np.arange(len(pieces)), lengths)  # (S,) piece of each step
        ends = (offsets + lengths)[owner]  # one past each step's piece end
        index = np.arange(len(self.states))
        on_bar = self.beats == 0
        whole = on_bar & (index + self.segment_length <= ends)
        whole_counts = np.bincount(owner[whole], minlength=len(pieces))
        # A piece without a whole segment: one from its first bar line (its first step if it has
        # none), cut at its end; the batches pad it with masked silence.
        first_bar = offsets.copy()
        has_bar, first = np.unique(owner[on_bar], return_index=True)
        first_bar[has_bar] = index[on_bar][first]
        lacking = np.flatnonzero(whole_counts == 0)
        extra = first_bar[lacking]
        starts = np.concatenate([index[whole], extra]).astype(np.int64)
        real = np.concatenate(
            [
                np.full(int(whole.sum()), self.segment_length),
                np.minimum(offsets[lacking] + lengths[lacking] - extra, self.segment_length),
            ]
        ).astype(np.int64)
        order = np.argsort(starts, kind="stable")
        self.starts, self.real_steps = starts[order], real[order]
        cut = real[len(real) - len(lacking) :] < self.segment_length  # (lacking,)
        self.padded = [pieces[i].name for i, short in zip(lacking, cut, strict=True) if short]
        self.segments_per_piece = whole_counts + (whole_counts == 0)
        self.used = int(np.count_nonzero(self.segments_per_piece))

    def __len__(self) -> int:
        """K, the number of distinct segments."""
        return len(self.starts)

    def describe(self) -> str:
        """One line: pieces used (and padded), segments, steps."""
        text = (
            f"{self.used} pieces, {len(self.starts)} segments of {self.segment_length} steps "
            f"starting on bar lines ({len(self.states)} steps in all)"
        )
        if self.padded:
            text += f"; {len(self.padded)} pieces shorter than a segment padded with masked silence"
        return text

    def batch(
        self, batch_size: int, seed: int, index: int, transpose: int = 0, *, weights: bool = False
    ) -> tuple[np.ndarray, ...]:
        """Batch number `index` in numpy, identical to the one `dataset` yields.

        Returns:
            (state uint8 (B, L, N, 2), beat int32 (B, L)), and with `weights` the per-step
            weight float32 (B, L) too: 1 on a piece's steps, 0 on padding.
        """
        from ._tf import tf

        made = self._make_batch_fn(batch_size, seed, transpose)(tf.constant(index, tf.int64))
        return tuple(part.numpy() for part in made[: 3 if weights else 2])

    def _make_batch_fn(self, batch_size: int, seed: int, transpose: int):
        from ._tf import tf

        states = tf.constant(self.states)
        beats = tf.constant(self.beats)
        starts = tf.constant(self.starts)
        real_steps = tf.constant(self.real_steps)
        count = len(self.starts)
        offsets = tf.range(self.segment_length, dtype=tf.int64)
        last_step = len(self.states) - 1
        pads = bool(self.padded)
        n_notes = self.n_notes
        seed = int(seed)

        def make_batch(index):
            # Each batch is a pure function of (seed, index): resumable and order-independent.
            pick = tf.random.stateless_uniform(
                [batch_size],
                seed=tf.stack([tf.constant(seed, tf.int64), index]),
                maxval=count,
                dtype=tf.int64,
            )
            steps = tf.gather(starts, pick)[:, None] + offsets[None, :]  # (B, L)
            real = offsets[None, :] < tf.gather(real_steps, pick)[:, None]  # (B, L)
            if pads:  # past a piece's end: silence at bar position 0, weight 0
                steps = tf.minimum(steps, last_step)
            state = tf.gather(states, steps)  # (B, L, N, 2)
            beat = tf.gather(beats, steps)
            if pads:
                state = state * tf.cast(real, state.dtype)[:, :, None, None]
                beat = beat * tf.cast(real, beat.dtype)
            if transpose:
                shift = tf.random.stateless_uniform(
                    [batch_size],
                    seed=tf.stack([tf.constant(seed + 1, tf.int64), index]),
                    minval=-transpose,
                    maxval=transpose + 1,
                    dtype=tf.int64,
                )
                source = tf.range(n_notes, dtype=tf.int64)[None, :] - shift[:, None]  # (B, N)
                inside = tf.cast((source >= 0) & (source < n_notes), state.dtype)
                state = tf.gather(
                    state, tf.clip_by_value(source, 0, n_notes - 1), axis=2, batch_dims=1
                )
                state = state * inside[:, None, :, None]
            return state, beat, tf.cast(real, tf.float32)

        return make_batch

    def dataset(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        transpose: int = 0,
        first_batch: int = 0,
        weights: bool | None = None,
    ):
        """An endless `tf.data.Dataset` of training batches.

        Args:
            batch_size: B, segments per batch (the global batch under a distribution strategy).
            seed: batch `i` is drawn from the stateless seed `(seed, i)`.
            transpose: K; each segment is moved by a random whole number of semitones in
                [-K, K] (notes moved out of the range are dropped). 0 = no augmentation.
            first_batch: index of the first batch (a resumed run passes
                `completed_epochs * steps_per_epoch`).
            weights: yield the per-step weights as a third element (Keras' `sample_weight`:
                1 on a piece's steps, 0 on padding). None (default): exactly when some segment
                is padded (`padded` is not empty), so the batches of a corpus without short
                pieces are what they always were. False is refused when there is padding, which
                must not be trained on.

        Returns:
            Dataset of `({"state": uint8 (B, L, N, 2), "beat": int32 (B, L)}, state)`, or of
            `(inputs, state, weight float32 (B, L))` with weights.
        """
        from ._tf import tf

        if weights is None:
            weights = bool(self.padded)
        elif not weights and self.padded:
            raise DataError(
                f"{len(self.padded)} pieces are shorter than a {self.segment_length}-step segment "
                "and padded: their batches need the per-step weights (weights=True)"
            )
        make_batch = self._make_batch_fn(batch_size, seed, transpose)

        def to_example(index):
            state, beat, weight = make_batch(index)
            if weights:
                return {"state": state, "beat": beat}, state, weight
            return {"state": state, "beat": beat}, state

        indices = tf.data.Dataset.range(first_batch, np.iinfo(np.int64).max)
        return indices.map(
            to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        ).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------
# Whole pieces, padded (evaluation).


def padded_batches(
    pieces: Sequence[Piece], *, batch_size: int = 8, max_steps: int = 4096
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Whole pieces in padded batches, for scoring.

    Pieces are sorted by length (so little is padded) and grouped into batches of at most
    `batch_size` pieces and at most `max_steps` padded steps (B * T), so long pieces go in small
    batches; a piece longer than `max_steps` is a batch of its own. Padding is silence after the
    end; the model is causal in time, so it changes nothing before the end, and the mask leaves
    the padded steps out of every sum.

    Yields:
        (state uint8 (B, T, N, 2), beat int32 (B, T), mask float32 (B, T): 1 on real steps).
    """
    if not pieces:
        return
    lowest, n_notes = check_compatible(pieces, "evaluation data")
    del lowest
    order = np.argsort([p.n_steps for p in pieces], kind="stable")
    group: list[Piece] = []
    for i in order:
        piece = pieces[i]
        longest = piece.n_steps  # pieces come shortest first, so the newest is the longest
        if group and (len(group) == batch_size or longest * (len(group) + 1) > max_steps):
            yield _pad(group, n_notes)
            group = []
        group.append(piece)
    if group:
        yield _pad(group, n_notes)


def _pad(group: list[Piece], n_notes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    length = max(p.n_steps for p in group)
    state = np.zeros((len(group), length, n_notes, 2), dtype=np.uint8)
    beat = np.zeros((len(group), length), dtype=np.int32)
    mask = np.zeros((len(group), length), dtype=np.float32)
    for b, piece in enumerate(group):  # per piece, not per step
        state[b, : piece.n_steps] = piece.state
        beat[b, : piece.n_steps] = piece.bar_position()
        mask[b, : piece.n_steps] = 1.0
    return state, beat, mask
