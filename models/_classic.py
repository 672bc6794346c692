"""Shared pieces of the course's classic networks (memory and competitive nets).

- :class:`ClassicModel`: a functional ``keras.Model`` subclass whose config is its
  constructor's keyword arguments, so a ``.keras`` file rebuilds it with
  ``safe_mode=True`` and no custom objects (only an import of ``models``).
- Distances between rows and prototypes (SOM, LVQ, memory metrics), in the graph and
  in numpy.
- Size and value checks shared by the families' ``derive``/``validate``.

What only the memory nets share (the bipolar conventions) lives in ``models._memory``.
"""
from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops

from models import _layers
from models.errors import LearningRuleError, ModelConfigError
from utils import checks


class ClassicModel(keras.Model):
    """Base of the classic nets: ``Model(input, graph(input))`` rebuilt from its config.

    Subclasses implement ``_graph(inputs, config) -> outputs`` (a static method, since
    it runs before ``keras.Model.__init__``) and register themselves with
    ``keras.saving.register_keras_serializable(package="models")``.
    """

    learning_rule: str | None = None

    def __init__(self, *, name=None, **config):
        config["input_shape"] = tuple(int(d) for d in config["input_shape"])
        inputs = keras.Input(config["input_shape"], name="input")
        super().__init__(inputs, self._graph(inputs, config), name=name)
        self._config = dict(config)

    @staticmethod
    def _graph(inputs, config):
        raise NotImplementedError

    def get_config(self) -> dict:
        # The constructor's arguments: from_config calls cls(**config), and the
        # weights are restored by layer name afterwards.
        return {**self._config, "input_shape": list(self._config["input_shape"]),
                "name": self.name}

    @property
    def features(self) -> int:
        """Input features after flattening ``input_shape``."""
        return _layers.features(self._config["input_shape"])

    def as_rows(self, x, what: str = "x") -> np.ndarray:
        """``x`` as float32 ``[n, features]``; a wrongly sized array is a LearningRuleError."""
        x = np.asarray(x, dtype=np.float32)
        shape = self._config["input_shape"]
        if x.ndim == 1 and x.size == self.features:
            x = x[None]
        if x.ndim < 2 or x.shape[1:] not in (tuple(shape), (self.features,)):
            raise LearningRuleError(
                f"{self.name} expects {what} of shape [n, {', '.join(map(str, shape))}] "
                f"(or [n, {self.features}]). Received: {what}.shape={x.shape}")
        return x.reshape(len(x), self.features)


    def predict_rows(self, rows, batch_size: int = 256) -> np.ndarray:
        """The call on ``rows`` ``[n, features]`` (reshaped to ``input_shape``), batched."""
        rows = np.asarray(rows, dtype=np.float32).reshape(-1, *self._config["input_shape"])
        return np.asarray(self.predict(rows, batch_size=batch_size, verbose=0))


def flat(x, features: int):
    """``x`` reshaped to ``[batch, features]`` with a static size (TFLite needs no shape ops)."""
    return ops.reshape(x, (-1, features))


def euclidean_distances(x, prototypes):
    """Graph op: ``[batch, units]`` Euclidean distances from each row of ``x`` to each
    prototype row. The differences are formed explicitly (not ``|x|^2 - 2x.w + |w|^2``),
    so a distance near 0 keeps its precision in every runtime."""
    diff = ops.expand_dims(x, 1) - ops.expand_dims(prototypes, 0)
    return ops.sqrt(ops.sum(diff * diff, axis=-1))


def distances_numpy(x, prototypes) -> np.ndarray:
    """numpy twin of :func:`euclidean_distances` for metrics, in float64: the expanded
    form keeps memory at ``[n, units]`` (float64 leaves ~1e-7 near 0)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(prototypes, np.float64)
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ w.T + (w * w).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def nearest_rows(states, references) -> np.ndarray:
    """Index of the nearest reference row (Euclidean; Hamming for bipolar rows)."""
    return distances_numpy(states, references).argmin(axis=1)


# --- config checks ---------------------------------------------------------------------

def derive_units(config: dict, given: set, key: str) -> None:
    """``config[key]`` defaults to the input's feature count and vice versa.

    Raises:
        ModelConfigError: ``key`` is not a positive int, or contradicts an explicit
            ``input_shape``.
    """
    features = _layers.features(config["input_shape"])
    if config[key] is None:
        config[key] = features
        return
    _layers.positive_int(config, key)
    if config[key] != features:
        if "input_shape" in given:
            raise ModelConfigError(
                f"{key}={config[key]} contradicts input_shape={config['input_shape']} "
                f"({features} features). Fix: pass only one of them, or make them agree.")
        config["input_shape"] = (config[key],)


def check_choice(config: dict, key: str, choices: tuple) -> None:
    """Raise ``ModelConfigError`` unless ``config[key]`` is one of ``choices``."""
    if config[key] not in choices:
        raise ModelConfigError(f"{key} must be one of {', '.join(map(repr, choices))}. "
                               f"Received: {key}={config[key]!r}")


#: A finite real number, optionally bounded; raises ModelConfigError.
check_number = functools.partial(checks.check_number, error=ModelConfigError)
