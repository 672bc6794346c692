"""The training loop: compiled multi-step chunks, per-epoch checkpoints, exact resume.

Speed (docs/training.md has the numbers) comes from :mod:`training.steps`:
one XLA program runs ``steps_per_execution`` optimizer steps on batches
gathered in-graph from the in-memory data; Python only runs between chunks
(progress, signal and NaN checks).

Exactness comes from: ``keras.utils.set_random_seed`` + op determinism; an
epoch's data order that is a pure function of ``(seed, epoch)``; and
checkpoints holding every model variable (dropout seed states included), every
optimizer variable and the global RNG states.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from utils.io import atomic_path, atomic_write_json, atomic_write_text

from . import checkpoint as ckpt
from .config import TrainConfig
from .diagnostics import dead_unit_fraction
from .errors import DivergedError, RunDirectoryError, TrainingError
from .progress import Progress
from .signals import GracefulStop
from .steps import Steps


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        run_dir: the run directory.
        paths: name -> path of every file written (model, config, history, plots, ...).
        history: one dict per completed epoch.
        epochs_completed: epochs in the last checkpoint.
        interrupted: a signal name ("SIGINT"/"SIGTERM") if training was stopped, else None.
        stopped_early: early stopping ended the run.
        resumed_from: epochs already done when this call started (0 for a fresh run).
        test_loss / test_accuracy: on the test split (None if interrupted).
        dead_fraction: share of hidden units that output 0 for every validation image.
        model: the trained keras.Model.
        chief: this process wrote the run directory (False on the other workers
            of a multi-worker cluster: they write nothing, see ``task_from_tf_config``).
    """
    run_dir: Path
    paths: dict
    history: list
    epochs_completed: int
    interrupted: str | None = None
    stopped_early: bool = False
    resumed_from: int = 0
    test_loss: float | None = None
    test_accuracy: float | None = None
    dead_fraction: float | None = None
    model: object = None
    chief: bool = True


# Everything a run writes into its directory; --overwrite removes exactly these.
RUN_FILES = ("model.keras", "config.json", "history.json", "history.csv", "summary.json",
             "audit.md", "audit.json", "curves.png", "gradient_norms.png")
RUN_DIRS = ("checkpoints", "tensorboard", "export")


def _remove_run(run_dir: Path) -> None:
    for name in RUN_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


def _prepare_run_dir(config: TrainConfig, resume: bool, overwrite: bool = False,
                     chief: bool = True) -> tuple[Path, TrainConfig | None]:
    """Check the output directory before any work; return it and the saved config.

    A non-chief worker only reads: it must never delete or create files that the
    chief (possibly on a shared filesystem, at the same moment) is writing.
    """
    run_dir = Path(config.out)
    if not chief:
        if not resume:
            return run_dir, None
        config_path = run_dir / "config.json"
        if not config_path.is_file():
            raise RunDirectoryError(
                f"Nothing to resume in {str(run_dir)!r} on this worker (no config.json). Fix: "
                "every worker must see the chief's run directory (a shared filesystem) to "
                "--resume; otherwise start a new run.")
        saved = TrainConfig.load(config_path)
        config.check_resumable_from(saved)
        return run_dir, saved
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirectoryError(f"Output directory {str(run_dir)!r} is not writable "
                                f"({exc.strerror or exc}). Fix: choose another --out.") from exc
    config_path = run_dir / "config.json"
    if resume:
        if not config_path.is_file():
            raise RunDirectoryError(f"Nothing to resume in {str(run_dir)!r} (no config.json). "
                                    "Fix: drop --resume to start a new run.")
        saved = TrainConfig.load(config_path)
        config.check_resumable_from(saved)
        return run_dir, saved
    if config_path.is_file():
        if not overwrite:
            raise RunDirectoryError(f"{str(run_dir)!r} already holds a run (config.json). Fix: "
                                    "pass --resume to continue it, --overwrite to replace it, or "
                                    "choose another --out.")
        _remove_run(run_dir)
    return run_dir, None


