"""Bidirectional associative memory (BAM): pairs (x, y) recalled in both directions.

Reference: B. Kosko, "Bidirectional associative memories", IEEE Transactions on
Systems, Man, and Cybernetics 18(1):49-60 (1988).

Storage (``models.learn(model, x, y)``, rule ``bam_hebbian``): ``W = sum_k x_k y_k^T``
[input_units, output_units]. Energy ``E(x, y) = -1/2 x^T W y``. Recall (the call,
from x): ``steps`` round trips ``y <- sgn(x W)``, ``x <- sgn(y W^T)``, each layer
updated at once; it returns y. ``model.backward(y)`` runs the same trips from y and
returns x. A unit whose field is exactly 0 keeps its sign; a 0 in a bipolar input means
"unknown" (an erased bit) and contributes nothing to the first field.
"""
from __future__ import annotations

import keras
import numpy as np
import scipy.linalg
from keras import ops

from models import _classic, _layers, _memory
from models._registry import Family, register_model
from models.errors import LearningRuleError
from models.rules import register_rule

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


@_SERIALIZABLE
class BamRecall(keras.layers.Layer):
    """BAM recall with correlation matrix ``kernel`` [input_units, output_units]."""

    def __init__(self, input_units, output_units, steps=5, **kwargs):
        super().__init__(**kwargs)
        self.input_units, self.output_units = int(input_units), int(output_units)
        self.steps = int(steps)
        self.activation = ops.sign  # read by models.audit: the bipolar threshold unit

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(self.input_units, self.output_units),
                                      initializer="zeros", trainable=False, name="kernel")

    def recall(self, start, backward=False):
        """Round trips from ``start``; returns the far side (y, or x when ``backward``)."""
        w, wt = self.kernel, ops.transpose(self.kernel)
        forward, back = (wt, w) if backward else (w, wt)
        near, far = start, None
        for _ in range(self.steps):
            field = ops.matmul(near, forward)
            # The far side is unknown before its first update: a zero field gives -1.
            far = _memory.threshold(field, field if far is None else far)
            near = _memory.threshold(ops.matmul(far, back), near)
        return far

    def call(self, x):
        return self.recall(_memory.to_bipolar(_classic.flat(x, self.input_units)))

    def energy(self, x, y):
        return -0.5 * ops.sum(ops.matmul(x, self.kernel) * y, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_units)

    def audit_formula(self):
        n, m = self.input_units, self.output_units
        return (f"({n} x {m}) = {n * m:,}",
                "one matrix serves both directions (W forward, W^T backward)")

    def get_config(self):
        return {**super().get_config(), "input_units": self.input_units,
                "output_units": self.output_units, "steps": self.steps}


@_SERIALIZABLE
class Bam(_classic.ClassicModel):
    """BAM; the call returns the recalled y ``[batch, output_units]``."""

    learning_rule = "bam_hebbian"

    @staticmethod
    def _graph(inputs, config):
        return BamRecall(config["input_units"], config["output_units"], config["steps"],
                         name="bam")(inputs)

    @property
    def memory(self) -> BamRecall:
        return self.get_layer("bam")

    def backward(self, y) -> np.ndarray:
        """The x recalled from ``y`` ``[n, output_units]`` (bipolar, or binary 0/1)."""
        y = _check_width(y, self.memory.output_units, "y")
        return np.asarray(self.memory.recall(_memory.bipolar_numpy(y), backward=True))

    def energy(self, x, y) -> np.ndarray:
        """``-1/2 x^T W y`` for each row pair of ``x`` and ``y``."""
        x = _memory.bipolar_numpy(self.as_rows(x))
        y = _memory.bipolar_numpy(_check_width(y, self.memory.output_units, "y"))
        if len(x) != len(y):
            raise LearningRuleError(f"energy needs one y per x. Received: {len(x)} x rows, "
                                    f"{len(y)} y rows")
        return np.asarray(self.memory.energy(x, y))

    # train.py hooks (docs/models.md, "Hooks of a model with its own rule")
    def prepare_training_data(self, x, y):
        """Digits -> pairs (class prototype image, class code): see :func:`class_codes`."""
        prototypes, classes = _memory.class_prototypes(x, y)
        return prototypes, class_codes(len(classes), self.memory.output_units)

    def evaluate_rule(self, x, y) -> dict:
        """Recall a code from each test image (binarised as for training, see
        ``models._memory.image_patterns``); score its nearest class code."""
        y = np.asarray(y).reshape(-1)
        codes = class_codes(int(y.max()) + 1, self.memory.output_units)
        recalled = self.predict_rows(_memory.image_patterns(self.as_rows(x)))
        return {"recall_accuracy": float(np.mean(
            _classic.nearest_rows(recalled, codes) == y))}


