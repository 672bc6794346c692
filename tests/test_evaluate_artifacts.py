"""evaluate() and evaluate.py on real artifacts of one trained model, and on broken ones."""
import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from tests._evaluate_helpers import crashing_tflite, run_cli, run_main, train_and_export

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exam_mlp trained 3 epochs on digits, exported once: SavedModel, ONNX, TFLite f32 + int8."""
    keras_path, export_dir, manifest = train_and_export(tmp_path_factory.mktemp("evaluate"))
    return keras_path, export_dir, manifest


@pytest.fixture(scope="module")
def result(exported):
    from evaluation import evaluate

    keras_path, export_dir, _ = exported
    return evaluate([keras_path, export_dir], dataset="digits", progress=False)


def _entry(manifest, fmt, quant=None):
    return next(a for a in manifest["artifacts"]
                if a["format"] == fmt and a["quantization"] == quant)


def test_every_artifact_kind_is_evaluated(result, exported):
    _, _, manifest = exported
    assert [(a.kind, a.quantization) for a in result.artifacts] == (
        [("keras", None)] + [(a["format"], a["quantization"]) for a in manifest["artifacts"]])
    assert [a.isolated for a in result.artifacts] == [False] + [True] * len(manifest["artifacts"])
    assert result.num_examples == 1000 and result.num_classes == 10


def test_keras_accuracy_matches_an_independent_computation(result, exported):
    import keras

    import data

    keras_path, _, _ = exported
    x, y = data.load_dataset("digits").as_numpy("test")
    want = keras.saving.load_model(keras_path).predict(x, verbose=0)
    keras_result = result.artifacts[0]
    assert keras_result.accuracy == pytest.approx(accuracy_score(y, want.argmax(axis=1)))
    assert keras_result.accuracy > 0.3  # trained: far above chance, so agreement means something
    np.testing.assert_array_equal(keras_result.predictions, want.argmax(axis=1))


def test_float32_artifacts_make_identical_predictions(result):
    reference = result.artifacts[0]
    for art in result.artifacts[1:]:
        if art.quantization is not None:
            continue
        assert art.agreement == 1.0, art.label
        np.testing.assert_array_equal(art.predictions, reference.predictions)
        assert art.accuracy == reference.accuracy
        assert art.confusion_matrix == reference.confusion_matrix
        assert art.loss == pytest.approx(reference.loss, abs=1e-4)


def test_int8_artifact_is_within_the_exports_agreement_bound(result, exported):
    _, _, manifest = exported
    bound = _entry(manifest, "tflite", "int8")["validation"]["top1_bound"]
    reference = result.artifacts[0]
    int8 = next(a for a in result.artifacts if a.quantization == "int8")
    assert int8.agreement == pytest.approx(np.mean(int8.predictions == reference.predictions))
    assert int8.agreement >= bound
    assert abs(int8.accuracy - reference.accuracy) <= 1 - bound
    # The int8 softmax comes back on a 1/256 grid; it must still be read as probabilities.
    assert int8.output_kind == "probabilities"
    assert int8.loss == pytest.approx(reference.loss, abs=0.25)


def test_throughput_and_latency_are_measured(result):
    for art in result.artifacts:
        assert art.throughput > 0 and art.latency_ms > 0
        assert art.batches == 4  # 1000 examples / 256 per batch, never one call per example
        assert art.runtime_seconds == pytest.approx(1000 / art.throughput)


def test_cli_json_and_report(exported, tmp_path):
    keras_path, export_dir, manifest = exported
    tflite = export_dir / _entry(manifest, "tflite")["path"]
    report = tmp_path / "report"
    report.mkdir()
    (report / "stale.txt").write_text("an earlier report")
    out = run_cli(tflite, export_dir / "model.onnx", "--dataset", "digits", "--limit", "300",
                  "--batch-size", "64", "--json", "--report", report)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # --json without FILE: JSON only on stdout
    assert data["num_examples"] == 300 and data["batch_size"] == 64
    assert [a["kind"] for a in data["artifacts"]] == ["tflite", "onnx"]
    assert data["artifacts"][1]["agreement"] == 1.0
    assert all(a["batches"] == 5 for a in data["artifacts"])
    assert np.sum(data["artifacts"][0]["confusion_matrix"]) == 300
    # The report directory was replaced as a whole, and is complete.
    assert not (report / "stale.txt").exists()
    text = (report / "report.md").read_text()
    assert str(tflite) in text and "model.onnx" in text
    pngs = sorted(report.glob("*.png"))
    assert len(pngs) == 2
    from PIL import Image
    for png in pngs:
        assert png.name in text
        with Image.open(png) as image:
            assert image.format == "PNG" and image.size[0] > 100
    assert json.loads((report / "results.json").read_text())["artifacts"][0]["label"] == str(tflite)


def test_cli_table_and_json_file_with_relative_paths(exported, tmp_path):
    # Relative to the caller's directory, not the repository's: the isolated
    # child must see the same paths as the command line.
    _, export_dir, manifest = exported
    tflite = _entry(manifest, "tflite")["path"]
    out = run_cli(tflite, "--dataset", "digits", "--limit", "100", "--json", tmp_path / "r.json",
                  cwd=export_dir)
    assert out.returncode == 0, out.stderr
    assert "accuracy" in out.stdout and tflite in out.stdout
    assert json.loads((tmp_path / "r.json").read_text())["num_examples"] == 100


# ----------------------------------------------------------------- bad input
def _one_error_line(out, *fragments):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("evaluate.py: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_missing_artifact(tmp_path):
    _one_error_line(run_main(tmp_path / "nope.tflite"), "Artifact not found", "nope.tflite")


def test_unknown_dataset(exported):
    _, export_dir, _ = exported
    _one_error_line(run_main(export_dir / "model.onnx", "--dataset", "digitz"),
                    "digitz", "digits")


def test_crafted_tflite_that_crashes_the_runtime(exported, tmp_path):
    # LiteRT dies with SIGSEGV on this file; evaluate.py must not.
    _, export_dir, manifest = exported
    bad = crashing_tflite(export_dir / _entry(manifest, "tflite")["path"], tmp_path / "evil.tflite")
    _one_error_line(run_main(bad, "--dataset", "digits"),
                    "Artifact '", "evil.tflite' crashed its runtime (SIGSEGV, signal 11)",
                    "not a valid TFLite flatbuffer")


def test_bit_flip_in_the_weights_of_an_export_is_caught_by_its_manifest(exported, tmp_path):
    # A flipped weight byte still loads and runs; only the manifest's sha256 can tell.
    _, export_dir, manifest = exported
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    tflite = copy / _entry(manifest, "tflite")["path"]
    data = bytearray(tflite.read_bytes())
    data[len(data) // 2] ^= 0x01
    tflite.write_bytes(bytes(data))
    _one_error_line(run_main(copy, "--limit", "10"), str(tflite),
                    "does not match its export manifest: sha256")


@pytest.mark.parametrize("fmt, expected", [("tflite", "TFLite flatbuffer"),
                                             ("onnx", "not a valid ONNX model")])
def test_truncated_file(exported, tmp_path, fmt, expected):
    _, export_dir, manifest = exported
    data = (export_dir / _entry(manifest, fmt)["path"]).read_bytes()
    bad = tmp_path / f"truncated.{fmt}"
    bad.write_bytes(data[: len(data) // 3])
    _one_error_line(run_main(bad), f"truncated.{fmt}", expected)


def test_tflite_without_its_identifier(exported, tmp_path):
    _, export_dir, manifest = exported
    bad = tmp_path / "header.tflite"
    bad.write_bytes(b"\0" * 64)
    _one_error_line(run_main(bad), "header.tflite", "TFL3")


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_bit_flipped_tflite(exported, tmp_path, offset):
    # Flipping a high bit of the root-table offset points the interpreter far
    # outside the buffer; whatever the runtime does (refuse, or crash), the
    # command line must answer with one line and exit 2.
    _, export_dir, manifest = exported
    data = bytearray((export_dir / _entry(manifest, "tflite")["path"]).read_bytes())
    data[offset] ^= 0x80
    bad = tmp_path / f"flipped{offset}.tflite"
    bad.write_bytes(bytes(data))
    _one_error_line(run_main(bad), f"flipped{offset}.tflite")


def test_corrupted_saved_model(exported, tmp_path):
    _, export_dir, _ = exported
    bad = tmp_path / "saved_model"
    shutil.copytree(export_dir / "saved_model", bad)
    pb = bytearray((bad / "saved_model.pb").read_bytes())
    for i in range(0, len(pb), 64):
        pb[i] ^= 0xFF
    (bad / "saved_model.pb").write_bytes(bytes(pb))
    _one_error_line(run_main(bad), str(bad), "SavedModel")


@pytest.fixture(scope="module")
def lambda_keras(tmp_path_factory):
    import keras

    inputs = keras.Input((32, 32, 1))
    doubled = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(doubled))
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_keras_with_lambda_is_refused(lambda_keras):
    _one_error_line(run_main(lambda_keras, "--quiet"), "Lambda layer", "--unsafe")


def test_keras_with_lambda_runs_with_unsafe(lambda_keras):
    from evaluation import evaluate

    result = evaluate([lambda_keras], dataset="digits", unsafe=True, progress=False, limit=50)
    assert result.num_examples == 50
    assert result.artifacts[0].kind == "keras" and result.artifacts[0].batches == 1


@pytest.fixture(scope="module")
def small_input_artifacts(tmp_path_factory):
    """A 28x28 model (.keras + its .tflite): a shape the 32x32 datasets do not have."""
    import export
    import models

    directory = tmp_path_factory.mktemp("shape")
    model = models.create_model("exam_mlp", num_classes=10, input_shape=(28, 28, 1))
    model.save(directory / "small.keras")
    export.export_model(model, directory / "export", formats=("tflite",))
    return directory / "small.keras", directory / "export" / "model.tflite"


@pytest.mark.parametrize("which", [0, 1], ids=["keras", "tflite"])
def test_input_shape_mismatch_names_both_shapes(small_input_artifacts, which):
    _one_error_line(run_main(small_input_artifacts[which], "--dataset", "digits"),
                    "(None, 28, 28, 1)", "(None, 32, 32, 1)")
