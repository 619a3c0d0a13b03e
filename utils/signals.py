"""Stopping on SIGINT/SIGTERM without deadlocks.

A signal handler runs in the main thread between two bytecodes — possibly while that
thread holds the lock inside a `threading.Event`, so calling `Event.set()` from the
handler can deadlock. The handler here only flips a boolean; the main thread notices it
within a fraction of a second and sets the event from ordinary code.
"""
from __future__ import annotations

import signal
import threading
import time


class StopSignal:
    def __init__(self, signals=(signal.SIGINT, signal.SIGTERM)) -> None:
        self.requested = False
        self.signum: int | None = None
        self.event = threading.Event()
        for signum in signals:
            signal.signal(signum, self._handle)

    def _handle(self, signum, _frame) -> None:
        self.requested = True
        self.signum = signum

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True once a stop was asked for (the event is set then)."""
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        if self.requested:
            self.event.set()
        return self.requested

    def wait(self) -> None:
        while not self.sleep(3600):
            pass
