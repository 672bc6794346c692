"""A minimal progress bar on stderr (no dependency; off when stderr is not a terminal)."""
from __future__ import annotations

import sys
import threading
import time


class ProgressBar:
    """``label [#####.....] 4,096/10,000 images  1.2 s`` redrawn in place.

    It stays silent for short runs (nothing drawn before ``delay`` seconds) and
    when disabled or when the stream is not a TTY, so logs and pipes stay clean.
    ``update`` may be called from another thread (the child-progress reader).
    """

    def __init__(self, total: int, label: str, *, enabled: bool = True, stream=None,
                 delay: float = 0.5, width: int = 30):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = bool(enabled) and isatty()
        self.delay = delay
        self.width = width
        self._start = time.perf_counter()
        self._drawn = False
        self._lock = threading.Lock()

    def update(self, done: int) -> None:
        """Show ``done`` of ``total`` images processed."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self._start
        if elapsed < self.delay and done < self.total:
            return
        if not self._drawn and done >= self.total and elapsed < self.delay:
            return  # finished before the bar was worth showing
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        with self._lock:
            self.stream.write(f"\r{self.label} [{bar}] {done:,}/{self.total:,} images "
                              f"{elapsed:5.1f} s")
            self.stream.flush()
            self._drawn = True

    def close(self) -> None:
        """End the bar's line (if anything was drawn)."""
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
