"""``python -m dla.bench CONFIG_JSON``: the child process that measures one configuration's peak memory
(``memory.main``); ``dla bench`` starts it."""

import sys

from .memory import main

main(sys.argv[1])
