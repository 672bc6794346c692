"""Boltzmann and Cauchy machines: binary stochastic units with symmetric weights.

References: D. H. Ackley, G. E. Hinton, T. J. Sejnowski, "A learning algorithm
for Boltzmann machines", Cognitive Science 9:147-169, 1985; for the Cauchy
machine, H. Szu, R. Hartley, "Fast simulated annealing", Physics Letters A
122:157-162, 1987 and Y. Takefuji, H. Szu, "Design of parallel distributed
Cauchy machines", IJCNN 1989.

Units ``s`` are 0/1 (visible first, then hidden), the weights ``[W, b]`` with W
symmetric with a zero diagonal, ``E(s) = -1/2 s^T W s - b^T s``. The dynamics
(unit noise and schedules) live in ``models.annealing``: the Boltzmann machine
uses logistic noise and ``T_k = T0 / log(1 + k)``, the Cauchy machine Cauchy
noise and ``T_k = T0 / (1 + k)``.

The call anneals from the input state: the visible units start at the input,
hidden units at 0, and units ``0..clamped-1`` keep their input values; then
``steps`` sweeps over the other units in index order and one greedy sweep at
T = 0 (each unit takes the sign of its energy gap). The call's noise is fixed: the thresholds
``-T_k xi`` are drawn once from ``numpy.random.default_rng(seed)`` (``seed`` is in
the config) and built into the graph as a constant, so the exported graph is
deterministic and a reloaded model computes the same function.
``models.anneal(model, steps=, seed=)`` is the search itself: random start, a
random unit order and fresh noise every sweep; it returns the lowest-energy
state visited.

Learning: ``models.learn`` runs Ackley, Hinton & Sejnowski's rule
(``models.boltzmann_learning``).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import _classic, _layers, annealing, boltzmann_learning  # noqa: F401 (its rule)
from models._registry import Family, register_model
from models.errors import ModelConfigError
from utils.checks import is_count

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


# --- building block ----------------------------------------------------------

@_SERIALIZABLE
class StochasticUnits(keras.layers.Layer):
    """Binary units with symmetric weights; the call anneals with fixed noise.

    Args:
        units: all units (visible first, then hidden).
        visible_units: units read from the input; the hidden ones start at 0.
        clamped: leading units that keep their input value during the call.
        steps: annealing sweeps before the final T = 0 sweep.
        temperature: T0 of the schedule.
        schedule: "boltzmann" or "cauchy".
        seed: seed of the call's fixed noise.
    """

    def __init__(self, units, visible_units, clamped=0, steps=20, temperature=2.0,
                 schedule="boltzmann", seed=0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.visible_units, self.clamped = int(units), int(visible_units), int(clamped)
        self.steps, self.temperature, self.schedule = int(steps), float(temperature), schedule
        self.seed = int(seed)

    def build(self, input_shape):
        n = self.units
        # Learned by the Ackley-Hinton-Sejnowski rule from zero, never by backprop.
        self.kernel = self.add_weight(shape=(n, n), name="kernel", initializer="zeros",
                                      trainable=False)
        self.bias = self.add_weight(shape=(n,), name="bias", initializer="zeros",
                                    trainable=False)
        self.thresholds = annealing.fixed_thresholds(self.schedule, self.temperature,
                                                     self.steps, n - self.clamped, self.seed)

    def call(self, x):
        v = _classic.flat(x, self.visible_units)
        hidden = self.units - self.visible_units
        s = ops.concatenate([v, ops.zeros((ops.shape(v)[0], hidden), v.dtype)], axis=1) \
            if hidden else v
        free, first = self.units - self.clamped, self.clamped
        thresholds = ops.convert_to_tensor(self.thresholds.reshape(-1))

        def update_one_unit(t, s):
            i = first + t % free  # each sweep visits the free units in index order
            gap = ops.sum(s * ops.take(self.kernel, i, axis=0), axis=1, keepdims=True) \
                + ops.take(self.bias, i)
            new = ops.cast(gap > ops.take(thresholds, t), s.dtype)
            return ops.where(ops.one_hot(i, self.units) > 0.5, new, s)

        return ops.fori_loop(0, self.thresholds.size, update_one_unit, s) if free else s

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def audit_formula(self):
        n = self.units
        return (f"({n} x {n}) + {n} = {n * n + n:,}",
                f"W symmetric with zero diagonal: {n} x {n - 1} / 2 = {n * (n - 1) // 2:,} "
                f"independent weights + {n} biases")

    def get_config(self):
        return {**super().get_config(), "units": self.units, "visible_units": self.visible_units,
                "clamped": self.clamped, "steps": self.steps, "temperature": self.temperature,
                "schedule": self.schedule, "seed": self.seed}


# --- models ------------------------------------------------------------------

@_SERIALIZABLE
class BoltzmannMachine(_classic.ClassicModel):
    """Boltzmann machine; the call returns the annealed state ``[batch, units]``."""

    learning_rule = "boltzmann"
    schedule = "boltzmann"

    @classmethod
    def _graph(cls, inputs, config):
        return StochasticUnits(
            config["units"], _layers.features(config["input_shape"]), config["clamped"],
            config["steps"], config["temperature"], cls.schedule, config["seed"],
            name="units")(inputs)

    @property
    def machine(self) -> StochasticUnits:
        return self.get_layer("units")

    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` as float64 arrays."""
        return (np.asarray(self.machine.kernel.numpy(), np.float64),
                np.asarray(self.machine.bias.numpy(), np.float64))

    def energy(self, states) -> np.ndarray:
        """``E(s) = -1/2 s^T W s - b^T s`` for each row of ``states`` ``[n, units]``."""
        w, b = self.parameters()
        s = np.asarray(states, np.float64).reshape(-1, self.machine.units)
        return -0.5 * np.einsum("ni,ij,nj->n", s, w, s) - s @ b

    # train.py hooks (docs/models.md, "Hooks of a model with its own rule")
    def prepare_training_data(self, x, y):
        """Images in [0, 1] -> binary patterns (pixels above 0.5 are on); no labels."""
        return (np.asarray(x) > 0.5).astype(np.float32), None

    def evaluate_rule(self, x, y) -> dict:
        """Mean energy of the binarised patterns, and the fraction of visible bits the
        call (annealing from each pattern) changes, on the first 100 patterns: the call
        updates one unit at a time, 21 sweeps of every unit."""
        v = self.as_rows(np.asarray(x[:100]) > 0.5)
        hidden = np.zeros((len(v), self.machine.units - v.shape[1]), np.float32)
        states = self.predict_rows(v)
        return {"energy": float(self.energy(np.hstack([v, hidden])).mean()),
                "bits_changed": float(np.mean(states[:, :v.shape[1]] != v))}


