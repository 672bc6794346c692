"""Which activation each audited layer uses: the activation a layer is, has
built in, or feeds straight into (Dense -> [BatchNorm] -> [Dropout] -> ReLU
belongs to the Dense, as the course draws it), and the roles ("hidden",
"output") each activation plays in the model."""
from __future__ import annotations

import keras

import activations

# Layers that keep the shape and sit between a weight layer and its activation.
PASS_THROUGH = (keras.layers.BatchNormalization, keras.layers.Dropout,
                keras.layers.AlphaDropout)


def safe(fn):
    # Shared layers and layers outside a functional graph have no single
    # input/output; the audit still counts their weights.
    try:
        return fn()
    except (AttributeError, ValueError, RuntimeError):
        return None

def activation_classes() -> dict:
    return {activations.describe(n)["layer"]: n for n in activations.list_activations()}


def activation_of_layer(layer) -> str | None:
    """Name of the activation a layer *is* (activation layer), else None.

    Recognises the ``activations`` package's layers, ``keras.layers.Activation``
    and Keras' own ReLU/Softmax/LeakyReLU/ELU/PReLU layers.
    """
    if isinstance(layer, keras.layers.Activation):
        return _function_name(layer.activation)
    return activation_classes().get(type(layer).__name__)


def _function_name(fn) -> str | None:
    name = getattr(fn, "__name__", None)
    return None if name in (None, "linear") else name


def consumers_of(model) -> dict:
    """id(layer) -> layers reading its output, from the functional graph."""
    producer = {}
    for layer in model.layers:
        for t in _flat(safe(lambda: layer.output)):
            producer[id(t)] = layer
    result: dict[int, list] = {}
    for layer in model.layers:
        for t in _flat(safe(lambda: layer.input)):
            if id(t) in producer:
                result.setdefault(id(producer[id(t)]), []).append(layer)
    return result


def _flat(tensors) -> list:
    return [] if tensors is None else keras.tree.flatten(tensors)


def activation_of(layer, consumers: dict) -> str | None:
    """The activation a layer is, has built in, or feeds straight into."""
    own = activation_of_layer(layer)
    if own:
        return own
    if hasattr(layer, "activation") and _function_name(layer.activation):
        return _function_name(layer.activation)
    if isinstance(layer, (PASS_THROUGH, keras.layers.InputLayer)):
        return None
    # Dense -> [BatchNorm] -> [Dropout] -> activation layer: the activation
    # belongs to the Dense, as the course draws it (likewise Add -> ReLU in a
    # residual block).
    current = layer
    for _ in range(4):
        nxt = consumers.get(id(current), [])
        if len(nxt) != 1:
            return None
        current = nxt[0]
        name = activation_of_layer(current)
        if name:
            return name
        if not isinstance(current, PASS_THROUGH):
            return None
    return None


def activation_roles(rows: list) -> dict:
    """activation name -> sorted roles ("hidden", "output") it plays.

    The output layer is the last layer with a kernel; activations at or after
    it are output activations, all earlier ones hidden.
    """
    classes = activation_classes()
    kernel_rows = [i for i, r in enumerate(rows)
                   if r.params and r.type not in classes and r.type != "BatchNormalization"]
    last = kernel_rows[-1] if kernel_rows else -1
    roles: dict[str, set] = {}
    for i, row in enumerate(rows):
        if row.activation:
            roles.setdefault(row.activation, set()).add("output" if i >= last else "hidden")
    return {k: sorted(v) for k, v in sorted(roles.items())}
