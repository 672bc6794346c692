"""The rule path: train.py for models that learn by their own rule, not by backprop.

A model names its rule (``models.rules.rule_of(model)``); ``models.learn`` runs
it epoch by epoch and calls back after each epoch. Each callback does what the
backprop loop does after an epoch: a history row (the rule's own figures plus
the validation metrics), the progress line, an atomic checkpoint of the model's
variables (a rule keeps all its state there), history.json/.csv and TensorBoard.
The end of the run writes the same files as every run (model.keras, audit,
summary.json with the test metrics, curves.png, ``--export``) plus the model's
own ``learning_plots``.

The model's optional hooks (docs/models.md, "Hooks of a model with its own rule"): ``prepare_training_data(x, y)``,
``evaluate_rule(x, y) -> dict`` and ``learning_plots(x, y, history, out_dir)``.

Resume: a rule's ``fit`` always starts at epoch 0, and epoch k's randomness is
drawn from ``(seed, k)``. So ``--resume`` replays the finished epochs from the
same initial weights (cheap for these small networks; nothing is written
again), checks that the replayed weights equal the last checkpoint bit for
bit, and continues. That check also decides whether a finished run may be
continued for more epochs: a rule whose updates depend on the total number of
epochs (a decaying neighbourhood, for example) is refused, with the reason.
"""
from __future__ import annotations

import time

import numpy as np

from utils.progress import Progress

from . import checkpoint as ckpt
from . import outputs
from .errors import TrainingError
from .factories import build_model
from .outputs import TrainResult
from .signals import GracefulStop


class _Stopped(Exception):
    """Raised from the epoch callback to leave the rule at an epoch boundary."""


def prepare(model, x, y):
    """The model's ``prepare_training_data`` hook, or the data unchanged."""
    hook = getattr(model, "prepare_training_data", None)
    return (x, y) if hook is None else hook(x, y)


def evaluate(model, x, y, num_classes: int, batch_size: int = 1024) -> dict:
    """Test metrics of a rule model: its ``evaluate_rule`` hook, or by default the
    top-1 accuracy of its per-class scores when its output has a column per class
    (no metric otherwise)."""
    hook = getattr(model, "evaluate_rule", None)
    if hook is not None:
        return {k: float(v) for k, v in hook(x, y).items()}
    outputs_ = [np.asarray(model(x[i:i + batch_size], training=False))
                for i in range(0, len(x), batch_size)]
    scores = np.concatenate(outputs_) if outputs_ else np.zeros((0, 0))
    if scores.ndim != 2 or scores.shape[1] < num_classes:
        return {}
    return {"accuracy": float(np.mean(np.argmax(scores, axis=1) == y))}


def train_rule(config, run, bundle, rule, log, callbacks) -> TrainResult:
    """Run ``rule`` on the training split into ``run.path``; see the module docstring.

    Raises:
        TrainingError: the replayed epochs do not reproduce the checkpoint (a rule
            that is not a function of (weights, data, seed, epoch), or one whose
            updates depend on the total number of epochs when continuing a run);
            more epochs already trained than ``config.epochs``.
        CheckpointMismatchError: the last checkpoint does not fit the model.
        models.LearningRuleError: bad rule parameters or data for the rule.
    """
    import models

    model = build_model(config, bundle.num_classes, bundle.input_shape)
    if models.rules.rule_of(model) is not rule:
        raise RuntimeError(f"Model {config.model!r} is registered with learning rule "
                           f"{rule.name!r} but the built model names another one.")
    x_train, y_train = bundle.as_numpy("train")
    x_fit, y_fit = prepare(model, x_train, y_train)
    last = _last_checkpoint(config, run, model)
    done = last.done if last is not None else 0
    result = TrainResult(run.path, {"run_dir": run.path}, last.history if last else [], done,
                         resumed_from=done, model=model, learning_rule=rule.name)
    if not run.resume:
        run.write_config(config, result.paths)
    if last is not None:
        log(f"resuming {run.path} after epoch {done} ({last.path.name}): replaying "
            f"{done} epoch(s) of rule {rule.name!r} to reach it")
    after = _AfterEpoch(config, run, bundle, model, len(x_fit), result, last, callbacks)
    if done < config.epochs:
        with after.stop:
            try:
                models.learn(model, x_fit, y_fit, epochs=config.epochs, seed=config.seed,
                             on_epoch_end=after, **config.rule_params())
            except _Stopped:
                result.interrupted = after.stop.signal_name
                return result
    else:
        ckpt.restore(last.path, model)  # a finished run: its final weights, nothing to replay
    _finish(config, run.path, bundle, model, result, log)
    return result


