"""The activation zoo: every activation of the course as a Keras layer.

Each activation is a Keras layer (registered for ``.keras`` reloading under
the package name ``activations``), a plain function built from ``keras.ops``,
and a catalogue entry.

Example:
    >>> import activations
    >>> layer = activations.get("leaky_relu", negative_slope=0.1)
    >>> activations.get_function("softplus")(x, beta=2.0)
    >>> activations.describe("sigmoid")["range"]
    '(0, 1)'
"""
# `python -m activations` imports this package before its __main__ runs, so
# this is the only place to keep TensorFlow's C++ start-up lines off stderr.
import utils.tf_quiet  # noqa: F401  (must precede keras)

from activations._registry import (  # noqa: E402
    ActivationParameterError,
    UnknownActivationError,
    describe,
    get,
    get_function,
    list_activations,
    register_activation,
)

# Importing the modules fills the registry.
from activations.classic import (  # noqa: E402
    BinaryStep, Linear, ReLU, Sigmoid, Softmax, Tanh,
)
from activations.rectifiers import ELU, SELU, LeakyReLU, PReLU, RReLU  # noqa: E402
from activations.smooth import (  # noqa: E402
    GELU, LogSigmoid, Mish, Sinc, Softplus, Softsign, Swish, TanhShrink,
)
from activations.hard import (  # noqa: E402
    HardShrink, HardSigmoid, HardSwish, HardTanh, SoftShrink,
)

__all__ = [
    "ActivationParameterError", "UnknownActivationError", "describe", "get",
    "get_function", "list_activations", "register_activation",
    "BinaryStep", "ELU", "GELU", "HardShrink", "HardSigmoid", "HardSwish",
    "HardTanh", "LeakyReLU", "Linear", "LogSigmoid", "Mish", "PReLU", "ReLU",
    "RReLU", "SELU", "Sigmoid", "Sinc", "Softmax", "Softplus", "Softsign",
    "SoftShrink", "Swish", "Tanh", "TanhShrink",
]
