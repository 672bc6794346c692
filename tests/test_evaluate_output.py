"""Presentation of results: terminal table, Markdown report (atomic); the progress display is tested in test_utils_progress.py."""
import json

import numpy as np
import pytest

from evaluation import report
from evaluation.core import ArtifactResult, EvaluationResult


def _result():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    arts = []
    for i, label in enumerate(["a|b.keras", "exp/model.tflite [int8]"]):
        predicted = np.where(rng.random(60) < 0.8, labels, (labels + 1) % 3)
        cm = np.zeros((3, 3), int)
        np.add.at(cm, (labels, predicted), 1)
        arts.append(ArtifactResult(
            label=label, path=label, kind="keras" if i == 0 else "tflite",
            quantization=None if i == 0 else "int8", accuracy=float(np.mean(predicted == labels)),
            top5_accuracy=1.0, loss=0.5, output_kind="probabilities", agreement=1.0 - 0.1 * i,
            precision=[0.9, 0.8, 0.7], recall=[0.7, 0.8, 0.9], confusion_matrix=cm.tolist(),
            out_of_range_predictions=2 * i, throughput=1e5, latency_ms=1.5, batches=1,
            runtime_seconds=6e-4, load_seconds=0.1, wall_seconds=0.5, isolated=bool(i),
            predictions=predicted))
    return EvaluationResult("toy", "test", 60, 3, ["cat", "dog", "eel"], 64, arts)


def test_table_lists_every_artifact_and_class():
    text = _result().table()
    assert "toy [test]: 60 examples, 3 classes" in text
    assert "exp/model.tflite [int8]" in text and "tflite/int8" in text
    assert "0.900/0.700" in text and "eel" in text
    assert "predicted a class outside the dataset's 3 for 2 example(s)" in text


def test_json_leaves_out_predictions_and_nan():
    result = _result()
    result.artifacts[0].loss = float("nan")
    data = json.loads(result.to_json())
    assert data["artifacts"][0]["loss"] is None
    assert "predictions" not in data["artifacts"][0]
    assert data["artifacts"][1]["confusion_matrix"] == result.artifacts[1].confusion_matrix


def test_report_is_complete_and_escapes_markdown(tmp_path):
    path = _result().write_report(tmp_path / "rep")
    text = path.read_text()
    assert "a\\|b.keras" in text  # a "|" in a label must not break the table
    assert "| cat | " in text
    assert len(list((tmp_path / "rep").glob("confusion_*.png"))) == 2


def test_failed_report_keeps_the_earlier_one(tmp_path, monkeypatch):
    target = tmp_path / "rep"
    _result().write_report(target)
    before = sorted(p.name for p in target.iterdir())

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "plot_confusion_matrix", broken)
    with pytest.raises(OSError, match="disk full"):
        _result().write_report(target)
    assert sorted(p.name for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary left behind
