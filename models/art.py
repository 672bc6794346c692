"""ART1: adaptive resonance theory for binary patterns (fast learning).

Reference: G. A. Carpenter, S. Grossberg, "A massively parallel architecture for a
self-organizing neural pattern recognition machine", Computer Vision, Graphics, and
Image Processing 37:54-115 (1987). Algorithm and worked example as in L. Fausett,
"Fundamentals of Neural Networks" (Prentice Hall, 1994), section 5.2 (Example 5.2).

Weights: bottom-up ``b`` [n, M] and binary top-down templates ``t`` [M, n] for ``M =
max_categories`` category units, initialised to ``b = 1/(1 + n)`` and ``t = 1``
(uncommitted). Presenting a binary pattern ``s`` (``models.learn``, rule ``art1``):
activations ``y_j = s . b_j``; the unit J with the largest y is tested for resonance,
``|s AND t_J| / |s| >= vigilance``; on failure it is reset (inhibited) and the next
largest is tried; on success fast learning sets ``t_J = s AND t_J`` and ``b_J = L t_J /
(L - 1 + |t_J|)``. An uncommitted unit always resonates, so a new category is
committed when no committed one fits; the lowest free index is taken, so categories
are numbered in the order they were committed.

The call computes the same search at once: per-category scores ``y_j`` where unit j
resonates and -1 where vigilance resets it, so argmax is the category the search
picks (ties go to the lower index); a row whose scores are all -1 fits no category.
Inputs are binarised at 0.5 (binary 0/1 and bipolar -1/+1 both work).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import _classic, _layers, _plots
from models._registry import Family, register_model
from models.errors import LearningRuleError
from models.rules import register_rule

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


@_SERIALIZABLE
class Art1Categories(keras.layers.Layer):
    """ART1's F1 -> F2 choice with vigilance: per-category scores (-1 = reset)."""

    def __init__(self, features, max_categories=16, vigilance=0.5, L=2.0, **kwargs):
        super().__init__(**kwargs)
        self.features, self.max_categories = int(features), int(max_categories)
        self.vigilance, self.L = float(vigilance), float(L)

    def build(self, input_shape):
        n, m = self.features, self.max_categories
        # Fausett's initial values: 0 < b < L / (L - 1 + n), here 1 / (1 + n); t = 1.
        self.bottom_up = self.add_weight(shape=(n, m), name="bottom_up", trainable=False,
                                         initializer=keras.initializers.Constant(1.0 / (1 + n)))
        self.top_down = self.add_weight(shape=(m, n), name="top_down", trainable=False,
                                        initializer="ones")

    def call(self, x):
        s = ops.where(_classic.flat(x, self.features) > 0.5, 1.0, 0.0)
        y = ops.matmul(s, self.bottom_up)
        overlap = ops.matmul(s, ops.transpose(self.top_down))  # |s AND t_j|, exact counts
        norm = ops.sum(s, axis=1, keepdims=True)
        return ops.where(overlap >= self.vigilance * norm, y, -1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_categories)

    def audit_formula(self):
        n, m = self.features, self.max_categories
        return (f"({n} x {m}) bottom-up + ({m} x {n}) top-down = {2 * n * m:,}",
                "top-down templates are binary; fast learning sets b = L t / (L - 1 + |t|)")

    def get_config(self):
        return {**super().get_config(), "features": self.features,
                "max_categories": self.max_categories, "vigilance": self.vigilance, "L": self.L}


@_SERIALIZABLE
class Art1(_classic.ClassicModel):
    """ART1; the call returns per-category scores, argmax = chosen category."""

    learning_rule = "art1"

    @staticmethod
    def _graph(inputs, config):
        return Art1Categories(_layers.features(config["input_shape"]), config["max_categories"],
                              config["vigilance"], config["L"], name="art1")(inputs)

    @property
    def categories(self) -> Art1Categories:
        return self.get_layer("art1")

    def committed(self) -> int:
        """Categories committed so far (always the first ones: 0 .. committed - 1)."""
        b = self.categories.bottom_up.numpy()
        return int(np.sum(np.any(b != np.float32(1.0 / (1 + self.features)), axis=0)))

    def categorize(self, x) -> np.ndarray:
        """Category of each row; -1 where no category resonates."""
        scores = self.predict_rows(self.as_rows(x), batch_size=512)
        return np.where(scores.max(axis=1) < 0, -1, scores.argmax(axis=1))

    # train.py hooks (docs/models.md, "Hooks of a model with its own rule")
    def prepare_training_data(self, x, y):
        """Images in [0, 1] -> binary patterns (threshold 0.5); labels kept for scoring."""
        return (self.as_rows(x) > 0.5).astype(np.float32), y

    def evaluate_rule(self, x, y) -> dict:
        """Committed categories; purity (the share of the images that fit a category
        whose label is their category's most frequent one); the share that fit none."""
        chosen = self.categorize(x)
        y = np.asarray(y).reshape(-1)
        fits = chosen >= 0
        majority = sum(np.bincount(y[chosen == c]).max() for c in np.unique(chosen[fits]))
        return {"categories": self.committed(),
                "purity": float(majority / max(int(fits.sum()), 1)),  # among those that fit
                "unclustered": float(np.mean(~fits))}

    def learning_plots(self, x, y, history, out_dir) -> dict:
        """``categories.png``: the first 64 committed categories' templates as images,
        each titled with how many of ``x`` it takes."""
        shape = _plots.image_shape(self._config["input_shape"])
        k = min(self.committed(), 64)
        if shape is None or k == 0:
            return {}
        chosen = self.categorize(x)
        counts = np.bincount(chosen[chosen >= 0], minlength=k)[:k]
        return {"categories": _plots.image_grid(
            self.categories.top_down.numpy()[:k], f"{out_dir}/categories.png", shape=shape,
            titles=[f"{j}: {c}" for j, c in enumerate(counts)],
            title=f"ART1 templates (vigilance {self.categories.vigilance}); "
                  f"category: images it takes ({np.mean(chosen < 0):.0%} fit none)")}


