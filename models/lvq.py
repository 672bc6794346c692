"""Learning vector quantization (LVQ1): labelled prototypes, nearest one decides.

References: T. Kohonen, "The self-organizing map", Proceedings of the IEEE
78(9):1464-1480 (1990), section on LVQ1; T. Kohonen, J. Hynninen, J. Kangas,
J. Laaksonen, K. Torkkola, "LVQ_PAK: the learning vector quantization program
package", Helsinki University of Technology (1996).

The model holds ``num_classes * prototypes_per_class`` prototypes (its one weight);
prototype j belongs to class ``j // prototypes_per_class``. The call returns per-class
scores ``-min_j |x - w_j|`` over that class's prototypes, so argmax is the class of the
nearest prototype.

LVQ1 (``models.learn(model, x, y)``, rule ``lvq1``): prototypes start on random
training samples of their class (LVQ_PAK's even initialisation); then for each sample
in a random order, the nearest prototype c moves toward it if its class is right and
away from it otherwise: ``w_c += s lr(t) (x - w_c)``, s = +1 or -1, with the rate
falling linearly from ``learning_rate`` to 0 over the run.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import _classic, _layers, _plots
from models._registry import Family, register_model
from models.errors import LearningRuleError
from models.rules import register_rule
from utils.checks import is_number
from utils.images import IMAGE_SHAPE

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


@_SERIALIZABLE
class LvqScores(keras.layers.Layer):
    """Per-class scores: minus the distance to the class's nearest prototype."""

    def __init__(self, features, num_classes, prototypes_per_class=3, **kwargs):
        super().__init__(**kwargs)
        self.features, self.num_classes = int(features), int(num_classes)
        self.prototypes_per_class = int(prototypes_per_class)

    def build(self, input_shape):
        self.prototypes = self.add_weight(
            shape=(self.num_classes * self.prototypes_per_class, self.features),
            initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=0), trainable=False,
            name="prototypes")

    def call(self, x):
        d = _classic.euclidean_distances(_classic.flat(x, self.features), self.prototypes)
        d = ops.reshape(d, (-1, self.num_classes, self.prototypes_per_class))
        return ops.max(d * -1.0, axis=-1)  # = -min d in ops that have int8 kernels (TFLite Micro)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def audit_formula(self):
        c, k, n = self.num_classes, self.prototypes_per_class, self.features
        return (f"({c} classes x {k} prototypes x {n}) = {c * k * n:,}",
                "prototype j belongs to class j // prototypes_per_class")

    def get_config(self):
        return {**super().get_config(), "features": self.features,
                "num_classes": self.num_classes,
                "prototypes_per_class": self.prototypes_per_class}


@_SERIALIZABLE
class Lvq(_classic.ClassicModel):
    """LVQ; the call returns per-class scores, argmax = class of the nearest prototype."""

    learning_rule = "lvq1"

    @staticmethod
    def _graph(inputs, config):
        return LvqScores(_layers.features(config["input_shape"]), config["num_classes"],
                         config["prototypes_per_class"], name="lvq")(inputs)

    @property
    def codebook(self) -> LvqScores:
        return self.get_layer("lvq")

    def prototype_classes(self) -> np.ndarray:
        """Class of each prototype row."""
        return np.arange(self.codebook.prototypes.shape[0]) // self.codebook.prototypes_per_class

    # train.py hooks (docs/models.md, "Hooks of a model with its own rule"); evaluation is the default top-1 accuracy of the call.
    def learning_plots(self, x, y, history, out_dir) -> dict:
        """``lvq_prototypes.png``: the prototypes as images (one row per class)."""
        shape = _plots.image_shape(self._config["input_shape"])
        if shape is None:
            return {}
        layer = self.codebook
        return {"lvq_prototypes": _plots.image_grid(
            layer.prototypes.numpy(), f"{out_dir}/lvq_prototypes.png", shape=shape,
            grid=(layer.num_classes, layer.prototypes_per_class),
            title="LVQ prototypes (one row per class)")}


