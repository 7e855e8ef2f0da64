"""The package's error types: one per domain, all catchable as `MusicutilsError`.

Each is also a `ValueError` (bad input, not a bug), and its message names the file or the
setting at fault and says, in plain words, what is wrong with it.
"""


class MusicutilsError(Exception):
    """Base class of every error this package raises on purpose."""


class MidiError(MusicutilsError, ValueError):
    """A MIDI file that cannot be read or a piece that cannot be written."""


class DataError(MusicutilsError, ValueError):
    """A corpus, benchmark file or batch that cannot be used for training, or a training or
    composing setting outside its allowed range (`_checks.RANGES`)."""


class CheckpointError(MusicutilsError, ValueError):
    """A run folder or checkpoint that is missing, incomplete or incompatible."""
