"""Kohonen's self-organizing feature map (SOM).

References: T. Kohonen, "Self-organized formation of topologically correct feature
maps", Biological Cybernetics 43:59-69 (1982); T. Kohonen, "The self-organizing map",
Proceedings of the IEEE 78(9):1464-1480 (1990). Topographic error: K. Kiviluoto,
"Topology preservation in self-organizing maps", ICNN (1996).

The map is a ``grid = (rows, cols)`` of units, each with a prototype vector; its one
weight is the prototype matrix ``[rows * cols, features]`` in row-major grid order.
The call returns the Euclidean distance from each input to every unit (row-major);
argmin is the best-matching unit (BMU).

Learning (``models.learn``, rule ``som``): for each sample x in a random order, with
c its BMU, every unit moves ``w_i += lr(t) h_ci(t) (x - w_i)``, where ``h_ci =
exp(-|r_c - r_i|^2 / (2 sigma(t)^2))`` is a Gaussian over grid positions r. Over the
whole run (t from 0 to 1) sigma shrinks from ``sigma`` to ``sigma_end`` and the rate
from ``learning_rate`` to ``learning_rate_end``, both geometrically: a wide
neighbourhood orders the map first, a narrow one then fits the prototypes to the data.
"""
from __future__ import annotations

import keras
import numpy as np

from models import _classic, _layers, _plots
from models._registry import Family, register_model
from models.errors import LearningRuleError, ModelConfigError
from models.rules import register_rule
from utils.checks import is_count, is_number

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


@_SERIALIZABLE
class SomDistances(keras.layers.Layer):
    """Distances from each input to the ``rows * cols`` prototypes (row-major)."""

    def __init__(self, features, grid=(10, 10), **kwargs):
        super().__init__(**kwargs)
        self.features, self.grid = int(features), tuple(int(g) for g in grid)

    def build(self, input_shape):
        # Seeded, so the same config builds the same map; the neighbourhood orders it.
        self.prototypes = self.add_weight(
            shape=(self.grid[0] * self.grid[1], self.features), name="prototypes",
            initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=0), trainable=False)

    def call(self, x):
        return _classic.euclidean_distances(_classic.flat(x, self.features), self.prototypes)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.grid[0] * self.grid[1])

    def audit_formula(self):
        r, c, n = self.grid[0], self.grid[1], self.features
        return (f"({r} x {c} units x {n}) = {r * c * n:,}",
                "one prototype per map unit, row-major grid order")

    def get_config(self):
        return {**super().get_config(), "features": self.features, "grid": list(self.grid)}


@_SERIALIZABLE
class Som(_classic.ClassicModel):
    """SOM; the call returns ``[batch, rows * cols]`` distances to the units."""

    learning_rule = "som"

    @staticmethod
    def _graph(inputs, config):
        return SomDistances(_layers.features(config["input_shape"]), config["grid"],
                            name="som")(inputs)

    @property
    def map(self) -> SomDistances:
        return self.get_layer("som")

    def positions(self) -> np.ndarray:
        """Grid coordinates ``[units, 2]`` (row, col) in row-major order."""
        rows, cols = self.map.grid
        return np.stack(np.divmod(np.arange(rows * cols), cols), axis=1).astype(np.float64)

    def quantization_error(self, x) -> float:
        """Mean distance from each row of ``x`` to its best-matching unit."""
        d = _classic.distances_numpy(self.as_rows(x), self.map.prototypes.numpy())
        return float(d.min(axis=1).mean())

    def topographic_error(self, x) -> float:
        """Fraction of rows whose best and second-best units are not grid neighbours
        (8-neighbourhood, Kiviluoto 1996)."""
        d = _classic.distances_numpy(self.as_rows(x), self.map.prototypes.numpy())
        best2 = np.argsort(d, axis=1)[:, :2]
        pos = self.positions()
        gap = np.abs(pos[best2[:, 0]] - pos[best2[:, 1]]).max(axis=1)
        return float(np.mean(gap > 1))

    def u_matrix(self) -> np.ndarray:
        """``[rows, cols]``: each unit's mean distance to its 8 grid neighbours."""
        w, pos = self.map.prototypes.numpy(), self.positions()
        d = _classic.distances_numpy(w, w)
        near = (np.abs(pos[:, None] - pos[None]).max(-1) == 1)
        return ((d * near).sum(1) / near.sum(1)).reshape(self.map.grid)

    # train.py hooks (docs/models.md, "Hooks of a model with its own rule")
    def evaluate_rule(self, x, y) -> dict:
        """Quantization and topographic error of the test rows."""
        return {"quantization_error": self.quantization_error(x),
                "topographic_error": self.topographic_error(x)}

    def learning_plots(self, x, y, history, out_dir) -> dict:
        """``som_prototypes.png`` (the map's prototypes as images, for image inputs) and
        ``u_matrix.png`` (with each unit's most frequent test label)."""
        rows, cols = self.map.grid
        paths = {}
        shape = _plots.image_shape(self._config["input_shape"])
        if shape is not None:
            paths["som_prototypes"] = _plots.image_grid(
                self.map.prototypes.numpy(), f"{out_dir}/som_prototypes.png", shape=shape,
                grid=(rows, cols), title=f"SOM {rows} x {cols}: prototypes")
        labels = None
        if y is not None:
            bmu = _classic.distances_numpy(self.as_rows(x), self.map.prototypes.numpy()).argmin(1)
            y = np.asarray(y).reshape(-1)
            labels = [np.bincount(y[bmu == u]).argmax() if np.any(bmu == u) else None
                      for u in range(rows * cols)]
        paths["u_matrix"] = _plots.heatmap(
            self.u_matrix(), f"{out_dir}/u_matrix.png", labels=labels,
            title="U-matrix (dark: far from neighbours = cluster border)",
            label="mean distance to neighbours")
        return paths


