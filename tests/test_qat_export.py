"""int8 artifacts of a trained quantization-aware exam_mlp, checked with the
runtimes' own APIs (LiteRT, onnxruntime, the TFLite Micro interpreter)."""
import json

import numpy as np
import pytest

from tests._export_helpers import run_raw, run_tflite_micro

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A short float run of exam_mlp, one QAT epoch, exported with every int8 target."""
    import keras

    import data
    import export
    import models
    import training
    bundle = data.load_dataset("digits")
    x, y = bundle.as_numpy("train")
    xt, _ = bundle.as_numpy("test")
    keras.utils.set_random_seed(0)
    model = models.create_model("exam_mlp")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=4, batch_size=64, verbose=0)
    qat = training.quantize_aware(model, sample=x[:256])
    qat.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    qat.fit(x, y, epochs=1, batch_size=64, verbose=0)
    root = tmp_path_factory.mktemp("qat")
    qat.save(root / "qat.keras")
    out = root / "export"
    export.export_model(root / "qat.keras", out, formats=("onnx", "tflite", "tflite_micro"),
                        quantize=(None, "int8"), representative_data=x, validation_data=xt)
    return qat, xt[:300], out


def test_manifest_says_the_ranges_are_trained(exported):
    _, _, out = exported
    manifest = json.loads((out / "manifest.json").read_text())
    int8 = {a["path"]: a for a in manifest["artifacts"] if a["quantization"] == "int8"}
    assert set(int8) == {"model_int8.tflite", "model_int8.onnx", "model_micro.tflite"}
    for entry in int8.values():
        assert entry["ranges"] == "trained" and entry["calibration_ranges"] == []
        assert len(entry["trained_ranges"]) == 6  # input, 3 hidden, logits, softmax


def test_int8_tflite_is_within_one_step_of_keras_at_batch_1(exported):
    from ai_edge_litert.interpreter import Interpreter
    qat, x, out = exported
    interp = Interpreter(model_path=str(out / "model_int8.tflite"))
    interp.allocate_tensors()
    detail, result = interp.get_input_details()[0], interp.get_output_details()[0]
    assert {t["dtype"].__name__ for t in interp.get_tensor_details()} <= {"int8", "int32",
                                                                         "float32"}
    got = []
    for i in range(len(x)):
        interp.set_tensor(detail["index"], x[i:i + 1])
        interp.invoke()
        got.append(interp.get_tensor(result["index"]))
    ref = np.asarray(qat(x, training=False))
    assert np.abs(np.concatenate(got) - ref).max() <= 1 / 256 + 1e-6  # softmax: one step


def test_onnx_and_micro_agree_with_keras_on_top1(exported):
    qat, x, out = exported
    ref = np.asarray(qat(x, training=False)).argmax(1)
    onnx_top1 = run_raw(out / "model_int8.onnx", x)[0].argmax(1)
    manifest = json.loads((out / "manifest.json").read_text())
    micro = next(a for a in manifest["artifacts"] if a["path"] == "model_micro.tflite")
    micro_top1 = run_tflite_micro(out / "model_micro.tflite", x,
                                  micro["micro"]["arena_bytes"]).argmax(1)
    assert np.mean(onnx_top1 == ref) >= 0.995
    assert np.mean(micro_top1 == ref) >= 0.995
