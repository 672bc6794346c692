"""A partial export: one int8 artifact misses its bound, every other one is published.

The model is exam_mlp trained briefly on the digits, its output layer then scaled by
``TEMPERATURE`` (logits times 0.01): the same decisions, but a softmax spread almost
evenly over its 1000 classes, as a poorly calibrated classifier's is. The int8 ONNX
quantizes that softmax output to steps of 1/256, which ties every class (top-1
agreement about 10%, far below the 98% bound); the int8 TFLite keeps its output layer
and softmax in float (``int8_float_head``) and passes, as do the float artifacts.
"""
import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from export.__main__ import PROG, main
from tests._export_helpers import keras_outputs, run_raw, trained_exam_mlp
from tests.conftest import ROOT
from utils.cli import BAD_INPUT_EXIT, PARTIAL_EXIT, run_cli

TEMPERATURE = 0.01
FORMATS = "saved_model,onnx,tflite"


def _digest(path):
    """``{relative file: sha256}`` of a file or of every file of a directory."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f.relative_to(path.parent)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in files}


def _tree(directory):
    """Every file under ``directory`` and its bytes' sha256."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _checkpoint(export_dir):
    """``{key: array}`` of a SavedModel's variables (its object graph left out)."""
    import tensorflow as tf
    reader = tf.train.load_checkpoint(str(export_dir / "saved_model" / "variables" / "variables"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import data
    work = tmp_path_factory.mktemp("partial")
    model, x, xt = trained_exam_mlp(epochs=6)
    head = model.get_layer("output")
    head.set_weights([w * TEMPERATURE for w in head.get_weights()])
    model.save(work / "model.keras")
    # An earlier export in the output directory, with a file the new one has not.
    earlier = work / "out"
    earlier.mkdir()
    (earlier / "manifest.json").write_text('{"artifacts": []}')
    (earlier / "model_int8.onnx").write_bytes(b"an earlier int8 file")
    args = [str(work / "model.keras"), "--out", str(earlier), "--formats", FORMATS,
            "--quantize", "none,int8", "--representative-data", "digits"]
    return {"work": work, "model": model, "x": x, "xt": xt, "args": args, "out": earlier,
            "bundle": data.load_dataset("digits")}


def _python(*args):
    """A fresh interpreter, as a user runs it: an ONNX file carries names that count
    what ran before in its process (Keras' layer names, tf2onnx's folded constants),
    so two ONNX files compare byte for byte only from fresh processes."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def partial(setup):
    """``python -m export``'s partial export: its status, its stderr and its manifest."""
    run = _python("-m", "export", *setup["args"])
    manifest = json.loads((setup["out"] / "manifest.json").read_text())
    return run.returncode, run.stderr, manifest


@pytest.fixture(scope="module")
def reference(setup):
    """What exports without the int8 ONNX write: the float formats, and the int8 TFLite.

    Validated as the partial run is: the validation's Keras runner, built before the
    conversions, advances Keras' layer-name counters, and an ONNX file carries those
    names (``exam_mlp_1/flatten_1/Reshape``)."""
    ref = setup["work"] / "reference"
    _python("-c", f"""
import data, export
bundle = data.load_dataset("digits")
kw = dict(representative_data=bundle.as_numpy("train")[0],
          validation_data=bundle.as_numpy("test")[0])
export.export_model({str(setup["work"] / "model.keras")!r}, {str(ref / "float")!r},
                    formats={FORMATS!r}, **kw)
export.export_model({str(setup["work"] / "model.keras")!r}, {str(ref / "int8")!r},
                    formats="tflite", quantize="int8", **kw)
""").check_returncode()
    return ref


@pytest.mark.slow
def test_strict_and_bad_input_write_nothing(setup, capsys):
    out = setup["out"]
    before = _tree(out)
    strict = setup["args"][:3] + ["--formats", "onnx", "--quantize", "int8",
                                  "--representative-data", "digits", "--strict"]
    assert run_cli(main, strict, PROG) == BAD_INPUT_EXIT
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{PROG}: error: Validation failed for 1 check(s): "
                           "model_int8.onnx: top-1 agreement with Keras 0.")
    assert run_cli(main, setup["args"] + ["--formats", "tflite,tflight"], PROG) == BAD_INPUT_EXIT
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{PROG}: error: Unknown export format 'tflight'.")
    assert _tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.keras", "out"]


@pytest.mark.slow
def test_partial_export_publishes_the_validated_artifacts(setup, partial):
    status, err, manifest = partial
    out = setup["out"]
    assert status == PARTIAL_EXIT == 3
    [refused] = manifest["refused"]
    assert (refused["path"], refused["format"], refused["quantization"]) == (
        "model_int8.onnx", "onnx", "int8")
    assert refused["figure"]["check"] == "agreement" and refused["figure"]["bound"] == 0.98
    assert "representative" in refused["fix"] and "--qat-epochs" in refused["fix"]
    assert [line for line in err.splitlines() if line.startswith(PROG)] == [
        f"{PROG}: model_int8.onnx (onnx int8) refused: top-1 agreement with Keras "
        f"{refused['figure']['value']:.4f} on 1000 samples is below the bound 0.98 (max abs "
        f"diff {refused['validation']['max_abs_diff']:.3g}). Fix: {refused['fix']}."]
    published = [a["path"] for a in manifest["artifacts"]]
    assert published == ["saved_model", "model.onnx", "model.tflite", "model_int8.tflite"]
    assert all(a["validation"]["passed"] for a in manifest["artifacts"])
    # The earlier directory was replaced whole: its int8 file is gone, nothing unlisted.
    assert not (out / "model_int8.onnx").exists()
    assert {p.split("/")[0] for p in _tree(out)} == set(published) | {"manifest.json",
                                                                       "manifest.md"}
    assert "Refused (not published):" in (out / "manifest.md").read_text()


@pytest.mark.slow
def test_refused_figure_is_onnxruntime_s_agreement(setup, partial, tmp_path):
    """The figure, recomputed: the same int8 file, written unvalidated, run in
    onnxruntime's own API against Keras on the samples the check uses."""
    import export
    from export.validate import AGREEMENT_SAMPLES
    export.export_model(setup["work"] / "model.keras", tmp_path / "raw", formats="onnx",
                        quantize="int8", validate=False, representative_data=setup["x"],
                        validation_data=setup["xt"])
    xt = setup["xt"]
    x = xt[np.linspace(0, len(xt) - 1, min(len(xt), AGREEMENT_SAMPLES)).astype(int)]
    got = run_raw(tmp_path / "raw" / "model_int8.onnx", x)[0]
    same = np.mean(np.argmax(got, 1) == np.argmax(keras_outputs(setup["model"], x)[0], 1))
    figure = partial[2]["refused"][0]["figure"]
    assert figure["value"] == pytest.approx(same, abs=1e-6)
    assert figure["value"] < 0.5 and figure["samples"] == len(x)


@pytest.mark.slow
def test_published_artifacts_are_those_of_a_run_without_the_failing_one(setup, partial,
                                                                         reference):
    out = setup["out"]
    for name in ("model.onnx", "model.tflite"):
        assert _digest(out / name) == _digest(reference / "float" / name)
    assert _digest(out / "model_int8.tflite") == _digest(reference / "int8" /
                                                         "model_int8.tflite")
    assert sorted(_digest(out / "saved_model")) == sorted(
        _digest(reference / "float" / "saved_model"))
    # Not byte for byte: a SavedModel lists its variables twice, once in the model's
    # order ("variables/i") and once in an order that changes from save to save
    # ("_all_variables/i"), and its graph files carry a fresh id per save. Every
    # variable holds the same bytes, read back with TensorFlow's checkpoint reader.
    ours, theirs = _checkpoint(out), _checkpoint(reference / "float")
    assert sorted(ours) == sorted(theirs) and any(k.startswith("variables/") for k in ours)
    for key in (k for k in ours if k.startswith("variables/")):
        assert ours[key].tobytes() == theirs[key].tobytes(), key
    everything = [sorted(v.tobytes() for k, v in c.items() if k.startswith("_all_variables/"))
                  for c in (ours, theirs)]
    assert everything[0] == everything[1]
    x = setup["xt"][:7]
    assert run_raw(out / "saved_model", x)[0] == pytest.approx(
        run_raw(reference / "float" / "saved_model", x)[0], abs=0)


@pytest.mark.slow
def test_train_export_leaves_the_same_artifact_out(setup, partial, tmp_path):
    from training.outputs import export_run
    shutil.copy(setup["work"] / "model.keras", tmp_path / "model.keras")
    lines, paths = [], {}
    export_run(tmp_path, setup["bundle"], paths, lines.append)
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert [r["path"] for r in manifest["refused"]] == ["model_int8.onnx"]
    assert any(line.startswith("  export: left out model_int8.onnx (onnx int8) refused: "
                               "top-1 agreement") for line in lines)
    assert _digest(tmp_path / "export" / "model.tflite") == _digest(setup["out"] /
                                                                    "model.tflite")
    # This process has run tf2onnx before: other names for the folded constants, the
    # same function.
    x = setup["xt"][:7]
    assert run_raw(tmp_path / "export" / "model.onnx", x)[0] == pytest.approx(
        run_raw(setup["out"] / "model.onnx", x)[0], abs=0)
    assert not (tmp_path / "export" / "model_int8.onnx").exists()


@pytest.mark.slow
def test_evaluate_names_a_refused_artifact(setup, partial):
    from evaluation.artifacts import resolve
    from evaluation.errors import ArtifactError
    arts = resolve([setup["out"]])
    assert [a.path.name for a in arts] == ["saved_model", "model.onnx", "model.tflite",
                                           "model_int8.tflite"]
    with pytest.raises(ArtifactError, match="was not published: model_int8.onnx"):
        resolve([setup["out"] / "model_int8.onnx"])


@pytest.mark.slow
def test_an_op_one_format_lacks_refuses_that_format_only(tmp_path):
    """Exact GELU: TFLite has a kernel, TFLite Micro has none (its own interpreter
    refuses the file, tests/test_export_micro.py)."""
    import keras

    import export
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,))
    h = keras.layers.Dense(16, activation=lambda t: keras.activations.gelu(t, approximate=False))(inp)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    x = np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32)
    model.compile("adam", "mse")
    model.fit(x, x[:, :3] * x[:, 3:6], epochs=3, verbose=0)
    with pytest.raises(export.PartialExportError) as exc:
        export.export_model(model, tmp_path / "out", formats="tflite,tflite_micro",
                            representative_data=x)
    [refused] = exc.value.manifest["refused"]
    assert (refused["path"], refused["format"], refused["figure"]["value"]) == (
        "model_micro.tflite", "tflite_micro", ["GELU"])
    assert "GELU" in refused["fix"] and "tflite_micro" in refused["fix"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "manifest.json", "manifest.md", "model.tflite"]
    np.testing.assert_allclose(run_raw(tmp_path / "out" / "model.tflite", x[:7])[0],
                               keras_outputs(model, x[:7])[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(export.UnsupportedOpsError):
        export.export_model(model, tmp_path / "strict", formats="tflite,tflite_micro",
                            representative_data=x, strict=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
