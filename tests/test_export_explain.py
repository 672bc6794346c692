"""``python -m export explain``: the per-layer int8 report names the layer that is
worst by construction, on every int8 target.

The model is a small MLP trained on the digits; then one unit of ``hidden_1`` is
silenced (zero weights and bias: its ReLU output is exactly 0) and every weight
leaving it into ``hidden_2`` is set to 1000. The function barely changes (one of
16 units is gone), but per-channel int8 weights of ``hidden_2`` get a step of
1000/127, which rounds every other weight of that layer to 0: quantizing
``hidden_2`` alone ruins the output, and keeping it alone float restores it.
"""
import json

import numpy as np
import pytest

from export.__main__ import PROG, main
from utils.cli import run_cli

OUTLIER, SILENCED = 1000.0, 3


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    import keras

    import data
    import models
    d = tmp_path_factory.mktemp("explain")
    x, y = data.load_dataset("digits").as_numpy("train")
    keras.utils.set_random_seed(0)
    model = models.create_model("exam_mlp", num_classes=10, hidden_units=(16, 16))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert history.history["accuracy"][-1] > 0.8  # trained, not a random net
    h1, h2 = model.get_layer("hidden_1"), model.get_layer("hidden_2")
    kernel, bias = h1.get_weights()
    kernel[:, SILENCED], bias[SILENCED] = 0.0, 0.0
    h1.set_weights([kernel, bias])
    kernel, bias = h2.get_weights()
    kernel[SILENCED, :] = OUTLIER
    h2.set_weights([kernel, bias])
    model.save(d / "model.keras")
    out = d / "report"
    status = run_cli(main, ["explain", str(d / "model.keras"), "--representative-data",
                            "digits", "--out", str(out)], PROG)
    assert status == 0
    return model, x, out, json.loads((out / "report.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tflite", "onnx_int8", "tflite_micro"])
def test_the_layer_with_the_outlier_comes_out_worst(explained, target):
    result = explained[3]["targets"][target]
    rows = [r for r in result["layers"] if r["layer"] == "hidden_2"]
    assert rows, [r["node"] for r in result["layers"]]
    worst = max(result["layers"], key=lambda r: r["alone_error"])
    assert result["worst"] == worst["layer"] == "hidden_2"
    others = [r["alone_error"] for r in result["layers"] if r["layer"] != "hidden_2"]
    assert worst["alone_error"] > 5 * max(others)
    assert rows[0]["weight_max_abs"] == OUTLIER
    assert result["agreement"] < 0.5  # the shipped int8 model is ruined
    kept = rows[0]["kept_float_agreement"]
    if target == "onnx_int8":
        # onnxruntime's optimizer fuses the float Gemm between DQ and Q into a QGemm,
        # quantizing the outlier weights itself: keeping it float does not hold there.
        assert rows[0]["kept_float_requantized"] and kept < 0.5
    else:  # kept float, it alone brings the decisions back
        assert kept > 0.9
        assert kept == max(r["kept_float_agreement"] for r in result["layers"])


@pytest.mark.slow
def test_ranges_are_the_calibrated_activation_ranges(explained):
    """hidden_1's int8 range covers its ReLU outputs on the calibration samples
    (computed here in Keras) to within one step, and starts at 0."""
    import keras

    from export.calibration import calibration_subset
    model, x = explained[0], explained[1]
    probe = keras.Model(model.inputs[0], model.get_layer("hidden_1_act").output)
    top = float(np.max(probe(calibration_subset(x), training=False)))
    for target in ("tflite", "onnx_int8", "tflite_micro"):
        row = next(r for r in explained[3]["targets"][target]["layers"]
                   if r["layer"] == "hidden_1" and r["range"])
        low, high = row["range"]
        assert abs(low) <= row["scale"] and abs(high - top) <= row["scale"], (target, row)


@pytest.mark.slow
def test_report_files(explained):
    out = explained[2]
    text = (out / "report.md").read_text()
    for title in ("TFLite int8", "int8 ONNX", "TFLite Micro"):
        assert f"## {title}" in text
    assert "Worst layer: **hidden_2**" in text
    assert (out / "error_per_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("case, words", [
    ("dataset", ("digitz", "digits")),          # names the typo and the closest name
    ("out_is_a_file", ("not a directory",)),
    ("missing_model", ("No such model file",)),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case, words):
    out = tmp_path / "report"
    if case == "out_is_a_file":
        out.write_text("mine")
    model = tmp_path / "model.keras"
    dataset = "digitz" if case == "dataset" else "digits"
    status = run_cli(main, ["explain", str(model), "--representative-data", dataset,
                            "--out", str(out)], PROG)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and all(w in err[0] for w in words), err
    assert out.read_text() == "mine" if case == "out_is_a_file" else not out.exists()


@pytest.mark.slow
def test_int8_fallback_keeps_only_the_outlier_layer_float(explained, tmp_path):
    """Shipped int8 the model is at chance (above); the fallback keeps one layer
    float, hidden_2's, and the export then passes its held-out validation."""
    import data
    from export.exporter import export_model
    from export.explain import keras_layer
    model, x = explained[0], explained[1]
    held_out = data.load_dataset("digits").as_numpy("test")[0]
    manifest = export_model(model, tmp_path / "out", formats="tflite", quantize="int8",
                            representative_data=x, validation_data=held_out,
                            int8_fallback="auto")
    entry = next(a for a in manifest["artifacts"] if a["quantization"] == "int8")
    kept = entry["int8_fallback"]["kept_float"]
    assert [keras_layer(n, [l.name for l in model.layers]) for n in kept] == ["hidden_2"]
    assert entry["validation"]["passed"]
    assert entry["validation"]["top1_agreement"] >= entry["validation"]["top1_bound"]


def test_int8_fallback_takes_auto_only():
    from export.checks import check_options
    from export.errors import ExportError
    with pytest.raises(ExportError, match="int8_fallback must be 'auto' or None. "
                                          "Received: int8_fallback='always'"):
        check_options(quantize="int8", representative_data=[[0.0]], int8_fallback="always")
