"""Shared test setup: the tests write only under temporary folders, and hypothesis is
reproducible in CI.

* The corpus cache (`data.load_corpus`, default ~/.cache/musicutils) goes to a temporary folder
  made for this session and removed after it; the subprocesses the tests start inherit it.
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

_CACHE = tempfile.mkdtemp(prefix="musicutils-test-cache-")
os.environ["MUSICUTILS_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

settings.register_profile("dev", database=None, deadline=None)
settings.register_profile("ci", database=None, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true") else "dev")
