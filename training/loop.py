"""The training loop: compiled multi-step chunks, per-epoch checkpoints, exact resume.

``train`` checks the run directory, seeds everything, builds the model and
optimizer (:mod:`training.factories`) and runs the epochs. Speed comes from
:mod:`training.steps`: one XLA program runs ``steps_per_execution`` optimizer
steps on batches gathered in-graph from the in-memory data; Python only runs
between chunks (progress, signal and NaN checks).

Exactness comes from ``keras.utils.set_random_seed`` + op determinism; an
epoch's data order that is a pure function of ``(seed, epoch)``; and
checkpoints holding every model variable (dropout seed states included), every
optimizer variable and the global RNG states.
"""
from __future__ import annotations

import contextlib

import numpy as np

from utils.progress import Progress

from models.quantizers import is_quantize_aware

from . import checkpoint as ckpt
from . import outputs
from . import qat
from .cluster import cluster_guard
from .config import TrainConfig
from .diagnostics import dead_unit_fraction
from .early_stopping import EarlyStopping
from .errors import DivergedError, TrainingError, WorkerLostError
from .factories import (build_model, current_lr, learning_rule, make_optimizer, make_strategy,
                        task_from_tf_config)
from .outputs import TrainResult
from .pretrain import check_model as check_pretrain_model, pretrain
from .rule_path import train_rule
from .rundir import RunDir, prepare_run_dir
from .signals import GracefulStop
from .steps import Steps


