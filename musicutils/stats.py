"""Simple statistics of note-state matrices, to compare generated music with its training data.

No TensorFlow: numpy only (matplotlib for `plot_comparison`, imported when called).

Every function takes `music`: one state array (T, N, 2), a batch (B, T, N, 2), a `midi.Piece`,
or a list of any of these (a corpus), and pools all the pieces it holds. Pitch classes need the
MIDI pitch of note index 0 (`lowest`); a Piece brings its own.

    >>> summary = stats.describe(generated, lowest=24)
    >>> summary["silent_fraction"], summary["notes_per_step"]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .midi import DEFAULT_LOWEST, Piece, note_intervals

__all__ = [
    "PITCH_CLASSES",
    "describe",
    "note_lengths",
    "notes_per_step",
    "pitch_class_histogram",
    "plot_comparison",
    "silent_fraction",
]

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def _pieces(music, lowest: int) -> list[tuple[np.ndarray, int]]:
    """Flatten `music` into [(state (T, N, 2), lowest)]."""
    if isinstance(music, Piece):
        return [(music.state, music.lowest)]
    if isinstance(music, np.ndarray):
        if music.ndim == 3:
            return [(music, lowest)]
        if music.ndim == 4:
            return [(piece, lowest) for piece in music]
        raise ValueError(f"expected a state (T, N, 2) or (B, T, N, 2), got shape {music.shape}")
    if isinstance(music, Iterable):
        return [item for part in music for item in _pieces(part, lowest)]
    raise TypeError(f"expected states, a Piece or a list of them, got {type(music).__name__}")


def pitch_class_histogram(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Share of the notes (onsets) on each pitch class C, C#, ... B: float64 (12,), sums to 1.

    All zeros when there are no notes.
    """
    counts = np.zeros(12)
    for state, low in _pieces(music, lowest):
        _, _, notes = note_intervals(state)
        counts += np.bincount((notes + low) % 12, minlength=12)
    total = counts.sum()
    return counts / total if total else counts


def notes_per_step(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Number of notes sounding in every step of every piece, pooled: int64 (total steps,)."""
    pieces = _pieces(music, lowest)
    if not pieces:
        return np.zeros(0, np.int64)
    return np.concatenate([(state[..., 0] > 0).sum(axis=-1) for state, _ in pieces]).astype(
        np.int64
    )


def note_lengths(music, *, lowest: int = DEFAULT_LOWEST) -> np.ndarray:
    """Length of every note, in steps (a re-struck pitch starts a new note): int64 (notes,)."""
    lengths = []
    for state, _ in _pieces(music, lowest):
        starts, ends, _ = note_intervals(state)
        lengths.append(ends - starts)
    return np.concatenate(lengths).astype(np.int64) if lengths else np.zeros(0, np.int64)


def silent_fraction(music, *, lowest: int = DEFAULT_LOWEST) -> float:
    """Fraction of all steps in which no note sounds (0.0 for no steps)."""
    counts = notes_per_step(music, lowest=lowest)
    return float((counts == 0).mean()) if counts.size else 0.0


def describe(music, *, lowest: int = DEFAULT_LOWEST) -> dict:
    """All the statistics above plus a few means, as a dict.

    Keys: pitch_class_histogram (12,), notes_per_step (mean, float), note_length (mean
    steps, float), silent_fraction (float), steps (int), notes (int).
    """
    counts = notes_per_step(music, lowest=lowest)
    lengths = note_lengths(music, lowest=lowest)
    return {
        "pitch_class_histogram": pitch_class_histogram(music, lowest=lowest),
        "notes_per_step": float(counts.mean()) if counts.size else 0.0,
        "note_length": float(lengths.mean()) if lengths.size else 0.0,
        "silent_fraction": float((counts == 0).mean()) if counts.size else 0.0,
        "steps": int(counts.size),
        "notes": int(lengths.size),
    }


def plot_comparison(named_music: dict, *, lowest: int = DEFAULT_LOWEST, max_length: int = 32):
    """Four panels comparing several sets of music: {label: music} -> matplotlib Figure.

    Pitch-class shares, distribution of notes per step, distribution of note lengths (in steps,
    longer ones pooled at `max_length`) and the share of silent steps, one colour per label.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), gridspec_kw={"width_ratios": [3, 2, 3, 1]})
    width = 0.8 / max(1, len(named_music))
    for i, (label, music) in enumerate(named_music.items()):
        offset = (i - (len(named_music) - 1) / 2) * width
        hist = pitch_class_histogram(music, lowest=lowest)
        axes[0].bar(np.arange(12) + offset, hist, width, label=label)
        counts = notes_per_step(music, lowest=lowest)
        top = max(8, int(counts.max()) if counts.size else 0)
        share = np.bincount(counts, minlength=top + 1) / max(1, counts.size)
        axes[1].plot(np.arange(share.size), share, marker="o", ms=3, label=label)
        lengths = np.minimum(note_lengths(music, lowest=lowest), max_length)
        share = np.bincount(lengths, minlength=max_length + 1)[1:] / max(1, lengths.size)
        axes[2].plot(np.arange(1, max_length + 1), share, marker="o", ms=3, label=label)
        axes[3].bar(i, silent_fraction(music, lowest=lowest), label=label)
    axes[0].set(xticks=range(12), title="pitch classes (share of notes)")
    axes[0].set_xticklabels(PITCH_CLASSES)
    axes[1].set(xlabel="notes sounding", title="notes per step (share of steps)")
    axes[2].set(xlabel=f"steps (last point: {max_length} or more)", title="note lengths")
    axes[3].set(xticks=range(len(named_music)), title="silent steps")
    axes[3].set_xticklabels(list(named_music), rotation=30, ha="right")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig
