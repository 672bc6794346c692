"""The keras.applications matrix machinery (export.apps_matrix) on its
smallest builder: the row it writes agrees with onnxruntime run here, a
cached row is reused, and a pattern that matches nothing is refused."""
import inspect
import json

import numpy as np
import pytest

from tests._export_helpers import keras_outputs, run_raw


def test_builders_are_every_model_function_of_keras_applications():
    import keras

    from export import apps_builders
    # Reference: every public function of keras.applications that returns a Model
    # is documented by its module with a preprocess_input beside it.
    expected = {n for n, f in vars(keras.applications).items()
                if inspect.isfunction(f) and n[0].isupper()}
    assert set(apps_builders.application_builders()) == expected
    assert len(expected) >= 40 and "MobileNetV3Small" in expected
    assert list(apps_builders.application_builders("MobileNetV3*")) == [
        "MobileNetV3Large", "MobileNetV3Small"]


@pytest.mark.slow
def test_smallest_builder_row_matches_onnxruntime(tmp_path):
    from export import apps_builders, apps_matrix
    from export.formats import TOLERANCES
    row = apps_matrix.run_application({"builder": "MobileNetV3Small", "columns": ["onnx"],
                                       "keep": str(tmp_path)})
    assert row["input_size"] == 32 and row["params"] > 1_000_000
    cell = row["formats"]["onnx"]
    assert cell["status"] == "validated", cell
    assert cell["size_bytes"] == (tmp_path / "all" / "model.onnx").stat().st_size
    # The same build (fixed seed), run here through onnxruntime's own API.
    model, _, _, x = apps_builders.build_application("MobileNetV3Small")
    diffs = []
    for batch in (1, 7):
        ref = keras_outputs(model, x[:batch])[0]
        got = run_raw(tmp_path / "all" / "model.onnx", x[:batch])[0]
        diffs.append(float(np.abs(got.astype(np.float64) - ref).max()))
    assert np.ptp(ref, axis=0).max() > 1e-4  # batch 7: the outputs depend on the input
    atol, rtol = TOLERANCES[None]
    assert max(diffs) <= atol
    assert cell["max_abs_diff"] == pytest.approx(max(diffs), abs=1e-7)


def test_cached_row_is_reused_and_unknown_pattern_is_refused(tmp_path):
    from export import apps_matrix, apps_table
    from export.errors import ExportError
    row = {"builder": "MobileNetV3Small", "input_size": 32, "size_note": "", "params": 1,
           "formats": {"onnx": {"status": "refused", "reason": "cached"}}}
    (tmp_path / "MobileNetV3Small.json").write_text(json.dumps(row))
    rows = apps_matrix.run_applications_matrix("MobileNetV3Small", tmp_path)
    assert rows == {"MobileNetV3Small": row}  # no child ran: the cached row came back
    assert "refused: cached" in apps_table.applications_markdown(rows)
    with pytest.raises(ExportError, match="MobileNetV3Smal'.*Did you mean 'MobileNetV3Small'"):
        apps_matrix.run_applications_matrix("MobileNetV3Smal", tmp_path)


def _digamma_model():
    """Dense -> a layer computing tf.math.digamma, which neither tf2onnx nor
    TFLite (builtin or Flex) converts."""
    import keras
    import tensorflow as tf

    class Digamma(keras.layers.Layer):
        def call(self, x):
            return tf.math.digamma(tf.abs(x) + 1.0)

    inp = keras.Input((6,))
    return keras.Model(inp, Digamma(name="my_digamma")(keras.layers.Dense(4)(inp)))


@pytest.mark.parametrize("fmt, converter", [("onnx", "tf2onnx"), ("tflite", "TFLite")])
def test_refusal_is_one_line_naming_the_op_and_the_layer(tmp_path, fmt, converter):
    from export.errors import UnsupportedOpsError
    from export.exporter import export_model
    with pytest.raises(UnsupportedOpsError) as info:
        export_model(_digamma_model(), tmp_path / "out", formats=fmt)
    message = str(info.value)
    assert "\n" not in message and message.startswith(converter)
    assert "TF op Digamma (layer 'my_digamma')" in message
    assert info.value.ops == ["Digamma"]
    assert not (tmp_path / "out").exists()


