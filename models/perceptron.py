"""Rosenblatt's perceptron: one linear threshold unit (LTU) and its learning rule.

Reference: F. Rosenblatt, "The perceptron: a probabilistic model for
information storage and organization in the brain", Psychological Review 65
(1958); course notes, "The Perceptron" (y = phi(sum_i w_i x_i + b), binary
step phi).

The learning rule ``w <- w + lr * (y - y_hat) * x``, ``b <- b + lr * (y - y_hat)``
converges in finitely many updates when the classes are linearly separable
(Novikoff 1962), so AND and OR are learned; XOR is not linearly separable,
so no epoch is ever error-free and :func:`train_perceptron` reports it.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from models import _layers
from models._registry import Family, register_model
from models.errors import LearningRuleError
from utils.checks import is_count


@dataclass(frozen=True)
class PerceptronResult:
    """Outcome of :func:`train_perceptron`.

    Attributes:
        converged: True when an epoch made no mistake (the data were separated).
        weights: float64 array ``[n_features]``.
        bias: float.
        epochs: epochs run (the error-free one included when converged).
        errors: misclassifications per epoch, ``len(errors) == epochs``.
    """
    converged: bool
    weights: np.ndarray
    bias: float
    epochs: int
    errors: list


def step(z, threshold: float = 0.0) -> np.ndarray:
    """Binary step: 1 where ``z >= threshold`` else 0 (the LTU's output)."""
    return (np.asarray(z) >= threshold).astype(np.int64)


def predict_perceptron(X, weights, bias) -> np.ndarray:
    """LTU outputs ``step(X @ weights + bias)`` as int64 0/1."""
    return step(np.asarray(X, dtype=np.float64) @ np.asarray(weights, dtype=np.float64) + bias)


def train_perceptron(X, y, epochs: int = 100, lr: float = 1.0) -> PerceptronResult:
    """Train one LTU with the classic perceptron rule, starting from zeros.

    Samples are visited in order (deterministic); training stops after the
    first epoch without a mistake.

    Args:
        X: array ``[n_samples, n_features]``.
        y: binary targets ``[n_samples]`` with values 0/1.
        epochs: maximum number of passes over the data (>= 1).
        lr: learning rate (> 0).

    Returns:
        PerceptronResult; ``converged`` is False when ``epochs`` passes all
        contained a mistake (e.g. XOR, which no single line separates).

    Raises:
        LearningRuleError: shapes disagree, targets are not 0/1, epochs < 1 or lr <= 0.

    Example:
        >>> X = [[0, 0], [0, 1], [1, 0], [1, 1]]
        >>> train_perceptron(X, [0, 0, 0, 1]).converged
        True
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise LearningRuleError(f"X must be [n_samples, n_features] and y [n_samples]. "
                         f"Received: X.shape={X.shape}, y.shape={y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise LearningRuleError(f"y must contain only 0 and 1. Received: values={np.unique(y).tolist()}")
    if not is_count(epochs):
        raise LearningRuleError(f"epochs must be an integer >= 1. Received: epochs={epochs!r}")
    if not lr > 0:
        raise LearningRuleError(f"lr must be > 0. Received: lr={lr!r}")
    w = np.zeros(X.shape[1])
    b = 0.0
    errors = []
    for _ in range(epochs):
        mistakes = 0
        for xi, yi in zip(X, y):
            delta = yi - step(xi @ w + b)
            if delta:
                w = w + lr * delta * xi
                b = b + lr * delta
                mistakes += 1
        errors.append(mistakes)
        if mistakes == 0:
            return PerceptronResult(True, w, float(b), len(errors), errors)
    return PerceptronResult(False, w, float(b), len(errors), errors)


def set_perceptron_weights(model: keras.Model, result: PerceptronResult) -> keras.Model:
    """Copy trained LTU weights into a ``perceptron`` Keras model (in place)."""
    layer = model.get_layer("ltu")
    layer.set_weights([np.asarray(result.weights, np.float32).reshape(-1, 1),
                       np.array([result.bias], np.float32)])
    return model


def _units(cfg: dict) -> int:
    # Two classes need one threshold unit; more classes get one LTU each.
    return 1 if cfg["num_classes"] <= 2 else cfg["num_classes"]


def _build(cfg: dict) -> keras.Model:
    inputs, x = _layers.input_and_flatten(cfg["input_shape"])
    x = keras.layers.Dense(_units(cfg), kernel_initializer="zeros", name="ltu")(x)
    x = _layers.apply_activation(x, cfg["activation"], "ltu_act")
    return keras.Model(inputs, x)


def _count_params(cfg: dict) -> int:
    units = _units(cfg)
    return (_layers.dense_params(_layers.features(cfg["input_shape"]), units)
            + _layers.activation_params(cfg["activation"], (units,)))


PERCEPTRON = Family(
    name="perceptron",
    defaults=dict(
        input_shape=(2,),
        num_classes=2,
        activation="binary_step",  # Rosenblatt's hard threshold
    ),
    build=_build,
    count_params=_count_params,
    reference="Rosenblatt (1958), Psychological Review 65(6); course notes 'The Perceptron'",
)


@register_model
def perceptron(**overrides):
    """Rosenblatt's linear threshold unit: step(w . x + b); train with train_perceptron."""
    return PERCEPTRON.variant(overrides)
