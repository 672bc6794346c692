"""RBF network: XOR (which the perceptron cannot learn), iris 5-fold CV, the
Gaussian units against their formula, and bad input."""
import numpy as np
import pytest

import models
from models.perceptron import train_perceptron

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([0, 1, 1, 0])


def test_solves_xor_which_the_perceptron_cannot():
    assert not train_perceptron(XOR_X, XOR_Y, epochs=100).converged
    model = models.create_model("rbf_network", input_shape=(2,), centers=4, num_classes=2)
    history = models.learn(model, XOR_X, XOR_Y, epochs=3)
    assert history["accuracy"][-1] == 1.0
    np.testing.assert_array_equal(np.asarray(model(XOR_X)).argmax(1), XOR_Y)


def test_iris_five_fold_cross_validation():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import StratifiedKFold

    x, y = load_iris(return_X_y=True)
    scores = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        model = models.create_model("rbf_network", input_shape=(4,), centers=10, num_classes=3)
        models.learn(model, x[train], y[train], seed=0)
        scores.append(np.mean(np.asarray(model(x[test].astype(np.float32))).argmax(1) == y[test]))
    assert np.mean(scores) >= 0.90, scores   # measured: 0.967


def test_units_widths_and_output_follow_the_formulas(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3, 2)), rng.integers(0, 3, 40)
    model = models.create_model("rbf_network", input_shape=(3, 2), centers=5, num_classes=3)
    models.learn(model, x, y, epochs=4, seed=1, neighbors=2)
    layer = model.get_layer("rbf")
    c, sigma = layer.kernel.numpy().astype(np.float64), layer.widths.numpy().astype(np.float64)
    # P-nearest-centre widths (Moody & Darken): RMS distance to the 2 nearest other centres.
    d2 = ((c[:, None] - c[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    np.testing.assert_allclose(sigma, np.sqrt(np.sort(d2, 1)[:, :2].mean(1)), rtol=1e-6)
    flat = x.reshape(40, 6)
    phi = np.exp(-((flat[:, None] - c[None]) ** 2).sum(-1) / (2 * sigma ** 2))
    w, bias = model.get_layer("output").get_weights()
    # The output layer is the least-squares fit of one-hot targets.
    design = np.hstack([phi, np.ones((40, 1))])
    lstsq = np.linalg.lstsq(design, np.eye(3)[y], rcond=None)[0]
    np.testing.assert_allclose(np.vstack([w, bias]), lstsq, atol=1e-4)
    np.testing.assert_allclose(np.asarray(model(x.astype(np.float32))), phi @ w + bias,
                               rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "rbf.keras")
    again = models.load_model(tmp_path / "rbf.keras")
    np.testing.assert_array_equal(np.asarray(again(x.astype(np.float32))),
                                  np.asarray(model(x.astype(np.float32))))


def test_bad_input_is_a_one_line_error():
    model = models.create_model("rbf_network", input_shape=(2,), centers=5, num_classes=2)
    with pytest.raises(models.LearningRuleError, match="centers=5 exceeds the number of samples "
                                                       r"\(4\)") as info:
        models.learn(model, XOR_X, XOR_Y)
    assert "\n" not in str(info.value)
    with pytest.raises(models.LearningRuleError, match="supervised"):
        models.learn(model, XOR_X)
    with pytest.raises(models.LearningRuleError, match=r"labels must be in 0\.\.1"):
        models.learn(model, np.tile(XOR_X, (2, 1)), np.arange(8))
    with pytest.raises(models.ModelConfigError, match="centers"):
        models.create_model("rbf_network", input_shape=(4,), centers=0)