@register_rule("som", supervised=False, default_epochs=10,
               reference="Kohonen (1982), Biol. Cybern. 43:59; Kohonen (1990), Proc. IEEE 78(9)")
def kohonen(model, x, y, *, epochs, seed, on_epoch_end, sigma=None, sigma_end=0.3,
        learning_rate=None, learning_rate_end=0.02) -> None:
    """Kohonen's competitive learning with a shrinking Gaussian neighbourhood.

    Args:
        sigma: neighbourhood radius (grid units) at the start; None: the model's.
        sigma_end: radius at the end of the run (0.3: neighbours then move by 0.4%).
        learning_rate: rate at the start; None: the model's.
        learning_rate_end: rate at the end of the run.

    Logs per epoch: ``quantization_error``, ``topographic_error``, ``sigma`` and
    ``learning_rate`` (their values at the end of the epoch).
    """
    layer = model.map
    config = model.get_config()
    sigma0 = config["sigma"] if sigma is None else sigma
    rate0 = config["learning_rate"] if learning_rate is None else learning_rate
    for key, value in (("sigma", sigma0), ("sigma_end", sigma_end),
                       ("learning_rate", rate0), ("learning_rate_end", learning_rate_end)):
        if not (is_number(value) and value > 0):
            raise LearningRuleError(f"{key} must be a number > 0. Received: {key}={value!r}")
    # float32 halves the memory traffic of the per-sample loop (digits: 100 x 1024).
    data = model.as_rows(x)
    w = layer.prototypes.numpy()
    pos = model.positions()
    total = epochs * len(data)
    for epoch in range(epochs):
        order = np.random.default_rng((seed, epoch)).permutation(len(data))
        t = (epoch * len(data) + np.arange(len(data))) / total   # run fraction per update
        sigmas = sigma0 * (sigma_end / sigma0) ** t
        rates = rate0 * (learning_rate_end / rate0) ** t
        for i, sig, rate in zip(order, sigmas, rates):
            diff = data[i] - w
            c = np.argmin(np.einsum("uf,uf->u", diff, diff))
            h = np.exp(-((pos - pos[c]) ** 2).sum(1) / (2.0 * sig * sig))
            w += (rate * h).astype(np.float32)[:, None] * diff
        layer.prototypes.assign(w)
        on_epoch_end(epoch, {"quantization_error": model.quantization_error(data),
                             "topographic_error": model.topographic_error(data),
                             "sigma": float(sigmas[-1]), "learning_rate": float(rates[-1])})


def _validate(cfg: dict) -> None:
    grid = cfg["grid"]
    try:
        cfg["grid"] = tuple(grid)
    except TypeError:
        cfg["grid"] = ()
    if len(cfg["grid"]) != 2 or not all(is_count(g) for g in cfg["grid"]):
        raise ModelConfigError(f"grid must be (rows, cols) with two integers >= 1, e.g. "
                               f"(10, 10). Received: grid={grid!r}")
    if cfg["sigma"] is None:
        cfg["sigma"] = max(cfg["grid"]) / 2.0
    _classic.check_number("sigma", cfg["sigma"], low=0.0, open_low=True)
    _classic.check_number("learning_rate", cfg["learning_rate"], low=0.0, open_low=True)


SOM = Family(
    name="som",
    defaults=dict(
        input_shape=(2,),
        grid=(10, 10),
        sigma=None,          # None: half the longer grid side (orders the whole map first)
        learning_rate=0.5,
    ),
    build=lambda cfg: Som(**cfg),
    count_params=lambda cfg: cfg["grid"][0] * cfg["grid"][1] * _layers.features(cfg["input_shape"]),
    reference="Kohonen (1982), Biological Cybernetics 43:59-69; Kohonen (1990), Proc. IEEE 78(9)",
    validate=_validate,
    rule_owner=Som,
    decision="argmin",
)


@register_model
def som(**overrides):
    """Kohonen self-organizing map: distances to a grid of prototypes (10 x 10)."""
    return SOM.variant(overrides)
