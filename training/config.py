"""TrainConfig: everything that determines a run's result, saved as config.json."""
from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path
from typing import Any

from .errors import ConfigMismatchError, TrainingError

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
LR_SCHEDULES = ("constant", "cosine", "step")
STRATEGIES = ("default", "mirrored", "multiworker")

# Fields that only change how a run is watched or where it goes, not its weights:
# they may differ between the original run and a --resume.
_PRESENTATION_FIELDS = ("out", "quiet", "export")


@dataclasses.dataclass
class TrainConfig:
    """One training run. Defaults are ``python train.py`` with no flags.

    Attributes:
        model: registered model name (``models.list_models()``).
        activation: hidden activation (``activations.list_activations()``);
            None keeps the model's default.
        dataset: ``data.load_dataset`` name (digits, fashion_mnist, tfds:<name>, folder, .npz).
        epochs, batch_size, lr, optimizer, seed: the usual.
        out: run directory; None means ``runs/<model>``.
        early_stopping: patience in epochs on val_loss; None disables it.
        lr_schedule: constant, cosine (to 0 over all steps) or step (x0.1 at 50% and 75%).
        mixed_precision: bfloat16 compute on CPU, float16 + loss scaling on GPU.
        track_gradients: record per-layer gradient norms each epoch.
        num_classes: None keeps the model's head (exam_mlp: 1000, labels 0..k-1
            still work), "auto" sizes it to the dataset, an int sets it.
        strategy: tf.distribute strategy: default, mirrored, multiworker (TF_CONFIG).
        steps_per_execution: training steps per compiled call (speed; see docs/training.md).
        jit_compile: XLA-compile the training step (single-replica only).
        limit: use at most this many examples per source pool (quick runs, tests).
        validation_fraction: passed to ``data.load_dataset``.
        model_overrides: extra keyword overrides for ``models.create_model``
            (e.g. ``{"dropout": 0.2}``).
        quiet: one log line per epoch instead of a progress bar.
        export: hand the trained model to ``export.export_model`` afterwards.
    """
    model: str = "exam_mlp"
    activation: str | None = None
    dataset: str = "digits"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    optimizer: str = "adam"
    seed: int = 0
    out: str | None = None
    early_stopping: int | None = None
    lr_schedule: str = "constant"
    mixed_precision: bool = False
    track_gradients: bool = False
    num_classes: Any = None
    strategy: str = "default"
    steps_per_execution: int = 32
    jit_compile: bool = True
    limit: int | None = None
    validation_fraction: float = 0.1
    model_overrides: dict = dataclasses.field(default_factory=dict)
    quiet: bool = False
    export: bool = False

    def __post_init__(self):
        if self.out is None:
            self.out = str(Path("runs") / self.model.replace("/", "_"))
        self.validate()

    def validate(self) -> None:
        """Raise TrainingError naming the first invalid field and its value."""
        def positive_int(name, value, allow_none=False):
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrainingError(f"{name} must be a positive integer; received {name}={value!r}.")

        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("steps_per_execution", self.steps_per_execution)
        positive_int("early_stopping", self.early_stopping, allow_none=True)
        positive_int("limit", self.limit, allow_none=True)
        if not isinstance(self.lr, (int, float)) or not self.lr > 0 or self.lr == float("inf"):
            raise TrainingError(f"lr must be a positive finite number; received lr={self.lr!r}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise TrainingError(f"seed must be a non-negative integer; received seed={self.seed!r}.")
        for name, value, choices in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
                                     ("strategy", self.strategy, STRATEGIES)):
            if value not in choices:
                close = difflib.get_close_matches(str(value), choices, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise TrainingError(f"Unknown {name} {value!r}.{hint} Choose one of "
                                    f"{', '.join(choices)}.")
        nc = self.num_classes
        if not (nc is None or nc == "auto" or (isinstance(nc, int) and not isinstance(nc, bool)
                                                and nc >= 2)):
            raise TrainingError(f"num_classes must be 'auto' or an integer >= 2; received "
                                f"num_classes={nc!r}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainingError(f"Unknown config field(s) {unknown}; known: {sorted(known)}.")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingError(f"Cannot read run config {str(path)!r}: {exc}") from exc

    def identity(self) -> dict:
        """The fields that determine the weights (all but presentation/output ones)."""
        return {k: v for k, v in self.to_dict().items() if k not in _PRESENTATION_FIELDS}

    def check_resumable_from(self, saved: "TrainConfig") -> None:
        """Raise ConfigMismatchError naming the first field that differs from ``saved``."""
        mine, theirs = self.identity(), saved.identity()
        for key in mine:
            if mine[key] != theirs.get(key):
                raise ConfigMismatchError(
                    f"Cannot resume {saved.out!r}: it was trained with {key}={theirs.get(key)!r} "
                    f"but this run asks for {key}={mine[key]!r}. Fix: drop the differing flag "
                    "or choose another --out.")


def resume_config(out: str | Path, given: dict) -> TrainConfig:
    """The saved config of run ``out`` with the explicitly ``given`` fields laid over it.

    ``training.train(config, resume=True)`` then refuses any given field that
    changes the result (ConfigMismatchError), so ``--resume`` alone continues a
    run exactly as it was started.

    Raises:
        RunDirectoryError: ``out`` holds no run.
    """
    from .errors import RunDirectoryError

    path = Path(out) / "config.json"
    if not path.is_file():
        raise RunDirectoryError(f"Nothing to resume in {str(out)!r} (no config.json). "
                                "Fix: drop --resume to start a new run.")
    saved = TrainConfig.load(path)
    return TrainConfig.from_dict({**saved.to_dict(), **given, "out": str(out)})
