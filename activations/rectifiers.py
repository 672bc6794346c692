"""The ReLU family: leaky, parametric (PReLU), randomized (RReLU), ELU, SELU."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from activations._base import ActivationLayer, check_number
from activations._registry import ActivationParameterError, register_activation
from utils import checks

_SERIALIZABLE = keras.saving.register_keras_serializable(package="activations")

# Self-normalising constants of Klambauer et al. 2017 (same digits as PyTorch).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def leaky_relu(x, negative_slope=0.01):
    """``x`` for ``x >= 0``, else ``negative_slope * x``."""
    x = ops.convert_to_tensor(x)
    if x.dtype == "float64":
        # The LeakyRelu op keeps its slope in a float32 attribute.
        return ops.where(x >= 0, x, negative_slope * x)
    return ops.leaky_relu(x, negative_slope=negative_slope)


def prelu(x, alpha):
    """Leaky ReLU whose slope ``alpha`` is a tensor (broadcast against ``x``)."""
    x = ops.convert_to_tensor(x)
    alpha = ops.cast(alpha, x.dtype)
    # relu(x) - alpha * relu(-x) is the pattern TFLite fuses into its PRELU op.
    return ops.relu(x) - alpha * ops.relu(-x)


def rrelu(x, lower=1.0 / 8, upper=1.0 / 3, training=False, seed=None):
    """Randomized leaky ReLU (Xu et al. 2015).

    Training: every negative element gets its own slope ~ U(lower, upper).
    Inference: the mean slope ``(lower + upper) / 2``; no random op in the graph.
    """
    x = ops.convert_to_tensor(x)
    if training:
        slope = keras.random.uniform(ops.shape(x), minval=lower, maxval=upper,
                                     dtype=x.dtype, seed=seed)
        return ops.where(x >= 0, x, slope * x)
    return leaky_relu(x, negative_slope=(lower + upper) / 2.0)


def elu(x, alpha=1.0):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    # Keras lowers this to the Elu op (+ a Select for alpha != 1): builtin in
    # TFLite and ONNX, unlike Expm1.
    return ops.elu(x, alpha=alpha)


def selu(x):
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    return SELU_SCALE * ops.elu(x, alpha=SELU_ALPHA)


@_SERIALIZABLE
@register_activation("leaky_relu", fn=leaky_relu, catalogue={
    "formula": r"f(x) = \begin{cases} x & x \geq 0 \\ a x & x < 0 \end{cases}",
    "derivative": r"f'(x) = \begin{cases} 1 & x > 0 \\ a & x < 0 \end{cases}",
    "range": r"(-\infty, \infty)",
    "zero_centered": False, "monotonic": True, "saturates": "no",
    "vanishing_gradient": False, "computation": "cheap",
    "typical_use": "hidden layers where dying ReLUs are a problem (GANs, deep CNNs)",
    "reference": "Maas et al. 2013; course notes 'Leaky ReLU' and 'Summary' table "
                 "(zero-centred: 'close')",
})
class LeakyReLU(ActivationLayer):
    """Leaky ReLU layer.

    Args:
        negative_slope: slope for ``x < 0`` (default 0.01, as in the course).
    """

    def __init__(self, negative_slope=0.01, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = check_number("negative_slope", negative_slope)

    def call(self, inputs):
        return leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


def _initializer(value):
    if checks.is_number(value):
        # A NumPy float64 keeps all digits in float64 layers (a Python float
        # would pass through float32 inside Constant) and is still a float.
        return keras.initializers.Constant(
            np.float64(check_number("alpha_initializer", value)))
    try:
        return keras.initializers.get(value)
    except (ValueError, TypeError):
        raise ActivationParameterError(
            "`alpha_initializer` must be a number or a Keras initializer. "
            f"Received: alpha_initializer={value!r}") from None


def _shared_axes(value):
    if value is None:
        return None
    axes = [value] if checks.is_int(value) else value
    if not isinstance(axes, (list, tuple)) or not all(
            checks.is_count(a) for a in axes):
        raise ActivationParameterError(
            "`shared_axes` must be None or positive axis indices (the batch axis 0 "
            f"is always shared). Received: shared_axes={value!r}")
    return [int(a) for a in axes]


@_SERIALIZABLE
@register_activation("prelu", fn=prelu, catalogue={
    "formula": r"f(x) = \begin{cases} x & x \geq 0 \\ \alpha x & x < 0 \end{cases},"
               r"\ \alpha \text{ learned}",
    "derivative": r"f'(x) = \begin{cases} 1 & x > 0 \\ \alpha & x < 0 \end{cases},"
                  r"\ \frac{\partial f}{\partial \alpha} = \min(0, x)",
    "range": r"(-\infty, \infty)",
    "zero_centered": False, "monotonic": True, "saturates": "no",
    "vanishing_gradient": False, "computation": "cheap",
    "typical_use": "hidden layers of deep CNNs where the negative slope is worth learning",
    "reference": "He et al. 2015, 'Delving Deep into Rectifiers'",
})
class PReLU(ActivationLayer):
    """Parametric ReLU: a leaky ReLU with a trainable slope per unit.

    Args:
        alpha_initializer: initial slope, a number (default 0.25) or any Keras
            initializer identifier.
        shared_axes: axes (1-based, batch excluded) along which one slope is
            shared, e.g. ``[1, 2]`` for one slope per channel of an image.
    """

    def __init__(self, alpha_initializer=0.25, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = _initializer(alpha_initializer)
        self.shared_axes = _shared_axes(shared_axes)

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if axis > len(param_shape):
                raise ActivationParameterError(
                    f"`shared_axes` names axis {axis} but the input has rank "
                    f"{len(input_shape)}. Received: shared_axes={self.shared_axes!r}")
            param_shape[axis - 1] = 1
        if any(d is None for d in param_shape):
            raise ActivationParameterError(
                "PReLU needs known non-batch dimensions, or share the unknown ones "
                f"via shared_axes. Received: input_shape={tuple(input_shape)!r}")
        self.alpha = self.add_weight(shape=tuple(param_shape), name="alpha",
                                     initializer=self.alpha_initializer)

    def call(self, inputs):
        return prelu(inputs, self.alpha)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
                "shared_axes": self.shared_axes}


@_SERIALIZABLE
@register_activation("rrelu", fn=rrelu, catalogue={
    "formula": r"f(x) = \begin{cases} x & x \geq 0 \\ a x & x < 0 \end{cases},"
               r"\ a \sim U(l, u) \text{ (training)},\ a = \frac{l+u}{2} \text{ (inference)}",
    "derivative": r"f'(x) = \begin{cases} 1 & x > 0 \\ a & x < 0 \end{cases}",
    "range": r"(-\infty, \infty)",
    "zero_centered": False, "monotonic": True, "saturates": "no",
    "vanishing_gradient": False, "computation": "cheap",
    "typical_use": "hidden layers; the random slope acts as a regulariser on small data",
    "reference": "Xu et al. 2015, 'Empirical Evaluation of Rectified Activations'",
})
class RReLU(ActivationLayer):
    """Randomized leaky ReLU.

    Args:
        lower: lower bound of the training-time slope (default 1/8).
        upper: upper bound of the training-time slope (default 1/3).
        seed: optional int seed of the slope sampler.
    """

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.lower = check_number("lower", lower, low=0.0)
        self.upper = check_number("upper", upper)
        if self.upper < self.lower:
            raise ActivationParameterError(
                f"`upper` must be >= `lower` ({self.lower}). Received: upper={upper!r}")
        if seed is not None and not checks.is_int(seed):
            raise ActivationParameterError(
                f"`seed` must be None or an int. Received: seed={seed!r}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        return rrelu(inputs, self.lower, self.upper, training=bool(training),
                     seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "lower": self.lower, "upper": self.upper,
                "seed": self.seed}


@_SERIALIZABLE
@register_activation("elu", fn=elu, catalogue={
    "formula": r"f(x) = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \leq 0 \end{cases}",
    "derivative": r"f'(x) = \begin{cases} 1 & x > 0 \\ \alpha e^x & x < 0 \end{cases}",
    "range": r"(-\alpha, \infty)",
    "zero_centered": False, "monotonic": True, "saturates": "negative side",
    "vanishing_gradient": False, "computation": "moderate",
    "typical_use": "hidden layers; negative outputs push mean activations close to zero",
    "reference": "Clevert et al. 2015; course notes 'Exponential Linear Units'",
})
class ELU(ActivationLayer):
    """Exponential linear unit.

    Args:
        alpha: negative-side saturation value (default 1.0).
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = check_number("alpha", alpha)

    def call(self, inputs):
        return elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@_SERIALIZABLE
@register_activation("selu", fn=selu, catalogue={
    "formula": r"f(x) = \lambda \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \leq 0"
               r" \end{cases},\ \lambda \approx 1.0507,\ \alpha \approx 1.6733",
    "derivative": r"f'(x) = \lambda \begin{cases} 1 & x > 0 \\ \alpha e^x & x < 0 \end{cases}",
    "range": r"(-\lambda \alpha, \infty)",
    "zero_centered": False, "monotonic": True, "saturates": "negative side",
    "vanishing_gradient": False, "computation": "moderate",
    "typical_use": "self-normalising MLPs (zero mean, unit variance by design; lecun_normal init, AlphaDropout)",
    "reference": "Klambauer et al. 2017, 'Self-Normalizing Neural Networks'",
})
class SELU(ActivationLayer):
    """Scaled exponential linear unit (fixed constants)."""

    def call(self, inputs):
        return selu(inputs)