def make_lr_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning rate: a float (constant) or a Keras schedule of the step count."""
    import keras

    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=total)
    if config.lr_schedule == "step":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(total * 0.5), int(total * 0.75)], [config.lr, config.lr * 0.1, config.lr * 0.01])
    return config.lr


def _make_optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras

    lr = make_lr_schedule(config, steps_per_epoch)
    opt = {
        "adam": lambda: keras.optimizers.Adam(lr),
        # Momentum 0.9: plain SGD on sigmoid nets is too slow to show anything in a few epochs.
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=0.9),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        "adamw": lambda: keras.optimizers.AdamW(lr),
    }[config.optimizer]()
    return opt


def _build_model(config: TrainConfig, dataset_classes: int, input_shape: tuple):
    import models

    overrides = dict(config.model_overrides)
    # The data decides the input: the course's 2-input models flatten images too.
    overrides.setdefault("input_shape", tuple(input_shape))
    if config.activation is not None:
        overrides["activation"] = config.activation
    if config.num_classes == "auto":
        overrides["num_classes"] = dataset_classes
    elif config.num_classes is not None:
        overrides["num_classes"] = int(config.num_classes)
    model = models.create_model(config.model, **overrides)
    model_shape = tuple(model.inputs[0].shape[1:])
    if model_shape != tuple(input_shape):
        raise TrainingError(f"Model {config.model!r} expects inputs of shape {model_shape} "
                            f"but dataset {config.dataset!r} has {tuple(input_shape)}. Fix: "
                            f"drop the input_shape override.")
    steps = [layer.name for layer in model.layers if layer.__class__.__name__ == "BinaryStep"]
    if steps:
        raise TrainingError(
            f"Model {config.model!r} passes through binary_step ({', '.join(steps)}), whose "
            "derivative is 0 everywhere, so gradient descent cannot train it. Fix: train a "
            "perceptron with its own learning rule (models.perceptron.train_perceptron) or "
            "pick a differentiable --activation.")
    head = int(model.outputs[0].shape[-1])
    if head < dataset_classes:
        raise TrainingError(f"Model {config.model!r} has {head} outputs but dataset "
                            f"{config.dataset!r} has {dataset_classes} classes. Fix: pass "
                            "--num-classes auto.")
    return model


def _strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        # Cluster layout comes from the TF_CONFIG environment variable.
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def task_from_tf_config(environ=None) -> tuple[str | None, int, bool]:
    """This process's ``(task_type, task_index, is_chief)`` from ``TF_CONFIG``.

    The chief is the "chief" task, or worker 0 when the cluster has no "chief"
    job (TensorFlow's rule). Without ``TF_CONFIG`` the process is its own chief.
    Read before the strategy exists so that the run directory is checked (or,
    on other workers, left alone) before any slow work.

    Raises:
        TrainingError: ``TF_CONFIG`` is not valid JSON.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None, 0, True
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"TF_CONFIG is not valid JSON ({exc}); received "
                            f"TF_CONFIG={raw[:200]!r}. Fix: see docs/training.md, "
                            "'Several machines'.") from None
    task = tf_config.get("task") or {}
    task_type, index = task.get("type"), int(task.get("index", 0))
    cluster = tf_config.get("cluster") or {}
    chief = task_type in (None, "chief") or (
        task_type == "worker" and index == 0 and "chief" not in cluster)
    return task_type, index, chief