# The dead-unit fraction is measured on at most this many validation examples (the
# first ones), so a streamed set's validation split is never loaded whole.
DEAD_UNIT_EXAMPLES = 65_536


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False, log=None,
          bundle=None, callbacks=()) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` into ``config.out``.

    Args:
        config: the run (see :class:`TrainConfig`).
        resume: continue the run in ``config.out`` from its last checkpoint.
        overwrite: replace a previous run in ``config.out``: its files (only the files
            a run writes, see ``training.rundir.RUN_FILES``/``RUN_DIRS``) are deleted
            when the new run writes its first file, after its data and model load.
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

    log = log or (lambda *a: print(*a, flush=True))
    # Fail fast on names and settings before any slow work.
    rule = learning_rule(config.model)
    if config.activation is not None:
        activations.describe(config.activation)
    if resume and overwrite:
        raise TrainingError("resume and overwrite contradict each other; pass one of them.")
    if not resume:
        config = config.resolved(rule)  # before --overwrite deletes anything
        check_pretrain_model(config)
    chief = True if config.strategy != "multiworker" else task_from_tf_config()[2]
    path, saved, replaces = prepare_run_dir(config, resume, overwrite, chief)
    if saved is not None:
        config = config.resumed_from(saved).resolved(rule)
    run = RunDir(path, chief, resume,
                 config_pending=saved is None or saved.identity() != config.identity(),
                 replaces=replaces)
    with _deterministic(config.seed):
        if bundle is None:
            import data
            bundle = data.load_dataset(config.dataset, batch_size=config.batch_size or 64,
                                       seed=config.seed,
                                       validation_fraction=config.validation_fraction,
                                       limit=config.limit, image_size=config.image_size,
                                       channels=config.channels)
        if rule is not None:
            result = train_rule(config, run, bundle, rule, log, callbacks)
        else:
            result = _train(config, run, bundle, log if chief else _silent, callbacks)
    result.config = config
    return result


@contextlib.contextmanager
def _deterministic(seed: int):
    """Seed every RNG and make ops deterministic for the block.

    A library call should not leave a process-wide switch flipped for its
    caller, so op determinism is switched off again if it was off before.
    """
    import keras
    from tensorflow.python.framework import config as tf_config

    keras.utils.set_random_seed(seed)
    was_enabled = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled:
            tf_config.disable_op_determinism()


def _silent(*_args) -> None:
    """The log of non-chief workers: the chief reports for the whole cluster."""


def _train(config, run, bundle, log, callbacks) -> TrainResult:
    """Build model and optimizer in the strategy's scope (and dtype policy), then run."""
    import keras
    import tensorflow as tf

    steps_per_epoch = bundle.steps_per_epoch(config.batch_size)
    strategy = make_strategy(config.strategy)
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        gpu = bool(tf.config.list_physical_devices("GPU"))
        # CPUs have fast bfloat16 but no float16 arithmetic; bfloat16 needs no loss scaling.
        keras.config.set_dtype_policy("mixed_float16" if gpu else "mixed_bfloat16")
    try:
        with strategy.scope():
            model = build_model(config, bundle.num_classes, bundle.input_shape)
            optimizer = make_optimizer(config, steps_per_epoch)
            if config.mixed_precision and keras.config.dtype_policy().name == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
        with cluster_guard(config, strategy, run.path) as guard:
            return _run(config, run, bundle, model, optimizer, strategy, log, callbacks, guard)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _restore(run, model, optimizer, early, config, log) -> tuple[int, list, dict | None]:
    """Load the last checkpoint (resume); return the epochs done, the history so far and,
    from a mid-epoch checkpoint, the next epoch's progress (``step`` and running sums).

    Raises:
        TrainingError: the run already trained more epochs than ``config.epochs``.
    """
    found = ckpt.list_checkpoints(run.path / "checkpoints") if run.resume else []
    if not found:
        return 0, [], None
    state = ckpt.restore(found[-1], model, optimizer)
    done = state["epoch"]
    if done > config.epochs + config.qat_epochs:
        raise TrainingError(f"{str(run.path)!r} has already trained {done} epochs, more than "
                            f"epochs={config.epochs}. Fix: resume without --epochs, or with "
                            f"--epochs {done} or more.")
    saved = state["early_stopping"]
    early.best, early.wait = saved["best"], saved["wait"]
    early.best_epoch = saved.get("best_epoch", 0)
    step = state.get("step", 0)
    within = f", step {step}" if step else ""
    log(f"resuming {run.path} after epoch {done}{within} ({found[-1].name})")
    return done, state["history"], (state["partial"] if step else None)


def _run(config, run, bundle, model, optimizer, strategy, log, callbacks,
         guard=None) -> TrainResult:
    """The epochs, from the last checkpoint (resume) or the first one."""
    import tensorflow as tf

    paths: dict = {"run_dir": run.path}
    checkpoints = run.path / "checkpoints"
    early = EarlyStopping(config.early_stopping)
    found = ckpt.list_checkpoints(checkpoints) if run.resume else []
    if config.qat_epochs and not is_quantize_aware(model):
        qat.quantize_aware(model)  # a layer it cannot quantize fails before any epoch
    if found:  # a checkpoint of the QAT epochs restores into the QAT model
        model, optimizer = qat.resumed_phase(config, ckpt.epoch_of(found[-1]), model, optimizer,
                                             bundle, strategy)
    start_epoch, history, partial = _restore(run, model, optimizer, early, config, log)
    if config.pretrain and start_epoch == 0:
        pretrain(model, bundle.as_numpy("train")[0], seed=config.seed, log=log)
    if not run.resume:
        run.write_config(config, paths)
    def make_steps(model, optimizer):
        return Steps(model, optimizer, strategy, jit_compile=config.jit_compile,
                     track_gradients=config.track_gradients, clip_norm=config.clip_norm,
                     clip_value=config.clip_value, guard=guard)

    steps = make_steps(model, optimizer)
    val_ds = bundle.pipeline("val", batch_size=1024)
    writer = tf.summary.create_file_writer(str(run.path / "tensorboard")) if run.chief else None
    result = TrainResult(run.path, paths, history, start_epoch, resumed_from=start_epoch,
                         model=model, chief=run.chief)
    n_steps = bundle.steps_per_epoch(config.batch_size)
    with GracefulStop() as stop:
        for epoch in range(start_epoch, config.epochs + config.qat_epochs):
            # Checked at the top so a resumed, already early-stopped run stops too.
            if early.triggered:
                result.stopped_early = True
                break
            if epoch == config.epochs and not is_quantize_aware(model):
                model, optimizer = qat.enter_qat(config, model, bundle, strategy, calibrate=True)
                steps, result.model = make_steps(model, optimizer), model

            def save_step(sums, epoch=epoch):
                if run.chief:
                    ckpt.save(checkpoints, epoch, model, optimizer,
                              {"history": history, "early_stopping": early.state(),
                               "config": config.identity(), "partial": sums}, step=sums["step"])

            epoch_run = _train_epoch(config, epoch, bundle, steps, stop, checkpoints, run.chief,
                                     partial, save_step)
            partial = None
            if epoch_run is None:
                result.interrupted = stop.signal_name
                break
            stats, grad_norms, progress = epoch_run
            val_loss, val_acc = steps.evaluate(val_ds)
            # Key order = history.json/.csv column order.
            record = {"epoch": epoch + 1, "loss": stats["loss"], "accuracy": stats["accuracy"],
                      "val_loss": val_loss, "val_accuracy": val_acc,
                      "lr": float(current_lr(optimizer)), **stats, **grad_norms}
            if not all(np.isfinite(v.numpy()).all() for v in model.trainable_variables):
                raise DivergedError(f"Training diverged: weights are NaN/inf after epoch "
                                    f"{epoch + 1}, batch {n_steps}. Fix: lower --lr or clip the "
                                    "gradient (--clip-norm 1).",
                                    epoch + 1, n_steps)
            history.append(record)
            improved = early.update(epoch + 1, val_loss)
            progress.finish(loss=record["loss"], acc=record["accuracy"], val_loss=val_loss,
                            val_accuracy=val_acc, samples_per_s=record["samples_per_s"])
            if run.chief:
                _save_epoch(config, run, model, optimizer, early, improved, history, writer,
                            paths)
            result.epochs_completed = epoch + 1
            for callback in callbacks:
                callback(record, model)
    if result.stopped_early:
        log(f"early stopping: val_loss did not improve for {config.early_stopping} epochs")
    if result.interrupted or not run.chief:
        return result
    _finish(config, run, bundle, model, steps, early, result, log)
    return result


def _save_epoch(config, run, model, optimizer, early, improved, history, writer,
                paths) -> None:
    """The chief's writes after an epoch: config (if pending), best weights, checkpoint,
    history files, TensorBoard scalars; ``paths`` gains what was written."""
    checkpoints = run.path / "checkpoints"
    run.write_config(config, paths)
    if improved and config.early_stopping:
        # Before the epoch's checkpoint, which names this epoch as the best.
        ckpt.save_best(checkpoints, len(history), model)
    ckpt.save(checkpoints, len(history), model, optimizer,
              {"history": history, "early_stopping": early.state(), "config": config.identity()})
    paths.update(outputs.write_history(run.path, history))
    outputs.log_tensorboard(writer, history[-1])


def _finish(config, run, bundle, model, steps, early, result, log) -> None:
    """A complete run: best weights (early stopping), test metrics, final files, export."""
    if config.early_stopping and early.best_epoch:
        # Keras' restore_best_weights: the saved model and its test score are the best epoch's.
        ckpt.restore_best(run.path / "checkpoints", model, early.best_epoch)
        result.best_epoch = early.best_epoch
        log(f"early stopping: model.keras holds epoch {early.best_epoch}'s weights "
            f"(best val_loss {early.best:.4f})")
    result.test_loss, result.test_accuracy = steps.evaluate(bundle.pipeline("test", 1024))
    result.test_metrics = {"loss": result.test_loss, "accuracy": result.test_accuracy}
    result.dead_fraction = dead_unit_fraction(model,
                                              bundle.images("val", slice(DEAD_UNIT_EXAMPLES)))
    outputs.write_final(config, run.path, model, result, bundle)
    if config.export:
        outputs.export_run(run.path, bundle, result.paths, log)


def _closing_progress(chunks, progress):
    """``chunks``, closing the epoch's progress line if a worker of the cluster is lost."""
    try:
        yield from chunks
    except WorkerLostError:
        progress.abort()
        raise


def _train_epoch(config, epoch, bundle, steps, stop, checkpoints, chief, partial=None,
                 save_step=None):
    """One epoch of compiled chunks, from ``partial`` (a mid-epoch checkpoint's step and
    running sums) if given; ``save_step(sums)`` every ``config.save_freq`` steps.

    Returns:
        ``(stats, grad_norms, progress)``: the epoch's training figures (dict in
        history order), the mean per-layer gradient norms, and its progress
        display, to be finished with the validation figures; None when a signal
        stopped the epoch.

    Raises:
        DivergedError: a step's loss is NaN/inf (names the epoch and batch, and
            the checkpoint that is kept).
    """
    n_steps = bundle.steps_per_epoch(config.batch_size)
    # Other workers print nothing: N identical progress lines would only interleave.
    progress = Progress(f"epoch {epoch + 1}/{config.epochs + config.qat_epochs}", n_steps,
                        live=False if config.quiet else None, silent=not chief)
    done, loss_sum, correct_sum, seen = 0, 0.0, 0.0, 0
    norm_sum = np.zeros(len(steps.norm_names))
    if partial is not None:
        done, loss_sum, correct_sum, seen = (partial["step"], partial["loss_sum"],
                                             partial["correct_sum"], partial["seen"])
        norm_sum = np.asarray(partial["norm_sum"], dtype=norm_sum.dtype)
    chunks = steps.epoch_chunks(bundle, epoch, config.batch_size, config.steps_per_execution,
                                done, config.save_freq)
    for losses, corrects, counts, norms in _closing_progress(chunks, progress):
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            progress.abort()
            last = ckpt.list_checkpoints(checkpoints)
            kept = f"last good checkpoint {last[-1]} is kept" if last else \
                "no epoch had finished, so there is no checkpoint"
            raise DivergedError(
                f"Training diverged: loss is {losses[bad[0]]} at epoch {epoch + 1}, "
                f"batch {done + bad[0] + 1}/{n_steps}; {kept}. Fix: lower --lr "
                f"(was {config.lr}), clip the gradient (--clip-norm 1) or check the data.",
                epoch + 1, done + bad[0] + 1)
        # Step by step, so the sums do not depend on where chunks (and resumes) begin.
        for loss, correct, count in zip(losses.tolist(), corrects.tolist(), counts.tolist()):
            loss_sum += loss * count
            correct_sum += correct
        seen += int(counts.sum())
        norm_sum += norms
        done += len(losses)
        progress.update(done, loss=loss_sum / seen, acc=correct_sum / seen,
                        samples_per_s=seen / max(progress.elapsed(), 1e-9))
        if config.save_freq and done % config.save_freq == 0 and done < n_steps and save_step:
            save_step({"step": done, "loss_sum": loss_sum, "correct_sum": correct_sum,
                       "seen": seen, "norm_sum": norm_sum.tolist()})
        if stop.requested is not None:
            progress.abort()
            return None
    elapsed = progress.elapsed()
    stats = {"loss": loss_sum / seen, "accuracy": correct_sum / seen, "time_s": elapsed,
             "samples": seen, "samples_per_s": seen / max(elapsed, 1e-9)}
    grad_norms = {f"grad_norm/{name}": float(total / n_steps)
                  for name, total in zip(steps.norm_names, norm_sum)}
    return stats, grad_norms, progress
