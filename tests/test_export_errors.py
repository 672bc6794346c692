"""Bad input and wrong artifacts: one-line errors, exit 2, nothing written;
a tampered artifact fails validation with its max difference in the message,
and the previous good export survives."""
import os
import subprocess
import sys

import numpy as np
import pytest

import export
from export import convert, tflite_convert
from export.__main__ import PROG, main
from tests._export_helpers import tiny_model
from utils.cli import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    import keras
    d = tmp_path_factory.mktemp("keras_files")
    tiny_model().save(d / "tiny.keras")

    class Doubler(keras.layers.Layer):  # deliberately not registered
        def call(self, x):
            return 2 * x

    inp = keras.Input((4,))
    keras.Model(inp, Doubler()(keras.layers.Dense(2)(inp))).save(d / "custom.keras")
    inp = keras.Input((4,))
    keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp)).save(d / "lambda.keras")
    (d / "notes.keras").write_text("not a model")
    (d / "notes.txt").write_text("not a model")
    return d


def _cli_error(capsys, argv, out, expect):
    before = sorted(os.listdir(out.parent)) if out.parent.is_dir() else None
    code = run_cli(main, argv, PROG)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"{PROG}: error:"), err
    assert expect.lower() in err.lower(), err
    assert not out.exists()
    if before is not None:  # no temporary directory left behind
        assert sorted(os.listdir(out.parent)) == before
    return err


@pytest.mark.parametrize("file, expect", [
    ("notes.txt", "Not a Keras model file"),
    ("notes.keras", "Not a Keras model file"),
    ("missing.keras", "not found"),
    ("custom.keras", "'Doubler', which is not registered"),
    ("lambda.keras", "Lambda layer"),
])
def test_bad_model_files(keras_files, tmp_path, capsys, file, expect):
    out = tmp_path / "out"
    _cli_error(capsys, [str(keras_files / file), "--out", str(out)], out, expect)


@pytest.mark.parametrize("extra, expect", [
    (["--formats", "onnx,tflight"], "Did you mean 'tflite'"),
    (["--quantize", "int4"], "Unknown quantization 'int4'"),
    (["--quantize", "int8"], "needs representative_data"),
    (["--formats", "onnx", "--quantize", "float16"], "applies to TFLite only"),
    (["--opset", "99"], "opset must be an integer"),
])
def test_bad_arguments(keras_files, tmp_path, capsys, extra, expect):
    out = tmp_path / "out"
    _cli_error(capsys, [str(keras_files / "tiny.keras"), "--out", str(out), *extra], out, expect)


def test_unwritable_out_dir(keras_files, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    out = blocker / "out"
    _cli_error(capsys, [str(keras_files / "tiny.keras"), "--out", str(out)], out,
               "not a writable directory")
    assert blocker.read_text() == "a file where a directory should be"


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(export.ExportError, match="not empty and holds no manifest.json"):
        export.export_model(tiny_model(), out, formats=["onnx"])
    assert (out / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_command_line_exit_status_is_2(keras_files, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "export", str(keras_files / "tiny.keras"),
                           "--out", str(out), "--formats", "pdf"],
                          cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.splitlines() if l.startswith(PROG)]
    assert lines == [f"{PROG}: error: Unknown export format 'pdf'. Valid formats: "
                     "saved_model, onnx, tflite, tflite_micro. Received: formats=['pdf']"]
    assert not out.exists()


# ---------------------------------------------------------------- tampering
def _tamper_onnx(path):
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(str(path))
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.shape == (3,) and np.allclose(arr, 0.75):  # the output bias
            init.CopyFrom(numpy_helper.from_array(arr + np.float32(0.5), init.name))
            break
    else:
        raise AssertionError("output bias not found in the ONNX initializers")
    onnx.save(proto, str(path))


def _tamper_tflite(path):
    data = path.read_bytes()
    bias = np.full(3, 0.75, np.float32).tobytes()
    assert data.count(bias) == 1, "output bias not found once in the flatbuffer"
    path.write_bytes(data.replace(bias, np.full(3, 1.25, np.float32).tobytes()))


@pytest.mark.parametrize("fmt, tamper", [("onnx", _tamper_onnx), ("tflite", _tamper_tflite)])
def test_tampered_artifact_fails_validation(fmt, tamper, tmp_path, monkeypatch):
    model = tiny_model()
    out = tmp_path / "out"
    good = export.export_model(model, out, formats=[fmt])
    good_bytes = (out / good["artifacts"][0]["path"]).read_bytes()

    module = tflite_convert if fmt == "tflite" else convert
    real = getattr(module, f"to_{fmt}")

    def wrong(model, path, *args, **kwargs):
        info = real(model, path, *args, **kwargs)
        tamper(path)
        return info

    monkeypatch.setattr(module, f"to_{fmt}", wrong)
    with pytest.raises(export.ValidationError) as exc:
        export.export_model(model, out, formats=[fmt])
    message = str(exc.value)
    # The bias moved by exactly 0.5: every output is off by 0.5.
    assert "max abs diff 0.5 exceeds tolerance atol=1e-05" in message, message
    [failure] = {(f["artifact"], f["output"]) for f in exc.value.failures}
    assert failure[1] == "output_0"
    assert all(abs(f["max_abs_diff"] - 0.5) < 1e-6 for f in exc.value.failures)
    # The earlier good export is untouched, and no temporary directory is left.
    assert (out / good["artifacts"][0]["path"]).read_bytes() == good_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_subclassed_model_is_refused_in_one_line(tmp_path):
    import keras

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Sub()
    model(keras.Input((3,)))
    with pytest.raises(export.ExportError, match="no symbolic inputs") as exc:
        export.export_model(model, tmp_path / "out", formats=["tflite"])
    assert "\n" not in str(exc.value) and not (tmp_path / "out").exists()
