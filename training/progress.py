"""Progress bar (interactive) or one line per epoch (--quiet / not a terminal)."""
from __future__ import annotations

import sys
import time


class Progress:
    """Prints training progress with loss, accuracy and samples/s.

    On a terminal the bar is redrawn in place after every compiled chunk of
    steps; with ``quiet`` or when output is not a terminal, only the end-of-epoch
    line is printed.
    """

    WIDTH = 24

    def __init__(self, epochs: int, steps: int, quiet: bool = False, stream=None):
        self.epochs, self.steps = epochs, steps
        self.stream = stream or sys.stdout
        self.live = not quiet and getattr(self.stream, "isatty", lambda: False)()

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.t0, self.samples = epoch, time.perf_counter(), 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def update(self, step: int, samples: int, loss: float, acc: float) -> None:
        self.samples = samples
        if not self.live:
            return
        done = int(self.WIDTH * step / self.steps)
        bar = "=" * done + ">" * (done < self.WIDTH) + "." * (self.WIDTH - done - 1)
        rate = samples / max(self.elapsed(), 1e-9)
        self.stream.write(f"\repoch {self.epoch + 1}/{self.epochs} [{bar}] {step}/{self.steps} "
                          f"loss {loss:.4f} acc {acc:.4f} {rate:,.0f} samples/s ")
        self.stream.flush()

    def end_epoch(self, record: dict) -> None:
        extra = "".join(f" {k} {record[k]:.4f}" for k in ("val_loss", "val_accuracy")
                        if k in record)
        line = (f"epoch {self.epoch + 1}/{self.epochs} loss {record['loss']:.4f} "
                f"acc {record['accuracy']:.4f}{extra} {record['samples_per_s']:,.0f} samples/s "
                f"{record['time_s']:.1f}s")
        self.stream.write(("\r" + line + " " * 8 + "\n") if self.live else line + "\n")
        self.stream.flush()

    def abort(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
