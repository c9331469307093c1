"""``python -m awe``: the ``awe`` command (for cron and environments without the script)."""

import sys

from awe.cli import main

sys.exit(main())
