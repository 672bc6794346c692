"""Brain-state-in-a-box (BSB): positive feedback drives a state into a corner of the cube.

Reference: J. A. Anderson, J. W. Silverstein, S. A. Ritz, R. S. Jones, "Distinctive
features, categorical perception, and probability learning: some applications of a
neural model", Psychological Review 84(5):413-451 (1977). Energy and convergence:
R. M. Golden, "The brain-state-in-a-box neural model is a gradient descent
algorithm", J. Math. Psychology 30:73-80 (1986).

Storage (``models.learn``, rule ``bsb_hebbian``): ``W = (1/N) sum_p p p^T`` with the
diagonal kept, so a stored pattern is an eigenvector with eigenvalue about 1 and
``feedback`` (alpha) is a plain gain that does not depend on N. Recall (the call):
``x <- clip(x + alpha W x, -1, 1)`` for ``steps`` steps, all units at once; the
output is the state after the last step. W is positive semi-definite, so the energy
``E(x) = -1/2 x^T W x`` never increases (Golden 1986) and the state settles in the
stored corner nearest its start.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

import activations
from models import _classic, _layers, _plots
from models._registry import Family, register_model
from models.rules import register_rule

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


@_SERIALIZABLE
class BsbRecall(keras.layers.Layer):
    """``steps`` BSB updates with feedback matrix ``kernel`` [units, units]."""

    def __init__(self, units, feedback=0.5, steps=20, **kwargs):
        super().__init__(**kwargs)
        self.units, self.feedback, self.steps = int(units), float(feedback), int(steps)
        # The box: hard_tanh is clip(x, -1, 1); the audit names it as the activation.
        self.activation = activations.get_function("hard_tanh")

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(self.units, self.units), initializer="zeros",
                                      trainable=False, name="kernel")

    def recall(self, x, steps):
        for _ in range(steps):  # unrolled: a fixed, short chain of the same ops
            x = ops.clip(x + self.feedback * ops.matmul(x, self.kernel), -1.0, 1.0)
        return x

    def call(self, x):
        x = ops.clip(_classic.to_bipolar(_classic.flat(x, self.units)), -1.0, 1.0)
        return self.recall(x, self.steps)

    def energy(self, x):
        return -0.5 * ops.sum(x * ops.matmul(x, self.kernel), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def audit_formula(self):
        n = self.units
        return (f"({n} x {n}) = {n * n:,}",
                f"symmetric: {n} x {n + 1} / 2 = {n * (n + 1) // 2:,} independent")

    def get_config(self):
        return {**super().get_config(), "units": self.units, "feedback": self.feedback,
                "steps": self.steps}


@_SERIALIZABLE
class Bsb(_classic.ClassicModel):
    """BSB; the call returns the state after ``steps`` updates, in [-1, 1]."""

    learning_rule = "bsb_hebbian"

    @staticmethod
    def _graph(inputs, config):
        return BsbRecall(config["units"], config["feedback"], config["steps"], name="bsb")(inputs)

    @property
    def memory(self) -> BsbRecall:
        return self.get_layer("bsb")

    def energy(self, states) -> np.ndarray:
        """Energy ``-1/2 x^T W x`` of each row of ``states`` (in [-1, 1], or binary 0/1)."""
        x = np.clip(_classic.bipolar_numpy(self.as_rows(states, "states")), -1, 1)
        return np.asarray(self.memory.energy(x))

    def recall_trace(self, x, steps=None) -> np.ndarray:
        """States ``[steps + 1, n, units]``: the start, then the state after each step."""
        states = [np.clip(_classic.bipolar_numpy(self.as_rows(x)), -1, 1)]
        for _ in range(self.memory.steps if steps is None else steps):
            states.append(np.asarray(self.memory.recall(states[-1], 1)))
        return np.stack(states)

    # train.py hooks (HOOKS.md)
    def prepare_training_data(self, x, y):
        """Digits -> one bipolar prototype per class (mean image thresholded at 0.5)."""
        return _classic.class_prototypes(x, y)

    def evaluate_rule(self, x, y) -> dict:
        """Recall each binarised test image; score the class of the nearest prototype."""
        return _classic.memory_scores(self, x, y)

    def learning_plots(self, x, y, history, out_dir) -> dict:
        """``energy.png`` (energy over the recall steps) and ``recall.png``."""
        return _plots.memory_plots(self, x, out_dir, "BSB")


@register_rule("bsb_hebbian", supervised=False, default_epochs=1,
               reference="Anderson, Silverstein, Ritz & Jones (1977), Psych. Review 84(5):413")
def bsb_hebbian(model, x, y, *, epochs, seed, on_epoch_end) -> None:
    """Store ``x`` (bipolar or binary patterns): ``W = (1/N) sum_p p p^T``.

    One-shot and deterministic; every epoch recomputes the same matrix. Logs per
    epoch: ``patterns``, ``stable_fraction`` (stored corners a recall leaves in place)
    and ``energy`` (mean energy of the stored corners).
    """
    units = model.memory.units
    p = _classic.bipolar_patterns(x, units, "x")
    w = (p.T @ p / units).astype(np.float32)
    for epoch in range(epochs):
        model.memory.kernel.assign(w)
        after = np.asarray(model.memory.recall(p, 1))
        on_epoch_end(epoch, {"patterns": len(p),
                             "stable_fraction": float(np.all(after == p, axis=1).mean()),
                             "energy": float(np.mean(-0.5 * np.sum(p * (p @ w), axis=1)))})


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "steps")
    _classic.check_number(cfg, "feedback", 0.0, open_low=True)


BSB = Family(
    name="bsb",
    defaults=dict(
        input_shape=(64,),
        units=None,      # None: the input's feature count
        feedback=0.5,    # alpha; 0.5 reaches the corner from 25% wrong signs in 20 steps
        steps=20,
    ),
    build=lambda cfg: Bsb(**cfg),
    count_params=lambda cfg: cfg["units"] ** 2,
    reference="Anderson, Silverstein, Ritz & Jones (1977), Psychological Review 84(5):413-451; "
              "Golden (1986)",
    derive=lambda cfg, given: _classic.derive_units(cfg, given, "units"),
    validate=_validate,
    learning_rule="bsb_hebbian",
)


@register_model
def bsb(**overrides):
    """Brain-state-in-a-box: x <- clip(x + alpha W x, -1, 1), W = (1/N) sum p p'."""
    return BSB.variant(overrides)
