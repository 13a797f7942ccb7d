"""``python -m httpx_drain``: the same as the ``httpx-drain`` command."""

import sys

from .cli import main

sys.exit(main())
