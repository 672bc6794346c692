"""Shared pieces of the course's classic networks (memory and competitive nets).

- :class:`ClassicModel`: a functional ``keras.Model`` subclass whose config is its
  constructor's keyword arguments, so a ``.keras`` file rebuilds it with
  ``safe_mode=True`` and no custom objects (only an import of ``models``).
- The bipolar conventions of the memory nets (Hopfield, BAM, BSB): in the graph
  (:func:`to_bipolar`, :func:`threshold`) and for learning (:func:`bipolar_patterns`).
- Size checks shared by the families' ``derive``/``validate`` and their rules.

Bipolar convention: a row with a negative entry is read as bipolar (values in
[-1, 1], 0 meaning "unknown", e.g. an erased bit); a row without one is read as
binary or grey in [0, 1] and mapped by ``2x - 1`` (so 0 -> -1, 1 -> +1).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import _layers
from models.errors import LearningRuleError, ModelConfigError


class ClassicModel(keras.Model):
    """Base of the classic nets: ``Model(input, graph(input))`` rebuilt from its config.

    Subclasses implement ``_graph(inputs, config) -> outputs`` (a static method, since
    it runs before ``keras.Model.__init__``) and register themselves with
    ``keras.saving.register_keras_serializable(package="models")``.
    """

    learning_rule: str | None = None

    def __init__(self, *, name=None, **config):
        config["input_shape"] = tuple(int(d) for d in config["input_shape"])
        inputs = keras.Input(config["input_shape"], name="input")
        super().__init__(inputs, self._graph(inputs, config), name=name)
        self._config = dict(config)

    @staticmethod
    def _graph(inputs, config):
        raise NotImplementedError

    def get_config(self) -> dict:
        # The constructor's arguments: from_config calls cls(**config), and the
        # weights are restored by layer name afterwards.
        return {**self._config, "input_shape": list(self._config["input_shape"]),
                "name": self.name}

    @property
    def features(self) -> int:
        """Input features after flattening ``input_shape``."""
        return _layers.features(self._config["input_shape"])

    def as_rows(self, x, what: str = "x") -> np.ndarray:
        """``x`` as float32 ``[n, features]``; a wrongly sized array is a LearningRuleError."""
        x = np.asarray(x, dtype=np.float32)
        shape = self._config["input_shape"]
        if x.ndim == 1 and x.size == self.features:
            x = x[None]
        if x.ndim < 2 or x.shape[1:] not in (tuple(shape), (self.features,)):
            raise LearningRuleError(
                f"{self.name} expects {what} of shape [n, {', '.join(map(str, shape))}] "
                f"(or [n, {self.features}]). Received: {what}.shape={x.shape}")
        return x.reshape(len(x), self.features)


def flat(x, features: int):
    """``x`` reshaped to ``[batch, features]`` with a static size (TFLite needs no shape ops)."""
    return ops.reshape(x, (-1, features))


def euclidean_distances(x, prototypes):
    """Graph op: ``[batch, units]`` Euclidean distances from each row of ``x`` to each
    prototype row. The differences are formed explicitly (not ``|x|^2 - 2x.w + |w|^2``),
    so a distance near 0 keeps its precision in every runtime."""
    diff = ops.expand_dims(x, 1) - ops.expand_dims(prototypes, 0)
    return ops.sqrt(ops.sum(diff * diff, axis=-1))


def distances_numpy(x, prototypes) -> np.ndarray:
    """numpy twin of :func:`euclidean_distances` for metrics, in float64: the expanded
    form keeps memory at ``[n, units]`` (float64 leaves ~1e-7 near 0)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(prototypes, np.float64)
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ w.T + (w * w).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


# --- bipolar conventions --------------------------------------------------------------

def to_bipolar(x):
    """Graph op: rows with a negative entry stay as they are, others map by ``2x - 1``."""
    bipolar_row = ops.min(x, axis=-1, keepdims=True) < 0
    return ops.where(bipolar_row, x, 2.0 * x - 1.0)


def threshold(field, previous):
    """Graph op: +1 where ``field > 0``, -1 where ``< 0``; a zero field keeps the sign of
    ``previous`` (an unknown 0 becomes -1), so the result is always bipolar."""
    kept = ops.where(previous > 0, 1.0, -1.0)
    return ops.where(field > 0, 1.0, ops.where(field < 0, -1.0, kept))


