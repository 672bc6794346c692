"""Quantized TFLite (float16, dynamic range, int8) validates; the int8
options (int8 I/O, fixed batch, logits only, float head) do what they say;
Flex ops are refused unless allowed.

References come from outside the exporter: numpy forward passes with
float16-rounded weights, the interpreter's own tensor details, Keras' argmax.
"""
import numpy as np
import pytest

import export
from tests._export_helpers import keras_outputs, run_raw


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small MLP trained briefly on the real MNIST digits (confident enough
    that int8 rounding rarely flips its top-1)."""
    import keras

    import data
    bundle = data.load_dataset("digits")
    x, y = bundle.as_numpy("train")
    xt, _ = bundle.as_numpy("test")
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 1))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(32, activation="relu")(h)
    out = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inp, out, name="digits_mlp")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    out_dir = tmp_path_factory.mktemp("quant") / "out"
    manifest = export.export_model(model, out_dir, formats=["tflite"],
                                   quantize=[None, "float16", "dynamic", "int8"],
                                   representative_data=x, validation_data=xt)
    arts = {a["quantization"]: a for a in manifest["artifacts"]}
    return {"model": model, "x": x, "xt": xt, "dir": out_dir, "arts": arts}


def _numpy_forward(model, x, weight_dtype):
    """Dense stack forward pass in numpy with weights rounded to weight_dtype."""
    h = x.reshape(len(x), -1).astype(np.float32)
    dense = [l for l in model.layers if l.weights]
    for i, layer in enumerate(dense):
        w, b = (v.astype(weight_dtype).astype(np.float32) for v in layer.get_weights())
        h = h @ w + b
        if i < len(dense) - 1:
            h = np.maximum(h, 0)
    e = np.exp(h - h.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.slow
def test_every_quantization_validates(trained):
    arts = trained["arts"]
    assert set(arts) == {None, "float16", "dynamic", "int8"}
    assert all(a["validation"]["passed"] for a in arts.values())
    sizes = {q: a["size_bytes"] for q, a in arts.items()}
    assert sizes["float16"] < sizes[None] and sizes["int8"] < sizes["float16"]
    assert sizes["dynamic"] < sizes["float16"]


@pytest.mark.slow
def test_float16_matches_float16_rounded_weights(trained):
    xt = trained["xt"][:50]
    got = run_raw(trained["dir"] / trained["arts"]["float16"]["path"], xt)[0]
    ref16 = _numpy_forward(trained["model"], xt, np.float16)
    np.testing.assert_allclose(got, ref16, atol=2e-6)
    # ...and it is not simply the float32 model (the rounding is really there).
    assert np.abs(ref16 - _numpy_forward(trained["model"], xt, np.float32)).max() > 1e-6


@pytest.mark.slow
def test_int8_top1_agreement_with_keras(trained):
    a = trained["arts"]["int8"]
    xt = trained["xt"]
    got = run_raw(trained["dir"] / a["path"], xt)[0]
    ref = keras_outputs(trained["model"], xt)[0]
    agreement = float(np.mean(got.argmax(1) == ref.argmax(1)))
    assert agreement >= 0.98
    assert a["validation"]["top1_agreement"] == pytest.approx(agreement, abs=1e-9)
    assert a["validation"]["samples"] == len(xt)
    # Full-integer body: the hidden layer's weights are int8 tensors.
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(trained["dir"] / a["path"]))
    dtypes = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()
              if len(t["shape"]) == 2 and t["shape"][1] == 1024}
    assert "int8" in dtypes
    assert a["float_head"], "the softmax head is kept float by default"


@pytest.mark.slow
def test_int8_io_records_scale_and_zero_point(trained, tmp_path):
    from ai_edge_litert.interpreter import Interpreter
    manifest = export.export_model(trained["model"], tmp_path / "out", formats=["tflite"],
                                   quantize="int8", int8_io=True,
                                   representative_data=trained["x"],
                                   validation_data=trained["xt"])
    a = manifest["artifacts"][0]
    assert a["validation"]["passed"] and a["float_head"] == []
    interp = Interpreter(model_path=str(tmp_path / "out" / a["path"]))
    for spec, detail in ((a["inputs"][0], interp.get_input_details()[0]),
                         (a["outputs"][0], interp.get_output_details()[0])):
        assert spec["dtype"] == "int8" and np.dtype(detail["dtype"]) == np.int8
        scale, zero = detail["quantization"]
        assert spec["quantization"] == {"scale": pytest.approx(scale), "zero_point": zero}
    # Quantize by hand with the recorded parameters: same top-1 as Keras.
    q_in, q_out = a["inputs"][0]["quantization"], a["outputs"][0]["quantization"]
    xt = trained["xt"][:200]
    xq = np.clip(np.round(xt / q_in["scale"]) + q_in["zero_point"], -128, 127).astype(np.int8)
    interp.resize_tensor_input(interp.get_input_details()[0]["index"], list(xq.shape))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], xq)
    interp.invoke()
    yq = interp.get_tensor(interp.get_output_details()[0]["index"])
    y = (yq.astype(np.float32) - q_out["zero_point"]) * q_out["scale"]
    ref = keras_outputs(trained["model"], xt)[0]
    assert np.mean(y.argmax(1) == ref.argmax(1)) >= 0.98


@pytest.mark.slow
def test_fixed_batch_logits_only_is_static_and_lean(trained, tmp_path):
    manifest = export.export_model(trained["model"], tmp_path / "out", formats=["tflite"],
                                   quantize=[None, "int8"], fixed_batch=1, logits_only=True,
                                   representative_data=trained["x"],
                                   validation_data=trained["xt"])
    for a in manifest["artifacts"]:
        assert a["validation"]["passed"], a
        assert a["fixed_batch"] == 1 and a["path"].endswith("_b1.tflite")
        # No dynamic-shape plumbing and no softmax left in the graph.
        assert not {"SHAPE", "STRIDED_SLICE", "PACK", "SOFTMAX"} & set(a["ops"]), a["ops"]
    from ai_edge_litert.interpreter import Interpreter
    path = tmp_path / "out" / manifest["artifacts"][0]["path"]
    assert list(Interpreter(model_path=str(path)).get_input_details()[0]["shape_signature"]) \
        == [1, 32, 32, 1]
    xt = trained["xt"][:20]
    logits = np.concatenate([run_raw(path, xt[i:i + 1])[0] for i in range(len(xt))])
    probs = keras_outputs(trained["model"], xt)[0]
    np.testing.assert_array_equal(logits.argmax(1), probs.argmax(1))
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(1, keepdims=True), probs, atol=1e-5)


def test_flex_ops_refused_unless_allowed(tmp_path):
    import keras
    import tensorflow as tf

    class CumProd(keras.layers.Layer):  # TFLite has CUMSUM but no cumulative product
        def call(self, x):
            return tf.math.cumprod(x, axis=1)

    inp = keras.Input((4,))
    model = keras.Model(inp, CumProd()(keras.layers.Dense(3)(inp)))
    with pytest.raises(export.UnsupportedOpsError, match="FlexCumprod") as exc:
        export.export_model(model, tmp_path / "out", formats=["tflite"])
    assert exc.value.ops == ["FlexCumprod"]
    assert not (tmp_path / "out").exists()
    manifest = export.export_model(model, tmp_path / "out", formats=["tflite"], allow_flex=True)
    a = manifest["artifacts"][0]
    assert a["uses_flex"] is True and a["edge_ready"] is False
    assert "FlexCumprod" in a["ops"]


# --- what an int8 artifact must agree on: the decision its output encodes ----------

class _Fixed:
    """A runner that returns one fixed output array (sliced like a real batch)."""

    def __init__(self, out):
        self.out = out
        self.input_spec = [{"shape": [None, 4], "dtype": "float32"}]

    def run(self, inputs):
        n = len(inputs[0]) if isinstance(inputs, list) else len(inputs)
        start = getattr(self, "_at", 0)
        self._at = (start + n) % len(self.out)
        return [self.out[start:start + n]]


@pytest.mark.parametrize("decision, reference", [
    ("argmax", lambda a, b: a.argmax(1) == b.argmax(1)),
    ("argmin", lambda a, b: a.argmin(1) == b.argmin(1)),
    ("sign", lambda a, b: np.all(np.sign(a) == np.sign(b), axis=1)),
    ("bits", lambda a, b: np.all((a > 0.5) == (b > 0.5), axis=1)),
    ("regression", lambda a, b: np.all(np.abs(a - b) <= 0.05 * (b.max() - b.min()), axis=1)),
])
def test_int8_agreement_is_on_the_decision_of_the_output(decision, reference):
    from export.validate import _agreement
    rng = np.random.default_rng(0)
    ref = rng.uniform(-1, 1, (400, 6)).astype(np.float32)
    if decision == "bits":
        ref = (ref + 1) / 2
    got = ref + rng.normal(0, 0.15, ref.shape).astype(np.float32)   # int8-like noise
    data = np.zeros((400, 4), np.float32)
    result = _agreement(_Fixed(got), _Fixed(ref), data, decision)
    assert result["decision"] == decision and result["samples"] == 400
    assert result["top1_agreement"] == pytest.approx(float(np.mean(reference(got, ref))))


@pytest.mark.slow
def test_int8_som_is_judged_by_its_best_matching_unit(tmp_path):
    """A SOM's output is distances: its int8 file must pick the same best-matching
    unit (argmin) as Keras, recomputed here with the raw interpreter."""
    import data
    import models
    bundle = data.load_dataset("digits")
    x, _ = bundle.as_numpy("train")
    xt, _ = bundle.as_numpy("test")
    som = models.create_model("som", input_shape=(32, 32, 1), grid=(4, 4))
    models.learn(som, x, epochs=5, seed=0)
    manifest = export.export_model(som, tmp_path / "out", formats=["tflite"], quantize="int8",
                                   representative_data=x, validation_data=xt)
    a = manifest["artifacts"][0]
    got = run_raw(tmp_path / "out" / a["path"], xt)[0]
    ref = keras_outputs(som, xt)[0]
    assert a["validation"]["decision"] == "argmin"
    assert a["validation"]["top1_agreement"] == pytest.approx(
        float(np.mean(got.argmin(1) == ref.argmin(1))), abs=1e-9)
    from export.manifest import _validation_cell
    assert _validation_cell(a["validation"]).startswith("best-matching-unit agreement")
