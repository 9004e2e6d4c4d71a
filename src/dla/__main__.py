"""``python -m dla``."""

import sys

from .cli import main

sys.exit(main())
