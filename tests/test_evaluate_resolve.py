"""What an ARTIFACT argument is, and the cheap checks that run before any runtime."""
import json
import zipfile

import pytest

from evaluation import evaluate
from evaluation.artifacts import check, read_card, resolve
from evaluation.errors import ArtifactError, EvaluationError


def _tflite(path, body=b"\0" * 32):
    path.write_bytes(b"\x1c\0\0\0TFL3" + body)
    return path


def test_kinds_are_detected(tmp_path):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"x")
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "m.keras").write_bytes(b"x")
    _tflite(tmp_path / "m.tflite")
    found = resolve([tmp_path / "m.keras", tmp_path / "sm", tmp_path / "m.onnx",
                     tmp_path / "m.tflite"])
    assert [a.kind for a in found] == ["keras", "saved_model", "onnx", "tflite"]
    assert found[3].description == "TFLite flatbuffer"


def test_export_directory_expands_in_manifest_order_with_labels(tmp_path):
    export = tmp_path / "exp"
    export.mkdir()
    _tflite(export / "model.tflite")
    _tflite(export / "model_int8.tflite")
    manifest = {"artifacts": [
        {"path": "model_int8.tflite", "format": "tflite", "quantization": "int8"},
        {"path": "model.tflite", "format": "tflite", "quantization": None}]}
    (export / "manifest.json").write_text(json.dumps(manifest))
    found = resolve([export, export / "model.tflite"])
    assert [a.label for a in found] == ["exp/model_int8.tflite [int8]", "exp/model.tflite",
                                        str(export / "model.tflite")]
    assert [a.quantization for a in found] == ["int8", None, None]
    assert found[0].manifest_entry == manifest["artifacts"][0]


def test_the_same_artifact_twice_gets_distinct_labels(tmp_path):
    path = _tflite(tmp_path / "m.tflite")
    assert [a.label for a in resolve([path, path])] == [str(path), f"{path} #2"]


@pytest.mark.parametrize("name, message", [
    ("missing.tflite", "Artifact not found"),
    ("model.pt", "Unsupported artifact"),
    ("plain_dir", "neither a SavedModel"),
])
def test_unresolvable_paths(tmp_path, name, message):
    if name == "model.pt":
        (tmp_path / name).write_bytes(b"x")
    if name == "plain_dir":
        (tmp_path / name).mkdir()
    with pytest.raises(ArtifactError, match=message):
        resolve([tmp_path / name])


def test_manifest_problems(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="Cannot read the export manifest"):
        resolve([tmp_path])
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": [{"path": "gone.onnx"}]}))
    with pytest.raises(ArtifactError, match="gone.onnx"):
        resolve([tmp_path])
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": []}))
    with pytest.raises(ArtifactError, match="lists no artifacts"):
        resolve([tmp_path])


def test_cheap_checks_reject_broken_files(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    wrong_magic = tmp_path / "wrong.tflite"
    wrong_magic.write_bytes(b"\0\0\0\0ABCD" + b"\0" * 32)
    not_zip = tmp_path / "m.keras"
    not_zip.write_bytes(b"PK but not really")
    no_config = tmp_path / "n.keras"
    with zipfile.ZipFile(no_config, "w") as archive:
        archive.writestr("metadata.json", "{}")
    garbage_onnx = tmp_path / "g.onnx"
    garbage_onnx.write_bytes(b"\xff" * 100)
    for path, message in [(empty, "empty"), (wrong_magic, "expected b'TFL3'"),
                          (not_zip, "not a valid Keras"), (no_config, "no config.json"),
                          (garbage_onnx, "not a valid ONNX model")]:
        with pytest.raises(ArtifactError, match=message):
            check(resolve([path])[0])
    check(resolve([_tflite(tmp_path / "ok.tflite")])[0])  # header fine: left to the runtime


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"limit": 0}, "limit must be a positive integer"),
    ({"num_threads": -1}, "num_threads must be a positive integer"),
])
def test_evaluate_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate([_tflite(tmp_path / "m.tflite")], **kwargs)


def test_no_artifact():
    with pytest.raises(ArtifactError, match="No artifact given"):
        evaluate([])