# --- constructs of keras.applications that the converters need help with --------

def _onnx_matches_keras(model, tmp_path, x):
    """Export ``model`` to ONNX alone; return the ONNX graph's input names and the
    max abs diff of onnxruntime (its own API) against Keras on ``x``."""
    import onnx

    from export.exporter import export_model
    export_model(model, tmp_path / "out", formats="onnx")
    path = tmp_path / "out" / "model.onnx"
    got, ref = run_raw(path, x)[0], keras_outputs(model, x)[0]
    return [i.name for i in onnx.load(str(path)).graph.input], float(np.abs(got - ref).max())


def test_normalization_constants_are_frozen_not_inputs(tmp_path):
    """EfficientNet's Normalization(mean, variance) captures constant tensors that
    tf2onnx's from_function makes graph inputs; frozen, only the image remains."""
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((5, 5, 3))
    h = keras.layers.Normalization(mean=[0.485, 0.456, 0.406],
                                   variance=[0.229 ** 2, 0.224 ** 2, 0.225 ** 2])(inp)
    out = keras.layers.Conv2D(4, 3, activation="relu")(h)
    x = np.random.default_rng(0).random((3, 5, 5, 3), dtype=np.float32)
    names, diff = _onnx_matches_keras(keras.Model(inp, out), tmp_path, x)
    assert names == ["input"]
    assert diff <= 1e-5


def test_grouped_conv_becomes_one_onnx_conv(tmp_path):
    """ConvNeXt's depthwise Conv2D(groups=C) runs in a nested XLA function that
    tf2onnx leaves as a StatefulPartitionedCall; rewritten, it is one grouped Conv."""
    import keras
    import onnx
    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 4))
    out = keras.layers.Conv2D(4, 3, padding="same", groups=4, name="dw")(inp)
    x = np.random.default_rng(0).random((3, 6, 6, 4), dtype=np.float32)
    _, diff = _onnx_matches_keras(keras.Model(inp, out), tmp_path, x)
    assert diff <= 1e-5
    convs = [n for n in onnx.load(str(tmp_path / "out" / "model.onnx")).graph.node
             if n.op_type == "Conv"]
    assert [a.i for n in convs for a in n.attribute if a.name == "group"] == [4]


def test_command_regenerates_the_docs_table_and_refuses_bad_input(tmp_path, capsys):
    from export.__main__ import PROG, main
    from export.apps_table import DOCS_BEGIN, DOCS_END
    from utils.cli import run_cli
    cell = {"status": "validated", "max_abs_diff": 3e-7, "seconds": 4.25, "size_bytes": 2 ** 21}
    row = {"builder": "MobileNetV2", "input_size": 32, "size_note": "", "params": 3_538_984,
           "formats": {"onnx": cell}}
    (tmp_path / "MobileNetV2.json").write_text(json.dumps(row))
    docs = tmp_path / "export.md"
    docs.write_text(f"# head\n{DOCS_BEGIN}\nold table\n{DOCS_END}\ntail\n")
    argv = ["matrix", "--applications", "--pattern", "MobileNetV[23]*", "--no-run",
            "--work-dir", str(tmp_path), "--docs", str(docs)]
    assert run_cli(main, argv, PROG) == 0
    text = docs.read_text()
    assert "old table" not in text and text.startswith("# head\n") and text.endswith("tail\n")
    line = next(l for l in text.splitlines() if l.startswith("| `MobileNetV2`"))
    assert "| 32x32 | 3.5M |" in line and "validated 3e-07, 4.2 s, 2.0 MiB" in line
    assert "| `MobileNetV3Small` | not run yet |" in text
    capsys.readouterr()
    docs.write_text("no markers\n")
    assert run_cli(main, argv, PROG) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apps-matrix: begin" in err
    assert docs.read_text() == "no markers\n"
