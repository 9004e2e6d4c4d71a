"""The one exception type users see."""


class DLAError(Exception):
    """A problem with user input (a file, a name, an argument), with a message that says what to do.

    The command line prints these without a traceback; everything else is a bug.
    """
