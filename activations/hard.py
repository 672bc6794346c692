"""Piecewise-linear activations: hard sigmoid, hard swish, hard tanh and the
soft / hard shrinkage functions (cheap on mobile hardware, exact in int8)."""
from __future__ import annotations

import keras
from keras import ops

from activations._base import ActivationLayer, check_number
from activations._registry import ActivationParameterError, register_activation

_SERIALIZABLE = keras.saving.register_keras_serializable(package="activations")


def hard_sigmoid(x):
    """``relu6(x + 3) / 6``."""
    x = ops.convert_to_tensor(x)
    return ops.relu6(x + 3.0) / 6.0


def hard_swish(x):
    """``x * relu6(x + 3) / 6``."""
    x = ops.convert_to_tensor(x)
    return x * hard_sigmoid(x)


def hard_tanh(x, min_val=-1.0, max_val=1.0):
    """``clip(x, min_val, max_val)``."""
    return ops.clip(x, min_val, max_val)


def soft_shrink(x, lambd=0.5):
    """``x - lambd*sign(x)`` where ``|x| > lambd``, else 0."""
    x = ops.convert_to_tensor(x)
    return ops.relu(x - lambd) - ops.relu(-x - lambd)


def hard_shrink(x, lambd=0.5):
    """``x`` where ``|x| > lambd``, else 0."""
    x = ops.convert_to_tensor(x)
    return ops.where(ops.abs(x) > lambd, x, ops.zeros_like(x))


@_SERIALIZABLE
@register_activation("hard_sigmoid", fn=hard_sigmoid, catalogue={
    "formula": r"f(x) = \frac{\mathrm{ReLU6}(x + 3)}{6} = \begin{cases} 0 & x \leq -3 \\"
               r" 1 & x \geq 3 \\ x/6 + 1/2 & \text{otherwise} \end{cases}",
    "derivative": r"f'(x) = \begin{cases} 1/6 & -3 < x < 3 \\ 0 & |x| > 3 \end{cases}",
    "range": r"[0, 1]",
    "zero_centered": False, "monotonic": True, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "cheap",
    "typical_use": "sigmoid stand-in on mobile / quantized models (MobileNetV3 SE blocks)",
    "reference": "Howard et al. 2019, 'Searching for MobileNetV3'; course notes "
                 "'Recent functions'",
})
class HardSigmoid(ActivationLayer):
    """Hard sigmoid layer (PyTorch definition, relu6(x+3)/6)."""

    def call(self, inputs):
        return hard_sigmoid(inputs)


@_SERIALIZABLE
@register_activation("hard_swish", fn=hard_swish, catalogue={
    "formula": r"f(x) = x\,\frac{\mathrm{ReLU6}(x + 3)}{6}",
    "derivative": r"f'(x) = \begin{cases} 0 & x < -3 \\ 1 & x > 3 \\ \frac{2x + 3}{6}"
                  r" & \text{otherwise} \end{cases}",
    "range": r"[-0.375, \infty)",
    "zero_centered": False, "monotonic": False, "saturates": "negative side",
    "vanishing_gradient": "less prone", "computation": "cheap",
    "typical_use": "swish stand-in on mobile / quantized models (MobileNetV3)",
    "reference": "Howard et al. 2019, 'Searching for MobileNetV3'",
})
class HardSwish(ActivationLayer):
    """Hard swish layer."""

    def call(self, inputs):
        return hard_swish(inputs)


@_SERIALIZABLE
@register_activation("hard_tanh", fn=hard_tanh, catalogue={
    "formula": r"f(x) = \begin{cases} a & x \leq a \\ b & x \geq b \\ x & \text{otherwise}"
               r" \end{cases},\ a = \text{min\_val},\ b = \text{max\_val}",
    "derivative": r"f'(x) = \begin{cases} 1 & a < x < b \\ 0 & \text{otherwise} \end{cases}",
    "range": r"[\text{min\_val}, \text{max\_val}]",
    "zero_centered": True, "monotonic": True, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "cheap",
    "typical_use": "cheap tanh substitute; bounded outputs (e.g. speech, quantized nets)",
    "reference": "Collobert 2004; course notes 'Recent functions'",
})
class HardTanh(ActivationLayer):
    """Hard tanh (clipping) layer.

    Args:
        min_val: lower clip value (default -1.0).
        max_val: upper clip value (default 1.0), must be > ``min_val``.
    """

    def __init__(self, min_val=-1.0, max_val=1.0, **kwargs):
        super().__init__(**kwargs)
        self.min_val = check_number("min_val", min_val)
        self.max_val = check_number("max_val", max_val)
        if self.max_val <= self.min_val:
            raise ActivationParameterError(
                f"`max_val` must be > `min_val` ({self.min_val}). Received: max_val={max_val!r}")

    def call(self, inputs):
        return hard_tanh(inputs, min_val=self.min_val, max_val=self.max_val)

    def get_config(self):
        return {**super().get_config(), "min_val": self.min_val, "max_val": self.max_val}


class _Shrink(ActivationLayer):
    """Shared parameter handling of the two shrinkage layers."""

    def __init__(self, lambd=0.5, **kwargs):
        super().__init__(**kwargs)
        self.lambd = check_number("lambd", lambd, low=0.0)

    def get_config(self):
        return {**super().get_config(), "lambd": self.lambd}


@_SERIALIZABLE
@register_activation("soft_shrink", fn=soft_shrink, catalogue={
    "formula": r"f(x) = \begin{cases} x - \lambda & x > \lambda \\ x + \lambda & x < -\lambda"
               r" \\ 0 & \text{otherwise} \end{cases}",
    "derivative": r"f'(x) = \begin{cases} 1 & |x| > \lambda \\ 0 & |x| < \lambda \end{cases}",
    "range": r"(-\infty, \infty)",
    "zero_centered": True, "monotonic": True, "saturates": "no",
    "vanishing_gradient": False, "computation": "cheap",
    "typical_use": "sparse coding (ISTA / LISTA), wavelet denoising",
    "reference": "Donoho 1995 (soft thresholding); course notes 'Recent functions'",
})
class SoftShrink(_Shrink):
    """Soft shrinkage layer.

    Args:
        lambd: dead-zone half-width (default 0.5, must be >= 0).
    """

    def call(self, inputs):
        return soft_shrink(inputs, lambd=self.lambd)


@_SERIALIZABLE
@register_activation("hard_shrink", fn=hard_shrink, catalogue={
    "formula": r"f(x) = \begin{cases} x & |x| > \lambda \\ 0 & \text{otherwise} \end{cases}",
    "derivative": r"f'(x) = \begin{cases} 1 & |x| > \lambda \\ 0 & |x| < \lambda \end{cases}",
    "range": r"\{0\} \cup (-\infty, -\lambda) \cup (\lambda, \infty)",
    "zero_centered": True, "monotonic": True, "saturates": "no",
    "vanishing_gradient": False, "computation": "cheap",
    "typical_use": "sparse coding / pruning small activations",
    "reference": "PyTorch torch.nn.Hardshrink; course notes 'Recent functions'",
})
class HardShrink(_Shrink):
    """Hard shrinkage layer.

    Args:
        lambd: dead-zone half-width (default 0.5, must be >= 0).
    """

    def call(self, inputs):
        return hard_shrink(inputs, lambd=self.lambd)