def binary_patterns(x, features: int) -> np.ndarray:
    """Binary 0/1 patterns ``[n, features]`` (bipolar -1 maps to 0).

    Raises:
        LearningRuleError: wrong size, values other than 0/1 (or -1/+1), or an all-zero
            pattern (its match ratio |s AND t| / |s| is undefined).
    """
    s = np.asarray(x, dtype=np.float32)
    s = s[None] if s.ndim == 1 else s
    if s.ndim < 2 or len(s) == 0 or s[0].size != features:
        raise LearningRuleError(f"x must be [n_patterns, {features}] binary patterns. "
                                f"Received: x.shape={s.shape}")
    s = s.reshape(len(s), features)
    values = set(np.unique(s).tolist())
    if not (values <= {0.0, 1.0} or values <= {-1.0, 1.0}):
        raise LearningRuleError(f"ART1 learns binary patterns (0/1); found values "
                                f"{sorted(values - {0.0, 1.0})[:3]}. Fix: threshold them, "
                                "e.g. (x > 0.5).")
    s = (s > 0).astype(np.float32)
    empty = np.flatnonzero(s.sum(axis=1) == 0)
    if len(empty):
        raise LearningRuleError(f"ART1 needs at least one active bit per pattern; row "
                                f"{int(empty[0])} is all zeros. Fix: drop empty patterns.")
    return s


def _present(s, b, t, vigilance, L) -> tuple[int, bool]:
    """One pattern through search and fast learning (updates b, t in place).

    Returns ``(category, changed)``: the resonating category (-1 when every unit was
    reset) and whether its weights changed.
    """
    y = s @ b                       # float32, as the call computes it
    overlap = t @ s                 # exact counts
    passes = overlap >= np.float32(vigilance) * np.float32(s.sum())
    # Search: units are tried by decreasing y (ties: lower index first); the first that
    # passes vigilance resonates. That is the argmax of y over the passing units.
    candidates = np.where(passes, y, -np.inf)
    j = int(np.argmax(candidates))
    if candidates[j] == -np.inf:
        return -1, False
    template = s * t[j]
    column = (L * template / (L - 1.0 + template.sum())).astype(np.float32)
    changed = not (np.array_equal(template, t[j]) and np.array_equal(column, b[:, j]))
    t[j], b[:, j] = template, column
    return j, changed


@register_rule("art1", supervised=False, default_epochs=10,
               reference="Carpenter & Grossberg (1987), CVGIP 37:54-115; Fausett (1994) 5.2")
def art1_fast_learning(model, x, y, *, epochs, seed, on_epoch_end, shuffle=True) -> None:
    """ART1 fast learning: present each pattern, search with resets, learn on resonance.

    Args:
        shuffle: present the patterns in a new random order each epoch (from
            ``default_rng((seed, epoch))``); False keeps the given order (textbook traces).

    Logs per epoch: ``categories`` (committed), ``changed`` (presentations that changed
    a category's weights: 0 once learning has settled) and ``unclustered`` (patterns
    that fit no category: raise ``max_categories`` or lower ``vigilance``).
    """
    layer = model.categories
    s = binary_patterns(model.as_rows(x), layer.features)
    b, t = layer.bottom_up.numpy(), layer.top_down.numpy()
    for epoch in range(epochs):
        order = (np.random.default_rng((seed, epoch)).permutation(len(s)) if shuffle
                 else np.arange(len(s)))
        changed = unclustered = 0
        for i in order:
            j, change = _present(s[i], b, t, layer.vigilance, layer.L)
            unclustered += j < 0
            changed += change
        layer.bottom_up.assign(b)
        layer.top_down.assign(t)
        on_epoch_end(epoch, {"categories": model.committed(), "changed": changed,
                             "unclustered": unclustered})


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "max_categories")
    _classic.check_number("vigilance", cfg["vigilance"], low=0.0, high=1.0)
    _classic.check_number("L", cfg["L"], low=1.0, open_low=True)


ART1 = Family(
    name="art1",
    defaults=dict(
        input_shape=(64,),
        max_categories=16,
        vigilance=0.5,   # 0 (one coarse category) .. 1 (one category per distinct pattern)
        L=2.0,           # > 1; Carpenter & Grossberg's choice-rule constant
    ),
    build=lambda cfg: Art1(**cfg),
    count_params=lambda cfg: 2 * _layers.features(cfg["input_shape"]) * cfg["max_categories"],
    reference="Carpenter & Grossberg (1987), CVGIP 37:54-115; Fausett (1994), Fundamentals "
              "of Neural Networks, 5.2",
    validate=_validate,
    rule_owner=Art1,
)


@register_model
def art1(**overrides):
    """ART1 with fast learning: vigilance decides how many categories form."""
    return ART1.variant(overrides)
