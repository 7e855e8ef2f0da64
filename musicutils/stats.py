"""Statistics of note-state matrices, to compare composed music with real music.

No TensorFlow: numpy only (matplotlib for `plot_comparison`, imported when called).

Every function takes `music`: one state array (T, N, 2), a batch (B, T, N, 2), a `midi.Piece`,
or a list of any of these (a corpus), and pools all the pieces it holds. Pitch classes need the
MIDI pitch of note index 0 (`lowest`); positions in the bar need the grid (`steps_per_beat`,
steps per quarter note) and the `meter` (numerator, denominator) from step 0. A Piece brings its
own three; the keyword arguments apply to bare arrays.

    >>> summary = stats.describe(composed, lowest=24)
    >>> summary["silent_fraction"], summary["four_voice_share"]

What a musician looks at first, as histograms with fixed bins (`histograms`; the bins are
listed in `HISTOGRAMS`), so that two sides can be compared bin by bin:

* notes_at_once: notes sounding in a step (a four-part chorale: 4 nearly everywhere);
* note_lengths: in steps, a re-struck pitch starting a new note;
* onsets_per_step: notes struck at the start of a step;
* onset_positions: where in the bar notes are struck (`METRIC_LEVELS`: downbeat, other beat,
  half beat, finer);
* pitch_classes: share of the notes (onsets) on C, C#, ... B;
* intervals: the intervals between every two notes sounding together, reduced to one octave
  (`INTERVAL_NAMES`; 0 = octaves and unisons of different octaves);
* top_motion / bottom_motion: melodic motion of the highest and lowest sounding notes (the
  soprano and bass lines), in semitones (absolute), each time that note changes or is re-struck;
* span: semitones between the lowest and highest sounding note of a step.

Scalars (`scalars`): the share of four-voice and silent steps, notes per step, how well the
pitch content fits one key, and the mean pitch of the top and bottom voices. Fit to one key is
measured two ways on each piece's (or window's) profile of sounding time per pitch class:
`key_fit`, the best correlation with the Krumhansl–Kessler profiles of the 24 major and minor
keys (the standard key-finding measure: it also weighs tonic and dominant above the other scale
notes), and `diatonic_share`, the share of sounding time on the best of the 12 diatonic scales
(the easier one to read: "93 % of the time on the notes of one scale"). Staying in a key is
measured across a piece: `home_key_share`, the share of its 16-beat passages (four bars of 4/4)
whose own key is the piece's.

Comparing two sides:

* `distances`: total variation distance of each histogram (0 = identical, 1 = disjoint);
* a two-sample classifier test (`window_features`, `two_sample_accuracy`, `split_half_accuracy`):
  windows of a few bars become feature vectors made of the statistics above, and an
  L2-regularised logistic regression (numpy) learns to tell the two sides apart, cross-validated
  with folds grouped by piece and classes balanced by subsampling. Accuracy 0.5 means the
  classifier cannot tell them apart; the floor is the same test between two halves of the real
  pieces, which is what "as good as real" looks like with that much data.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from .midi import DEFAULT_LOWEST, DEFAULT_METER, Piece, bar_positions, note_intervals

__all__ = [
    "HISTOGRAMS",
    "INTERVAL_NAMES",
    "KRUMHANSL_KESSLER_MAJOR",
    "KRUMHANSL_KESSLER_MINOR",
    "METRIC_LEVELS",
    "PITCH_CLASSES",
    "describe",
    "diatonic_share",
    "clash_shares",
    "distances",
    "fit_logistic",
    "histograms",
    "home_key_share",
    "key_fit",
    "key_name",
    "metric_levels",
    "note_lengths",
    "notes_per_step",
    "onsets_per_step",
    "parallel_motion_pairs",
    "parallel_perfects",
    "pitch_class_histogram",
    "plot_comparison",
    "predict_logistic",
    "scalars",
    "silent_fraction",
    "split_half_accuracy",
    "struck_intervals",
    "texture",
    "total_variation",
    "two_sample_accuracy",
    "typical_voices",
    "voice_motion",
    "window_feature_names",
    "window_features",
]

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Interval reduced to one octave (semitones mod 12): 0 = octave (or double octave, ...).
INTERVAL_NAMES = ("8ve", "m2", "M2", "m3", "M3", "P4", "TT", "P5", "m6", "M6", "m7", "M7")
#: Metric level of a step, from its position in the bar (`metric_levels`).
METRIC_LEVELS = ("downbeat", "beat", "half beat", "finer")

#: Krumhansl & Kessler (1982) probe-tone ratings of the 12 pitch classes in C major and C minor
#: (index 0 = the tonic); the profiles of the Krumhansl–Schmuckler key-finding algorithm.
KRUMHANSL_KESSLER_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KRUMHANSL_KESSLER_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
#: Pitch classes of C major (and of its modes: A natural minor is the same collection).
_DIATONIC = np.array([0, 2, 4, 5, 7, 9, 11])

# Histogram bins: the last bin of each open-ended histogram pools everything above it.
MAX_NOTES_AT_ONCE = 8
MAX_LENGTH = 16
MAX_ONSETS = 8
MAX_MOTION = 12
SPAN_BIN = 3
MAX_SPAN = 36


def _open_bins(first: int, last: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(first, last)) + (f"{last}+",)


#: name -> (title, bin labels) of every histogram `histograms` returns, in that order.
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "notes_at_once": ("notes sounding at once (share of steps)", _open_bins(0, MAX_NOTES_AT_ONCE)),
    "note_lengths": ("note lengths in steps (share of notes)", _open_bins(1, MAX_LENGTH)),
    "onsets_per_step": ("notes struck per step (share of steps)", _open_bins(0, MAX_ONSETS)),
    "onset_positions": ("where notes are struck (share of notes)", METRIC_LEVELS),
    "pitch_classes": ("pitch classes (share of notes)", PITCH_CLASSES),
    "intervals": ("intervals sounding together (share of pairs)", INTERVAL_NAMES),
    "top_motion": ("top voice motion, semitones (share of moves)", _open_bins(0, MAX_MOTION)),
    "bottom_motion": ("bottom voice motion, semitones (share of moves)", _open_bins(0, MAX_MOTION)),
    "span": (
        "span lowest-highest note, semitones (share of steps)",
        tuple(f"{i}-{i + SPAN_BIN - 1}" for i in range(0, MAX_SPAN, SPAN_BIN)) + (f"{MAX_SPAN}+",),
    ),
}


class _Music(NamedTuple):
    """One piece as the statistics need it."""

    state: np.ndarray  # (T, N, 2)
    lowest: int  # MIDI pitch of note index 0
    bar_position: np.ndarray  # (T,) int, step within its bar (0 = downbeat)
    steps_per_beat: int


def _pieces(
    music, lowest: int, steps_per_beat: int = 4, meter: tuple[int, int] = DEFAULT_METER
) -> list[_Music]:
    """Flatten `music` into one `_Music` per piece."""
    if isinstance(music, Piece):
        return [_Music(music.state, music.lowest, music.bar_position(), music.steps_per_beat)]
    if isinstance(music, np.ndarray):
        if music.ndim == 3:
            bars = bar_positions([(0, *meter)], music.shape[0], steps_per_beat)
            return [_Music(music, lowest, bars, steps_per_beat)]
        if music.ndim == 4:
            bars = bar_positions([(0, *meter)], music.shape[1], steps_per_beat)
            return [_Music(piece, lowest, bars, steps_per_beat) for piece in music]
        raise ValueError(f"expected a state (T, N, 2) or (B, T, N, 2), got shape {music.shape}")
    if isinstance(music, Iterable):
        return [m for part in music for m in _pieces(part, lowest, steps_per_beat, meter)]
    raise TypeError(f"expected states, a Piece or a list of them, got {type(music).__name__}")


def _onsets(state: np.ndarray) -> np.ndarray:
    """Where notes start: bool (T, N), by the rule of `midi.note_intervals` (articulate while
    playing, or play starting without it)."""
    play = state[..., 0] > 0
    onset = play & (state[..., 1] > 0)
    onset[1:] |= play[1:] & ~play[:-1]
    onset[:1] |= play[:1]
    return onset


def metric_levels(bar_position: np.ndarray, steps_per_beat: int) -> np.ndarray:
    """Metric level of each step from its position in the bar: int64 (T,), indexes METRIC_LEVELS.

    0 = downbeat (first step of a bar), 1 = another beat (a quarter note), 2 = the half of a beat
    (an eighth note; only when `steps_per_beat` is even), 3 = anything finer. The levels do not
    depend on the meter, so pieces in 3/4 and 4/4 share the bins.
    """
    position = np.asarray(bar_position, np.int64)
    level = np.full(position.shape, 3, np.int64)
    if steps_per_beat % 2 == 0:
        level[position % (steps_per_beat // 2) == 0] = 2
    level[position % steps_per_beat == 0] = 1
    level[position == 0] = 0
    return level


def _outer_voices(play: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Note index of the highest and of the lowest sounding note of every step: int64 (T,) each
    (meaningless where nothing sounds)."""
    top = play.shape[1] - 1 - np.argmax(play[:, ::-1], axis=1)
    return top.astype(np.int64), np.argmax(play, axis=1).astype(np.int64)


