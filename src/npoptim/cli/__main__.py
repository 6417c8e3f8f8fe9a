"""``python -m npoptim.cli``: the ``npoptim`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
