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


def trained_exam_mlp(epochs=20, seed=0):
    """The course's exam network trained as ``train.py`` trains it (digits,
    Adam 3e-3, batch 64, 20 epochs), with the digits train and test images.

    Returns:
        ``(model, x_train, x_test)``.
    """
    import keras

    import data
    import models
    bundle = data.load_dataset("digits")
    x, y = bundle.as_numpy("train")
    xt, _ = bundle.as_numpy("test")
    keras.utils.set_random_seed(seed)
    model = models.create_model("exam_mlp")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model, x, xt


def run_tflite_micro(path, x, arena_size):
    """Outputs (raw int8) of a ``.tflite`` file in the TFLite Micro interpreter,
    one sample per invoke, through tflite_micro's own Python API."""
    from tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(Path(path).read_bytes(), arena_size=arena_size)
    detail = interp.get_input_details(0)
    scale = detail["quantization_parameters"]["scales"][0]
    zero = detail["quantization_parameters"]["zero_points"][0]
    outs = []
    for i in range(len(x)):
        q = np.clip(np.round(x[i:i + 1] / scale) + zero, -128, 127).astype(np.int8)
        interp.set_input(q.reshape(detail["shape"]), 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    return np.concatenate(outs)


def run_litert_int8(path, x):
    """Raw int8 outputs of LiteRT's builtin kernels (no XNNPACK), one sample per call."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_path=str(path), experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = i["quantization"]
    outs = []
    for k in range(len(x)):
        q = np.clip(np.round(x[k:k + 1] / scale) + zero, -128, 127).astype(np.int8)
        interp.set_tensor(i["index"], q)
        interp.invoke()
        outs.append(interp.get_tensor(o["index"]).copy())
    return np.concatenate(outs)
