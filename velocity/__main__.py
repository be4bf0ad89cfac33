"""``python -m velocity``: the same as the ``velocity`` command."""

import sys

from velocity.cli import main

if __name__ == "__main__":
    sys.exit(main())
