"""What a run is built from: the model, the learning rate, the optimizer, the strategy.

Each factory turns fields of a :class:`TrainConfig` into the object the loop
uses, and refuses combinations it cannot train with a one-line
:class:`TrainingError`. ``task_from_tf_config`` reads a multi-worker
cluster's layout before any strategy exists, so the run directory is checked
(or, on other workers, left alone) before any slow work.
"""
from __future__ import annotations

import json
import os

from .config import TrainConfig
from .errors import TrainingError


def build_model(config: TrainConfig, dataset_classes: int, input_shape: tuple):
    """``models.create_model`` with the dataset's input shape and the config's overrides.

    Raises:
        TrainingError: the model's input or head does not fit the dataset, or a
            backprop model passes through binary_step (gradient descent cannot train it).
        models.ModelConfigError: an override the model's builder does not accept.
    """
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
    inputs = getattr(model, "inputs", None)  # subclassed models (most rule models) have none
    if inputs and tuple(inputs[0].shape[1:]) != tuple(input_shape):
        raise TrainingError(f"Model {config.model!r} expects inputs of shape "
                            f"{tuple(inputs[0].shape[1:])} but dataset {config.dataset!r} has "
                            f"{tuple(input_shape)}. Fix: drop the input_shape override.")
    if models.rules.rule_of(model) is not None:
        return model  # it learns by its own rule: no gradient to follow, no head to check
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


def learning_rule(model_name: str):
    """The registered learning rule of model ``model_name`` (None: backpropagation).

    Read from the registry, before anything is built or loaded.
    """
    import models

    name = models.describe(model_name)["learning_rule"]
    return None if name is None else models.rules.get_rule(name)


def make_lr_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning rate: a float (constant) or a Keras schedule of the step count.

    ``cosine`` decays to 0 over all ``epochs * steps_per_epoch`` steps; ``step``
    multiplies by 0.1 at 50% and by 0.01 at 75% of them.
    """
    import keras

    if config.lr_schedule == "constant":
        return config.lr
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=total)
    return keras.optimizers.schedules.PiecewiseConstantDecay(  # "step"
        [int(total * 0.5), int(total * 0.75)], [config.lr, config.lr * 0.1, config.lr * 0.01])


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """The Keras optimizer named by ``config.optimizer`` with the run's learning rate."""
    import keras

    lr = make_lr_schedule(config, steps_per_epoch)
    return {
        "adam": lambda: keras.optimizers.Adam(lr),
        # Momentum 0.9: plain SGD on sigmoid nets is too slow to show anything in a few epochs.
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=0.9),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        "adamw": lambda: keras.optimizers.AdamW(lr),
    }[config.optimizer]()


def current_lr(optimizer) -> float:
    """The learning rate the optimizer applies at its current step."""
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


def make_strategy(name: str):
    """The ``tf.distribute`` strategy ``default``, ``mirrored`` or ``multiworker``."""
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
