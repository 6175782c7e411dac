"""``python -m framesift``: the same as the ``framesift`` command."""

import sys

from framesift.cli.main import main

sys.exit(main())