def _moves(line: np.ndarray, play: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """Signed semitone moves of a voice line (T,) (see `voice_motion`): int64 (moves,)."""
    sounding = play.any(axis=1)
    struck_again = onset[np.arange(1, len(line)), line[1:]]
    moved = (line[1:] != line[:-1]) | struck_again
    return (line[1:] - line[:-1])[sounding[1:] & sounding[:-1] & moved]


@functools.lru_cache(maxsize=8)
def _pair_distances(n_notes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low, high = np.triu_indices(n_notes, 1)
    return low, high, (high - low) % 12


def _interval_counts(notes: np.ndarray) -> np.ndarray:
    """Pairs of notes on at the same step, by interval class: float64 (12,), from bool (T, N)."""
    bits = notes.astype(np.float64)
    together = bits.T @ bits  # (N, N): steps at which both notes are on
    low, high, interval = _pair_distances(notes.shape[1])
    return np.bincount(interval, weights=together[low, high], minlength=12)


def _counts(m: _Music) -> dict[str, np.ndarray]:
    """Raw counts of one piece: every histogram of HISTOGRAMS (float64, its bins) plus
    "pc_durations" (12,), sounding steps per pitch class, and "register" (3,): the sum of the top
    voice's and of the bottom voice's MIDI pitches over sounding steps, and their number."""
    state = np.asarray(m.state)
    play = state[..., 0] > 0
    onset = _onsets(state)
    n_notes = play.shape[1]
    at_once = play.sum(axis=1)
    struck = onset.sum(axis=1)
    sounding = at_once > 0
    starts, ends, notes = note_intervals(state)
    pitch_class = (np.arange(n_notes) + m.lowest) % 12

    intervals = _interval_counts(play)  # every pair of notes sounding together

    top, bottom = _outer_voices(play)
    motions = [np.abs(_moves(line, play, onset)) for line in (top, bottom)]
    span = (top - bottom)[sounding]

    def hist(values, bins, weights=None):
        return np.bincount(values, weights=weights, minlength=bins).astype(np.float64)

    return {
        "notes_at_once": hist(np.minimum(at_once, MAX_NOTES_AT_ONCE), MAX_NOTES_AT_ONCE + 1),
        "note_lengths": hist(np.minimum(ends - starts, MAX_LENGTH) - 1, MAX_LENGTH),
        "onsets_per_step": hist(np.minimum(struck, MAX_ONSETS), MAX_ONSETS + 1),
        "onset_positions": hist(
            metric_levels(m.bar_position, m.steps_per_beat), 4, weights=struck.astype(float)
        ),
        "pitch_classes": hist(pitch_class[notes], 12),
        "intervals": intervals,
        "top_motion": hist(np.minimum(motions[0], MAX_MOTION), MAX_MOTION + 1),
        "bottom_motion": hist(np.minimum(motions[1], MAX_MOTION), MAX_MOTION + 1),
        "span": hist(np.minimum(span, MAX_SPAN) // SPAN_BIN, MAX_SPAN // SPAN_BIN + 1),
        "pc_durations": hist(pitch_class, 12, weights=play.sum(axis=0).astype(float)),
        "register": np.array(
            [(top[sounding] + m.lowest).sum(), (bottom[sounding] + m.lowest).sum(), sounding.sum()],
            np.float64,
        ),
    }


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, np.float64)


# ---------------------------------------------------------------------------------------------
# Single statistics.


def pitch_class_histogram(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Share of the notes (onsets) on each pitch class C, C#, ... B: float64 (12,), sums to 1.

    All zeros when there are no notes.
    """
    counts = np.zeros(12)
    for m in _pieces(music, lowest):
        _, _, notes = note_intervals(m.state)
        counts += np.bincount((notes + m.lowest) % 12, minlength=12)
    return _shares(counts)


def notes_per_step(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Number of notes sounding in every step of every piece, pooled: int64 (total steps,)."""
    pieces = _pieces(music, lowest)
    if not pieces:
        return np.zeros(0, np.int64)
    return np.concatenate([(m.state[..., 0] > 0).sum(axis=-1) for m in pieces]).astype(np.int64)


def typical_voices(music, *, share: float = 0.5, lowest: int = DEFAULT_LOWEST) -> int | None:
    """The texture of `music`: the number of notes sounding in most of its sounding steps, if
    that number holds in at least `share` of them; None for music without a fixed texture
    (or no sounding step).

    Four-part chorales give 4 (about 90 % of their sounding steps); piano music, whose texture
    changes from bar to bar, usually None. `train` stores it with a model (`model.voices`) for
    `generate`'s voice rule.
    """
    counts = notes_per_step(music, lowest=lowest)
    counts = counts[counts > 0]
    if not counts.size:
        return None
    histogram = np.bincount(counts)
    mode = int(histogram.argmax())
    return mode if histogram[mode] >= share * counts.size else None


def texture(music, voices: int, *, stretch: int = 8, lowest: int = DEFAULT_LOWEST) -> dict:
    """How well `music` keeps `voices` voices, and how it loses one. Pooled over its pieces:

    * exact / fewer / more: shares of all steps with `voices`, fewer or more notes sounding;
    * fewer_in_stretches: share of the steps with fewer notes that lie in runs of at least
      `stretch` such steps in a row (a voice gone for a while, not a rest or a unison);
    * top_fewer / top_exact, bottom_fewer / bottom_exact: mean MIDI pitch of the highest and
      lowest sounding note in the (non-silent) steps with fewer notes and in those with
      `voices`: which voice is missing (nan where there are no such steps).
    """
    counts, runs, top, bottom = [], [], [], []
    for m in _pieces(music, lowest):
        play = m.state[..., 0] > 0
        count = play.sum(axis=1)
        edges = np.flatnonzero(np.diff(np.r_[0, count < voices, 0].astype(np.int8)))
        runs.append(edges[1::2] - edges[::2])  # lengths of the runs of thin steps
        high, low = _outer_voices(play)
        counts.append(count)
        top.append(high + m.lowest)
        bottom.append(low + m.lowest)
    count, runs = np.concatenate(counts), np.concatenate(runs)
    top, bottom = np.concatenate(top), np.concatenate(bottom)
    thin, exact = (count < voices) & (count > 0), count == voices

    def mean(values, where):
        return float(values[where].mean()) if where.any() else float("nan")

    return {
        "exact": float(exact.mean()),
        "fewer": float((count < voices).mean()),
        "more": float((count > voices).mean()),
        "fewer_in_stretches": float(runs[runs >= stretch].sum() / max(runs.sum(), 1)),
        "top_fewer": mean(top, thin),
        "top_exact": mean(top, exact),
        "bottom_fewer": mean(bottom, thin),
        "bottom_exact": mean(bottom, exact),
    }


def struck_intervals(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Intervals between notes struck at the same step: float64 (12,), shares by interval class
    (`INTERVAL_NAMES`), over every pair of notes whose onsets coincide.

    The `intervals` histogram counts every pair sounding together, held or struck; this one only
    the pairs struck together, where a dissonance cannot be a suspension or a passing note
    against a held one. In Bach's chorales a second or a seventh is almost never struck
    together with the note it clashes with.
    """
    counts = sum(
        (_interval_counts(_onsets(np.asarray(m.state))) for m in _pieces(music, lowest)),
        np.zeros(12),
    )
    return _shares(counts)


def clash_shares(intervals) -> dict[str, float]:
    """The seconds and sevenths of an interval histogram (12,) (`intervals` of `histograms`, or
    `struck_intervals`): "m2_M7", the semitone clashes (a minor second or a major seventh, in
    any octave), and "M2_m7", the whole-tone ones."""
    shares = np.asarray(intervals, np.float64)
    return {"m2_M7": float(shares[1] + shares[11]), "M2_m7": float(shares[2] + shares[10])}


def parallel_motion_pairs(before, after, voices: int) -> tuple[np.ndarray, np.ndarray]:
    """Parallel fifths and octaves from one step to the next: play bits (..., N) of the two steps
    (they broadcast against each other) -> (fifths, octaves), int64 (...), voice pairs moving so.

    Only steps that both sound exactly `voices` notes are read (elsewhere: 0), as voices from the
    bottom up (bass, tenor, alto, soprano for 4; a crossing of two voices is not seen). Two
    voices move in **parallel fifths** when both move, in the same direction, from one fifth to
    another (a compound fifth, 19 semitones, counts as a fifth), and in **parallel octaves**
    likewise with octaves or unisons: the consecutive perfect intervals that the rules of
    four-part writing forbid. `parallel_perfects` counts them over pieces; the sampler's voice
    rule avoids them (`generate.parallel_motion`).
    """
    before, after = np.broadcast_arrays(np.asarray(before) > 0, np.asarray(after) > 0)
    fifths = np.zeros(before.shape[:-1], np.int64)
    octaves = np.zeros(before.shape[:-1], np.int64)
    full = (before.sum(-1) == voices) & (after.sum(-1) == voices)
    if voices < 2 or not full.any():
        return fifths, octaves
    # np.nonzero walks row by row, so each row's note indices come out sorted: the voices
    was_at = np.nonzero(before[full])[1].reshape(-1, voices)
    now_at = np.nonzero(after[full])[1].reshape(-1, voices)
    move = now_at - was_at  # (pairs, voices) semitones
    low, high = np.triu_indices(voices, 1)
    together = (move[:, low] != 0) & (np.sign(move[:, low]) == np.sign(move[:, high]))
    was = (was_at[:, high] - was_at[:, low]) % 12
    now = (now_at[:, high] - now_at[:, low]) % 12
    fifths[full] = (together & (was == 7) & (now == 7)).sum(axis=1)
    octaves[full] = (together & (was == 0) & (now == 0)).sum(axis=1)
    return fifths, octaves


def parallel_perfects(music, voices: int = 4, *, lowest: int = DEFAULT_LOWEST) -> dict:
    """Parallel fifths and octaves between the voices, per chord change: a dict of floats.

    Between two consecutive steps that both sound exactly `voices` notes (`parallel_motion_pairs`
    says which voice pairs move in parallel fifths or octaves). A **chord change** is such a pair
    of steps in which at least one voice moves to another pitch. Parallel fifths and octaves
    are what the rules of four-part writing forbid, and what Bach's chorales almost never contain.

    Keys: "fifths" and "octaves", voice pairs in parallel motion per chord change (one chord
    change can hold several), and "changes", the number of chord changes counted (0.0 rates
    when there are none).
    """
    fifths = octaves = changes = 0
    for m in _pieces(music, lowest):
        play = np.asarray(m.state)[..., 0] > 0
        before, after = play[:-1], play[1:]
        full = (before.sum(-1) == voices) & (after.sum(-1) == voices)
        # with the same number of notes, a voice moves exactly when the notes differ
        changes += int((full & (before != after).any(axis=-1)).sum())
        f, o = parallel_motion_pairs(before, after, voices)
        fifths, octaves = fifths + int(f.sum()), octaves + int(o.sum())
    return {
        "fifths": fifths / changes if changes else 0.0,
        "octaves": octaves / changes if changes else 0.0,
        "changes": float(changes),
    }


def onsets_per_step(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Number of notes struck at the start of every step of every piece: int64 (total steps,)."""
    pieces = _pieces(music, lowest)
    if not pieces:
        return np.zeros(0, np.int64)
    return np.concatenate([_onsets(np.asarray(m.state)).sum(axis=-1) for m in pieces]).astype(
        np.int64
    )


def note_lengths(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Length of every note, in steps (a re-struck pitch starts a new note): int64 (notes,)."""
    lengths = []
    for m in _pieces(music, lowest):
        starts, ends, _ = note_intervals(m.state)
        lengths.append(ends - starts)
    return np.concatenate(lengths).astype(np.int64) if lengths else np.zeros(0, np.int64)


def silent_fraction(music, *, lowest: int = DEFAULT_LOWEST) -> float:
    """Fraction of all steps in which no note sounds (0.0 for no steps)."""
    counts = notes_per_step(music, lowest=lowest)
    return float((counts == 0).mean()) if counts.size else 0.0


def voice_motion(music, *, voice: str = "top", lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Melodic motion of the highest (`voice="top"`) or lowest ("bottom") sounding note: int64
    (moves,), signed semitones, pooled over the pieces.

    A move is counted at every step where that note differs from the previous step's, or is the
    same pitch struck again (a repeated note: 0); steps next to a silent step count no move.
    """
    if voice not in ("top", "bottom"):
        raise ValueError(f"voice must be 'top' or 'bottom', got {voice!r}")
    moves = []
    for m in _pieces(music, lowest):
        state = np.asarray(m.state)
        play = state[..., 0] > 0
        top, bottom = _outer_voices(play)
        moves.append(_moves(top if voice == "top" else bottom, play, _onsets(state)))
    return np.concatenate(moves).astype(np.int64) if moves else np.zeros(0, np.int64)


# ---------------------------------------------------------------------------------------------
# How well pitch content fits one key.


def _key_templates() -> np.ndarray:
    """The 24 key profiles, standardised: (24, 12); rows 0-11 C..B major, 12-23 C..B minor."""
    rows = [np.roll(KRUMHANSL_KESSLER_MAJOR, k) for k in range(12)]
    rows += [np.roll(KRUMHANSL_KESSLER_MINOR, k) for k in range(12)]
    rows = np.array(rows, np.float64)
    return (rows - rows.mean(axis=1, keepdims=True)) / rows.std(axis=1, keepdims=True)


_KEYS = _key_templates()


def key_fit(profile) -> tuple[float, int]:
    """Krumhansl–Schmuckler key finding: (best correlation, key) of a pitch-class profile (12,).

    The profile (any non-negative weights on C, C#, ... B; `scalars` and `window_features` use
    the number of steps each pitch class sounds, as Krumhansl did) is correlated (Pearson) with
    the Krumhansl–Kessler probe-tone profiles of all 24 major and minor keys. The best
    correlation says how much the profile looks like one key: 1 = exactly its profile; the 30
    bundled chorales score 0.87 on average (0.71-0.97), random pieces of 256 steps with pitches
    drawn uniformly from four octaves 0.53. The key is its index for `key_name`. A flat or empty
    profile has no key: (0.0, -1).
    """
    profile = np.asarray(profile, np.float64)
    if profile.shape != (12,):
        raise ValueError(f"expected a pitch-class profile of shape (12,), got {profile.shape}")
    correlation, key = _key_fits(profile[None])
    return float(correlation[0]), int(key[0])


def _key_fits(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`key_fit` of each row of pitch-class profiles (K, 12), in one product: (best correlation
    float64 (K,), key int64 (K,)); a flat row has (0.0, -1)."""
    profiles = np.asarray(profiles, np.float64)
    spread = profiles.std(axis=1)
    flat = spread == 0
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    standard = centred / np.where(flat, 1.0, spread)[:, None]
    correlations = standard @ _KEYS.T / 12  # (K, 24): Pearson, both sides standardised
    keys = np.argmax(correlations, axis=1)
    best = np.take_along_axis(correlations, keys[:, None], axis=1)[:, 0]
    return np.where(flat, 0.0, best), np.where(flat, -1, keys)


def _home_key_counts(m: _Music, passage: int) -> tuple[int, int]:
    """(passages in the piece's own key, passages with a key) of one piece; see
    `home_key_share`."""
    play = np.asarray(m.state)[..., 0] > 0
    count = len(play) // passage
    fold = np.eye(12)[(np.arange(play.shape[1]) + m.lowest) % 12]  # (N, 12): note -> class
    home = _key_fits((play.sum(axis=0) @ fold)[None])[1][0]
    if count == 0 or home < 0:
        return 0, 0
    sounding = play[: count * passage].reshape(count, passage, -1).sum(axis=1)  # (count, N)
    keys = _key_fits(sounding @ fold)[1]
    return int((keys == home).sum()), int((keys >= 0).sum())


def home_key_share(
    music,
    *,
    beats: int = 16,
    lowest: int = DEFAULT_LOWEST,
    steps_per_beat: int = 4,
    meter: tuple[int, int] = DEFAULT_METER,
) -> float:
    """Share of passages of `beats` quarter notes that are in their piece's key: float in [0, 1].

    Each piece is cut into consecutive passages of `beats` beats counted from its first step
    (16: four bars of 4/4, the classifier's window; the meter, and so a pickup or a bar of
    3/4, is not looked at; a shorter end is left out of the passages but not of the piece), and
    each passage's key (`key_fit` of its sounding time per pitch class) is compared with the
    key of the whole piece. Passages without a key (silent) are not counted, nor are pieces
    without one. A chorale modulates, mostly to its dominant or relative key, and comes home for
    its close: the 30 bundled chorales keep 60 % of their 16-beat passages in the piece's key.
    Music that wanders from key to key scores lower (the bundled model, 64 pieces of 256 steps,
    seeds 0-2: 41-52 %; the first stage of its training 36-40 %). Pooled over the pieces'
    passages; 0.0 when none is counted.
    """
    if beats < 1:
        raise ValueError(f"beats must be >= 1, got {beats}")
    return _pooled_home_key_share(_pieces(music, lowest, steps_per_beat, meter), beats)


def _pooled_home_key_share(pieces: list[_Music], beats: int) -> float:
    """`home_key_share` of pieces already flattened by `_pieces` (so that `scalars` does not
    flatten `music` twice: an iterator would be spent the second time)."""
    at_home = passages = 0
    for m in pieces:
        home, count = _home_key_counts(m, beats * m.steps_per_beat)
        at_home, passages = at_home + home, passages + count
    return at_home / passages if passages else 0.0


def key_name(key: int) -> str:
    """Name of a key index of `key_fit`: 0 -> "C major", 21 -> "A minor", -1 -> "no key"."""
    if key < 0:
        return "no key"
    return f"{PITCH_CLASSES[key % 12]} {'major' if key < 12 else 'minor'}"


def diatonic_share(profile) -> float:
    """Share of a pitch-class profile (12,) on the 7 notes of the best-fitting diatonic scale.

    The 12 diatonic collections (a major scale and its modes, so the natural minor of its
    relative key too) are tried; the raised leading tone of a minor key counts as outside. 1.0
    = everything fits one scale; the 30 bundled chorales: 0.93 on average (their minor-key
    leading tones and modulations fall outside), random pitches about 7/12 plus chance (0.63 for
    the random pieces of `key_fit`). Empty profile: 0.0.
    """
    profile = np.asarray(profile, np.float64)
    total = profile.sum()
    if total <= 0:
        return 0.0
    inside = [profile[(_DIATONIC + k) % 12].sum() for k in range(12)]
    return float(max(inside) / total)


# ---------------------------------------------------------------------------------------------
# Whole corpora: histograms, scalars, distances.


def histograms(
    music,
    *,
    lowest: int = DEFAULT_LOWEST,
    steps_per_beat: int = 4,
    meter: tuple[int, int] = DEFAULT_METER,
) -> dict[str, np.ndarray]:
    """Every histogram of HISTOGRAMS, pooled over the pieces: {name: float64 shares (bins,)}.

    Each sums to 1 (all zeros when there is nothing to count, e.g. no notes).
    """
    totals: dict[str, np.ndarray] = {
        name: np.zeros(len(HISTOGRAMS[name][1])) for name in HISTOGRAMS
    }
    for m in _pieces(music, lowest, steps_per_beat, meter):
        counts = _counts(m)
        for name in HISTOGRAMS:
            totals[name] += counts[name]
    return {name: _shares(counts) for name, counts in totals.items()}


def scalars(
    music,
    *,
    lowest: int = DEFAULT_LOWEST,
    steps_per_beat: int = 4,
    meter: tuple[int, int] = DEFAULT_METER,
) -> dict[str, float]:
    """Single numbers about a set of pieces (float each):

    four_voice_share and silent_share (of all steps), notes_per_step (mean), key_correlation and
    diatonic_share (`key_fit` and `diatonic_share` of each piece's duration-weighted pitch-class
    profile, averaged over pieces: a corpus mixes keys, so its pooled profile would not fit one),
    home_key_share (`home_key_share` with its default 16-beat passages), top_pitch and
    bottom_pitch (mean MIDI pitch of the highest and lowest sounding note, over sounding steps),
    pieces and steps.
    """
    pieces = _pieces(music, lowest, steps_per_beat, meter)
    at_once = np.concatenate(
        [np.zeros(0, np.int64)] + [(m.state[..., 0] > 0).sum(-1) for m in pieces]
    )
    fits, diatonic = [], []
    register = np.zeros(3)
    for m in pieces:
        counts = _counts(m)
        fits.append(key_fit(counts["pc_durations"])[0])
        diatonic.append(diatonic_share(counts["pc_durations"]))
        register += counts["register"]
    sounding = max(register[2], 1.0)
    return {
        "four_voice_share": float((at_once == 4).mean()) if at_once.size else 0.0,
        "silent_share": float((at_once == 0).mean()) if at_once.size else 0.0,
        "notes_per_step": float(at_once.mean()) if at_once.size else 0.0,
        "key_correlation": float(np.mean(fits)) if fits else 0.0,
        "diatonic_share": float(np.mean(diatonic)) if diatonic else 0.0,
        "home_key_share": _pooled_home_key_share(pieces, 16),
        "top_pitch": float(register[0] / sounding),
        "bottom_pitch": float(register[1] / sounding),
        "pieces": float(len(pieces)),
        "steps": float(at_once.size),
    }


def total_variation(p, q) -> float:
    """Total variation distance of two histograms of shares: half the sum of |p - q|, in [0, 1]."""
    return float(0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


def distances(hists_a: dict[str, np.ndarray], hists_b: dict[str, np.ndarray]) -> dict[str, float]:
    """Total variation distance of every histogram both `histograms` results share:
    {name: distance in [0, 1]}."""
    return {
        name: total_variation(hists_a[name], hists_b[name]) for name in hists_a if name in hists_b
    }


def describe(music, *, lowest: int = DEFAULT_LOWEST) -> dict:
    """The simplest statistics plus a few means, as a dict.

    Keys: pitch_class_histogram (12,), notes_per_step (mean, float), note_length (mean
    steps, float), silent_fraction (float), four_voice_share (float), steps (int), notes (int).
    """
    counts = notes_per_step(music, lowest=lowest)
    lengths = note_lengths(music, lowest=lowest)
    return {
        "pitch_class_histogram": pitch_class_histogram(music, lowest=lowest),
        "notes_per_step": float(counts.mean()) if counts.size else 0.0,
        "note_length": float(lengths.mean()) if lengths.size else 0.0,
        "silent_fraction": float((counts == 0).mean()) if counts.size else 0.0,
        "four_voice_share": float((counts == 4).mean()) if counts.size else 0.0,
        "steps": int(counts.size),
        "notes": int(lengths.size),
    }


# ---------------------------------------------------------------------------------------------
# The two-sample classifier test.


def window_feature_names() -> list[str]:
    """Names of the columns of `window_features`, in order."""
    names = [
        f"{name}[{label}]"
        for name, (_, labels) in HISTOGRAMS.items()
        if name != "pitch_classes"
        for label in labels
    ]
    names += [f"pitch_profile[rank {i + 1}]" for i in range(12)]
    return names + ["key_correlation", "diatonic_share", "top_pitch", "bottom_pitch"]


def _features_of(m: _Music) -> np.ndarray:
    counts = _counts(m)
    parts = [_shares(counts[name]) for name in HISTOGRAMS if name != "pitch_classes"]
    profile = counts["pc_durations"]
    # The profile sorted from most to least used pitch class: its shape without its key, so
    # that windows in different keys look alike.
    parts.append(np.sort(_shares(profile))[::-1])
    top, bottom, sounding = counts["register"]
    register = [top / sounding, bottom / sounding] if sounding else [np.nan, np.nan]
    return np.concatenate(parts + [[key_fit(profile)[0], diatonic_share(profile)], register])


def window_features(
    music,
    *,
    window: int = 64,
    stride: int = 16,
    lowest: int = DEFAULT_LOWEST,
    steps_per_beat: int = 4,
    meter: tuple[int, int] = DEFAULT_METER,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors of windows of `window` steps every `stride` steps of every piece.

    Returns (features float64 (W, F), piece int64 (W,)): F = len(window_feature_names()),
    and the index of the piece (in the order `music` holds them) each window comes from, for
    grouping folds by piece. The features are the shares of every histogram of HISTOGRAMS
    computed inside the window, except the pitch classes, which come as the duration-weighted
    profile sorted by use (the key left out), plus its `key_fit` correlation and
    `diatonic_share` and the mean MIDI pitch of the top and bottom voices (a silent window gets
    the mean of the other windows). Pieces shorter than `window` give no window.

    The default, 64 steps every 16, is 4 bars every bar of 4/4 at 4 steps per beat.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window} and {stride}")
    rows, groups = [], []
    for index, m in enumerate(_pieces(music, lowest, steps_per_beat, meter)):
        for start in range(0, len(m.state) - window + 1, stride):
            part = slice(start, start + window)
            rows.append(
                _features_of(
                    _Music(m.state[part], m.lowest, m.bar_position[part], m.steps_per_beat)
                )
            )
            groups.append(index)
    if not rows:
        return np.zeros((0, len(window_feature_names()))), np.zeros(0, np.int64)
    features = np.array(rows)
    missing = np.isnan(features)
    known = (~missing).sum(axis=0)
    fill = np.where(missing, 0.0, features).sum(axis=0) / np.maximum(known, 1)
    return np.where(missing, fill, features), np.array(groups, np.int64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _solve_positive_definite(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Solve matrix @ x = vector for a symmetric positive definite matrix (F, F): x (F,).

    By Cholesky and two substitutions written out, not `np.linalg.solve`: for matrices this
    small (about 100 x 100) OpenBLAS's general solver and matrix products start threads that,
    on a shared 2-core machine, cost up to a hundred times the arithmetic (measured: 0.16 ms
    with one thread, 12-240 ms with the default threads under load).
    """
    lower = np.linalg.cholesky(matrix)
    size = len(vector)
    forward = np.empty(size)
    for i in range(size):
        forward[i] = (vector[i] - lower[i, :i] @ forward[:i]) / lower[i, i]
    solution = np.empty(size)
    for i in reversed(range(size)):
        solution[i] = (forward[i] - lower[i + 1 :, i] @ solution[i + 1 :]) / lower[i, i]
    return solution


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = 10.0, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method: (weights (F,), bias).

    Minimises the summed log-loss of P(y = 1 | x) = sigmoid(x @ w + b) over the N rows of
    `x` (N, F) with labels `y` (N,) in {0, 1}, plus `l2` / 2 * |w|^2 (the bias is not penalised;
    `l2` > 0 keeps the problem strictly convex even when the classes separate). Standardise the
    features first so that one `l2` suits them all (`two_sample_accuracy` does).
    """
    if not l2 > 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    design = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.full(design.shape[1], float(l2))
    penalty[-1] = 0.0
    theta = np.zeros(design.shape[1])

    def objective(theta):
        z = design @ theta
        return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * theta**2)

    current = objective(theta)
    for _ in range(iterations):
        p = _sigmoid(design @ theta)
        gradient = design.T @ (p - y) + penalty * theta
        # einsum, not @: see _solve_positive_definite.
        hessian = np.einsum("ni,nj->ij", design * (p * (1 - p))[:, None], design)
        step = _solve_positive_definite(hessian + np.diag(penalty + 1e-9), gradient)
        # Newton's step, halved until the objective goes down (plain Newton can overshoot).
        for _ in range(30):
            candidate = objective(theta - step)
            if candidate <= current:
                break
            step = step / 2
        theta, current = theta - step, min(candidate, current)
        if np.abs(step).max() < 1e-9:
            break
    return theta[:-1], float(theta[-1])


def predict_logistic(x: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """P(class 1) of every row of `x` (N, F) under a `fit_logistic` model: float64 (N,)."""
    return _sigmoid(np.asarray(x, np.float64) @ weights + bias)


def two_sample_accuracy(
    features_a: np.ndarray,
    groups_a: np.ndarray,
    features_b: np.ndarray,
    groups_b: np.ndarray,
    *,
    folds: int = 5,
    l2: float = 10.0,
    seed: int = 0,
) -> float:
    """How well a classifier tells windows of side a from windows of side b: accuracy in [0, 1].

    features_*: (W, F) from `window_features`; groups_*: (W,) the piece each window comes from.
    The pieces of each side are dealt at random (`seed`) into `folds` folds (fewer when a side
    has fewer pieces), so the windows of one piece are never in both the training and the test
    set: the classifier must recognise a side, not a piece it has seen. For each fold a
    `fit_logistic` model is trained on the other folds, with the larger side subsampled to the
    size of the smaller and the features standardised with the training set's mean and
    deviation, and tested on the fold's windows. The result is the balanced accuracy over all
    folds (the mean of the two sides' hit rates, the accuracy on a test set with as many windows
    of each side): 0.5 = cannot tell them apart, 1 = always right.

    Raises:
        ValueError: a side has fewer than 2 pieces.
    """
    rng = np.random.default_rng(seed)
    sides = [np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)]
    pieces = [np.unique(groups_a), np.unique(groups_b)]
    k = min(folds, len(pieces[0]), len(pieces[1]))
    if k < 2:
        raise ValueError(
            f"the classifier test needs at least 2 pieces on each side, got "
            f"{len(pieces[0])} and {len(pieces[1])}"
        )
    fold_of = []
    for groups, unique in zip((groups_a, groups_b), pieces, strict=True):
        fold_of_piece = np.empty(len(unique), np.int64)
        fold_of_piece[rng.permutation(len(unique))] = np.arange(len(unique)) % k
        fold_of.append(fold_of_piece[np.searchsorted(unique, groups)])
    hits, counts = np.zeros(2), np.zeros(2)
    for fold in range(k):
        train = [np.flatnonzero(f != fold) for f in fold_of]
        size = min(len(t) for t in train)
        train = [rng.choice(t, size, replace=False) for t in train]
        x_train = np.vstack([sides[0][train[0]], sides[1][train[1]]])
        y_train = np.repeat([0.0, 1.0], size)
        mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
        scale[scale < 1e-12] = 1.0
        weights, bias = fit_logistic((x_train - mean) / scale, y_train, l2=l2)
        for side in (0, 1):
            x_test = sides[side][fold_of[side] == fold]
            said_b = predict_logistic((x_test - mean) / scale, weights, bias) > 0.5
            hits[side] += np.sum(said_b == bool(side))
            counts[side] += len(x_test)
    return float(np.mean(hits / np.maximum(counts, 1)))


def split_half_accuracy(
    features: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int = 5,
    l2: float = 10.0,
    seed: int = 0,
) -> float:
    """The floor of `two_sample_accuracy`: the same test between two halves of one set of pieces.

    The pieces (`groups`, (W,)) are split at random (`seed`) into two halves and their windows
    (`features`, (W, F)) compared. Both halves come from the same music, so any accuracy above
    0.5 is what the test finds by chance with this much data; average a few seeds.
    """
    rng = np.random.default_rng(seed)
    unique = np.unique(groups)
    first = np.isin(groups, rng.permutation(unique)[: len(unique) // 2])
    return two_sample_accuracy(
        features[first],
        groups[first],
        features[~first],
        groups[~first],
        folds=folds,
        l2=l2,
        seed=int(rng.integers(2**31)),
    )


# ---------------------------------------------------------------------------------------------
# The comparison figure.

#: Histograms drawn as grouped bars (categories); the others are drawn as lines (ordered bins).
_CATEGORICAL = ("pitch_classes", "onset_positions", "intervals")
_PLOT_ORDER = (
    "pitch_classes",
    "notes_at_once",
    "note_lengths",
    "onsets_per_step",
    "onset_positions",
    "intervals",
    "top_motion",
    "bottom_motion",
    "span",
)


def plot_comparison(
    named_music: dict,
    *,
    lowest: int = DEFAULT_LOWEST,
    steps_per_beat: int = 4,
    meter: tuple[int, int] = DEFAULT_METER,
):
    """Compare several sets of music at a glance: {label: music} -> matplotlib Figure.

    Eleven panels on a 3 x 4 grid (`fig.axes` in this order), one colour per label:

    * 0-8, the histograms of HISTOGRAMS as `histograms` computes them, so the figure shows the
      very bins that `distances` compares: pitch classes, notes sounding at once, note lengths,
      notes struck per step, where in the bar they are struck, intervals sounding together, top
      and bottom voice motion, span (categories as grouped bars, ordered bins as lines);
    * 9, the fit to one key: `scalars`' key_correlation and diatonic_share (means over pieces);
    * 10, the share of silent steps.

    `music` is anything this module takes (states, batches, Pieces, lists of them);
    `lowest`, `steps_per_beat` and `meter` apply to bare state arrays (Pieces bring their own).

        >>> stats.plot_comparison({"Bach": corpus.pieces, "composed": states}, lowest=24)
    """
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(3, 4, figsize=(17, 10), layout="constrained")
    axes = grid.ravel()
    axes[-1].remove()
    labels = list(named_music)
    width = 0.8 / max(1, len(labels))
    options = dict(lowest=lowest, steps_per_beat=steps_per_beat, meter=meter)
    for i, (label, music) in enumerate(named_music.items()):
        hists = histograms(music, **options)
        summary = scalars(music, **options)
        colour = f"C{i}"
        for ax, name in zip(axes[: len(_PLOT_ORDER)], _PLOT_ORDER, strict=True):
            share = hists[name]
            if name in _CATEGORICAL:
                offset = (i - (len(labels) - 1) / 2) * width
                ax.bar(np.arange(share.size) + offset, share, width, label=label, color=colour)
            else:
                ax.plot(np.arange(share.size), share, marker="o", ms=3, label=label, color=colour)
        offset = (i - (len(labels) - 1) / 2) * width
        fits = [summary["key_correlation"], summary["diatonic_share"]]
        axes[9].bar(np.arange(2) + offset, fits, width, color=colour, label=label)
        axes[10].bar(i, summary["silent_share"], color=colour, label=label)
    for ax, name in zip(axes[: len(_PLOT_ORDER)], _PLOT_ORDER, strict=True):
        title, bins = HISTOGRAMS[name]
        ax.set_title(title, fontsize="medium")
        ax.set_xticks(range(len(bins)))
        small = len(bins) > 12
        ax.set_xticklabels(
            bins, fontsize="x-small" if small else "small", rotation=60 if small else 0
        )
    axes[9].set(title="fit to one key (mean over pieces)", ylim=(0, 1), xticks=range(2))
    axes[9].set_xticklabels(["Krumhansl-Kessler r", "diatonic share"], fontsize="small")
    axes[10].set(title="silent steps (share)", xticks=range(len(labels)))
    axes[10].set_xticklabels(labels, rotation=30, ha="right", fontsize="small")
    axes[0].legend(fontsize="small")
    return fig
