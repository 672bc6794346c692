"""The course's worked numbers, reproduced exactly, and Rosenblatt's perceptron."""
import numpy as np
import pytest

import keras
import models
from models.perceptron import predict_perceptron, set_perceptron_weights, train_perceptron
from tests._models_helpers import built, summary_totals


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.float64(z)))


X_COURSE = np.array([[2.0, 3.0]], np.float32)


def test_neuron_2in_course_example():
    model = models.create_model("neuron_2in", course_weights=True)
    kernel, bias = model.get_layer("neuron").get_weights()
    np.testing.assert_array_equal(kernel.ravel(), [0.0, 1.0])
    np.testing.assert_array_equal(bias, [4.0])
    y = float(np.asarray(model(X_COURSE))[0, 0])
    expected = _sigmoid(0 * 2 + 1 * 3 + 4)           # f(7) = 0.9990889488...
    assert y == pytest.approx(expected, abs=1e-6)
    assert round(y, 3) == 0.999                       # the course's boxed number


def test_feedforward_2_2_1_course_example():
    model = models.create_model("feedforward_2_2_1", course_weights=True)
    hidden = keras.Model(model.input, model.get_layer("hidden_act").output)
    h = np.asarray(hidden(X_COURSE))[0]
    o1 = float(np.asarray(model(X_COURSE))[0, 0])
    h_expected = _sigmoid(0 * 2 + 1 * 3 + 0)         # 0.95257412682...
    o_expected = _sigmoid(0 * h_expected + 1 * h_expected + 0)  # 0.72163...
    np.testing.assert_allclose(h, [h_expected, h_expected], atol=1e-6)
    assert o1 == pytest.approx(o_expected, abs=1e-6)
    assert [round(float(v), 4) for v in h] == [0.9526, 0.9526]
    assert round(o1, 4) == 0.7216
    assert model.count_params() == (2 * 2 + 2) + (2 * 1 + 1)


def test_exam_mlp_course_numbers():
    model = built("exam_mlp")
    assert model.count_params() == 16_295
    assert summary_totals(model)["total"] == 16_295
    result = models.audit(model)
    dense = [r for r in result.rows if r.type == "Dense"]
    assert [r.params for r in dense] == [5_125, 60, 110, 11_000]
    assert [r.formula for r in dense] == [
        "(1024 x 5) + 5 = 5,125", "(5 x 10) + 10 = 60",
        "(10 x 10) + 10 = 110", "(10 x 1000) + 1000 = 11,000"]
    assert [(r.weights, r.biases) for r in dense] == [(5120, 5), (50, 10), (100, 10), (10_000, 1000)]
    assert [r.activation for r in dense] == ["relu", "relu", "relu", "softmax"]
    assert result.total_params == 16_295
    assert result.total_macs == 1024 * 5 + 5 * 10 + 10 * 10 + 10 * 1000
    assert result.size_bytes("float32") == 4 * 16_295
    assert result.size_bytes("float16") == 2 * 16_295
    assert result.size_bytes("int8") == 16_295
    assert result.activations_used == {"relu": ["hidden"], "softmax": ["output"]}


def test_exam_mlp_markdown_reads_like_the_answer():
    text = models.audit(built("exam_mlp")).to_markdown()
    for needle in ("## 1. Structure", "Hidden layer 1", "Output layer",
                   "(1024 x 5) + 5 = 5,125", "5,125 + 60 + 110 + 11,000 = **16,295**",
                   "## 3. Activation functions"):
        assert needle in text, needle
    import activations
    hidden = next(l for l in text.splitlines() if l.startswith("- Hidden layers: **relu**"))
    output = next(l for l in text.splitlines() if l.startswith("- Output layer: **softmax**"))
    assert activations.describe("relu")["typical_use"] in hidden
    assert activations.describe("softmax")["typical_use"] in output


def test_lenet5_convolution_formulas():
    result = models.audit(built("lenet5"))
    rows = {r.name: r for r in result.rows}
    assert rows["conv_1"].formula == "(5 x 5 x 1 x 6) + 6 = 156"
    assert rows["conv_2"].formula == "(5 x 5 x 6 x 16) + 16 = 2,416"
    assert rows["dense_1"].formula == "(400 x 120) + 120 = 48,120"
    # LeCun et al. 1998 sizes: C1 28x28x6, S2 14x14, C3 10x10x16, S4 5x5.
    assert rows["conv_1"].output_shape == "(None, 28, 28, 6)"
    assert rows["pool_2"].output_shape == "(None, 5, 5, 16)"
    assert rows["conv_1"].macs == 5 * 5 * 1 * 6 * 28 * 28
    assert rows["conv_2"].macs == 5 * 5 * 6 * 16 * 10 * 10
    assert result.total_params == 156 + 2416 + 48_120 + (120 * 84 + 84) + (84 * 10 + 10)


LOGIC = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)


@pytest.mark.parametrize("name, y", [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])])
def test_perceptron_learns_and_or(name, y):
    result = train_perceptron(LOGIC, y, epochs=50, lr=1.0)
    assert result.converged, name
    assert result.errors[-1] == 0 and len(result.errors) == result.epochs
    # Check the learned line independently of predict_perceptron.
    z = LOGIC @ result.weights + result.bias
    np.testing.assert_array_equal((z >= 0).astype(int), y)
    np.testing.assert_array_equal(predict_perceptron(LOGIC, result.weights, result.bias), y)
    # The same weights in the Keras LTU (binary step) give the same truth table.
    model = set_perceptron_weights(models.create_model("perceptron"), result)
    out = np.asarray(model(LOGIC.astype(np.float32)))[:, 0]
    np.testing.assert_array_equal(out, y)


def test_perceptron_fails_on_xor():
    result = train_perceptron(LOGIC, [0, 1, 1, 0], epochs=200)
    assert not result.converged
    assert result.epochs == 200 and min(result.errors) > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(X=[[0, 1]], y=[0, 1]), "shape"),
    (dict(X=LOGIC, y=[0, 2, 1, 0]), "0 and 1"),
    (dict(X=LOGIC, y=[0, 1, 1, 0], epochs=0), "epochs"),
    (dict(X=LOGIC, y=[0, 1, 1, 0], lr=0.0), "lr"),
])
def test_perceptron_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_perceptron(**kwargs)
