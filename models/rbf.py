"""Radial basis function network: Gaussian units around k-means centres, then
a linear output layer.

References: D. S. Broomhead, D. Lowe, "Multivariable functional interpolation
and adaptive networks", Complex Systems 2:321-355, 1988; J. Moody, C. J.
Darken, "Fast learning in networks of locally-tuned processing units",
Neural Computation 1(2):281-294, 1989.

Hidden unit j responds with ``phi_j(x) = exp(-||x - c_j||^2 / (2 sigma_j^2))``;
the call returns the per-class scores ``phi(x) W + b``. Learning
(``models.learn(model, x, y)``, the ``rbf_kmeans`` rule) is Moody & Darken's
hybrid scheme, one epoch at a time:

1. the centres ``c_j``: one Lloyd iteration of k-means (the first epoch of a
   fresh model seeds them with k-means++);
2. the widths: the P-nearest-centre heuristic, ``sigma_j`` = RMS distance from
   ``c_j`` to its P nearest other centres (P = ``neighbors``, 2 by default);
3. the output layer: linear least squares from ``phi`` to one-hot targets
   (a tiny ridge term keeps it defined when two units coincide).

No gradient descent is involved.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import _layers
from models._registry import Family, register_model
from models.errors import LearningRuleError, ModelConfigError
from models.rules import register_rule
from utils.checks import is_count
from utils.images import IMAGE_SHAPE

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


# --- building block ----------------------------------------------------------

@_SERIALIZABLE
class RadialBasis(keras.layers.Layer):
    """Gaussian units: ``exp(-||x - c_j||^2 / (2 sigma_j^2))`` for each centre ``c_j``.

    Args:
        centers: number of hidden units (centres).
    """

    learning_rule = "rbf_kmeans"

    def __init__(self, centers, **kwargs):
        super().__init__(**kwargs)
        self.centers = int(centers)

    def build(self, input_shape):
        self.features = _layers.features(tuple(input_shape[1:]))
        # Set by the rule (k-means, then the width heuristic), never by backprop.
        self.kernel = self.add_weight(shape=(self.centers, self.features), name="centers",
                                      initializer="zeros", trainable=False)
        self.widths = self.add_weight(shape=(self.centers,), name="widths",
                                      initializer="ones", trainable=False)

    def call(self, x):
        x = ops.reshape(x, (-1, 1, self.features))
        # The difference form (not x^2 - 2xc + c^2) has no cancellation, so every
        # runtime computes the same distances to the last digits.
        d2 = ops.sum(ops.square(x - self.kernel[None]), axis=-1)
        # One multiply by -1/(2 sigma^2) (a constant once exported): int8 TFLite has
        # no kernel for a negation.
        return ops.exp(d2 * (-0.5 / ops.square(self.widths)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.centers)

    def audit_formula(self):
        k, d = self.centers, self.features
        return (f"({k} x {d}) centres + {k} widths = {k * d + k:,}",
                "set by k-means and the P-nearest-centre width rule, not by backprop")

    def get_config(self):
        return {**super().get_config(), "centers": self.centers}


# --- model -------------------------------------------------------------------

def _build(cfg: dict) -> keras.Model:
    inputs = keras.Input(cfg["input_shape"], name="input")
    phi = RadialBasis(cfg["centers"], name="rbf")(inputs)
    scores = keras.layers.Dense(cfg["num_classes"], name="output", trainable=False)(phi)
    return keras.Model(inputs, scores)


def _count_params(cfg: dict) -> int:
    k = cfg["centers"]
    return k * _layers.features(cfg["input_shape"]) + k + _layers.dense_params(k, cfg["num_classes"])


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "centers")
    if cfg["num_classes"] < 2:
        raise ModelConfigError(f"rbf_network needs num_classes >= 2 (one score per class). "
                               f"Received: num_classes={cfg['num_classes']}")


RBF_NETWORK = Family(
    name="rbf_network",
    defaults=dict(
        input_shape=IMAGE_SHAPE,  # the zoo's images (iris: input_shape=(4,), num_classes=3)
        centers=100,              # digits: 0.926 test accuracy (10 centres: 0.642)
        num_classes=10,
    ),
    build=_build,
    count_params=_count_params,
    validate=_validate,
    reference="Broomhead & Lowe (1988), Complex Systems 2:321; Moody & Darken (1989), "
              "Neural Computation 1(2):281",
    rule_owner=RadialBasis,
)


@register_model
def rbf_network(**overrides):
    """RBF network: Gaussian units at k-means centres, least-squares linear output (100 centres)."""
    return RBF_NETWORK.variant(overrides)


# --- learning rule -----------------------------------------------------------

@register_rule("rbf_kmeans", supervised=True, default_epochs=20,
               reference="Moody & Darken (1989), Neural Computation 1(2):281")
def rbf_kmeans(model, x, y, *, epochs, seed, on_epoch_end, neighbors=2, ridge=1e-8) -> None:
    """k-means centres, P-nearest-centre widths, least-squares output layer.

    Logs per epoch: ``inertia`` (mean squared distance to the nearest centre) and
    ``accuracy`` (top-1 on ``x``).

    Raises:
        LearningRuleError: ``x``/``y`` of the wrong shape, labels outside
            ``0..num_classes-1``, more centres than samples, or ``neighbors`` < 1
            (more than ``centers - 1`` uses all other centres).
    """
    rbf, output = model.get_layer("rbf"), model.get_layer("output")
    x, y = _check_data(x, y, rbf.features, output.units)
    k = rbf.centers
    if k > len(x):
        raise LearningRuleError(
            f"centers={k} exceeds the number of samples ({len(x)}): k-means needs at least one "
            f"sample per centre. Fix: create the model with centers <= {len(x)}.")
    if not is_count(neighbors):
        raise LearningRuleError(f"neighbors must be an integer >= 1 (other centres averaged "
                                f"per width). Received: neighbors={neighbors!r}")
    targets = np.eye(output.units)[y]
    centers = rbf.kernel.numpy().astype(np.float64)
    for epoch in range(epochs):
        rng = np.random.default_rng((seed, epoch))
        if np.ptp(centers, axis=0).max() == 0:  # a fresh model: every centre equal
            centers = _kmeans_plus_plus(x, k, rng)
        centers, inertia = _lloyd_step(x, centers)
        widths = _widths(centers, min(neighbors, k - 1)) if k > 1 else np.ones(1)
        phi = np.exp(-_sq_dist(x, centers) / (2.0 * widths ** 2))
        design = np.hstack([phi, np.ones((len(x), 1))])
        solution = np.linalg.solve(design.T @ design + ridge * np.eye(k + 1), design.T @ targets)
        rbf.kernel.assign(centers.astype(np.float32))
        rbf.widths.assign(widths.astype(np.float32))
        output.set_weights([solution[:k].astype(np.float32), solution[k].astype(np.float32)])
        accuracy = float(np.mean((design @ solution).argmax(1) == y))
        on_epoch_end(epoch, {"inertia": inertia, "accuracy": accuracy})


def _check_data(x, y, features: int, classes: int):
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1) if x.ndim > 1 else x
    y = np.asarray(y).reshape(-1)
    if x.ndim != 2 or x.shape[1] != features or len(y) != len(x) or not len(x):
        raise LearningRuleError(f"rbf_network expects x [n, {features}] (or the model's input "
                                f"shape) and y [n]. Received: x.shape={np.shape(x)}, "
                                f"y.shape={np.shape(y)}")
    if not np.isfinite(x).all():
        raise LearningRuleError("x holds NaN or infinite values; clean the data first.")
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
        raise LearningRuleError(f"y must hold integer class labels. Received dtype {y.dtype}.")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= classes:
        raise LearningRuleError(f"labels must be in 0..{classes - 1} (num_classes={classes}). "
                                f"Received labels from {y.min()} to {y.max()}.")
    return x, y


def _sq_dist(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def _kmeans_plus_plus(x, k: int, rng) -> np.ndarray:
    """Arthur & Vassilvitskii (2007): each next centre drawn with probability ~ D(x)^2."""
    centers = [x[rng.integers(len(x))]]
    d2 = _sq_dist(x, centers[0][None])[:, 0]
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centers.append(x[i])
        d2 = np.minimum(d2, _sq_dist(x, x[i][None])[:, 0])
    return np.stack(centers)


def _lloyd_step(x, centers):
    """Assign every sample to its nearest centre, move each centre to its mean.

    An empty cluster takes the sample farthest from its centre (deterministic).
    Returns the new centres and the inertia of the assignment.
    """
    d2 = _sq_dist(x, centers)
    nearest = d2.argmin(1)
    inertia = float(d2[np.arange(len(x)), nearest].mean())
    new = centers.copy()
    for j in range(len(centers)):
        members = x[nearest == j]
        if len(members):
            new[j] = members.mean(0)
        else:
            far = d2[np.arange(len(x)), nearest].argmax()
            new[j] = x[far]
            nearest[far] = j
            d2[far, :] = 0.0
    return new, inertia


def _widths(centers, p: int) -> np.ndarray:
    """RMS distance from each centre to its ``p`` nearest other centres (> 0)."""
    d2 = _sq_dist(centers, centers)
    np.fill_diagonal(d2, np.inf)
    nearest = np.sort(d2, axis=1)[:, :p]
    widths = np.sqrt(nearest.mean(1))
    # Coincident centres would give zero width; borrow the mean width instead.
    positive = widths[widths > 0]
    return np.where(widths > 0, widths, positive.mean() if len(positive) else 1.0)
