"""``python -m netcomp.web``: the demo web server (see :mod:`netcomp.web._demo`)."""

import sys

from ._demo import main

if __name__ == "__main__":
    sys.exit(main())
