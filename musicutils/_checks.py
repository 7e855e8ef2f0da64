"""The allowed range of every number a user can pass, shared by the CLI and the API.

One table (`RANGES`) so that `python -m musicutils train --dropout 1.5` and
`train.train(..., dropout=1.5)` refuse the same values with the same words. NaN, infinities and
numbers too large for the machine never pass (`value < minimum` is false for NaN, so every check
here tests membership, not its negation). No TensorFlow here: the CLI imports this module.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .errors import DataError


@dataclass(frozen=True)
class Range:
    """A closed or half-open interval of numbers, integers only when `integer`."""

    low: float
    high: float
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        def show(bound):
            return str(int(bound)) if self.integer else f"{bound:g}"

        kind = "an integer" if self.integer else "a number"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{kind} in {left}{show(self.low)}, {show(self.high)}{right}"

    def contains(self, value: float) -> bool:
        """True for a finite value inside the interval (False for NaN and infinities)."""
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def parse(self, value) -> int | float | None:
        """`value` as an int (integer ranges) or float inside the range; None if it is not."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
        if self.integer:
            if not isinstance(value, numbers.Integral):
                if not (math.isfinite(value) and float(value).is_integer()):
                    return None
            value = int(value)  # exact for Python ints of any size: compared without overflow
        else:
            value = float(value)
            if not math.isfinite(value):
                return None
        return value if self.contains(value) else None


#: Allowed values of each setting, by its API name (the CLI option is the name with dashes).
RANGES: dict[str, Range] = {
    # training
    "epochs": Range(1, 1_000_000, integer=True),
    "steps_per_epoch": Range(1, 10_000_000, integer=True),
    "batch_size": Range(1, 65_536, integer=True),
    "segment_length": Range(1, 100_000, integer=True),
    "layer_size": Range(1, 16_384, integer=True),  # each entry of --time-sizes / --note-sizes
    "dropout": Range(0, 1, high_open=True),
    "learning_rate": Range(0, 1),  # 0 trains nothing: a frozen run (the tests use it)
    "ema": Range(0, 1, high_open=True),
    "transpose": Range(0, 127, integer=True),  # semitones; 127 spans every MIDI pitch
    "validation_split": Range(0, 1, high_open=True),
    "patience": Range(1, 1_000_000, integer=True),
    "seed": Range(0, 2**32 - 1, integer=True),  # what NumPy's and Keras' seeding accept
    "time_limit": Range(0, 1e9, low_open=True),  # seconds
    # composing
    "steps": Range(0, 100_000, integer=True),  # `midi.read` refuses longer pieces
    # 1 / T must stay finite in float32 (below about 1e-38 it overflows to inf)
    "temperature": Range(1e-6, 100),
    "steps_per_beat": Range(1, 960, integer=True),
    "meter_numerator": Range(1, 64, integer=True),
    "meter_denominator": Range(1, 64, integer=True),
    # a model's pitch range (config.json)
    "n_notes": Range(1, 128, integer=True),
    "lowest": Range(0, 127, integer=True),
    # generate's voice rule (and a model's `voices`, config.json)
    "voices": Range(0, 128, integer=True),  # 0: off
    "draws": Range(1, 64, integer=True),
    # generate.AdaptiveRule
    "min_notes": Range(0, 128, integer=True),
    "step": Range(0, 1),
    "floor": Range(0, 1, low_open=True),
    "recovery": Range(0, 1),
}


def checked(name: str, value, *, kind: str | None = None, error: type[Exception] = DataError):
    """`value` converted to int or float if it lies in `RANGES[kind or name]`; else `error`.

    `name` is what the message calls the setting (e.g. "time_sizes[1]"); `kind` picks the range
    when it differs from the name.
    """
    allowed = RANGES[kind or name]
    parsed = allowed.parse(value)
    if parsed is None:
        raise error(f"{name} must be {allowed}, got {value!r}")
    return parsed