@_SERIALIZABLE
class CauchyMachine(BoltzmannMachine):
    """Cauchy machine: Cauchy noise and the fast schedule ``T0 / (1 + k)``."""

    schedule = "cauchy"


def anneal(model, *, steps=None, seed=0) -> np.ndarray:
    """Search the model's lowest-energy state with its own annealing schedule.

    From a random state, ``steps`` sweeps (each unit once, in a random order, with
    fresh noise) at ``T_k`` for k = 1..steps, then one sweep at T = 0. Every unit
    update is tracked, and the lowest-energy state visited is returned.

    Args:
        model: a ``boltzmann`` or ``cauchy_machine`` model.
        steps: annealing sweeps; None uses the model's ``steps``.
        seed: seed of the start state, the unit orders and the noise.

    Returns:
        float32 array ``[units]`` of 0/1: the best state found.

    Raises:
        ModelConfigError: ``model`` is not a Boltzmann or Cauchy machine, or
            ``steps`` < 1.
    """
    if not isinstance(model, BoltzmannMachine):
        raise ModelConfigError(f"models.anneal needs a 'boltzmann' or 'cauchy_machine' model. "
                               f"Received: {type(model).__name__}")
    layer = model.machine
    steps = layer.steps if steps is None else steps
    if not is_count(steps):
        raise ModelConfigError(f"steps must be an integer >= 1. Received: steps={steps!r}")
    w, b = model.parameters()
    best = annealing.search(w, b, model.schedule, layer.temperature, int(steps),
                            np.random.default_rng(seed))
    return best.astype(np.float32)


