"""Smooth activations: GELU, Swish, Mish, Softplus, Softsign, LogSigmoid,
Sinc and TanhShrink.

Every formula here is written so that it (1) never overflows for large |x|,
(2) has a finite autodiff gradient everywhere, and (3) lowers to ops that
TFLite has as builtins and onnxruntime implements: no Expm1, Log1p or Erfc
graph ops (ONNX has no such operators, TFLite has no Erfc; checked with
TFLiteConverter + tf2onnx 1.17 + onnxruntime 1.31).
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from activations._base import ActivationLayer, check_bool, check_number
from activations._registry import register_activation

_SERIALIZABLE = keras.saving.register_keras_serializable(package="activations")
_SINC_TAYLOR_BELOW = 0.5
# sin(x)/x = 1 - x^2/(2*3) (1 - x^2/(4*5) (1 - ...)): ratios of successive terms.
_SINC_TAYLOR_DENOMINATORS = (6.0, 20.0, 42.0, 72.0, 110.0, 156.0, 210.0)


def _log1p_exp(z):
    """``log(1 + e^z)`` for any z, gradient ``sigmoid(z)`` everywhere.

    ``max(z, 0) + log(1 + e^-|z|)`` cannot overflow, but abs/relu give the
    wrong gradient (0 instead of 1/2) at exactly z = 0; selecting with one
    comparison keeps both the value and the gradient right.
    """
    positive = z > 0
    return (ops.where(positive, z, ops.zeros_like(z))
            + _log1p(ops.exp(ops.where(positive, -z, z))))


def _log1p(u):
    """``log(1 + u)`` to full precision for tiny u, from Log and Div only.

    ``log(1 + u)`` alone loses all digits of ``u < eps`` (softplus(-30) would
    be 0, and mish / small-beta softplus multiply that error up), while a
    Log1p graph op has no ONNX counterpart. Goldberg's trick
    ``log(w) * u / (w - 1)`` with ``w = 1 + u`` cancels the rounding of ``w``.
    """
    w = 1.0 + u
    denominator = w - 1.0
    exact = ops.equal(denominator, 0.0)
    # Double where: the unused division never sees 0, so no NaN gradient.
    safe = ops.where(exact, ops.ones_like(w), denominator)
    return ops.where(exact, u, ops.log(w) * (u / safe))


def gelu(x, approximate=False):
    """``x * Phi(x)``; with ``approximate=True`` the tanh approximation."""
    x = ops.convert_to_tensor(x)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + ops.tanh(inner))
    # 1 + erf(.) rather than erfc(-.): Erfc has no onnxruntime kernel.
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


def swish(x, beta=1.0):
    """``x * sigmoid(beta * x)`` (SiLU for beta = 1); ``beta`` may be a tensor."""
    x = ops.convert_to_tensor(x)
    beta = ops.cast(beta, x.dtype)
    return x * ops.sigmoid(beta * x)


def softplus(x, beta=1.0, threshold=20.0):
    """``(1/beta) log(1 + e^(beta x))``; exactly ``x`` where ``beta x > threshold``."""
    x = ops.convert_to_tensor(x)
    z = beta * x
    return ops.where(z > threshold, x, _log1p_exp(z) / beta)


def mish(x, beta=1.0):
    """``x * tanh(softplus(x, beta))`` (softplus threshold 20, as PyTorch)."""
    x = ops.convert_to_tensor(x)
    return x * ops.tanh(softplus(x, beta=beta))


def softsign(x):
    """``x / (1 + |x|)``."""
    x = ops.convert_to_tensor(x)
    return x / (1.0 + ops.abs(x))


def log_sigmoid(x):
    """``log(sigmoid(x)) = -log(1 + e^-x)``; finite for all finite x."""
    x = ops.convert_to_tensor(x)
    return -_log1p_exp(-x)


def sinc(x, normalized=False):
    """``sin(x)/x`` (1 at 0); ``normalized=True`` gives ``sin(pi x)/(pi x)``."""
    x = ops.convert_to_tensor(x)
    if normalized:
        x = math.pi * x
    # Near 0, sin(x)/x is exact but its autodiff gradient cos(x)/x - sin(x)/x^2
    # cancels catastrophically (and is NaN at 0). A Taylor polynomial there
    # (error < 1e-19 for |x| < 0.5) gives value and gradient to float64 precision.
    small = ops.abs(x) < _SINC_TAYLOR_BELOW
    # Double where on both sides: the division never sees 0 and the series
    # never sees a large x (its x^14 would overflow into a NaN gradient).
    safe = ops.where(small, ops.ones_like(x), x)
    x2 = ops.square(ops.where(small, x, ops.zeros_like(x)))
    taylor = ops.ones_like(x)
    for k in reversed(_SINC_TAYLOR_DENOMINATORS):  # Horner form of the series
        taylor = 1.0 - x2 / k * taylor
    return ops.where(small, taylor, ops.sin(safe) / safe)


def tanh_shrink(x):
    """``x - tanh(x)``."""
    x = ops.convert_to_tensor(x)
    return x - ops.tanh(x)


@_SERIALIZABLE
@register_activation("gelu", fn=gelu, catalogue={
    "formula": r"f(x) = x\,\Phi(x) = \frac{x}{2}\left(1 + \mathrm{erf}"
               r"\left(\frac{x}{\sqrt{2}}\right)\right)",
    "derivative": r"f'(x) = \Phi(x) + x\,\varphi(x)",
    "range": r"[-0.17, \infty)",
    "zero_centered": False, "monotonic": False, "saturates": "negative side",
    "vanishing_gradient": "less prone", "computation": "expensive",
    "typical_use": "transformers (BERT, GPT, ViT) hidden layers",
    "reference": "Hendrycks & Gimpel 2016, 'Gaussian Error Linear Units'; "
                 "course notes 'Recent functions'",
})
class GELU(ActivationLayer):
    """Gaussian error linear unit.

    Args:
        approximate: use the tanh approximation (default False: exact erf form).
    """

    def __init__(self, approximate=False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = check_bool("approximate", approximate)

    def call(self, inputs):
        return gelu(inputs, approximate=self.approximate)

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}


@_SERIALIZABLE
@register_activation("swish", fn=swish, catalogue={
    "formula": r"f(x) = x\,\sigma(\beta x) = \frac{x}{1 + e^{-\beta x}}",
    "derivative": r"f'(x) = \sigma(\beta x) + \beta x\,\sigma(\beta x)(1 - \sigma(\beta x))",
    "range": r"[-0.28, \infty) \ (\beta = 1)",
    "zero_centered": False, "monotonic": False, "saturates": "negative side",
    "vanishing_gradient": "less prone", "computation": "moderate",
    "typical_use": "deep networks (> 40 layers, per the course), EfficientNet, MobileNetV3",
    "reference": "Ramachandran et al. 2017, 'Searching for Activation Functions'; "
                 "course notes 'Summary'",
})
class Swish(ActivationLayer):
    """Swish / SiLU, optionally with a trainable ``beta``.

    Args:
        beta: slope inside the sigmoid (default 1.0; the initial value when trainable).
        trainable_beta: learn ``beta`` as a scalar weight (default False).
    """

    def __init__(self, beta=1.0, trainable_beta=False, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_number("beta", beta)
        self.trainable_beta = check_bool("trainable_beta", trainable_beta)

    def build(self, input_shape):
        if self.trainable_beta:
            self.beta_weight = self.add_weight(
                shape=(), name="beta",
                initializer=keras.initializers.Constant(np.float64(self.beta)))

    def call(self, inputs):
        beta = self.beta_weight if self.trainable_beta else self.beta
        return swish(inputs, beta=beta)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta,
                "trainable_beta": self.trainable_beta}


@_SERIALIZABLE
@register_activation("mish", fn=mish, catalogue={
    "formula": r"f(x) = x \tanh\left(\frac{1}{\beta}\ln(1 + e^{\beta x})\right)",
    "derivative": r"f'(x) = \tanh(s) + x\,\sigma(\beta x)\,(1 - \tanh^2(s)),"
                  r"\ s = \frac{1}{\beta}\ln(1 + e^{\beta x})",
    "range": r"[-0.31, \infty) \ (\beta = 1)",
    "zero_centered": False, "monotonic": False, "saturates": "negative side",
    "vanishing_gradient": "less prone", "computation": "expensive",
    "typical_use": "hidden layers of detection CNNs (YOLOv4)",
    "reference": "Misra 2019, 'Mish: A Self Regularized Non-Monotonic Activation "
                 "Function'; course notes 'Recent functions'",
})
class Mish(ActivationLayer):
    """Mish activation.

    Args:
        beta: sharpness of the inner softplus (default 1.0).
    """

    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_number("beta", beta, low=0.0, open_low=True)

    def call(self, inputs):
        return mish(inputs, beta=self.beta)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@_SERIALIZABLE
@register_activation("softplus", fn=softplus, catalogue={
    "formula": r"f(x) = \frac{1}{\beta}\ln(1 + e^{\beta x})",
    "derivative": r"f'(x) = \frac{1}{1 + e^{-\beta x}} = \sigma(\beta x)",
    "range": r"(0, \infty)",
    "zero_centered": False, "monotonic": True, "saturates": "negative side",
    "vanishing_gradient": "less prone", "computation": "expensive",
    "typical_use": "smooth ReLU; outputs that must be positive (variances, rates)",
    "reference": "Dugas et al. 2001; course notes table (which prints the range as "
                 "(0, 1); the true range is (0, inf))",
})
class Softplus(ActivationLayer):
    """Softplus, linear above ``threshold`` like PyTorch's.

    Args:
        beta: sharpness (default 1.0, must be > 0).
        threshold: ``beta * x`` above which the output is ``x`` (default 20.0).
    """

    def __init__(self, beta=1.0, threshold=20.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_number("beta", beta, low=0.0, open_low=True)
        self.threshold = check_number("threshold", threshold)

    def call(self, inputs):
        return softplus(inputs, beta=self.beta, threshold=self.threshold)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "threshold": self.threshold}


@_SERIALIZABLE
@register_activation("softsign", fn=softsign, catalogue={
    "formula": r"f(x) = \frac{x}{1 + |x|}",
    "derivative": r"f'(x) = \frac{1}{(1 + |x|)^2}",
    "range": r"(-1, 1)",
    "zero_centered": True, "monotonic": True, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "cheap",
    "typical_use": "cheaper tanh substitute; saturates polynomially, not exponentially",
    "reference": "Bergstra et al. 2009; course notes 'Recent functions'",
})
class Softsign(ActivationLayer):
    """Softsign layer."""

    def call(self, inputs):
        return softsign(inputs)


@_SERIALIZABLE
@register_activation("log_sigmoid", fn=log_sigmoid, catalogue={
    "formula": r"f(x) = \ln \sigma(x) = -\ln(1 + e^{-x})",
    "derivative": r"f'(x) = 1 - \sigma(x) = \sigma(-x)",
    "range": r"(-\infty, 0)",
    "zero_centered": False, "monotonic": True, "saturates": "positive side",
    "vanishing_gradient": "less prone", "computation": "expensive",
    "typical_use": "log-probabilities for binary losses (numerically stable BCE)",
    "reference": "PyTorch torch.nn.LogSigmoid",
})
class LogSigmoid(ActivationLayer):
    """Log-sigmoid layer."""

    def call(self, inputs):
        return log_sigmoid(inputs)


@_SERIALIZABLE
@register_activation("sinc", fn=sinc, catalogue={
    "formula": r"f(x) = \begin{cases} \frac{\sin x}{x} & x \neq 0 \\ 1 & x = 0 \end{cases}",
    "derivative": r"f'(x) = \begin{cases} \frac{\cos x}{x} - \frac{\sin x}{x^2}"
                  r" & x \neq 0 \\ 0 & x = 0 \end{cases}",
    "range": r"[-0.217, 1]",
    "zero_centered": False, "monotonic": False, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "moderate",
    "typical_use": "periodic / signal-processing models (SincNet filters); rare in hidden layers",
    "reference": "Parascandolo et al. 2016, 'Taming the waves'; Ravanelli & Bengio 2018",
})
class Sinc(ActivationLayer):
    """Cardinal sine.

    Args:
        normalized: use ``sin(pi x)/(pi x)`` (default False: ``sin(x)/x``).
    """

    def __init__(self, normalized=False, **kwargs):
        super().__init__(**kwargs)
        self.normalized = check_bool("normalized", normalized)

    def call(self, inputs):
        return sinc(inputs, normalized=self.normalized)

    def get_config(self):
        return {**super().get_config(), "normalized": self.normalized}


@_SERIALIZABLE
@register_activation("tanh_shrink", fn=tanh_shrink, catalogue={
    "formula": r"f(x) = x - \tanh(x)",
    "derivative": r"f'(x) = \tanh^2(x)",
    "range": r"(-\infty, \infty)",
    "zero_centered": True, "monotonic": True, "saturates": "no",
    "vanishing_gradient": True, "computation": "moderate",
    "typical_use": "sparse coding / denoising layers; flat (zero gradient) near 0",
    "reference": "PyTorch torch.nn.Tanhshrink; course notes 'Recent functions'",
})
class TanhShrink(ActivationLayer):
    """Tanh-shrink layer."""

    def call(self, inputs):
        return tanh_shrink(inputs)
