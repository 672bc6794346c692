"""Turn SIGINT/SIGTERM into a polite "stop after this step" request."""
from __future__ import annotations

import signal
import threading


class GracefulStop:
    """Context manager: the first SIGINT/SIGTERM sets ``requested``; a second one
    gets the default behaviour (immediate exit), which is still safe because
    every checkpoint is written atomically.

    Handlers can only be installed from the main thread; elsewhere this is a no-op.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = signum
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.requested).name if self.requested else None
