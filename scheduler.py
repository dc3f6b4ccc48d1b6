"""The scheduler daemon (``python scheduler.py [--tick S]``): sends periodic jobs, never runs them.

Several may run; the one holding the PostgreSQL advisory lock fires. See ``shop.scheduling``.
"""

from __future__ import annotations

import sys

from shop.scheduling.daemon import main

if __name__ == "__main__":
    sys.exit(main())