def bipolar_numpy(x: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`to_bipolar` (row-wise), for metrics and plots."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x.min(axis=-1, keepdims=True) < 0, x, 2.0 * x - 1.0)


def bipolar_patterns(x, units: int, what: str = "patterns") -> np.ndarray:
    """Patterns to store, as float32 ``[n, units]`` with values +1/-1.

    Args:
        x: bipolar (+1/-1) or binary (0/1) patterns ``[n, units]`` (or ``[n, *shape]``
            with ``units`` entries per row). Binary 0 maps to -1.
        units: entries per pattern.
        what: the name used in error messages (``"x"``, ``"y"``).

    Raises:
        LearningRuleError: wrong size, empty, or values other than +1/-1 or 0/1.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim < 2 or len(x) == 0 or x[0].size != units:
        raise LearningRuleError(f"{what} must be [n_patterns, {units}] with n_patterns >= 1. "
                                f"Received: {what}.shape={x.shape}")
    x = x.reshape(len(x), units)
    values = set(np.unique(x).tolist())
    if values <= {-1.0, 1.0}:
        return x
    if values <= {0.0, 1.0}:
        return 2.0 * x - 1.0
    odd = sorted(values - {-1.0, 0.0, 1.0})[:3] or sorted(values)
    raise LearningRuleError(
        f"{what} must be bipolar (+1/-1) or binary (0/1); found values {odd}. Fix: "
        f"threshold them first, e.g. np.where(x > 0.5, 1, -1).")


def class_prototypes(x, y) -> tuple[np.ndarray, np.ndarray]:
    """One bipolar prototype per class: the class's mean image thresholded at 0.5.

    Args:
        x: images in [0, 1], ``[n, ...]``.
        y: integer labels ``[n]``.

    Returns:
        ``(prototypes [classes, features] in +1/-1, classes [classes])`` sorted by class.
    """
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    y = np.asarray(y).reshape(-1)
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    return np.where(means > 0.5, 1.0, -1.0).astype(np.float32), classes


def memory_scores(model, x, y) -> dict:
    """Test metrics of Hopfield and BSB on images: recall each binarised image and
    score the class of the nearest class prototype of the same data (Hamming)."""
    prototypes, classes = class_prototypes(x, y)
    start = np.where(model.as_rows(x) > 0.5, 1.0, -1.0)
    final = np.sign(np.asarray(model.predict(start, batch_size=256, verbose=0)))
    nearest = classes[nearest_rows(final, prototypes)]
    return {"recall_accuracy": float(np.mean(nearest == np.asarray(y).reshape(-1))),
            "energy": float(np.mean(model.energy(final)))}


def nearest_rows(states, references) -> np.ndarray:
    """Index of the nearest reference row (Euclidean; Hamming for bipolar rows)."""
    return distances_numpy(states, references).argmin(axis=1)


# --- config checks ---------------------------------------------------------------------

def derive_units(config: dict, given: set, key: str) -> None:
    """``config[key]`` defaults to the input's feature count and vice versa.

    Raises:
        ModelConfigError: ``key`` is not a positive int, or contradicts an explicit
            ``input_shape``.
    """
    features = _layers.features(config["input_shape"])
    if config[key] is None:
        config[key] = features
        return
    _layers.positive_int(config, key)
    if config[key] != features:
        if "input_shape" in given:
            raise ModelConfigError(
                f"{key}={config[key]} contradicts input_shape={config['input_shape']} "
                f"({features} features). Fix: pass only one of them, or make them agree.")
        config["input_shape"] = (config[key],)


def check_choice(config: dict, key: str, choices: tuple) -> None:
    """Raise ``ModelConfigError`` unless ``config[key]`` is one of ``choices``."""
    if config[key] not in choices:
        raise ModelConfigError(f"{key} must be one of {', '.join(map(repr, choices))}. "
                               f"Received: {key}={config[key]!r}")


def check_number(config: dict, key: str, low: float, high: float | None = None, *,
                 open_low: bool = False) -> None:
    """Raise ``ModelConfigError`` unless ``low <(=) config[key] <= high`` (a real number)."""
    value = config[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'(' if open_low else '['}{low}, {high if high is not None else 'inf'}" \
                f"{']' if high is not None else ')'}"
        raise ModelConfigError(f"{key} must be a number in {bound}. Received: {key}={value!r}")
