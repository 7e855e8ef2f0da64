"""Where the files that ship with the package are: the bundled model and the bundled chorales.

In a checkout they stay at the top of the repository (pretrained/, data/chorales/); pyproject.toml
maps those folders to the data-only subpackages `musicutils.pretrained` and `musicutils.chorales`,
so an editable install finds them there and a wheel carries them inside the package. Looking
them up through importlib.resources (never through a path relative to this file) is what makes
both work. No TensorFlow here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import MusicutilsError

#: The subpackage that holds the bundled pretrained model (a run folder).
PRETRAINED_PACKAGE = "musicutils.pretrained"
#: The subpackage that holds the 30 bundled Bach chorales (.mid files).
CHORALES_PACKAGE = "musicutils.chorales"


def package_folder(package: str) -> Path:
    """The folder on disk of a data subpackage, e.g. `package_folder(PRETRAINED_PACKAGE)`.

    Raises:
        MusicutilsError: the subpackage is missing, or installed without plain files (e.g.
            imported from a zip), so there is no folder to hand to the readers.
    """
    try:
        folder = resources.files(package)
    except ModuleNotFoundError as exc:
        raise MusicutilsError(
            f"{package}: not installed with musicutils; reinstall it (`pip install .` in the "
            "repository)"
        ) from exc
    if not isinstance(folder, Path):
        raise MusicutilsError(
            f"{package}: installed without plain files ({type(folder).__name__}); install the "
            "package with pip so its data files are on disk"
        )
    return folder


def model_folder(folder) -> Path:
    """The folder a model argument names: the path itself, or the bundled model when it says
    "pretrained" and no such folder is here (so `load_model("pretrained")` and
    `train --init-from pretrained` work after `pip install`, from any directory)."""
    path = Path(folder)
    if str(folder) == "pretrained" and not path.exists():
        return package_folder(PRETRAINED_PACKAGE)
    return path
