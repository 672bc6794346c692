"""One progress display for training epochs and evaluation phases.

A *phase* is one epoch of training or one artifact being evaluated. On a
terminal the phase is a bar redrawn in place::

    epoch 3/20 [==========>.............] 7/14 steps loss 0.4120 acc 0.8750 61,240 samples/s

and ends with one final line. Anywhere else (a log file, a pipe, ``--quiet``)
nothing is drawn while the phase runs and the same final line is written when
it ends, so a log holds exactly one line per epoch or phase::

    epoch 3/20 loss 0.4120 acc 0.8750 val_loss 0.5012 val_accuracy 0.8420 61,240 samples/s 0.1s

Not ``keras.utils.Progbar``: it always writes to stdout (evaluate.py keeps its
stdout for results such as ``--json``) and prints nothing per epoch when stdout
is not a terminal unless asked for a different verbosity.
"""
from __future__ import annotations

import sys
import threading
import time

from utils.checks import is_int


def format_fields(fields: dict) -> str:
    """``{"loss": 0.41, "samples_per_s": 61240.2}`` -> ``"loss 0.4100 61,240 samples/s"``.

    Floats read ``name 0.4100``; integers are counts and read ``1,000 images``; a
    name ending in ``_per_s`` is a rate (``61,240 samples/s``); None values are left out.
    """
    parts = []
    for name, value in fields.items():
        if value is None:
            continue
        if name.endswith("_per_s"):
            parts.append(f"{value:,.0f} {name[:-len('_per_s')]}/s")
        elif not (is_int(value) or isinstance(value, float)):
            parts.append(f"{name} {value}")
        elif is_int(value):
            parts.append(f"{value:,} {name}")
        else:
            parts.append(f"{name} {value:.4f}")
    return " ".join(parts)


class Progress:
    """The display of one phase: a live bar on a terminal, one line at the end elsewhere.

    Args:
        label: what the phase is, e.g. ``"epoch 3/20"`` or ``"model.tflite"``.
        total: units of work in the phase (steps, images).
        unit: name of those units in the bar.
        stream: where to write (default ``sys.stdout``).
        live: draw the bar; None means "when the stream is a terminal".
            The end-of-phase line is written either way (unless ``silent``).
        silent: write nothing at all (another worker of a cluster, ``progress=False``).
        delay: seconds before the bar is first drawn (keeps short phases to one line).

    ``update`` may be called from another thread (evaluation's child-progress reader).
    As a context manager the phase ends with ``finish`` (``done`` units) on
    success and ``abort`` on an exception (the error says what happened).
    """

    WIDTH = 24

    def __init__(self, label: str, total: int, *, unit: str = "steps", stream=None,
                 live: bool | None = None, silent: bool = False, delay: float = 0.0):
        self.label, self.total, self.unit = label, max(int(total), 1), unit
        self.stream = stream if stream is not None else sys.stdout
        if live is None:
            live = getattr(self.stream, "isatty", lambda: False)()
        self.silent = silent
        self.live = bool(live) and not silent
        self.delay = delay
        self.t0 = time.perf_counter()
        self.done = 0
        self._drawn = False
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        """Seconds since the phase started."""
        return time.perf_counter() - self.t0

    def update(self, done: int, **fields) -> None:
        """Redraw the bar at ``done`` of ``total`` units with ``fields`` (terminal only)."""
        self.done = done
        if not self.live or self.elapsed() < self.delay:
            return
        filled = int(self.WIDTH * min(done, self.total) / self.total)
        bar = "=" * filled + ">" * (filled < self.WIDTH) + "." * (self.WIDTH - filled - 1)
        text = format_fields(fields)
        with self._lock:
            self.stream.write(f"\r{self.label} [{bar}] {done:,}/{self.total:,} {self.unit}"
                              f"{' ' + text if text else ''} ")
            self.stream.flush()
            self._drawn = True

    def finish(self, **fields) -> None:
        """End the phase with its one line: label, ``fields`` and the elapsed time."""
        if self.silent:
            return
        text = format_fields(fields)
        line = f"{self.label}{' ' + text if text else ''} {self.elapsed():.1f}s"
        with self._lock:
            # On a terminal the line overwrites the bar (padded to hide its tail).
            self.stream.write(("\r" + line + " " * 8 + "\n") if self._drawn else line + "\n")
            self.stream.flush()
            self._drawn = False

    def abort(self) -> None:
        """End the phase without a result line (interrupted, diverged, failed)."""
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.finish(**{self.unit: self.done})
        else:
            self.abort()
