"""The one exception type users see."""

import re

# How PyTorch re-creates an exception raised in a DataLoader worker process in the main process: its type, with
# the worker's whole traceback as the message (``torch._utils.ExceptionWrapper.reraise``).
_FROM_WORKER = re.compile(
    r"Caught DLAError in (?P<where>DataLoader worker process \d+)\.\nOriginal Traceback.*?\n"
    r"(?:dla\.errors\.)?DLAError: (?P<message>.*?)\n?\Z",
    re.S,
)


class DLAError(Exception):
    """A problem with user input (a file, a name, an argument), with a message that says what to do.

    The command line prints these without a traceback; everything else is a bug. One raised in a data-loading
    worker process keeps its own message (and says which worker), not the worker's traceback.
    """

    def __init__(self, message: str = "") -> None:
        found = _FROM_WORKER.match(message) if isinstance(message, str) else None
        super().__init__(f"{found['message']} (in {found['where']})" if found else message)
