"""evaluation.metrics against scikit-learn on a small fixed set (independent implementation)."""
import numpy as np
import pytest
from sklearn import metrics as skm

from evaluation import metrics
from evaluation.errors import EvaluationError

NUM_CLASSES = 7


@pytest.fixture(scope="module")
def fixed_set():
    rng = np.random.default_rng(1234)
    n = 400
    labels = rng.integers(0, NUM_CLASSES, n)
    # Informative logits: the true class gets a boost, so accuracy is neither 0 nor 1.
    logits = rng.normal(size=(n, NUM_CLASSES)) + 1.5 * np.eye(NUM_CLASSES)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return logits, probs, labels


def test_accuracy_matches_sklearn(fixed_set):
    logits, _, labels = fixed_set
    want = skm.accuracy_score(labels, logits.argmax(axis=1))
    assert 0.2 < want < 0.9
    assert metrics.accuracy(logits, labels) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k_matches_sklearn(fixed_set, k):
    logits, _, labels = fixed_set
    want = skm.top_k_accuracy_score(labels, logits, k=k, labels=range(NUM_CLASSES))
    assert metrics.top_k_accuracy(logits, labels, k=k) == pytest.approx(want, abs=1e-12)


def test_top_1_breaks_ties_like_argmax():
    outputs = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [0.0, 0.0, 1.0]])
    labels = np.array([1, 1, 2])
    assert metrics.top_k_accuracy(outputs, labels, k=1) == metrics.accuracy(outputs, labels)
    assert metrics.accuracy(outputs, labels) == pytest.approx(2 / 3)


@pytest.mark.parametrize("as_logits", [True, False], ids=["logits", "probabilities"])
def test_loss_matches_sklearn_log_loss(fixed_set, as_logits):
    logits, probs, labels = fixed_set
    outputs = logits if as_logits else probs
    p, kind = metrics.to_probabilities(outputs)
    assert kind == ("logits" if as_logits else "probabilities")
    want = skm.log_loss(labels, probs, labels=range(NUM_CLASSES))
    assert metrics.cross_entropy(p, labels) == pytest.approx(want, rel=1e-5)


def test_softmax_is_stable_for_large_logits():
    p = metrics.softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]], atol=1e-12)


def test_probability_detection():
    assert metrics.is_probabilities(np.array([[0.2, 0.8], [1.0, 0.0]]))
    assert not metrics.is_probabilities(np.array([[0.2, 0.7]]))        # sums to 0.9
    assert not metrics.is_probabilities(np.array([[-0.5, 1.5]]))       # negative: logits
    # int8 softmax outputs (scale 1/256) may miss 1 by up to C * scale / 2.
    quantized = np.array([[102, 102, 51]]) / 256                      # (.4, .4, .2) rounded
    tol = metrics.quantization_tolerance(3, 1 / 256)
    assert not metrics.is_probabilities(quantized)
    assert metrics.is_probabilities(quantized, atol=tol)


def test_confusion_matrix_and_precision_recall_match_sklearn(fixed_set):
    logits, _, labels = fixed_set
    predicted = logits.argmax(axis=1)
    want_cm = skm.confusion_matrix(labels, predicted, labels=range(NUM_CLASSES))
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, predicted, NUM_CLASSES), want_cm)
    want_p, want_r, _, _ = skm.precision_recall_fscore_support(
        labels, predicted, labels=range(NUM_CLASSES), zero_division=0)
    p, r = metrics.precision_recall(labels, predicted, NUM_CLASSES)
    np.testing.assert_allclose(p, want_p, atol=1e-12)
    np.testing.assert_allclose(r, want_r, atol=1e-12)


def test_never_predicted_class_has_zero_precision():
    labels = np.array([0, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1])
    want_p, want_r, _, _ = skm.precision_recall_fscore_support(
        labels, predicted, labels=range(3), zero_division=0)
    p, r = metrics.precision_recall(labels, predicted, 3)
    np.testing.assert_allclose(p, want_p)
    np.testing.assert_allclose(r, want_r)
    assert p[2] == 0.0 and r[2] == 0.0


def test_extra_output_columns_count_as_errors():
    # 10 outputs, 3 dataset classes: a prediction of class 9 is wrong and in no column.
    outputs = np.zeros((4, 10))
    outputs[[0, 1, 2, 3], [0, 1, 9, 2]] = 1.0
    labels = np.array([0, 1, 2, 2])
    scores = metrics.classification_metrics(outputs, labels, 3)
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["out_of_range_predictions"] == 1
    assert scores["recall"][2] == pytest.approx(0.5)
    assert np.sum(scores["confusion_matrix"]) == 3


def test_classification_metrics_bundle_matches_sklearn(fixed_set):
    logits, probs, labels = fixed_set
    scores = metrics.classification_metrics(logits, labels, NUM_CLASSES)
    assert scores["output_kind"] == "logits"
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(labels, logits.argmax(1)))
    assert scores["top5_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(labels, logits, k=5, labels=range(NUM_CLASSES)))
    assert scores["loss"] == pytest.approx(
        skm.log_loss(labels, probs, labels=range(NUM_CLASSES)), rel=1e-5)


def test_agreement():
    assert metrics.agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    with pytest.raises(EvaluationError):
        metrics.agreement(np.array([1, 2]), np.array([1, 2, 3]))


def test_too_few_outputs_is_an_error():
    with pytest.raises(EvaluationError, match="3 outputs but the dataset has 10 classes"):
        metrics.classification_metrics(np.zeros((2, 3)), np.array([0, 1]), 10)


def test_int8_probabilities_are_recognised_without_metadata():
    # What an int8 softmax hands back through a float interface: multiples of
    # 1/256 whose rows miss 1 by more than float rounding would.
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(50, 10)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    quantized = np.round(probs * 256) / 256
    labels = rng.integers(0, 10, 50)
    assert metrics.quantization_step(quantized) == pytest.approx(1 / 256)
    assert metrics.quantization_step(probs) is None
    scores = metrics.classification_metrics(quantized, labels, 10)
    assert scores["output_kind"] == "probabilities"
    want = skm.log_loss(labels, np.clip(quantized, metrics.EPSILON, 1) /
                        np.clip(quantized, metrics.EPSILON, 1).sum(1, keepdims=True),
                        labels=range(10))
    assert scores["loss"] == pytest.approx(want, rel=0.05)
