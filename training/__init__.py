"""Training library behind train.py: loop, checkpoints, resume, comparison, plots.

    >>> from training import TrainConfig, train
    >>> result = train(TrainConfig(model="exam_mlp", epochs=5, out="runs/demo"))
    >>> result.test_accuracy, result.paths["model"]

See docs/training.md for the run-directory layout, exact resume and speed.
"""
import utils.tf_quiet  # noqa: F401  (before keras: silences TF's start-up lines)
from .checkpoint import list_checkpoints
from .cluster import WORKER_LOST_EXIT
from .compare import compare_activations
from .config import LR_SCHEDULES, OPTIMIZERS, STRATEGIES, TrainConfig, resume_config
from .errors import (CheckpointMismatchError, ConfigMismatchError, DivergedError,
                     RunDirectoryError, TrainingError, WorkerLostError)
from .diagnostics import dead_unit_fraction
from .loop import train
from .outputs import TrainResult, describe_outputs
from .qat import QuantizationError, quantize_aware
from .remedies import compare_remedies

__all__ = [
    "TrainConfig", "TrainResult", "train", "resume_config", "compare_activations",
    "compare_remedies", "describe_outputs",
    "dead_unit_fraction", "list_checkpoints", "TrainingError", "ConfigMismatchError",
    "DivergedError", "RunDirectoryError", "CheckpointMismatchError", "OPTIMIZERS", "LR_SCHEDULES", "STRATEGIES",
    "WorkerLostError", "WORKER_LOST_EXIT", "quantize_aware", "QuantizationError",
]
