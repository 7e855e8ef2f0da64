"""What every notebook does right after its `parameters` cell (no TensorFlow import).

    out_dir = notebook.setup("04_training")   # prints the run mode, returns out/04_training

The run-mode line is the marker that tells a committed full-size notebook from a fast-mode one:
`tests/test_notebooks.py` fails if a committed notebook's outputs hold `MODE_FAST`.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import FAST

#: Printed by `setup` in a full-size run (the settings a learner gets in JupyterLab).
MODE_FULL = "Run mode: full size"
#: Printed by `setup` under MUSICUTILS_FAST=1 (nbval in `make test`, the browser test).
MODE_FAST = "Run mode: fast (MUSICUTILS_FAST=1): shortened settings, not the lesson's results"

#: The repository checkout this package was imported from, or None for an installed wheel.
_CHECKOUT = Path(__file__).resolve().parents[1]
CHECKOUT: Path | None = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else None


def output_root() -> Path:
    """Where notebooks write their files: $MUSICUTILS_OUT if set (the tests point it at a
    temporary folder), else `<checkout>/out`, or `./out` outside a checkout."""
    if os.environ.get("MUSICUTILS_OUT"):
        return Path(os.environ["MUSICUTILS_OUT"]).expanduser().resolve()
    return (CHECKOUT if CHECKOUT is not None else Path.cwd()) / "out"


def setup(name: str, *, fast: bool | None = None) -> Path:
    """Announce the run mode, set readable figure defaults, return (and create) `out/<name>`.

    Args:
        name: the notebook's name, e.g. "04_training"; its files go to `output_root() / name`.
        fast: override the MUSICUTILS_FAST environment variable (tests).
    Returns:
        The notebook's output folder, an absolute path that exists.
    """
    fast = FAST if fast is None else fast
    print(MODE_FAST if fast else MODE_FULL)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no TensorFlow start-up log spam
    import matplotlib as mpl

    # Jupyter's inline default is 72 dpi with 10 pt labels: too small to read on a modern screen.
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "font.size": 10})
    out_dir = output_root() / name
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir
