"""lstm_rows: the recurrence against a numpy LSTM, the fused builtin TFLite op
and ONNX, both validated, and backprop training on the embedded digits."""
import numpy as np
import pytest

import models


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_lstm_rows(model, x):
    # Hochreiter & Schmidhuber's cell with a forget gate, Keras' gate order i, f, g, o.
    layer = model.get_layer("lstm")
    w, u, b = (np.asarray(v.numpy(), np.float64) for v in (layer.kernel,
                                                           layer.recurrent_kernel, layer.bias))
    n = u.shape[0]
    rows = x.reshape(len(x), x.shape[1], -1).astype(np.float64)
    h = c = np.zeros((len(x), n))
    for t in range(rows.shape[1]):
        z = rows[:, t] @ w + h @ u + b
        i, f, g, o = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
        c = np.clip(_sigmoid(f) * c + _sigmoid(i) * np.tanh(g), -10, 10)
        h = _sigmoid(o) * np.tanh(c)
    w_out, b_out = model.get_layer("output").get_weights()
    logits = h @ w_out + b_out
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_rows_are_read_like_a_numpy_lstm():
    model = models.create_model("lstm_rows", input_shape=(6, 5, 2), units=8, num_classes=4)
    layer = model.get_layer("lstm")
    rng = np.random.default_rng(0)
    layer.set_weights([w + rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    x = rng.random((3, 6, 5, 2), dtype=np.float32)
    expected = _numpy_lstm_rows(model, x)
    # Inference (the fused-LSTM function) and training (the loop) compute the same.
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x, training=True)), expected, atol=1e-6)
    assert models.describe("lstm_rows")["params"] == 4 * ((32 + 64) * 64 + 64) + 64 * 10 + 10


@pytest.mark.slow
def test_exports_the_fused_builtin_lstm_op_and_onnx(tmp_path):
    import export
    from tests._export_helpers import keras_outputs, run_raw

    model = models.create_model("lstm_rows")
    layer = model.get_layer("lstm")
    rng = np.random.default_rng(1)
    layer.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    # TFLite fuses a Keras-LSTM function only at a static batch size (the edge setting).
    manifest = export.export_model(model, tmp_path / "out", formats=["onnx", "tflite"],
                                   fixed_batch=1)
    arts = {a["format"]: a for a in manifest["artifacts"]}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in arts["tflite"]["ops"]
    assert arts["tflite"]["uses_flex"] is False and arts["tflite"]["custom_ops"] == []
    assert all(a["validation"]["passed"] for a in arts.values())
    x = rng.random((3, 32, 32, 1), dtype=np.float32)
    reference = keras_outputs(model, x)[0]
    np.testing.assert_allclose(run_raw(tmp_path / "out" / arts["onnx"]["path"], x)[0],
                               reference, atol=1e-5)
    # Batch-1 artifact, three separate images: no state leaks from one call to the next.
    tflite = [run_raw(tmp_path / "out" / arts["tflite"]["path"], x[i:i + 1])[0] for i in range(3)]
    np.testing.assert_allclose(np.concatenate(tflite), reference, atol=1e-5)


@pytest.mark.slow
def test_trains_on_the_embedded_digits_well_beyond_chance(tmp_path):
    from _train_helpers import small_config

    from training import train

    # XLA's compile of the loop's gradient costs ~17 s here; the math is the same without.
    config = small_config(tmp_path / "run", model="lstm_rows", model_overrides={}, limit=1500,
                          epochs=4, batch_size=32, lr=3e-3, steps_per_execution=8,
                          jit_compile=False)
    result = train(config, log=lambda *_: None)
    assert result.test_accuracy > 0.5, result.test_accuracy   # chance: 0.1
