"""Classification metrics in plain numpy.

The evaluation does not trust any runtime or framework to score itself: every
number here is computed from the raw model outputs and the integer labels, so
the same code scores a ``.keras`` model and its ``.tflite`` export.

Conventions:
    * ``outputs`` is a float array ``[N, C]`` (probabilities or logits, see
      :func:`to_probabilities`), ``labels`` an integer array ``[N]``.
    * The model may have more output columns than the dataset has classes (the
      course's exam network has 1000 outputs and is trained on 10 digits); a
      prediction outside the dataset's classes simply counts as wrong.
    * Ties are broken towards the lower class index, as ``numpy.argmax`` does,
      so top-1 of :func:`top_k_accuracy` equals :func:`accuracy`.
"""
from __future__ import annotations

import numpy as np

from .errors import EvaluationError

# Keras clips probabilities to [eps, 1 - eps] before the log; using the same
# value keeps our loss comparable with what training printed.
EPSILON = 1e-7


def _check(outputs, labels=None):
    outputs = np.asarray(outputs)
    if outputs.ndim != 2 or outputs.shape[1] < 1:
        raise EvaluationError(
            f"Model outputs must be a 2-D array [examples, classes]. "
            f"Received shape {outputs.shape}.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != outputs.shape[0]:
            raise EvaluationError(
                f"Labels must be a 1-D array with one entry per output row ({outputs.shape[0]}). "
                f"Received shape {labels.shape}.")
        labels = labels.astype(np.int64)
    return outputs.astype(np.float64), labels


def is_probabilities(outputs, atol: float = 1e-3) -> bool:
    """Whether every row of ``outputs`` looks like a probability distribution.

    Args:
        outputs: ``[N, C]`` model outputs.
        atol: how far a row sum may be from 1. Float softmax outputs sum to 1
            within ~1e-6; quantized outputs need ``C * scale / 2`` (the largest
            total rounding error), see :func:`quantization_tolerance`.

    Returns:
        True when all values are in ``[0, 1]`` and all row sums are within
        ``atol`` of 1; False otherwise (the outputs are treated as logits).
    """
    outputs, _ = _check(outputs)
    if outputs.size == 0:
        return True
    if outputs.min() < 0.0 or outputs.max() > 1.0 + atol:
        return False
    return bool(np.all(np.abs(outputs.sum(axis=1) - 1.0) <= atol))


def quantization_tolerance(num_outputs: int, scale: float | None) -> float:
    """Row-sum tolerance for quantized probabilities: each value is off by <= scale/2."""
    if not scale:
        return 1e-3
    return 1e-3 + num_outputs * float(scale) / 2.0


def quantization_step(outputs, max_rows: int = 1000) -> float | None:
    """The grid step of quantized outputs, or None when they are not on a grid.

    An int8 model's outputs are ``(q - zero_point) * scale`` even when the
    runtime hands them over as float32, so they are all multiples of
    ``scale``. Float outputs have no such grid.
    """
    outputs, _ = _check(outputs)
    sample = np.unique(outputs[:max_rows])
    if sample.size < 2:
        return None
    step = float(np.min(np.diff(sample)))
    if step < 1e-4:
        return None  # finer than any 8/16-bit probability grid: float outputs
    ratio = sample / step
    return step if np.allclose(ratio, np.round(ratio), atol=1e-3) else None


def softmax(logits) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large logits do not overflow."""
    logits, _ = _check(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def to_probabilities(outputs, atol: float = 1e-3) -> tuple[np.ndarray, str]:
    """Turn model outputs into probabilities.

    Returns:
        ``(probabilities, kind)`` where ``kind`` is ``"probabilities"`` (rows were
        already distributions; renormalised so quantization error does not leak
        into the loss) or ``"logits"`` (softmax applied).
    """
    outputs, _ = _check(outputs)
    if is_probabilities(outputs, atol):
        sums = outputs.sum(axis=1, keepdims=True)
        # An all-zero quantized row carries no information: make it uniform.
        safe = np.where(sums > 0, sums, 1.0)
        probs = np.where(sums > 0, outputs / safe, 1.0 / outputs.shape[1])
        return probs, "probabilities"
    return softmax(outputs), "logits"


def predictions(outputs) -> np.ndarray:
    """Top-1 class index per row (lowest index wins a tie)."""
    outputs, _ = _check(outputs)
    return outputs.argmax(axis=1)


def accuracy(outputs, labels) -> float:
    """Fraction of rows whose top-1 prediction equals the label."""
    outputs, labels = _check(outputs, labels)
    if labels.size == 0:
        return float("nan")
    return float(np.mean(outputs.argmax(axis=1) == labels))


def top_k_accuracy(outputs, labels, k: int = 5) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores.

    The label's rank counts the scores strictly above it plus equal scores at a
    lower index, so ``k=1`` gives exactly :func:`accuracy`. With ``k`` >= the
    number of outputs every row is a hit.
    """
    outputs, labels = _check(outputs, labels)
    if k < 1:
        raise EvaluationError(f"k must be a positive integer. Received: k={k!r}")
    if labels.size == 0:
        return float("nan")
    rows = np.arange(labels.size)
    in_range = (labels >= 0) & (labels < outputs.shape[1])
    true_score = outputs[rows, np.clip(labels, 0, outputs.shape[1] - 1)][:, None]
    above = (outputs > true_score).sum(axis=1)
    tied_before = ((outputs == true_score)
                   & (np.arange(outputs.shape[1])[None, :] < labels[:, None])).sum(axis=1)
    return float(np.mean(in_range & (above + tied_before < k)))


def cross_entropy(probabilities, labels) -> float:
    """Mean negative log-probability of the true class (probabilities clipped to EPSILON)."""
    probabilities, labels = _check(probabilities, labels)
    if labels.size == 0:
        return float("nan")
    if labels.min() < 0 or labels.max() >= probabilities.shape[1]:
        raise EvaluationError(
            f"Labels must lie in [0, {probabilities.shape[1]}) to score the loss. "
            f"Received labels from {labels.min()} to {labels.max()}.")
    p = probabilities[np.arange(labels.size), labels]
    return float(-np.mean(np.log(np.clip(p, EPSILON, 1.0 - EPSILON))))


def confusion_matrix(labels, predicted, num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` counts: row = true class, column = predicted class.

    Predictions outside ``[0, num_classes)`` are not in any column (they are
    still errors: recall uses the true-class counts, not the row sums).
    """
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    keep = (predicted >= 0) & (predicted < num_classes) & (labels >= 0) & (labels < num_classes)
    flat = labels[keep] * num_classes + predicted[keep]
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def precision_recall(labels, predicted, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall; 0 where a class is never predicted / never present."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    cm = confusion_matrix(labels, predicted, num_classes)
    true_positive = np.diag(cm).astype(np.float64)
    predicted_count = np.bincount(predicted[(predicted >= 0) & (predicted < num_classes)],
                                  minlength=num_classes)
    true_count = np.bincount(labels[(labels >= 0) & (labels < num_classes)], minlength=num_classes)
    precision = np.divide(true_positive, predicted_count, out=np.zeros(num_classes),
                          where=predicted_count > 0)
    recall = np.divide(true_positive, true_count, out=np.zeros(num_classes), where=true_count > 0)
    return precision, recall


def agreement(predicted, reference) -> float:
    """Fraction of rows where two artifacts make the same top-1 prediction."""
    predicted, reference = np.asarray(predicted), np.asarray(reference)
    if predicted.shape != reference.shape:
        raise EvaluationError(
            f"Cannot compare predictions of different lengths: "
            f"{predicted.shape} vs {reference.shape}.")
    if predicted.size == 0:
        return float("nan")
    return float(np.mean(predicted == reference))


def classification_metrics(outputs, labels, num_classes: int, *, atol: float | None = None) -> dict:
    """All per-artifact quality metrics from raw outputs.

    Args:
        outputs: ``[N, C]`` probabilities or logits, with ``C >= num_classes``.
        labels: ``[N]`` integer labels in ``[0, num_classes)``.
        num_classes: the dataset's number of classes (size of the confusion matrix).
        atol: row-sum tolerance for recognising probabilities (see :func:`is_probabilities`);
            None: 1e-3, widened for quantized outputs by :func:`quantization_step`.

    Returns:
        dict with ``accuracy``, ``top5_accuracy``, ``loss``, ``output_kind``,
        ``precision``, ``recall`` (lists, one per class), ``confusion_matrix``
        (list of lists), ``predictions`` (np.ndarray, not JSON) and
        ``out_of_range_predictions`` (predicted index >= num_classes).

    Raises:
        EvaluationError: the outputs have fewer columns than the dataset has classes.
    """
    outputs, labels = _check(outputs, labels)
    if outputs.shape[1] < num_classes:
        raise EvaluationError(
            f"The model has {outputs.shape[1]} outputs but the dataset has {num_classes} classes; "
            f"it cannot predict every class. Evaluate it on a dataset with at most "
            f"{outputs.shape[1]} classes.")
    if atol is None:
        atol = quantization_tolerance(outputs.shape[1], quantization_step(outputs))
    probs, kind = to_probabilities(outputs, atol)
    predicted = outputs.argmax(axis=1)
    precision, recall = precision_recall(labels, predicted, num_classes)
    return {
        "accuracy": accuracy(outputs, labels),
        "top5_accuracy": top_k_accuracy(outputs, labels, k=5),
        "loss": cross_entropy(probs, labels),
        "output_kind": kind,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "confusion_matrix": confusion_matrix(labels, predicted, num_classes).tolist(),
        "out_of_range_predictions": int(np.sum(predicted >= num_classes)),
        "predictions": predicted,
    }