def _write_history(run_dir: Path, history: list[dict]) -> dict:
    paths = {"history_json": atomic_write_json(run_dir / "history.json", history)}
    keys = []
    for record in history:
        keys += [k for k in record if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    paths["history_csv"] = atomic_write_text(run_dir / "history.csv", buffer.getvalue())
    return paths


def _log_tensorboard(writer, record: dict) -> None:
    """Epoch scalars as TensorBoard "scalars" events (no tensorboard package needed to write)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    # What tensorboard.summary.scalar writes: the scalars plugin tag + a float32 tensor.
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR)
    with writer.as_default():
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                tf.summary.write(key, tf.constant(value, tf.float32), step=record["epoch"],
                                 metadata=metadata)
    writer.flush()


def _set_determinism(seed: int) -> bool:
    """Seed every RNG and make ops deterministic; return whether determinism was on before."""
    import keras
    from tensorflow.python.framework import config as tf_config

    keras.utils.set_random_seed(seed)
    was_enabled = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    return was_enabled


def _restore_determinism(was_enabled: bool) -> None:
    # A library call should not leave a process-wide switch flipped for its caller.
    from tensorflow.python.framework import config as tf_config

    if not was_enabled:
        tf_config.disable_op_determinism()


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False, log=None,
          bundle=None, callbacks=()) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` into ``config.out``.

    Args:
        config: the run (see :class:`TrainConfig`).
        resume: continue the run in ``config.out`` from its last checkpoint.
        overwrite: delete a previous run's files in ``config.out`` (only the files a
            run writes, see ``RUN_FILES``/``RUN_DIRS``) and start afresh.
        log: ``print``-like callable for messages (default: print to stdout).
        bundle: an already loaded ``data.DatasetBundle`` (its name must match
            ``config.dataset``); loaded from the config when None.
        callbacks: callables ``fn(record, model)`` run after each epoch's
            checkpoint is written (``record`` is that epoch's history row).

    Returns:
        A :class:`TrainResult`. When a SIGINT/SIGTERM arrives, training stops
        at the next chunk boundary, nothing of the unfinished epoch is saved
        and ``result.interrupted`` names the signal.

    Raises:
        RunDirectoryError: unwritable ``out``; ``out`` holds a run and neither ``resume``
            nor ``overwrite`` is set; nothing to resume.
        ConfigMismatchError: ``resume`` with a config that differs from the saved one.
        DivergedError: the loss became NaN/inf (the last good checkpoint is kept).
        data.DatasetError / models errors: bad dataset, model or activation.
    """
    import activations  # noqa: F401  (registers the custom layers for saving/loading)
    import models

    log = log or (lambda *a: print(*a, flush=True))
    # Fail fast on names before any slow work.
    models.describe(config.model)
    if config.activation is not None:
        activations.describe(config.activation)
    if resume and overwrite:
        raise TrainingError("resume and overwrite contradict each other; pass one of them.")
    chief = True if config.strategy != "multiworker" else task_from_tf_config()[2]
    run_dir, saved = _prepare_run_dir(config, resume, overwrite, chief)
    if saved is not None:
        # Keep the original presentation of the run except what was asked now.
        config = dataclasses.replace(saved, out=config.out, quiet=config.quiet,
                                     export=config.export)

    was_deterministic = _set_determinism(config.seed)
    try:
        return _train(config, run_dir, resume, bundle, log if chief else _silent, callbacks,
                      chief)
    finally:
        _restore_determinism(was_deterministic)


def _silent(*_args) -> None:
    """The log of non-chief workers: the chief reports for the whole cluster."""


def _train(config, run_dir, resume, bundle, log, callbacks, chief=True) -> TrainResult:
    import keras
    import tensorflow as tf

    if bundle is None:
        import data
        bundle = data.load_dataset(config.dataset, batch_size=config.batch_size, seed=config.seed,
                                   validation_fraction=config.validation_fraction,
                                   limit=config.limit)
    steps_per_epoch = bundle.steps_per_epoch(config.batch_size)

    strategy = _strategy(config.strategy)
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        gpu = bool(tf.config.list_physical_devices("GPU"))
        # CPUs have fast bfloat16 but no float16 arithmetic; bfloat16 needs no loss scaling.
        keras.config.set_dtype_policy("mixed_float16" if gpu else "mixed_bfloat16")
    try:
        with strategy.scope():
            model = _build_model(config, bundle.num_classes, bundle.input_shape)
            optimizer = _make_optimizer(config, steps_per_epoch)
            if config.mixed_precision and keras.config.dtype_policy().name == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
        return _run(config, run_dir, resume, bundle, model, optimizer, strategy, log,
                    callbacks, chief)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _run(config, run_dir, resume, bundle, model, optimizer, strategy, log,
         callbacks, chief=True) -> TrainResult:
    import tensorflow as tf
    paths: dict = {"run_dir": run_dir}
    checkpoints = run_dir / "checkpoints"
    history: list[dict] = []
    start_epoch, best, wait = 0, math.inf, 0
    if resume:
        found = ckpt.list_checkpoints(checkpoints)
        if found:
            state = ckpt.restore(found[-1], model, optimizer)
            start_epoch, history = state["epoch"], state["history"]
            best, wait = state["early_stopping"]["best"], state["early_stopping"]["wait"]
            log(f"resuming {run_dir} after epoch {start_epoch} ({found[-1].name})")
    elif chief:
        paths["config"] = atomic_write_json(run_dir / "config.json", config.to_dict())

    steps = Steps(model, optimizer, strategy, jit_compile=config.jit_compile,
                   track_gradients=config.track_gradients)
    val_ds = bundle.pipeline("val", batch_size=1024)
    # Other workers print nothing: N identical progress lines would only interleave.
    progress = Progress(config.epochs, bundle.steps_per_epoch(config.batch_size), config.quiet,
                        stream=None if chief else io.StringIO())
    writer = tf.summary.create_file_writer(str(run_dir / "tensorboard")) if chief else None
    result = TrainResult(run_dir, paths, history, start_epoch, resumed_from=start_epoch,
                         model=model, chief=chief)
    spe = config.steps_per_execution
    n_steps = bundle.steps_per_epoch(config.batch_size)

    with GracefulStop() as stop:
        for epoch in range(start_epoch, config.epochs):
            # Checked at the top so a resumed, already early-stopped run stops too.
            if config.early_stopping and wait >= config.early_stopping:
                result.stopped_early = True
                break
            progress.start_epoch(epoch)
            done, loss_sum, correct_sum, seen = 0, 0.0, 0.0, 0
            norm_sum = np.zeros(len(steps.layer_names))
            for losses, corrects, counts, norms in steps.epoch_chunks(
                    bundle, epoch, config.batch_size, spe):
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    progress.abort()
                    last = ckpt.list_checkpoints(checkpoints)
                    kept = f"last good checkpoint {last[-1]} is kept" if last else \
                        "no epoch had finished, so there is no checkpoint"
                    raise DivergedError(
                        f"Training diverged: loss is {losses[bad[0]]} at epoch {epoch + 1}, "
                        f"batch {done + bad[0] + 1}/{n_steps}; {kept}. Fix: lower --lr "
                        f"(was {config.lr}) or check the data.", epoch + 1, done + bad[0] + 1)
                loss_sum += float((losses * counts).sum())
                correct_sum += float(corrects.sum())
                seen += int(counts.sum())
                norm_sum += norms
                done += len(losses)
                progress.update(done, seen, loss_sum / seen, correct_sum / seen)
                if stop.requested is not None:
                    break
            if stop.requested is not None:
                progress.abort()
                result.interrupted = stop.signal_name
                break
            elapsed = progress.elapsed()
            val_loss, val_acc = steps.evaluate(val_ds)
            record = {"epoch": epoch + 1, "loss": loss_sum / seen, "accuracy": correct_sum / seen,
                      "val_loss": val_loss, "val_accuracy": val_acc,
                      "lr": float(_current_lr(optimizer)), "time_s": elapsed, "samples": seen,
                      "samples_per_s": seen / max(elapsed, 1e-9)}
            for name, total in zip(steps.layer_names, norm_sum):
                record[f"grad_norm/{name}"] = float(total / n_steps)
            if not all(np.isfinite(v.numpy()).all() for v in model.trainable_variables):
                raise DivergedError(f"Training diverged: weights are NaN/inf after epoch "
                                    f"{epoch + 1}, batch {n_steps}. Fix: lower --lr.",
                                    epoch + 1, n_steps)
            history.append(record)
            if val_loss < best:
                best, wait = val_loss, 0
            else:
                wait += 1
            progress.end_epoch(record)
            if chief:
                ckpt.save(checkpoints, epoch + 1, model, optimizer,
                          {"history": history, "early_stopping": {"best": best, "wait": wait},
                           "config": config.identity()})
                paths.update(_write_history(run_dir, history))
                _log_tensorboard(writer, record)
            result.epochs_completed = epoch + 1
            for callback in callbacks:
                callback(record, model)
    if result.stopped_early:
        log(f"early stopping: val_loss did not improve for {config.early_stopping} epochs")
    if result.interrupted or not chief:
        return result
    _finish(config, run_dir, bundle, model, steps, result, log)
    return result


def _current_lr(optimizer) -> float:
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


def _finish(config, run_dir, bundle, model, steps, result, log) -> None:
    """Final model, test metrics, audit, plots: written once training is complete."""
    import models

    from . import plots

    paths, history = result.paths, result.history
    with atomic_path(run_dir / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    paths["model"] = run_dir / "model.keras"
    result.test_loss, result.test_accuracy = steps.evaluate(bundle.pipeline("test", 1024))
    result.dead_fraction = dead_unit_fraction(model, bundle.as_numpy("val")[0])
    if hasattr(models, "audit"):
        audit = models.audit(model)
        paths["audit_md"] = atomic_write_text(run_dir / "audit.md", audit.to_markdown())
        paths["audit_json"] = atomic_write_text(run_dir / "audit.json", audit.to_json())
    summary = {"model": config.model, "activation": config.activation, "dataset": config.dataset,
               "epochs_completed": result.epochs_completed, "stopped_early": result.stopped_early,
               "test_loss": result.test_loss, "test_accuracy": result.test_accuracy,
               "dead_fraction": result.dead_fraction, "params": int(model.count_params()),
               "final": history[-1] if history else None}
    paths["summary"] = atomic_write_json(run_dir / "summary.json", summary)
    if history:
        title = f"{config.model} ({config.activation or 'default'}) on {config.dataset}"
        paths["plot_curves"] = plots.plot_curves(history, run_dir / "curves.png", title)
        if config.track_gradients:
            paths["plot_gradients"] = plots.plot_gradient_norms(
                history, run_dir / "gradient_norms.png", title)
    paths["tensorboard"] = run_dir / "tensorboard"
    paths["checkpoints"] = run_dir / "checkpoints"
    if config.export:
        _export(run_dir, bundle, paths, log)


def _export(run_dir: Path, bundle, paths: dict, log) -> None:
    try:
        import export
    except ImportError as exc:
        log(f"--export skipped: the export package is not importable ({exc}).")
        return
    if not hasattr(export, "export_model"):
        log("--export skipped: this checkout's export package has no export_model yet.")
        return
    x_train, _ = bundle.as_numpy("train")
    x_test, _ = bundle.as_numpy("test")
    # float32 artifacts plus an int8 TFLite for edge devices: calibrated on
    # training images, its top-1 agreement measured on held-out test images.
    kwargs = dict(representative_data=x_train[:1000], validation_data=x_test)
    try:
        manifest = export.export_model(run_dir / "model.keras", run_dir / "export",
                                       quantize=(None, "int8"), **kwargs)
    except export.ValidationError as exc:
        # A weakly trained model has near-tied classes that int8 rounding flips;
        # such an int8 file is not shipped, but the float32 artifacts still are.
        if not all(f["artifact"].endswith("_int8.tflite") for f in exc.failures):
            raise
        log(f"--export: int8 TFLite left out, it failed validation ({exc}); "
            f"float32 artifacts follow.")
        manifest = export.export_model(run_dir / "model.keras", run_dir / "export", **kwargs)
    paths["export"] = run_dir / "export"
    for art in manifest.get("artifacts", []):
        log(f"  export: {art['format']:<11} {art.get('quantization') or 'float32':<8} "
            f"{art['path']:<18} {art.get('size_bytes', 0):>9,} bytes  "
            f"{_validation_summary(art.get('validation'))}")


def _validation_summary(val) -> str:
    if not isinstance(val, dict):
        return "not validated"
    verdict = "validated" if val.get("passed") else "FAILED validation"
    if "top1_agreement" in val:
        return (f"{verdict}: top-1 agreement {val['top1_agreement']:.2%} with Keras "
                f"on {val.get('samples')} held-out images (bound {val.get('top1_bound'):.0%})")
    if "max_abs_diff" in val:
        return f"{verdict}: max |diff| vs Keras {val['max_abs_diff']:.1e} (atol {val.get('atol')})"
    return verdict


def describe_outputs(result: TrainResult) -> str:
    """Human-readable list of where everything went."""
    lines = [f"run directory: {result.run_dir}"]
    for key, path in sorted(result.paths.items()):
        if key != "run_dir":
            lines.append(f"  {key:15s} {path}")
    return "\n".join(lines)

