"""One owner for each artifact fact: the .keras loader and its error,
Lambda detection, artifact kinds, the child runner, the warm-up count, and a
manifest that covers SavedModel directories too."""
import json
import zipfile

import numpy as np
import pytest

import export
import models
from evaluation.artifacts import check, detect_kind, resolve
from evaluation.errors import ArtifactError
from export import manifest as manifest_io
from export.runtime import artifact_kind


def test_one_model_load_error_class():
    from utils.errors import ModelLoadError

    assert models.ModelLoadError is export.ModelLoadError is ModelLoadError


@pytest.mark.parametrize("name, kind", [
    ("m.keras", "keras"), ("M.KERAS", "keras"), ("m.onnx", "onnx"), ("m.Onnx", "onnx"),
    ("m.tflite", "tflite"), ("MODEL.TFLITE", "tflite"),
    ("sm_pb", "saved_model"), ("sm_pbtxt", "saved_model")])
def test_export_and_evaluation_detect_the_same_kind(tmp_path, name, kind):
    path = tmp_path / name
    if name.startswith("sm_"):
        path.mkdir()
        (path / ("saved_model." + name[3:])).write_bytes(b"x")
    else:
        path.write_bytes(b"x")
    assert artifact_kind(path) == detect_kind(path) == kind


@pytest.mark.parametrize("name", ["m.pt", "plain_dir", "missing.onnx"])
def test_both_refuse_the_same_paths(tmp_path, name):
    path = tmp_path / name
    if name == "plain_dir":
        path.mkdir()
    elif name == "m.pt":
        path.write_bytes(b"x")
    with pytest.raises(export.ModelLoadError) as from_export:
        artifact_kind(path)
    with pytest.raises(ArtifactError) as from_evaluation:
        detect_kind(path)
    assert str(from_export.value) == str(from_evaluation.value)


def _keras_model(layer):
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))


def test_lambda_detection_reads_classes_not_substrings(tmp_path):
    import keras

    from models.loading import lambda_layers, read_config

    # A layer merely *named* like a lambda is not one (the old substring test said it was).
    named = _keras_model(keras.layers.Dense(3, name="lambda_free"))
    named.save(tmp_path / "named.keras")
    assert lambda_layers(read_config(tmp_path / "named.keras")) == []
    x = np.array([[1.0, 2.0, 3.0, 4.0]], dtype="float32")
    assert (models.load_model(tmp_path / "named.keras")(x).numpy() == named(x).numpy()).all()

    # A Lambda nested inside a sub-model is found.
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t + 1.0,
                                                                     name="plus_one")])
    _keras_model(inner).save(tmp_path / "nested.keras")
    assert lambda_layers(read_config(tmp_path / "nested.keras")) == ["plus_one"]
    with pytest.raises(models.ModelLoadError, match=r"Lambda layer \(plus_one\)"):
        models.load_model(tmp_path / "nested.keras")
    with pytest.raises(export.ModelLoadError, match="Lambda layer"):
        export.load_keras_model(tmp_path / "nested.keras")


def test_upper_case_keras_suffix_loads(tmp_path):
    import keras

    model = _keras_model(keras.layers.Dense(3))
    model.save(tmp_path / "m.keras")
    (tmp_path / "m.keras").rename(tmp_path / "M.KERAS")
    x = np.array([[1.0, -2.0, 3.0, 0.5]], dtype="float32")
    assert (models.load_model(tmp_path / "M.KERAS")(x).numpy() == model(x).numpy()).all()


def _fake_export(tmp_path):
    """An export directory with a SavedModel directory, hashed like the exporter does."""
    directory = tmp_path / "export"
    sm = directory / "saved_model"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"graph" * 100)
    (sm / "variables" / "variables.data-00000-of-00001").write_bytes(b"\1" * 64)
    size, digest = manifest_io.sha256(sm)
    entry = {"path": "saved_model", "format": "saved_model", "quantization": None,
             "size_bytes": size, "sha256": digest}
    (directory / "manifest.json").write_text(json.dumps({"artifacts": [entry]}))
    return directory


def test_a_tampered_saved_model_in_an_export_is_refused(tmp_path):
    directory = _fake_export(tmp_path)
    [artifact] = resolve([directory])
    assert artifact.kind == "saved_model"
    check(artifact)  # untouched: fine
    pb = directory / "saved_model" / "saved_model.pb"
    data = bytearray(pb.read_bytes())
    data[7] ^= 0x01  # same size, one bit
    pb.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="saved_model' does not match its export manifest: "
                                            "sha256"):
        check(artifact)
    pb.write_bytes(bytes(data) + b"!")  # a file grew: the size says so first
    with pytest.raises(ArtifactError, match="bytes, the manifest recorded"):
        check(artifact)


def test_a_file_added_to_a_saved_model_is_refused(tmp_path):
    directory = _fake_export(tmp_path)
    [artifact] = resolve([directory])
    (directory / "saved_model" / "assets").mkdir()
    (directory / "saved_model" / "assets" / "extra.txt").write_bytes(b"")  # zero bytes: same size
    with pytest.raises(ArtifactError, match="sha256"):
        check(artifact)


@pytest.mark.parametrize("rel", ["../outside.tflite", "/etc/passwd", "link.tflite"])
def test_manifest_paths_that_leave_the_directory_are_refused(tmp_path, rel):
    directory = tmp_path / "export"
    directory.mkdir()
    outside = tmp_path / "outside.tflite"
    outside.write_bytes(b"\x1c\0\0\0TFL3" + b"\0" * 32)
    (directory / "link.tflite").symlink_to(outside)
    (directory / "manifest.json").write_text(json.dumps({"artifacts": [{"path": rel}]}))
    with pytest.raises(ArtifactError, match="outside"):
        resolve([directory])
    with pytest.raises(manifest_io.ManifestError, match="outside"):
        from export.bench import benchmark

        benchmark(directory, threads=(1,), batches=(1,))


def test_one_warm_up_count():
    import evaluation.execute
    import export.bench
    import export.runtime

    assert evaluation.execute.WARMUP_RUNS is export.runtime.WARMUP_RUNS
    assert export.bench.WARMUP_RUNS is export.runtime.WARMUP_RUNS
    assert export.runtime.WARMUP_RUNS >= 1


def test_bench_worker_failure_is_one_typed_line(tmp_path, capsys):
    # A file that passes the manifest but that LiteRT refuses: the worker's typed
    # error crosses the process boundary as one line (it was a traceback).
    from export.__main__ import PROG, main
    from utils.cli import run_cli

    directory = tmp_path / "export"
    directory.mkdir()
    bad = directory / "model.tflite"
    bad.write_bytes(b"\x1c\0\0\0TFL3" + b"\0" * 200)
    size, digest = manifest_io.sha256(bad)
    (directory / "manifest.json").write_text(json.dumps({"source": {}, "artifacts": [
        {"path": "model.tflite", "quantization": None, "size_bytes": size, "sha256": digest}]}))
    code = run_cli(main, ["bench", str(directory), "--threads", "1", "--batches", "1"], PROG)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith(f"{PROG}: error: "), err
    assert "model.tflite" in err[0]


def test_keras_archive_members_outside_the_archive_are_refused(tmp_path):
    from models.loading import read_config

    path = tmp_path / "evil.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("../../escaped.txt", "x")
    with pytest.raises(models.ModelLoadError, match="points outside the archive"):
        read_config(path)
    with pytest.raises(ArtifactError, match="points outside the archive"):
        check(resolve([path])[0])
