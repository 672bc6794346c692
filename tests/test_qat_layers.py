"""Fake-quantization layers against numpy formulas of int8 arithmetic, and the
QAT graph rewrite (save/reload, refused layers)."""
import numpy as np
import pytest


def _int8_activation(x, low, high):
    """numpy reference: asymmetric int8 with the zero point nudged onto the grid."""
    scale = (high - low) / 255.0
    zero = np.clip(np.round(-128 - low / scale), -128, 127)
    q = np.clip(np.floor(x / scale + 0.5 + zero), -128, 127)
    return (q - zero) * scale


def test_activation_quantizer_matches_int8_grid_and_tracks_the_range():
    from models.quantizers import ActivationQuantizer
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32) * 3
    layer = ActivationQuantizer(momentum=0.5)
    out, value_range = layer(x, training=True)  # first batch: its own min/max
    np.testing.assert_allclose(np.asarray(value_range), [x.min(), x.max()], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out), _int8_activation(x, x.min(), x.max()),
                               atol=1e-5)
    layer(x * 2, training=True)  # EMA with momentum 0.5
    want = [0.5 * x.min() + 0.5 * 2 * x.min(), 0.5 * x.max() + 0.5 * 2 * x.max()]
    np.testing.assert_allclose(np.asarray(layer(x)[1]), want, rtol=1e-5)


def test_logits_quantizer_raises_the_lower_bound_like_the_exporter():
    from export.calibration import logit_lower_bound
    from models.quantizers import ActivationQuantizer
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(32, 50)).astype(np.float32) * 10
    layer = ActivationQuantizer(mode="logits")
    _, value_range = layer(logits, training=True)
    assert float(value_range[0]) == pytest.approx(logit_lower_bound(logits), rel=1e-5)
    assert float(value_range[1]) == pytest.approx(float(logits.max()), rel=1e-6)


def test_dense_weights_are_symmetric_per_channel_and_the_bias_int32():
    from models.quantizers import QuantDense
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(5, 3)).astype(np.float32) * np.array([1, 10, 0.01], np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    x = rng.random((4, 5)).astype(np.float32)
    value_range = np.array([0.0, 1.0], np.float32)
    layer = QuantDense(3, activation="relu")
    layer([x, value_range])
    layer.set_weights([kernel, bias])
    scale = np.abs(kernel).max(axis=0) / 127
    w = np.clip(np.round(kernel / scale), -127, 127) * scale
    bias_scale = (1.0 / 255) * scale
    b = np.round(bias / bias_scale) * bias_scale
    np.testing.assert_allclose(np.asarray(layer([x, value_range])),
                               np.maximum(x @ w + b, 0), atol=1e-5)


def test_user_model_round_trips_through_keras_with_safe_mode(tmp_path):
    import keras
    import models
    import training
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(6)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("tanh")(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, out)
    sample = np.random.default_rng(3).random((16, 8, 8, 1)).astype(np.float32)
    qat = training.quantize_aware(model, sample=sample)
    path = tmp_path / "qat.keras"
    qat.save(path)
    again = models.load_model(path)
    np.testing.assert_array_equal(np.asarray(again(sample)), np.asarray(qat(sample)))
    # tanh output on its fixed 1/128 grid, softmax output on 1/256
    from models.quantizers import FIXED_RANGES
    tanh = next(l for l in qat.layers if getattr(l, "fixed_range", None) == FIXED_RANGES["tanh"])
    tanh_out = keras.Model(qat.inputs, tanh.output[0])(sample)
    np.testing.assert_allclose(np.asarray(tanh_out) * 128, np.round(np.asarray(tanh_out) * 128),
                               atol=1e-4)
    probs = np.asarray(qat(sample)) * 256
    np.testing.assert_allclose(probs, np.round(probs), atol=1e-3)


def test_refuses_layers_without_int8_counterpart_naming_them():
    import models
    import training
    with pytest.raises(training.QuantizationError, match="'lstm' \\(RowLSTM\\)"):
        training.quantize_aware(models.create_model("lstm_rows"))
