"""`python -m musicutils ...`: see musicutils.cli."""

import sys

from .cli import main

sys.exit(main())
