"""Diagnostics of a trained model: dead hidden units."""
from __future__ import annotations

import numpy as np


def hidden_activation_layers(model) -> list:
    """The layers whose outputs are the hidden units (activation layers, else Dense)."""
    layers = [l for l in model.layers if l.name.endswith("_act") and l is not model.layers[-1]]
    if not layers:
        dense = [l for l in model.layers if type(l).__name__ == "Dense"]
        layers = dense[:-1]
    return layers


def dead_unit_fraction(model, x: np.ndarray, batch_size: int = 1024) -> float:
    """Share of hidden units whose output is exactly 0 for every image of ``x``.

    For ReLU this is the course's "dead ReLU"; for activations that are never
    exactly 0 (sigmoid, tanh, GELU) it is 0 by construction.
    """
    import keras

    layers = hidden_activation_layers(model)
    if not layers:
        return 0.0
    probe = keras.Model(model.input, [l.output for l in layers])
    alive = None
    for start in range(0, len(x), batch_size):
        outs = probe(x[start:start + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        flat = np.concatenate([np.asarray(o, dtype=np.float32).reshape(len(o), -1) for o in outs],
                              axis=1)
        batch_alive = (flat != 0).any(axis=0)
        alive = batch_alive if alive is None else (alive | batch_alive)
    return float(1.0 - alive.mean())
