"""Restricted Boltzmann machine with Bernoulli units, learned by contrastive divergence.

References: P. Smolensky, "Information processing in dynamical systems:
foundations of harmony theory" (1986); G. E. Hinton, "Training products of
experts by minimizing contrastive divergence", Neural Computation 14(8), 2002;
T. Tieleman, "Training restricted Boltzmann machines using approximations to
the likelihood gradient", ICML 2008 (persistent CD); G. E. Hinton, "A practical
guide to training restricted Boltzmann machines", UTML TR 2010-003.

Visible units v (binary, or probabilities in [0, 1]) connect to hidden units h
through W; there are no connections inside a layer, so
``p(h_j = 1 | v) = sigmoid(v W_j + c_j)`` and ``p(v_i = 1 | h) = sigmoid(W_i h + b_i)``.
The call returns ``p(h = 1 | v)``: the features a classifier or the next RBM of
a stack reads. ``model.free_energy(v) = -v.b - sum_j softplus(v W_j + c_j)``
(one value per row), so ``p(v) ~ exp(-F(v))``.

CD-k (``models.learn(model, x, epochs=, learning_rate=, batch_size=, k=1,
persistent=False, seed=)``): for each mini-batch, the positive statistics
``v0^T p(h|v0)`` against the negative ones after k steps of block Gibbs
sampling, ``vk^T p(h|vk)``. With ``persistent=True`` the Gibbs chains (one per
batch row) continue from one batch to the next instead of restarting at the
data (Tieleman's PCD, what scikit-learn's ``BernoulliRBM`` does); the chains
restart once per epoch from the epoch's first batch, so an epoch depends only
on the weights and ``(seed, epoch)`` and a resumed run matches an uninterrupted
one.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import _classic, _layers, _plots
from models._registry import Family, register_model
from models.errors import LearningRuleError
from models.rules import register_rule
from utils.checks import is_number, is_count
from utils.images import IMAGE_SHAPE

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


# --- building block ----------------------------------------------------------

@_SERIALIZABLE
class BernoulliRBM(keras.layers.Layer):
    """``p(h = 1 | v)`` of an RBM with ``visible_units`` x ``hidden_units`` weights."""

    def __init__(self, visible_units, hidden_units, **kwargs):
        super().__init__(**kwargs)
        self.visible_units, self.hidden_units = int(visible_units), int(hidden_units)
        self.activation = keras.activations.sigmoid  # read by models.audit

    def build(self, input_shape):
        # Small random weights, zero biases (Hinton's guide, section 8); learned by
        # contrastive divergence, never by backprop.
        v, h = self.visible_units, self.hidden_units
        self.kernel = self.add_weight(shape=(v, h), name="kernel", trainable=False,
                                      initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.hidden_bias = self.add_weight(shape=(h,), name="hidden_bias", trainable=False,
                                           initializer="zeros")
        self.visible_bias = self.add_weight(shape=(v,), name="visible_bias", trainable=False,
                                            initializer="zeros")

    def call(self, x):
        v = _classic.flat(x, self.visible_units)
        return ops.sigmoid(ops.matmul(v, self.kernel) + self.hidden_bias)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_units)

    def audit_formula(self):
        v, h = self.visible_units, self.hidden_units
        return (f"({v} x {h}) + {h} + {v} = {v * h + h + v:,}",
                f"{h} hidden biases (the call) and {v} visible biases (reconstruction, "
                "free energy)")

    def get_config(self):
        return {**super().get_config(), "visible_units": self.visible_units,
                "hidden_units": self.hidden_units}


# --- model -------------------------------------------------------------------

@_SERIALIZABLE
class Rbm(_classic.ClassicModel):
    """RBM; the call returns ``p(h = 1 | v)`` ``[batch, hidden_units]``."""

    learning_rule = "contrastive_divergence"

    @staticmethod
    def _graph(inputs, config):
        return BernoulliRBM(config["visible_units"], config["hidden_units"], name="rbm")(inputs)

    @property
    def rbm(self) -> BernoulliRBM:
        return self.get_layer("rbm")

    def parameters(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(W [visible, hidden], hidden bias, visible bias)`` as float64 arrays."""
        layer = self.rbm
        return tuple(np.asarray(w.numpy(), np.float64)
                     for w in (layer.kernel, layer.hidden_bias, layer.visible_bias))

    def hidden_probabilities(self, v) -> np.ndarray:
        """``p(h = 1 | v)`` (the call) in float64 numpy, for each row of ``v``."""
        w, c, _ = self.parameters()
        return _sigmoid(self.as_rows(v, "v").astype(np.float64) @ w + c)

    def free_energy(self, v) -> np.ndarray:
        """``F(v) = -v.b - sum_j softplus(v W_j + c_j)`` for each row of ``v`` (float64)."""
        w, c, b = self.parameters()
        v = self.as_rows(v, "v").astype(np.float64)
        return -v @ b - np.logaddexp(0.0, v @ w + c).sum(axis=1)

    # train.py hooks (docs/models.md, "Hooks of a model with its own rule")
    def prepare_training_data(self, x, y):
        """Images in [0, 1] are the visible probabilities; the rule needs no labels."""
        return x, None

    def evaluate_rule(self, x, y) -> dict:
        """Pseudo-likelihood per image (one random bit flipped per row, seed 0, as
        scikit-learn's ``score_samples``) and the mean squared reconstruction error."""
        v = self.as_rows(x).astype(np.float64)
        return {"pseudo_likelihood": float(pseudo_likelihood(self, v, seed=0).mean()),
                "reconstruction_error": _reconstruction_error(self.parameters(), v)}

    def learning_plots(self, x, y, history, out_dir) -> dict:
        """``rbm_filters.png``: the weights into the first 64 hidden units as images
        (the features the RBM learned), for image inputs."""
        shape = _plots.image_shape(self._config["input_shape"])
        if shape is None:
            return {}
        weights = self.parameters()[0].T[:64]
        return {"rbm_filters": _plots.image_grid(
            weights, f"{out_dir}/rbm_filters.png", shape=shape, cmap="RdBu_r",
            title=f"{self.name}: weights into the first {len(weights)} hidden units")}