class _Checkpoint:
    """The last checkpoint of a resumed run: its path, arrays, epochs and history."""

    def __init__(self, path, arrays, state):
        self.path, self.arrays = path, arrays
        self.done, self.history = state["epoch"], state["history"]


def _last_checkpoint(config, run, model) -> _Checkpoint | None:
    """Read (not restore: the rule replays up to it) the last checkpoint when resuming."""
    found = ckpt.list_checkpoints(run.path / "checkpoints") if run.resume else []
    if not found:
        return None
    arrays, state = ckpt.read(found[-1])
    ckpt.check_fits(found[-1], arrays, ckpt.variable_keys(model))
    last = _Checkpoint(found[-1], arrays, state)
    if last.done > config.epochs:
        raise TrainingError(f"{str(run.path)!r} has already trained {last.done} epochs, more "
                            f"than epochs={config.epochs}. Fix: resume without --epochs, or "
                            f"with --epochs {last.done} or more.")
    return last


class _AfterEpoch:
    """``models.learn``'s ``on_epoch_end``: check a replayed epoch, or record a new one.

    A new epoch gets its history row (the rule's logs, the validation metrics,
    time and rate), progress line, checkpoint, history files and TensorBoard
    scalars, then the callbacks; a pending SIGINT/SIGTERM then leaves the rule
    (``_Stopped``) with everything up to this epoch saved.
    """

    def __init__(self, config, run, bundle, model, samples, result, last, callbacks):
        import tensorflow as tf

        self.config, self.run, self.bundle, self.model = config, run, bundle, model
        self.samples, self.result, self.last, self.callbacks = samples, result, last, callbacks
        self.x_val, self.y_val = bundle.as_numpy("val")
        self.writer = tf.summary.create_file_writer(str(run.path / "tensorboard"))
        self.stop = GracefulStop()
        self.t0 = time.perf_counter()

    def __call__(self, epoch: int, logs: dict) -> None:
        if self.last is not None and epoch < self.last.done:
            if epoch == self.last.done - 1:
                _check_replay(self.last, self.model, self.config)
        else:
            self._record(epoch, logs)
        self.t0 = time.perf_counter()
        if self.stop.requested is not None:
            raise _Stopped

    def _record(self, epoch: int, logs: dict) -> None:
        config, result, paths = self.config, self.result, self.result.paths
        elapsed = time.perf_counter() - self.t0
        val = evaluate(self.model, self.x_val, self.y_val, self.bundle.num_classes)
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()},
                  **{f"val_{k}": v for k, v in val.items()}, "time_s": elapsed,
                  "samples": self.samples, "samples_per_s": self.samples / max(elapsed, 1e-9)}
        result.history.append(record)
        self.run.write_config(config, paths)  # a continued run's new epochs, once they exist
        ckpt.save(self.run.path / "checkpoints", epoch + 1, self.model, None,
                  {"history": result.history, "config": config.identity()})
        paths.update(outputs.write_history(self.run.path, result.history))
        outputs.log_tensorboard(self.writer, record)
        result.epochs_completed = epoch + 1
        Progress(f"epoch {epoch + 1}/{config.epochs}", 1, live=False).finish(
            **{k: v for k, v in record.items() if k not in ("epoch", "time_s", "samples")})
        for callback in self.callbacks:
            callback(record, self.model)


def _check_replay(last: _Checkpoint, model, config) -> None:
    """Refuse to go on unless the replayed weights equal the checkpoint bit for bit."""
    key = ckpt.first_difference(last.arrays, model)
    if key is None:
        return
    raise TrainingError(
        f"Cannot continue {config.out!r}: replaying its {last.done} epoch(s) with epochs="
        f"{config.epochs} does not reproduce checkpoint {last.path.name} (variable {key!r} "
        "differs), so this rule's updates depend on the total number of epochs or on state "
        "outside the model. Fix: resume with the epochs the run was started with, or start a "
        "new run (--overwrite) with the epochs you want.")


def _finish(config, run_dir, bundle, model, result, log) -> None:
    """Test metrics, the usual final files, the model's own plots, ``--export``."""
    import models

    x_test, y_test = bundle.as_numpy("test")
    result.test_metrics = evaluate(model, x_test, y_test, bundle.num_classes)
    result.test_accuracy = result.test_metrics.get("accuracy")
    outputs.write_final(config, run_dir, model, result, bundle)
    hook = getattr(model, "learning_plots", None)
    if hook is not None:
        (run_dir / "plots").mkdir(exist_ok=True)
        history = result.history
        keras_history = {k: [r[k] for r in history] for k in (history[0] if history else {})}
        result.paths.update(hook(*bundle.as_numpy("train"), keras_history, run_dir / "plots"))
    if config.export:
        outputs.export_run(run_dir, bundle, result.paths, log)
