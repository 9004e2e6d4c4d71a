"""Signals during training: Ctrl-C (SIGINT) and SIGTERM never cut an iteration in half.

SIGTERM is what ``kill``, job schedulers (SLURM, Kubernetes) and torchrun send to stop a process; it is
handled as Ctrl-C is, so a preempted run saves ``last.pt`` at the iteration it reached.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While entered: SIGINT and SIGTERM raise ``KeyboardInterrupt`` at once, except inside ``deferred()``.

    Inside ``deferred()`` (an iteration) a signal only sets ``requested``; the training loop reads it once per
    iteration (agreed over every process, with the loss) and stops every process after the same iteration.
    A signal the process inherited as ignored (a shell's background job) stays ignored. Only in the main
    thread, where Python delivers signals; elsewhere nothing is installed.
    """

    def __init__(self) -> None:
        self.requested = False
        self._deferring = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, traceback: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous.clear()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Record signals instead of raising, for the duration of the block."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self.requested = True
            return
        raise KeyboardInterrupt(signal.Signals(signum).name)
