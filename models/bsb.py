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
from models import _classic, _layers, _memory
from models._registry import Family, register_model
from models.rules import register_rule

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


@_SERIALIZABLE
class BsbRecall(_memory.SquareMemory):
    """``steps`` BSB updates with feedback matrix ``kernel`` [units, units]."""

    def __init__(self, units, feedback=0.5, steps=20, **kwargs):
        super().__init__(units, steps, **kwargs)
        self.feedback = float(feedback)
        # The box: hard_tanh is clip(x, -1, 1); the audit names it as the activation.
        self.activation = activations.get_function("hard_tanh")

    def start(self, x):
        return ops.clip(super().start(x), -1.0, 1.0)

    def recall(self, x, steps):
        for _ in range(steps):  # unrolled: a fixed, short chain of the same ops
            x = ops.clip(x + self.feedback * ops.matmul(x, self.kernel), -1.0, 1.0)
        return x

    def audit_formula(self):
        n = self.units
        return (f"({n} x {n}) = {n * n:,}",
                f"symmetric: {n} x {n + 1} / 2 = {n * (n + 1) // 2:,} independent")

    def get_config(self):
        return {**super().get_config(), "feedback": self.feedback}


@_SERIALIZABLE
class Bsb(_memory.AutoAssociative):
    """BSB; the call returns the state after ``steps`` updates, in [-1, 1]."""

    learning_rule = "bsb_hebbian"
    memory_name, title = "bsb", "BSB"

    @staticmethod
    def _graph(inputs, config):
        return BsbRecall(config["units"], config["feedback"], config["steps"], name="bsb")(inputs)


@register_rule("bsb_hebbian", supervised=False, default_epochs=1,
               reference="Anderson, Silverstein, Ritz & Jones (1977), Psych. Review 84(5):413")
def bsb_hebbian(model, x, y, *, epochs, seed, on_epoch_end) -> None:
    """Store ``x`` (bipolar or binary patterns): ``W = (1/N) sum_p p p^T``.

    One-shot and deterministic; every epoch recomputes the same matrix. Logs per
    epoch: ``patterns``, ``stable_fraction`` (stored corners a recall leaves in place)
    and ``energy`` (mean energy of the stored corners).
    """
    units = model.memory.units
    p = _memory.bipolar_patterns(x, units, "x")
    w = (p.T @ p / units).astype(np.float32)
    for epoch in range(epochs):
        model.memory.kernel.assign(w)
        after = np.asarray(model.memory.recall(p, 1))
        on_epoch_end(epoch, {"patterns": len(p),
                             "stable_fraction": float(np.all(after == p, axis=1).mean()),
                             "energy": float(np.mean(-0.5 * np.sum(p * (p @ w), axis=1)))})


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "steps")
    _classic.check_number("feedback", cfg["feedback"], low=0.0, open_low=True)


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
    rule_owner=Bsb,
    decision="sign",
)


@register_model
def bsb(**overrides):
    """Brain-state-in-a-box: x <- clip(x + alpha W x, -1, 1), W = (1/N) sum p p'."""
    return BSB.variant(overrides)
