"""What the memory nets (Hopfield, BAM, BSB) share: the bipolar conventions, the square
symmetric memory layer of the auto-associative nets, and their train.py hooks.

Bipolar convention: a row with a negative entry is read as bipolar (values in
[-1, 1], 0 meaning "unknown", e.g. an erased bit); a row without one is read as
binary or grey in [0, 1] and mapped by ``2x - 1`` (so 0 -> -1, 1 -> +1). Stored
patterns must be exactly bipolar (+1/-1) or binary (0/1).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import _classic, _plots
from models.errors import LearningRuleError


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


def image_patterns(x) -> np.ndarray:
    """Images ``[n, ...]`` in [0, 1] -> bipolar rows: +1 where a pixel is brighter than
    the mean image of ``x``, -1 elsewhere.

    Thresholding each pixel at its mean rather than at 0.5 removes what all digits
    share (the dark border), which is what makes digit patterns correlated: the
    class prototypes of the embedded digits overlap 0.80 on average thresholded at
    0.5 and 0.44 this way, and Hebbian memories need nearly orthogonal patterns.
    """
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    return np.where(x > x.mean(axis=0), 1.0, -1.0).astype(np.float32)


def class_prototypes(x, y) -> tuple[np.ndarray, np.ndarray]:
    """One bipolar prototype per class: +1 where the class's mean image is brighter than
    the mean image of all of ``x`` (see :func:`image_patterns`).

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
    return np.where(means > x.mean(axis=0), 1.0, -1.0).astype(np.float32), classes


def recall_scores(model, x, y) -> dict:
    """Test metrics of Hopfield and BSB on images: recall each image (as
    :func:`image_patterns`) and score the class of the nearest class prototype of the
    same data (Hamming)."""
    prototypes, classes = class_prototypes(x, y)
    start = image_patterns(model.as_rows(x))
    final = np.sign(model.predict_rows(start))
    nearest = classes[_classic.nearest_rows(final, prototypes)]
    return {"recall_accuracy": float(np.mean(nearest == np.asarray(y).reshape(-1))),
            "energy": float(np.mean(model.energy(final)))}


def memory_plots(model, x, out_dir, title) -> dict:
    """``energy.png`` (energy of 16 images over the recall steps, binarised as the
    model's hooks do) and, for image inputs, ``recall.png`` (8 starts and their
    recalled states)."""
    rows = image_patterns(model.as_rows(x))
    # Evenly spaced rows: datasets are often sorted by class.
    start = rows[np.linspace(0, len(rows) - 1, min(16, len(rows))).astype(int)]
    trace = model.recall_trace(start)
    energies = np.stack([model.energy(s) for s in trace])
    paths = {"energy": _plots.energy_plot(
        energies, f"{out_dir}/energy.png",
        title=f"{title}: energy of {len(start)} images over the recall steps")}
    shape = _plots.image_shape(model.get_config()["input_shape"])
    if shape is not None:
        paths["recall"] = _plots.image_grid(
            np.concatenate([trace[0][:8], trace[-1][:8]]), f"{out_dir}/recall.png",
            shape=shape, grid=(2, 8), title=f"{title}: start (top) and recalled state (bottom)")
    return paths


class SquareMemory(keras.layers.Layer):
    """Base of Hopfield's and BSB's recall layers: a symmetric ``kernel`` [units, units]
    learned by a rule (never by gradient descent), the energy ``-1/2 s^T W s`` and a
    ``recall(state, steps)`` that subclasses define."""

    def __init__(self, units, steps, **kwargs):
        super().__init__(**kwargs)
        self.units, self.steps = int(units), int(steps)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(self.units, self.units), initializer="zeros",
                                      trainable=False, name="kernel")

    def start(self, x):
        """The call's input as the start state [batch, units]."""
        return to_bipolar(_classic.flat(x, self.units))

    def call(self, x):
        return self.recall(self.start(x), self.steps)

    def energy(self, s):
        """``-1/2 s^T W s`` per row."""
        return -0.5 * ops.sum(s * ops.matmul(s, self.kernel), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "steps": self.steps}


class AutoAssociative(_classic.ClassicModel):
    """Base of the Hopfield and BSB models: energy, recall trace and train.py hooks.

    Subclasses name their recall layer ``memory_name`` and a plot ``title``.
    """

    memory_name = ""
    title = ""

    @property
    def memory(self) -> SquareMemory:
        return self.get_layer(self.memory_name)

    def energy(self, states) -> np.ndarray:
        """Energy ``-1/2 s^T W s`` of each row of ``states`` (bipolar, or binary 0/1)."""
        return np.asarray(self.memory.energy(self.memory.start(self.as_rows(states, "states"))))

    def recall_trace(self, x, steps=None) -> np.ndarray:
        """States ``[steps + 1, n, units]``: the start, then the state after each step."""
        import tensorflow as tf  # the Keras backend; eager, one async sweep takes seconds

        one_step = tf.function(lambda s: self.memory.recall(s, 1))
        states = [np.asarray(self.memory.start(self.as_rows(x)))]
        for _ in range(self.memory.steps if steps is None else steps):
            states.append(np.asarray(one_step(tf.constant(states[-1]))))
        return np.stack(states)

    # train.py hooks (docs/models.md, "Hooks of a model with its own rule")
    def prepare_training_data(self, x, y):
        """Digits -> one bipolar prototype per class (see :func:`class_prototypes`)."""
        return class_prototypes(x, y)

    def evaluate_rule(self, x, y) -> dict:
        """Recall each binarised test image; score the class of the nearest prototype."""
        return recall_scores(self, x, y)

    def learning_plots(self, x, y, history, out_dir) -> dict:
        """``energy.png`` (energy over the recall steps) and ``recall.png``."""
        return memory_plots(self, x, out_dir, self.title)
