"""Hopfield network: a content-addressable memory of bipolar patterns.

Reference: J. J. Hopfield, "Neural networks and physical systems with emergent
collective computational abilities", PNAS 79(8):2554-2558 (1982). Capacity
0.138 N patterns: D. J. Amit, H. Gutfreund, H. Sompolinsky, "Storing infinite
numbers of patterns in a spin-glass model of neural networks", Phys. Rev. Lett.
55:1530 (1985).

Storage (Hebb's rule, ``models.learn``): ``W = sum_p p p^T`` with a zero diagonal and no
1/N scaling. Energy ``E(s) = -1/2 s^T W s``. Recall (the model's call) runs ``steps``
sweeps; ``mode="async"`` updates one unit at a time in index order 0..N-1 in each
sweep (each update never raises the energy), ``mode="sync"`` updates all units at once
per step. A unit whose field is exactly 0 keeps its sign. Both orders are fixed, so
the exported graph (a loop of ``steps * N`` single-unit updates) is deterministic.
"""
from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from models import _classic, _layers, _memory
from models._registry import Family, register_model
from models.rules import register_rule

CAPACITY = 0.138  # patterns per unit (Amit, Gutfreund & Sompolinsky 1985)
_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


class CapacityWarning(UserWarning):
    """More patterns stored than the network can recall reliably."""


# --- building block --------------------------------------------------------------------

@_SERIALIZABLE
class HopfieldRecall(_memory.SquareMemory):
    """Recall of a Hopfield net with a symmetric weight matrix ``kernel`` [units, units]."""

    def __init__(self, units, steps=5, mode="async", **kwargs):
        super().__init__(units, steps, **kwargs)
        self.mode = mode
        self.activation = ops.sign  # read by models.audit: the bipolar threshold unit

    def recall(self, s, steps):
        """``steps`` update steps from bipolar state ``s`` [batch, units]."""
        if self.mode == "sync":
            for _ in range(steps):
                s = _memory.threshold(ops.matmul(s, self.kernel), s)
            return s
        n = self.units

        def update_one_unit(t, s):
            i = t % n  # sweeps visit the units in index order
            field = ops.sum(s * ops.take(self.kernel, i, axis=0), axis=1, keepdims=True)
            new = _memory.threshold(field, ops.take(s, ops.expand_dims(i, 0), axis=1))
            return ops.where(ops.one_hot(i, n) > 0.5, new, s)

        return ops.fori_loop(0, steps * n, update_one_unit, s)

    def audit_formula(self):
        n = self.units
        return (f"({n} x {n}) = {n * n:,}",
                f"symmetric with zero diagonal: {n} x {n - 1} / 2 = {n * (n - 1) // 2:,} independent")

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


# --- model -----------------------------------------------------------------------------

@_SERIALIZABLE
class Hopfield(_memory.AutoAssociative):
    """Hopfield network; the call returns the recalled bipolar state ``[batch, units]``."""

    learning_rule = "hebbian"
    memory_name, title = "hopfield", "Hopfield"

    @staticmethod
    def _graph(inputs, config):
        return HopfieldRecall(config["units"], config["steps"], config["mode"],
                              name="hopfield")(inputs)


# --- learning rule -------------------------------------------------------------------

@register_rule("hebbian", supervised=False, default_epochs=1,
               reference="Hebb (1949); Hopfield (1982) PNAS 79(8):2554")
def hebbian(model, x, y, *, epochs, seed, on_epoch_end) -> None:
    """Store ``x`` (bipolar or binary patterns): ``W = sum_p p p^T``, zero diagonal.

    Storage is one-shot; every epoch recomputes the same matrix (the rule has no
    randomness). Warns (:class:`CapacityWarning`) above 0.138 N patterns.
    Logs per epoch: ``patterns``, ``stable_fraction`` (stored patterns that one update
    leaves unchanged) and ``energy`` (mean energy of the stored patterns).
    """
    units = model.memory.units
    p = _memory.bipolar_patterns(x, units, "x")
    if len(p) > CAPACITY * units:
        warnings.warn(
            f"Storing {len(p)} patterns in a Hopfield network of N = {units} units exceeds "
            f"its capacity of about 0.138 N = {CAPACITY * units:.1f} patterns (Amit, "
            "Gutfreund & Sompolinsky 1985): recall will fail for many of them. Fix: store "
            f"at most {int(CAPACITY * units)} patterns or use more units.",
            CapacityWarning, stacklevel=3)
    w = p.T @ p
    np.fill_diagonal(w, 0.0)
    for epoch in range(epochs):
        model.memory.kernel.assign(w.astype(np.float32))
        field = p @ w
        stable = np.all(np.where(field == 0, p, np.sign(field)) == p, axis=1)
        on_epoch_end(epoch, {"patterns": len(p), "stable_fraction": float(stable.mean()),
                             "energy": float(np.mean(-0.5 * np.sum(p * field, axis=1)))})


# --- family and builders -------------------------------------------------------------

def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "steps")
    _classic.check_choice(cfg, "mode", ("async", "sync"))


HOPFIELD = Family(
    name="hopfield",
    defaults=dict(
        input_shape=(64,),
        units=None,      # None: the input's feature count
        steps=5,         # sweeps over all units (async) or synchronous updates
        mode="async",
    ),
    build=lambda cfg: Hopfield(**cfg),
    count_params=lambda cfg: cfg["units"] ** 2,
    reference="Hopfield (1982), PNAS 79(8):2554-2558; capacity 0.138 N: Amit, Gutfreund & "
              "Sompolinsky (1985)",
    derive=lambda cfg, given: _classic.derive_units(cfg, given, "units"),
    validate=_validate,
    rule_owner=Hopfield,
    decision="sign",
)


@register_model
def hopfield(**overrides):
    """Hopfield net: Hebbian storage, async recall in fixed unit order, E = -1/2 s'Ws."""
    return HOPFIELD.variant(overrides)