def class_codes(classes: int, units: int) -> np.ndarray:
    """Bipolar codes ``[classes, units]``: rows 1.. of a Sylvester-Hadamard matrix.

    Rows of a Hadamard matrix are mutually orthogonal and balanced, which keeps the
    cross-talk between stored pairs low (one-hot codes share most of their -1s).

    Raises:
        LearningRuleError: fewer than ``classes + 1`` rows fit in ``units`` columns.
    """
    size = 1 << max(units - 1, 1).bit_length()  # the power of two >= units
    if classes + 1 > size:
        raise LearningRuleError(f"A BAM with output_units={units} cannot give {classes} "
                                f"classes distinct codes. Fix: output_units >= {classes + 1}.")
    return scipy.linalg.hadamard(size)[1:classes + 1, :units].astype(np.float32)


def _check_width(a, units: int, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    a = a[None] if a.ndim == 1 else a
    if a.ndim != 2 or a.shape[1] != units:
        raise LearningRuleError(f"{what} must be [n, {units}]. Received: {what}.shape={a.shape}")
    return a


@register_rule("bam_hebbian", supervised=True, default_epochs=1,
               reference="Kosko (1988), IEEE Trans. SMC 18(1):49-60")
def bam_hebbian(model, x, y, *, epochs, seed, on_epoch_end) -> None:
    """Store the pairs ``(x[k], y[k])`` (bipolar or binary): ``W = sum_k x_k y_k^T``.

    One-shot and deterministic; every epoch recomputes the same matrix. Logs per
    epoch: ``pairs``, ``forward_recall`` and ``backward_recall`` (fractions of the
    stored pairs recalled exactly from their own x, and from their own y).

    Raises:
        LearningRuleError: x and y have different numbers of rows, or are not bipolar
            or binary, or have the wrong widths.
    """
    memory = model.memory
    y = np.asarray(y)
    if len(np.asarray(x)) != len(y):
        raise LearningRuleError(f"BAM stores pairs: x and y need the same number of rows. "
                                f"Received: {len(np.asarray(x))} x rows, {len(y)} y rows")
    px = _memory.bipolar_patterns(x, memory.input_units, "x")
    py = _memory.bipolar_patterns(y, memory.output_units, "y")
    w = (px.T @ py).astype(np.float32)
    for epoch in range(epochs):
        memory.kernel.assign(w)
        fwd = np.all(np.asarray(memory.recall(px)) == py, axis=1).mean()
        bwd = np.all(np.asarray(memory.recall(py, backward=True)) == px, axis=1).mean()
        on_epoch_end(epoch, {"pairs": len(px), "forward_recall": float(fwd),
                             "backward_recall": float(bwd)})


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "output_units")
    _layers.positive_int(cfg, "steps")


BAM = Family(
    name="bam",
    defaults=dict(
        input_shape=(16,),
        input_units=None,   # None: the input's feature count
        output_units=16,    # digits: Hadamard codes of the 10 classes fit in 16 units
        steps=5,            # round trips x -> y -> x
    ),
    build=lambda cfg: Bam(**cfg),
    count_params=lambda cfg: cfg["input_units"] * cfg["output_units"],
    reference="Kosko (1988), 'Bidirectional associative memories', IEEE Trans. SMC 18(1):49-60",
    derive=lambda cfg, given: _classic.derive_units(cfg, given, "input_units"),
    validate=_validate,
    rule_owner=Bam,
    decision="sign",
)


@register_model
def bam(**overrides):
    """Bidirectional associative memory: W = sum x y', recall y from x or x from y."""
    return BAM.variant(overrides)
