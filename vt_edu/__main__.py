"""``python -m vt_edu``: see :mod:`vt_edu.cli`."""

import sys

from vt_edu.cli import main

if __name__ == "__main__":
    sys.exit(main())
