"""Shared test setup: the tests write only under temporary folders, and hypothesis is
reproducible in CI.

* The corpus cache (`data.load_corpus`, default ~/.cache/musicutils) and the notebooks' output
  folder (`notebook.output_root`, default <checkout>/out) go to a temporary folder made for this
  session and removed after it; the subprocesses and notebook kernels the tests start inherit
  both.
* hypothesis keeps no example database (it would write .hypothesis/ into the checkout) and has
  no per-example time limit (one flakes on a loaded machine). With CI=true it is derandomised:
  the same examples on every run, so a red CI run is a real failure that reruns red.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from hypothesis import settings

_SESSION = tempfile.mkdtemp(prefix="musicutils-test-")
os.environ["MUSICUTILS_CACHE"] = os.path.join(_SESSION, "cache")
os.environ["MUSICUTILS_OUT"] = os.path.join(_SESSION, "out")
atexit.register(shutil.rmtree, _SESSION, ignore_errors=True)

settings.register_profile("dev", database=None, deadline=None)
settings.register_profile("ci", database=None, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true") else "dev")