# --- families and builders ---------------------------------------------------

def _derive(cfg: dict, given: set) -> None:
    """``units`` = input features + ``hidden_units``; ``units`` alone sets the input."""
    _layers.positive_int(cfg, "hidden_units", minimum=0)
    features = _layers.features(cfg["input_shape"])
    if cfg["units"] is None:
        cfg["units"] = features + cfg["hidden_units"]
        return
    _layers.positive_int(cfg, "units")
    visible = cfg["units"] - cfg["hidden_units"]
    if visible != features:
        if "input_shape" in given or visible < 1:
            raise ModelConfigError(
                f"units={cfg['units']} must equal the input's {features} features + "
                f"hidden_units={cfg['hidden_units']}. Fix: pass only one of units and "
                "input_shape, or make them agree.")
        cfg["input_shape"] = (visible,)


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "steps")
    _layers.positive_int(cfg, "seed", minimum=0)
    _classic.check_number("temperature", cfg["temperature"], low=0.0, open_low=True)
    visible = cfg["units"] - cfg["hidden_units"]
    _layers.positive_int(cfg, "clamped", minimum=0)
    if cfg["clamped"] > visible:
        raise ModelConfigError(f"clamped must be at most the {visible} visible units. "
                               f"Received: clamped={cfg['clamped']}")
    if cfg["connectivity"] is not None:
        cfg["connectivity"] = _connectivity(cfg["connectivity"], cfg["units"])


def _connectivity(value, n: int) -> tuple:
    try:
        mask = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        mask = None
    if (mask is None or mask.shape != (n, n) or not np.isin(mask, (0, 1)).all()
            or not (mask == mask.T).all() or mask.diagonal().any()):
        raise ModelConfigError(
            f"connectivity must be a symmetric {n} x {n} matrix of 0/1 with a zero diagonal "
            f"(1 = connected), or None for all pairs. Received shape "
            f"{None if mask is None else mask.shape}")
    return tuple(tuple(int(v) for v in row) for row in mask)


_DEFAULTS = dict(
    input_shape=(16,),
    units=None,          # None: input features + hidden_units (and vice versa)
    hidden_units=0,
    steps=20,            # annealing sweeps of the call (then one sweep at T = 0)
    temperature=2.0,     # T0
    clamped=0,           # leading units the call keeps at their input value
    seed=0,              # seed of the call's fixed noise
    connectivity=None,   # None: every pair; else a symmetric 0/1 matrix
)


def _family(name, cls, reference):
    return Family(name=name, defaults=dict(_DEFAULTS), build=lambda cfg: cls(**cfg),
                  count_params=lambda cfg: cfg["units"] ** 2 + cfg["units"],
                  reference=reference, derive=_derive, validate=_validate,
                  decision="bits", rule_owner=cls)


BOLTZMANN = _family("boltzmann", BoltzmannMachine,
                    "Ackley, Hinton & Sejnowski, 'A learning algorithm for Boltzmann machines', "
                    "Cognitive Science 9:147-169, 1985")
CAUCHY_MACHINE = _family("cauchy_machine", CauchyMachine,
                         "Szu & Hartley, 'Fast simulated annealing', Phys. Lett. A 122, 1987; "
                         "Takefuji & Szu, 'Parallel distributed Cauchy machines', IJCNN 1989")


@register_model
def boltzmann(**overrides):
    """Boltzmann machine (16 binary units): logistic noise, T_k = T0/log(1+k), AHS learning."""
    return BOLTZMANN.variant(overrides)


@register_model
def cauchy_machine(**overrides):
    """Cauchy machine (16 binary units): Cauchy noise, fast schedule T_k = T0/(1+k)."""
    return CAUCHY_MACHINE.variant(overrides)
