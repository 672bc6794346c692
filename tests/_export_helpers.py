"""Helpers for the export tests: run artifacts with the raw runtimes.

These deliberately do not use ``export.runtime``: the tests check the
artifacts against Keras through each runtime's own public API, so a bug in
our loaders cannot hide a bug in our converters.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def _natural(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def run_raw(path, x: np.ndarray) -> list[np.ndarray]:
    """Run a float-I/O artifact on ``x`` with its runtime's own API."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime as ort
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = sorted((o.name for o in sess.get_outputs()), key=_natural)
        return sess.run(names, {sess.get_inputs()[0].name: x})
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
        out = runner(input=x)
        return [out[k] for k in sorted(out, key=_natural)]
    import tensorflow as tf
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = fn(input=tf.constant(x))
    return [out[k].numpy() for k in sorted(out, key=_natural)]


def keras_outputs(model, x) -> list[np.ndarray]:
    import keras
    return [np.asarray(o) for o in keras.tree.flatten(model(x, training=False))]


def tiny_model(seed=0, units=3):
    """Input(4) -> Dense(6, relu) -> Dense(units) with distinctive biases."""
    import keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((4,))
    h = keras.layers.Dense(6, activation="relu", bias_initializer="ones")(inp)
    out = keras.layers.Dense(units, bias_initializer=keras.initializers.Constant(0.75))(h)
    return keras.Model(inp, out, name="tiny")
