"""``python -m segstudio``: the same as the ``segstudio`` command (used by torchrun)."""

import sys

from segstudio.cli import main

sys.exit(main())
