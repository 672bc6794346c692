"""Early stopping on val_loss (``--early-stopping PATIENCE``)."""
from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class EarlyStopping:
    """Patience on val_loss, and which epoch was the best; the counters live in
    every checkpoint (``state``), so a resumed run stops where an uninterrupted
    one would and restores the same best epoch."""
    patience: int | None
    best: float = math.inf
    wait: int = 0
    best_epoch: int = 0

    def update(self, epoch: int, val_loss: float) -> bool:
        """Count epoch ``epoch`` (1-based); True when it is the best so far."""
        if val_loss < self.best:
            self.best, self.wait, self.best_epoch = val_loss, 0, epoch
            return True
        self.wait += 1
        return False

    @property
    def triggered(self) -> bool:
        return bool(self.patience) and self.wait >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch}