def pseudo_likelihood(model: Rbm, v, seed=None) -> np.ndarray:
    """Log pseudo-likelihood of each row of ``v`` from the model's free energy.

    ``log p(v_i | v_-i) = log sigmoid(F(v with v_i flipped) - F(v))``. With ``seed``
    None it is summed over every unit (exact); with a seed one random unit per row is
    flipped and the result scaled by the unit count, the estimate scikit-learn's
    ``BernoulliRBM.score_samples`` returns. A value in [0, 1] flips to ``1 - v_i``.
    """
    v = model.as_rows(v, "v").astype(np.float64)
    base = model.free_energy(v)
    n, units = v.shape
    if seed is not None:
        i = np.random.default_rng(seed).integers(0, units, n)
        flipped = v.copy()
        flipped[np.arange(n), i] = 1.0 - flipped[np.arange(n), i]
        return units * -np.logaddexp(0.0, -(model.free_energy(flipped) - base))
    total = np.zeros(n)
    for i in range(units):
        flipped = v.copy()
        flipped[:, i] = 1.0 - flipped[:, i]
        total += -np.logaddexp(0.0, -(model.free_energy(flipped) - base))
    return total


# --- family and builder ------------------------------------------------------

RBM = Family(
    name="rbm",
    defaults=dict(
        input_shape=IMAGE_SHAPE,  # the zoo's images (scikit-learn's digits: (64,))
        visible_units=None,   # None: the input's feature count (and vice versa)
        hidden_units=64,
    ),
    build=lambda cfg: Rbm(**cfg),
    count_params=lambda cfg: (cfg["visible_units"] * cfg["hidden_units"]
                              + cfg["hidden_units"] + cfg["visible_units"]),
    reference="Smolensky (1986); Hinton, 'Training products of experts by minimizing "
              "contrastive divergence', Neural Computation 14(8), 2002",
    derive=lambda cfg, given: _classic.derive_units(cfg, given, "visible_units"),
    validate=lambda cfg: _layers.positive_int(cfg, "hidden_units"),
    rule_owner=Rbm,
    decision="bits",
)


