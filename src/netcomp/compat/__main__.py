"""``python -m netcomp.compat PROGRAM.py [ARGS...]``: run a circuits program on netcomp."""

import sys

from . import main

sys.exit(main())