def test_limit_takes_a_fixed_subset_spread_over_the_classes(tmp_path, monkeypatch):
    # digits' test split is stored sorted by class: a prefix would be all zeros.
    import numpy as np

    import data
    from evaluation import core

    x, y = data.load_dataset("digits").as_numpy("test")
    seen = {}

    def fake_run(path, kind, inputs, batch_size, **kwargs):
        # A "model" that answers each image's true label (looked up in the full split).
        seen.setdefault("inputs", []).append(inputs.copy())
        rows = [int(np.flatnonzero((x == image).all(axis=(1, 2, 3)))[0]) for image in inputs]
        return np.eye(10, dtype=np.float32)[y[rows]], {"seconds": 1.0, "throughput": 1.0, "latency_ms": 1.0, "batches": 1,
                         "load_seconds": 0.0, "kind": kind, "input_spec": [], "output_spec": []}

    monkeypatch.setattr(core.execute, "run", fake_run)
    keras_file = tmp_path / "m.keras"
    with zipfile.ZipFile(keras_file, "w") as archive:
        archive.writestr("config.json", "{}")
    first = evaluate([keras_file], dataset="digits", limit=100, progress=False)
    second = evaluate([keras_file], dataset="digits", limit=100, progress=False)
    np.testing.assert_array_equal(seen["inputs"][0], seen["inputs"][1])  # same subset each run
    assert first.num_examples == 100
    assert first.artifacts[0].accuracy == 1.0  # outputs were the true labels
    per_class = np.asarray(first.artifacts[0].confusion_matrix).sum(axis=1)
    assert (per_class > 0).sum() >= 8  # spread over the classes, not 100 zeros
    assert second.artifacts[0].confusion_matrix == first.artifacts[0].confusion_matrix


def test_manifest_size_and_hash_are_checked(tmp_path):
    import hashlib

    body = _tflite(tmp_path / "model.tflite").read_bytes()
    entry = {"path": "model.tflite", "format": "tflite", "quantization": None,
             "size_bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"artifacts": [entry]}))
    check(resolve([tmp_path])[0])  # untouched: passes
    manifest.write_text(json.dumps({"artifacts": [dict(entry, size_bytes=len(body) + 1)]}))
    with pytest.raises(ArtifactError, match=f"{len(body)} bytes, the manifest recorded "
                                            f"{len(body) + 1}"):
        check(resolve([tmp_path])[0])
    manifest.write_text(json.dumps({"artifacts": [dict(entry, sha256="0" * 64)]}))
    with pytest.raises(ArtifactError, match="sha256 .* the manifest recorded 000000000000"):
        check(resolve([tmp_path])[0])


def test_models_without_class_scores_are_refused_by_their_model_card(tmp_path):
    """A SOM's distances (or Hopfield's state, an RBM's features) are not class scores:
    evaluate.py refuses them by the card they carry, whatever their name, as a .keras
    file and as a .tflite, and still scores the classic nets that are classifiers (LVQ)."""
    import models
    from export import metadata
    from models.card import card_json

    som = models.create_model("som", input_shape=(32, 32, 1), grid=(3, 3))
    som.name = "my_renamed_map"
    som.save(tmp_path / "som.keras")
    with pytest.raises(ArtifactError, match=r"som.keras' is a model whose output is not class "
                       r"scores \(its model card: distances"):
        read_card(resolve([tmp_path / "som.keras"])[0])
    tflite = _tflite(tmp_path / "model.tflite")
    assert read_card(resolve([tflite])[0]) is None     # no card: scored as it comes
    real = tmp_path / "som.tflite"
    real.write_bytes(metadata.tflite_with_metadata(_real_tflite(), "zoo.model_card",
                                                   card_json(models.model_card(som)).encode()))
    with pytest.raises(ArtifactError, match=r"som.tflite' is a model whose output is not class"):
        evaluate([real])
    lvq = models.create_model("lvq", input_shape=(32, 32, 1), num_classes=10)
    lvq.save(tmp_path / "lvq.keras")
    assert read_card(resolve([tmp_path / "lvq.keras"])[0])["classes"]["count"] == 10


def test_a_corrupt_model_card_in_a_tflite_is_one_clear_error(tmp_path):
    from export import metadata

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(metadata.tflite_with_metadata(_real_tflite(), "zoo.model_card",
                                                  b'{"decision": "argmax", "clas'))
    with pytest.raises(ArtifactError, match=r"model card in '.*bad.tflite' .* is not valid JSON"):
        evaluate([bad])


def _real_tflite() -> bytes:
    import tensorflow as tf

    fn = tf.function(lambda x: {"y": tf.nn.softmax(x)},
                     input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()], fn).convert()