@register_model
def rbm(**overrides):
    """Bernoulli RBM (1,024 visible x 64 hidden); call = p(h=1|v); learned by CD-k / PCD."""
    return RBM.variant(overrides)


# --- learning rule -----------------------------------------------------------

def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def _reconstruction_error(params, v) -> float:
    w, c, b = params
    ph = _sigmoid(v @ w + c)
    return float(np.mean((v - _sigmoid(ph @ w.T + b)) ** 2))


def visible_probabilities(x, what: str = "x") -> np.ndarray:
    """Check that ``x`` holds Bernoulli visible values: binary or probabilities in [0, 1].

    Raises:
        LearningRuleError: values outside [0, 1] or not finite.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
        raise LearningRuleError(
            f"An RBM's visible units are binary: {what} must hold 0/1 values or probabilities "
            f"in [0, 1]. Received values from {np.nanmin(x):g} to {np.nanmax(x):g}. "
            "Fix: scale the data to [0, 1] (e.g. x / x.max()) or binarise it (x > 0.5).")
    return x


@register_rule("contrastive_divergence", supervised=False, default_epochs=10,
               reference="Hinton (2002) Neural Computation 14(8); Tieleman (2008) ICML")
def contrastive_divergence(model, x, y, *, epochs, seed, on_epoch_end, learning_rate=0.1,
                           batch_size=10, k=1, persistent=False) -> None:
    """CD-k (or persistent CD) on the rows of ``x``; logs ``pseudo_likelihood`` (the
    one-bit estimate, mean per row) and ``reconstruction_error`` after each epoch.

    Raises:
        LearningRuleError: ``x`` outside [0, 1] or wrongly shaped, or a non-positive
            ``learning_rate``, ``batch_size`` or ``k``.
    """
    v_all = visible_probabilities(model.as_rows(x), "x")
    for key, value in (("batch_size", batch_size), ("k", k)):
        if not is_count(value):
            raise LearningRuleError(f"{key} must be an integer >= 1. Received: {key}={value!r}")
    if not (is_number(learning_rate) and learning_rate > 0):
        raise LearningRuleError(f"learning_rate must be a positive number. "
                                f"Received: learning_rate={learning_rate!r}")
    w, c, b = model.parameters()
    n = len(v_all)
    for epoch in range(epochs):
        rng = np.random.default_rng((seed, epoch))
        order = rng.permutation(n)
        chain = None
        for start in range(0, n, batch_size):
            v0 = v_all[order[start:start + batch_size]]
            ph0 = _sigmoid(v0 @ w + c)
            h = chain if (persistent and chain is not None) else _bernoulli(ph0, rng)
            for _ in range(k):
                vk = _bernoulli(_sigmoid(h @ w.T + b), rng)
                phk = _sigmoid(vk @ w + c)
                h = _bernoulli(phk, rng)
            chain = h
            w += learning_rate * (v0.T @ ph0 / len(v0) - vk.T @ phk / len(vk))
            c += learning_rate * (ph0.mean(0) - phk.mean(0))
            b += learning_rate * (v0.mean(0) - vk.mean(0))
        layer = model.rbm
        layer.kernel.assign(w.astype(np.float32))
        layer.hidden_bias.assign(c.astype(np.float32))
        layer.visible_bias.assign(b.astype(np.float32))
        on_epoch_end(epoch, {
            "pseudo_likelihood": float(pseudo_likelihood(model, v_all, seed=(seed, epoch)).mean()),
            "reconstruction_error": _reconstruction_error((w, c, b), v_all)})


def _bernoulli(p, rng) -> np.ndarray:
    return (rng.random(p.shape) < p).astype(np.float64)
