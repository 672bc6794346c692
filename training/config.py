"""TrainConfig: everything that determines a run's result, saved as config.json."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from utils.names import did_you_mean

from .errors import ConfigMismatchError, TrainingError
from .pretrain import check_method as check_pretrain
from utils.checks import is_number, is_count

DEFAULT_WORKER_TIMEOUT = 60.0  # seconds a worker waits in an all-reduce for the others

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
LR_SCHEDULES = ("constant", "cosine", "step")
STRATEGIES = ("default", "mirrored", "multiworker")

# Fields that only change how a run is watched or where it goes, not its weights:
# they may differ between the original run and a --resume.
_PRESENTATION_FIELDS = ("out", "quiet", "export", "worker_timeout", "save_freq")

# What None means for these fields when the model learns by backpropagation
# (a model with its own learning rule takes the rule's defaults instead).
BACKPROP_DEFAULTS = {"epochs": 20, "batch_size": 64, "lr": 3e-3}

# Settings of gradient descent with the value that leaves them off: a model that
# learns by its own rule refuses any other value (it would be silently ignored).
_BACKPROP_ONLY = {"optimizer": "adam", "lr_schedule": "constant", "early_stopping": None,
                  "mixed_precision": False, "track_gradients": False, "strategy": "default",
                  "steps_per_execution": 32, "jit_compile": True, "clip_norm": None,
                  "clip_value": None, "pretrain": None, "qat_epochs": 0, "save_freq": None}
# Rule parameters that have their own flags.
_RULE_FLAGS = {"learning_rate": ("lr", "--lr"), "batch_size": ("batch_size", "--batch-size")}


@dataclasses.dataclass
class TrainConfig:
    """One training run. Defaults are ``python train.py`` with no flags.

    Attributes:
        model: registered model name (``models.list_models()``).
        activation: hidden activation (``activations.list_activations()``);
            None keeps the model's default.
        dataset: ``data.load_dataset`` name (digits, fashion_mnist, tfds:<name>, folder, .npz).
        epochs, batch_size, lr, optimizer, seed: the usual. None for ``epochs``,
            ``batch_size`` and ``lr`` means the learning method's default: 20,
            64 and 3e-3 for backpropagation, the rule's own defaults for a model
            that learns by its own rule (:meth:`resolved` fills them in).
        out: run directory; None means ``runs/<model>``.
        early_stopping: patience in epochs on val_loss; None disables it.
        lr_schedule: constant, cosine (to 0 over all steps) or step (x0.1 at 50% and 75%).
        mixed_precision: bfloat16 compute on CPU, float16 + loss scaling on GPU.
        track_gradients: record per-layer gradient norms each epoch.
        clip_norm: clip the gradient to this global L2 norm before each step.
        clip_value: clip every gradient element to [-clip_value, clip_value] instead.
        num_classes: None keeps the model's head (exam_mlp: 1000, labels 0..k-1
            still work), "auto" sizes it to the dataset, an int sets it.
        strategy: tf.distribute strategy: default, mirrored, multiworker (TF_CONFIG).
        steps_per_execution: training steps per compiled call (speed; see docs/training.md).
        jit_compile: XLA-compile the training step (single-replica only).
        limit: use at most this many examples per source pool (quick runs, tests).
        validation_fraction: passed to ``data.load_dataset``.
        image_size: ``[H, W]`` the images are resized to (``data.load_dataset``'s
            ``image_size``; an int or "H,W" is accepted); None: 32x32, or a
            converted dataset's stored size.
        channels: 1 (gray) or 3 (colour); None: gray, or a converted dataset's own.
        model_overrides: keyword overrides for ``models.create_model`` (``--model-arg``,
            e.g. ``{"dropout": 0.2}``); the model's builder validates them.
        rule_args: parameters of a model's own learning rule (``--rule-arg``)
            beyond ``epochs``, ``seed``, ``lr`` and ``batch_size``.
        quiet: one log line per epoch instead of a progress bar.
        export: hand the trained model to ``export.export_model`` afterwards.
        worker_timeout: multiworker only: seconds a worker waits in one
            all-reduce for the others before declaring them lost
            (``training.cluster``; train.py then exits 75).
        save_freq: also checkpoint every this many steps inside an epoch (a run
            killed mid-epoch resumes from there); None: at the end of epochs only.
        pretrain: "rbm" pre-trains the hidden Dense layers one level at a time as
            RBMs before backpropagation (:mod:`training.pretrain`); None does not.
        qat_epochs: epochs of quantization-aware training after the ``epochs`` float
            ones (:mod:`training.qat`); 0 trains none.
    """
    model: str = "exam_mlp"
    activation: str | None = None
    dataset: str = "digits"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str = "adam"
    seed: int = 0
    out: str | None = None
    early_stopping: int | None = None
    lr_schedule: str = "constant"
    mixed_precision: bool = False
    track_gradients: bool = False
    clip_norm: float | None = None
    clip_value: float | None = None
    num_classes: Any = None
    strategy: str = "default"
    steps_per_execution: int = 32
    jit_compile: bool = True
    limit: int | None = None
    validation_fraction: float = 0.1
    image_size: Any = None
    channels: int | None = None
    model_overrides: dict = dataclasses.field(default_factory=dict)
    rule_args: dict = dataclasses.field(default_factory=dict)
    quiet: bool = False
    export: bool = False
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT
    pretrain: str | None = None
    qat_epochs: int = 0
    save_freq: int | None = None

    def __post_init__(self):
        from data._shape import channels_arg, image_size_arg

        if self.out is None:
            self.out = str(Path("runs") / self.model.replace("/", "_"))
        size = image_size_arg(self.image_size)  # a list: what config.json reads back
        self.image_size = None if size is None else list(size)
        self.channels = channels_arg(self.channels)
        self.validate()

    def validate(self) -> None:
        """Raise TrainingError naming the first invalid field and its value."""
        def positive_int(name, value, allow_none=False):
            if value is None and allow_none:
                return
            if not is_count(value):
                raise TrainingError(f"{name} must be a positive integer; received {name}={value!r}.")

        positive_int("epochs", self.epochs, allow_none=True)
        positive_int("batch_size", self.batch_size, allow_none=True)
        positive_int("steps_per_execution", self.steps_per_execution)
        positive_int("early_stopping", self.early_stopping, allow_none=True)
        positive_int("limit", self.limit, allow_none=True)
        positive_int("save_freq", self.save_freq, allow_none=True)
        for name in ("clip_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None and not (is_number(value) and value > 0):
                raise TrainingError(f"{name} must be a positive finite number; received "
                                    f"{name}={value!r}.")
        if self.clip_norm is not None and self.clip_value is not None:
            raise TrainingError(f"Pass one of --clip-norm and --clip-value; received clip_norm="
                                f"{self.clip_norm!r} and clip_value={self.clip_value!r}.")
        if self.lr is not None and not (is_number(self.lr) and self.lr > 0):
            raise TrainingError(f"lr must be a positive finite number; received lr={self.lr!r}.")
        if not (is_number(self.worker_timeout) and self.worker_timeout > 0):
            raise TrainingError(f"worker_timeout must be a positive number of seconds; received "
                                f"worker_timeout={self.worker_timeout!r}.")
        if not is_count(self.qat_epochs, minimum=0):
            raise TrainingError(f"qat_epochs must be a non-negative integer; received "
                                f"qat_epochs={self.qat_epochs!r}.")
        if self.qat_epochs and self.strategy != "default":
            raise TrainingError(f"qat_epochs trains on one replica; received strategy="
                                f"{self.strategy!r}. Fix: drop --strategy or --qat-epochs.")
        if not is_count(self.seed, minimum=0):
            raise TrainingError(f"seed must be a non-negative integer; received seed={self.seed!r}.")
        for name, value, choices in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
                                     ("strategy", self.strategy, STRATEGIES)):
            if value not in choices:
                hint = did_you_mean(value, choices, n=1, cutoff=0.6, quote=True)
                raise TrainingError(f"Unknown {name} {value!r}.{hint} Choose one of "
                                    f"{', '.join(choices)}.")
        check_pretrain(self.pretrain)
        nc = self.num_classes
        if not (nc is None or nc == "auto" or is_count(nc, minimum=2)):
            raise TrainingError(f"num_classes must be 'auto' or an integer >= 2; received "
                                f"num_classes={nc!r}.")
        for name in ("model_overrides", "rule_args"):
            if not isinstance(getattr(self, name), dict):
                raise TrainingError(f"{name} must be a dict of keyword arguments; received "
                                    f"{name}={getattr(self, name)!r}.")
        for key, flag in (("activation", "--activation"), ("num_classes", "--num-classes")):
            if key in self.model_overrides and getattr(self, key) is not None:
                raise TrainingError(f"{key} is given twice: --model-arg {key}="
                                    f"{self.model_overrides[key]!r} and {flag} "
                                    f"{getattr(self, key)}. Fix: pass it once.")

    def resolved(self, rule=None) -> "TrainConfig":
        """This config with the learning method's defaults filled in (what config.json records).

        Args:
            rule: the model's own learning rule (``models.rules.LearningRule``), or
                None for a model that learns by backpropagation.

        Raises:
            TrainingError: ``rule_args`` for a backprop model; for a rule model, a
                gradient-descent setting, or a parameter the rule does not take.
        """
        if rule is None:
            if self.rule_args:
                raise TrainingError(
                    f"--rule-arg applies to models that learn by their own rule; {self.model!r} "
                    f"learns by backpropagation. Received: {_pairs(self.rule_args)}. Fix: drop "
                    "--rule-arg (model settings go in --model-arg).")
            return dataclasses.replace(self, **{k: v for k, v in BACKPROP_DEFAULTS.items()
                                                if getattr(self, k) is None})
        for name, off in _BACKPROP_ONLY.items():
            if getattr(self, name) != off:
                raise TrainingError(
                    f"{name}={getattr(self, name)!r} does not apply to {self.model!r}: it learns "
                    f"by its own rule {rule.name!r}, not by gradient descent. Fix: drop the flag.")
        for key, value in self.rule_args.items():
            if key in _RULE_FLAGS:
                raise TrainingError(f"Pass the rule's {key} with {_RULE_FLAGS[key][1]}, not "
                                    f"--rule-arg; received {key}={value!r}.")
            if key not in rule.params:
                raise TrainingError(rule.unknown_parameter(
                    key, value, accepted=[k for k in rule.params if k not in _RULE_FLAGS]))
        filled = {"epochs": self.epochs or rule.default_epochs}
        for param, (field, flag) in _RULE_FLAGS.items():
            given = getattr(self, field)
            if param in rule.params:
                filled[field] = rule.params[param] if given is None else given
            elif given is not None:
                raise TrainingError(f"Learning rule {rule.name!r} of {self.model!r} has no "
                                    f"{param}; received {flag} {given}. Fix: drop {flag}.")
        return dataclasses.replace(self, **filled)

    def rule_params(self) -> dict:
        """Keyword parameters for the model's learning rule (a :meth:`resolved` config)."""
        params = dict(self.rule_args)
        for param, (field, _) in _RULE_FLAGS.items():
            if getattr(self, field) is not None:
                params[param] = getattr(self, field)
        return params

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

    def resumed_from(self, saved: "TrainConfig") -> "TrainConfig":
        """The config that continues run ``saved`` as asked by this one.

        Fields left None here (``epochs``, ``batch_size``, ``lr``) take the saved
        values; presentation fields (``out``, ``quiet``, ``export``) are taken
        from this config; every other field must equal the saved one.

        Raises:
            ConfigMismatchError: a field that determines the weights differs,
                named with both values.
        """
        mine = {k: v for k, v in self.identity().items()
                if not (k in BACKPROP_DEFAULTS and v is None)}
        theirs = saved.identity()
        for key in mine:
            if key == "epochs" and mine[key] != theirs[key]:
                self._check_continuable(saved)
            elif key == "qat_epochs":
                continue  # more QAT epochs continue a run like more float epochs
            elif mine[key] != theirs.get(key):
                raise ConfigMismatchError(
                    f"Cannot resume {saved.out!r}: it was trained with {key}={theirs.get(key)!r} "
                    f"but this run asks for {key}={mine[key]!r}. Fix: drop the differing flag "
                    "or choose another --out.")
        keep = {k: getattr(self, k) for k in _PRESENTATION_FIELDS}
        return dataclasses.replace(saved, epochs=mine.get("epochs", saved.epochs),
                                   qat_epochs=mine.get("qat_epochs", saved.qat_epochs), **keep)

    def _check_continuable(self, saved: "TrainConfig") -> None:
        """Another number of epochs is well defined only with a constant learning rate.

        Continuing to N epochs then ends exactly where a run started with N epochs
        ends. Cosine and step schedules are functions of the total number of
        steps: the first epochs of a longer run had other learning rates.
        """
        if saved.lr_schedule == "constant":
            return
        raise ConfigMismatchError(
            f"Cannot continue {saved.out!r} from {saved.epochs} to {self.epochs} epochs: its "
            f"{saved.lr_schedule} learning-rate schedule is spread over the {saved.epochs} epochs "
            f"it was started with, so a {self.epochs}-epoch run would have used other learning "
            f"rates from the first step. Fix: start a new run with --epochs {self.epochs} "
            "(another --out, or --overwrite), or resume without --epochs.")


def _pairs(values: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def resume_config(out: str | Path, given: dict) -> TrainConfig:
    """The saved config of run ``out`` with the explicitly ``given`` fields laid over it.

    ``training.train(config, resume=True)`` then refuses any given field that
    changes the result (ConfigMismatchError), so ``--resume`` alone continues a
    run exactly as it was started. Given ``model_overrides``/``rule_args`` are
    laid key by key over the saved ones (repeating one ``--model-arg`` is fine).

    Raises:
        RunDirectoryError: ``out`` holds no run.
    """
    from .errors import RunDirectoryError

    path = Path(out) / "config.json"
    if not path.is_file():
        raise RunDirectoryError(f"Nothing to resume in {str(out)!r} (no config.json). "
                                "Fix: drop --resume to start a new run.")
    saved = TrainConfig.load(path).to_dict()
    merged = {k: {**saved[k], **given[k]} for k in ("model_overrides", "rule_args") if k in given}
    return TrainConfig.from_dict({**saved, **given, **merged, "out": str(out)})
