"""Typed training errors: ``utils.errors.ZooError`` subclasses the CLI turns into one line + exit 2."""
from __future__ import annotations

from utils.errors import ZooError


class TrainingError(ZooError):
    """Training could not start or continue; the message says why and how to fix it."""


class ConfigMismatchError(TrainingError):
    """``resume`` was asked for a run directory trained with a different config."""


class RunDirectoryError(TrainingError):
    """The output directory is unusable (not writable, or holds another run)."""


class DivergedError(TrainingError):
    """The loss became NaN/inf; ``epoch`` and ``batch`` are 1-based."""

    def __init__(self, message: str, epoch: int, batch: int):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


class CheckpointMismatchError(TrainingError):
    """A checkpoint's variables (keys or shapes) do not match the run's model/optimizer."""


class WorkerLostError(TrainingError):
    """A worker of a multi-worker cluster died or stopped answering; ``train.py``
    exits with ``training.cluster.WORKER_LOST_EXIT``. ``lost`` lists the lost
    workers as ``(job, index, address)``."""

    def __init__(self, message: str, lost: list):
        super().__init__(message)
        self.lost = lost
