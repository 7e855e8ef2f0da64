"""musicutils: the helpers behind the biaxial-LSTM notebooks.

Light modules (no TensorFlow): `midi`, `plotting`, `audio`, and corpus loading in `data`.
TensorFlow modules: `features`, `model`, `train`, `generate`, `loops`.
Import the submodule you need, e.g. `from musicutils import midi`.
"""

import os

from .errors import CheckpointError, DataError, MidiError, MusicutilsError

__version__ = "0.1.0"

#: True when the notebooks and tests should run their short versions (set MUSICUTILS_FAST=1).
FAST = os.environ.get("MUSICUTILS_FAST", "") not in ("", "0")

__all__ = ["CheckpointError", "DataError", "FAST", "MidiError", "MusicutilsError", "__version__"]