@register_rule("lvq1", supervised=True, default_epochs=30,
               reference="Kohonen (1990), Proc. IEEE 78(9):1464; LVQ_PAK (1996)")
def lvq1(model, x, y, *, epochs, seed, on_epoch_end, learning_rate=0.1,
         init="samples") -> None:
    """Kohonen's LVQ1.

    Args:
        learning_rate: rate at the start; it falls linearly to 0 over the run.
        init: ``"samples"`` starts each class's prototypes on random samples of that
            class (drawn in epoch 0 from ``default_rng((seed, 0))``); ``"keep"``
            continues from the model's current prototypes.

    Logs per epoch: ``accuracy`` (training samples whose nearest prototype has the
    right class) and ``learning_rate`` (at the end of the epoch).

    Raises:
        LearningRuleError: labels outside ``0 .. num_classes - 1``, one label per row
            missing, a bad ``init`` or ``learning_rate``.
    """
    layer = model.codebook
    data = model.as_rows(x).astype(np.float64)
    labels = np.asarray(y).reshape(-1)
    if len(labels) != len(data):
        raise LearningRuleError(f"LVQ needs one label per row. Received: {len(data)} rows, "
                                f"{len(labels)} labels")
    integral = labels.dtype.kind in "iu" or (labels.dtype.kind == "f"
                                             and np.array_equal(labels, np.round(labels)))
    if not integral or labels.min() < 0 or labels.max() >= layer.num_classes:
        raise LearningRuleError(f"labels must be integers in 0..{layer.num_classes - 1}. "
                                f"Received: {np.unique(labels)[:10].tolist()}")
    if init not in ("samples", "keep"):
        raise LearningRuleError(f"init must be 'samples' or 'keep'. Received: init={init!r}")
    if not (is_number(learning_rate) and 0 < learning_rate <= 1):
        raise LearningRuleError(f"learning_rate must be in (0, 1]. "
                                f"Received: learning_rate={learning_rate!r}")
    labels = labels.astype(np.int64)
    w = layer.prototypes.numpy().astype(np.float64)
    owner = model.prototype_classes()
    total = epochs * len(data)
    for epoch in range(epochs):
        rng = np.random.default_rng((seed, epoch))
        if epoch == 0 and init == "samples":
            for c in range(layer.num_classes):
                members = np.flatnonzero(labels == c)
                if len(members):  # a class absent from the data keeps its prototypes
                    k = layer.prototypes_per_class
                    w[owner == c] = data[rng.choice(members, k, replace=len(members) < k)]
        order = rng.permutation(len(data))
        rates = learning_rate * (1.0 - (epoch * len(data) + np.arange(len(data))) / total)
        for i, rate in zip(order, rates):
            diff = data[i] - w
            c = np.argmin(np.einsum("uf,uf->u", diff, diff))
            w[c] += (rate if owner[c] == labels[i] else -rate) * diff[c]
        layer.prototypes.assign(w.astype(np.float32))
        nearest = owner[_classic.distances_numpy(data, w).argmin(axis=1)]
        on_epoch_end(epoch, {"accuracy": float(np.mean(nearest == labels)),
                             "learning_rate": float(rates[-1])})


LVQ = Family(
    name="lvq",
    defaults=dict(
        input_shape=IMAGE_SHAPE,   # the zoo's images; iris: input_shape=(4,), num_classes=3
        num_classes=10,
        prototypes_per_class=3,
    ),
    build=lambda cfg: Lvq(**cfg),
    count_params=lambda cfg: (cfg["num_classes"] * cfg["prototypes_per_class"]
                              * _layers.features(cfg["input_shape"])),
    reference="Kohonen (1990), Proc. IEEE 78(9):1464-1480 (LVQ1); LVQ_PAK (1996)",
    validate=lambda cfg: _layers.positive_int(cfg, "prototypes_per_class"),
    rule_owner=Lvq,
)


@register_model
def lvq(**overrides):
    """Learning vector quantization (LVQ1): the nearest labelled prototype decides."""
    return LVQ.variant(overrides)
