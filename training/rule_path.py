"""The rule path: train.py for models that learn by their own rule, not by backprop.

A model names its rule (``models.rules.rule_of(model)``); ``models.learn`` runs
it epoch by epoch and calls back after each epoch. Each callback does what the
backprop loop does after an epoch: a history row (the rule's own figures plus
the validation metrics), the progress line, an atomic checkpoint of the model's
variables (a rule keeps all its state there), history.json/.csv and TensorBoard.
The end of the run writes the same files as every run (model.keras, audit,
summary.json with the test metrics, curves.png, ``--export``) plus the model's
own ``learning_plots``.

The model's optional hooks (see HOOKS in the docs): ``prepare_training_data(x, y)``,
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
    """Run ``rule`` on the training split into ``run_dir``; see the module docstring.

    Raises:
        TrainingError: the replayed epochs do not reproduce the checkpoint (a rule
            that is not a function of (weights, data, seed, epoch), or one whose
            updates depend on the total number of epochs when continuing a run).
        models.LearningRuleError: bad rule parameters or data for the rule.
    """
    import models
    import tensorflow as tf

    model = build_model(config, bundle.num_classes, bundle.input_shape)
    if models.rules.rule_of(model) is not rule:
        raise TrainingError(f"Model {config.model!r} is registered with learning rule "
                            f"{rule.name!r} but the built model names "
                            f"{getattr(models.rules.rule_of(model), 'name', None)!r}.")
    x_train, y_train = bundle.as_numpy("train")
    x_fit, y_fit = prepare(model, x_train, y_train)
    x_val, y_val = bundle.as_numpy("val")
    run_dir = run.path
    paths: dict = {"run_dir": run_dir}
    checkpoints = run_dir / "checkpoints"
    history, done, saved = [], 0, None
    found = ckpt.list_checkpoints(checkpoints) if run.resume else []
    if found:
        saved, state = ckpt.read(found[-1])
        ckpt.check_fits(found[-1], saved, ckpt.variable_keys(model))
        done, history = state["epoch"], state["history"]
        if done > config.epochs:
            raise TrainingError(f"{str(run_dir)!r} has already trained {done} epochs, more "
                                f"than epochs={config.epochs}. Fix: resume without --epochs, or "
                                f"with --epochs {done} or more.")
        log(f"resuming {run_dir} after epoch {done} ({found[-1].name}): replaying "
            f"{done} epoch(s) of rule {rule.name!r} to reach it")
    if not run.resume:
        run.write_config(config, paths)
    result = TrainResult(run_dir, paths, history, done, resumed_from=done, model=model,
                         learning_rule=rule.name)
    writer = tf.summary.create_file_writer(str(run_dir / "tensorboard"))
    clock = {"t0": time.perf_counter()}
    stop = GracefulStop()

    def on_epoch_end(epoch: int, logs: dict) -> None:
        if epoch < done:  # replaying an epoch the checkpoint already holds
            if epoch == done - 1:
                _check_replay(found[-1], saved, model, done, config)
            clock["t0"] = time.perf_counter()
            return
        elapsed = time.perf_counter() - clock["t0"]
        val = evaluate(model, x_val, y_val, bundle.num_classes)
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()},
                  **{f"val_{k}": v for k, v in val.items()}, "time_s": elapsed,
                  "samples": len(x_fit), "samples_per_s": len(x_fit) / max(elapsed, 1e-9)}
        history.append(record)
        run.write_config(config, paths)  # a continued run's new epochs, once they exist
        ckpt.save(checkpoints, epoch + 1, model, None, {"history": history,
                                                        "config": config.identity()})
        paths.update(outputs.write_history(run_dir, history))
        outputs.log_tensorboard(writer, record)
        result.epochs_completed = epoch + 1
        Progress(f"epoch {epoch + 1}/{config.epochs}", 1, live=False).finish(
            **{k: v for k, v in record.items() if k not in ("epoch", "time_s", "samples")})
        for callback in callbacks:
            callback(record, model)
        clock["t0"] = time.perf_counter()
        if stop.requested is not None:
            raise _Stopped

    if done < config.epochs:
        with stop:
            try:
                models.learn(model, x_fit, y_fit, epochs=config.epochs, seed=config.seed,
                             on_epoch_end=on_epoch_end, **config.rule_params())
            except _Stopped:
                result.interrupted = stop.signal_name
                return result
    elif found:
        ckpt.restore(found[-1], model)  # a finished run: its final weights, nothing to replay
    x_test, y_test = bundle.as_numpy("test")
    result.test_metrics = evaluate(model, x_test, y_test, bundle.num_classes)
    result.test_accuracy = result.test_metrics.get("accuracy")
    outputs.write_final(config, run_dir, model, result)
    hook = getattr(model, "learning_plots", None)
    if hook is not None:
        (run_dir / "plots").mkdir(exist_ok=True)
        keras_history = {k: [r[k] for r in history] for k in (history[0] if history else {})}
        result.paths.update(hook(x_train, y_train, keras_history, run_dir / "plots"))
    if config.export:
        outputs.export_run(run_dir, bundle, result.paths, log)
    return result


def _check_replay(path, saved: dict, model, done: int, config) -> None:
    """Refuse to go on unless the replayed weights equal checkpoint ``path`` bit for bit."""
    key = ckpt.first_difference(saved, model)
    if key is None:
        return
    raise TrainingError(
        f"Cannot continue {config.out!r}: replaying its {done} epoch(s) with epochs="
        f"{config.epochs} does not reproduce checkpoint {path.name} (variable {key!r} "
        "differs), so this rule's updates depend on the total number of epochs or on state "
        "outside the model. Fix: resume with the epochs the run was started with, or start a "
        "new run (--overwrite) with the epochs you want.")
