"""Independent NumPy/SciPy reference of every activation (value and derivative).

Written from the papers / PyTorch documentation, NOT from the code under test:
float64 NumPy and scipy.special only, no keras, no TensorFlow. A test fails for
any registered activation that has no entry here.

Each entry:
    f(x, **params)   float64 value.
    df(x, **params)  float64 derivative (element-wise activations only).
    kinks(**params)  points where the derivative is undefined (excluded there).
    inf              the infinities at which the value is tested: the product
                     forms x*g(x) with g(-inf) = 0 give NaN at -inf in every
                     framework (PyTorch, Keras) and in ours, so only +inf.
    params           non-default parameters for the variant / serialization tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import special

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_K = np.sqrt(2.0 / np.pi)


@dataclass(frozen=True)
class Ref:
    f: Callable
    df: Callable | None
    kinks: Callable = lambda **p: ()
    inf: tuple = (np.inf, -np.inf)
    params: dict = field(default_factory=dict)
    elementwise: bool = True


def _leaky(x, a):
    return np.where(x >= 0, x, a * x)


def _dleaky(x, a):
    return np.where(x > 0, 1.0, a)


def _elu(x, alpha):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _delu(x, alpha):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0.0, beta * x) / beta)


def _dsoftplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, 1.0, special.expit(beta * x))


def _gelu(x, approximate=False):
    if approximate:
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * x * (1.0 + np.tanh(GELU_K * (x + 0.044715 * x ** 3)))
    return x * special.ndtr(x)


def _dgelu(x, approximate=False):
    if approximate:
        with np.errstate(over="ignore", invalid="ignore"):
            t = np.tanh(GELU_K * (x + 0.044715 * x ** 3))
            sech2 = 1.0 - t * t
            return 0.5 * (1.0 + t) + 0.5 * x * sech2 * GELU_K * (1.0 + 3 * 0.044715 * x * x)
    return special.ndtr(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _swish(x, beta=1.0, trainable_beta=False):
    return x * special.expit(beta * x)


def _dswish(x, beta=1.0, trainable_beta=False):
    s = special.expit(beta * x)
    return s + beta * x * s * (1.0 - s)


def _mish(x, beta=1.0):
    return x * np.tanh(_softplus(x, beta))


def _dmish(x, beta=1.0):
    t = np.tanh(_softplus(x, beta))
    return t + x * (1.0 - t * t) * _dsoftplus(x, beta)


def _sinc(x, normalized=False):
    # np.sinc is the normalised sin(pi x)/(pi x).
    return np.sinc(x) if normalized else np.sinc(x / np.pi)


def _dsinc(x, normalized=False):
    t = np.pi * x if normalized else x
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.cos(t) / t - np.sin(t) / (t * t)
    series = -t / 3.0 + t ** 3 / 30.0 - t ** 5 / 840.0
    d = np.where(np.abs(t) < 1e-2, series, exact)
    return np.pi * d if normalized else d


def _hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


REFERENCE: dict[str, Ref] = {
    "linear": Ref(lambda x: x, lambda x: np.ones_like(x)),
    "binary_step": Ref(
        lambda x, threshold=0.0: (x >= threshold).astype(np.float64),
        lambda x, threshold=0.0: np.zeros_like(x),
        kinks=lambda threshold=0.0: (threshold,), params={"threshold": 0.25}),
    "sigmoid": Ref(special.expit,
                   lambda x: special.expit(x) * (1.0 - special.expit(x))),
    "tanh": Ref(np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "relu": Ref(lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(np.float64),
                kinks=lambda: (0.0,)),
    "leaky_relu": Ref(
        lambda x, negative_slope=0.01: _leaky(x, negative_slope),
        lambda x, negative_slope=0.01: _dleaky(x, negative_slope),
        kinks=lambda negative_slope=0.01: (0.0,), params={"negative_slope": 0.2}),
    "prelu": Ref(
        lambda x, alpha_initializer=0.25, shared_axes=None: _leaky(x, alpha_initializer),
        lambda x, alpha_initializer=0.25, shared_axes=None: _dleaky(x, alpha_initializer),
        kinks=lambda **p: (0.0,), params={"alpha_initializer": 0.1, "shared_axes": [1]}),
    # Inference mode: the mean slope (lower + upper) / 2.
    "rrelu": Ref(
        lambda x, lower=1 / 8, upper=1 / 3, seed=None: _leaky(x, (lower + upper) / 2),
        lambda x, lower=1 / 8, upper=1 / 3, seed=None: _dleaky(x, (lower + upper) / 2),
        kinks=lambda **p: (0.0,), params={"lower": 0.05, "upper": 0.45, "seed": 3}),
    "elu": Ref(lambda x, alpha=1.0: _elu(x, alpha), lambda x, alpha=1.0: _delu(x, alpha),
               kinks=lambda **p: (0.0,), params={"alpha": 0.7}),
    "selu": Ref(lambda x: SELU_SCALE * _elu(x, SELU_ALPHA),
                lambda x: SELU_SCALE * _delu(x, SELU_ALPHA), kinks=lambda: (0.0,)),
    "gelu": Ref(_gelu, _dgelu, inf=(np.inf,), params={"approximate": True}),
    "swish": Ref(_swish, _dswish, inf=(np.inf,),
                 params={"beta": 1.7, "trainable_beta": True}),
    "mish": Ref(_mish, _dmish, inf=(np.inf,), params={"beta": 0.6}),
    "softplus": Ref(_softplus, _dsoftplus, params={"beta": 2.0, "threshold": 8.0},
                    kinks=lambda beta=1.0, threshold=20.0: (threshold / beta,)),
    # x / (1 + |x|) is inf/inf at the infinities, as in every framework.
    "softsign": Ref(lambda x: x / (1.0 + np.abs(x)),
                    lambda x: 1.0 / (1.0 + np.abs(x)) ** 2, inf=()),
    "hard_sigmoid": Ref(_hard_sigmoid, lambda x: np.where(np.abs(x) < 3, 1.0 / 6.0, 0.0),
                        kinks=lambda: (-3.0, 3.0)),
    "hard_swish": Ref(lambda x: x * _hard_sigmoid(x),
                      lambda x: np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2 * x + 3) / 6)),
                      kinks=lambda: (-3.0, 3.0), inf=(np.inf,)),
    "hard_tanh": Ref(
        lambda x, min_val=-1.0, max_val=1.0: np.clip(x, min_val, max_val),
        lambda x, min_val=-1.0, max_val=1.0: ((x > min_val) & (x < max_val)).astype(float),
        kinks=lambda min_val=-1.0, max_val=1.0: (min_val, max_val),
        params={"min_val": -0.5, "max_val": 2.0}),
    "tanh_shrink": Ref(lambda x: x - np.tanh(x), lambda x: np.tanh(x) ** 2),
    "soft_shrink": Ref(
        lambda x, lambd=0.5: np.sign(x) * np.maximum(np.abs(x) - lambd, 0.0),
        lambda x, lambd=0.5: (np.abs(x) > lambd).astype(np.float64),
        kinks=lambda lambd=0.5: (-lambd, lambd), params={"lambd": 1.5}),
    "hard_shrink": Ref(
        lambda x, lambd=0.5: np.where(np.abs(x) > lambd, x, 0.0),
        lambda x, lambd=0.5: (np.abs(x) > lambd).astype(np.float64),
        kinks=lambda lambd=0.5: (-lambd, lambd), params={"lambd": 1.5}),
    "log_sigmoid": Ref(lambda x: -np.logaddexp(0.0, -x), lambda x: special.expit(-x)),
    # sin(inf) is undefined, so sinc(+-inf) is NaN in NumPy as in every framework.
    "sinc": Ref(_sinc, _dsinc, inf=(), params={"normalized": True}),
    "softmax": Ref(lambda x, axis=-1: special.softmax(x, axis=axis), None, inf=(),
                   params={"axis": 1}, elementwise=False),
}


def softmax_vjp(x, w, axis=-1):
    """Gradient of sum(w * softmax(x)) w.r.t. x: s * (w - sum(w * s))."""
    s = special.softmax(x, axis=axis)
    return s * (w - np.sum(w * s, axis=axis, keepdims=True))
