"""Every registered model (default size) x every format: exports and validates.

Each artifact is then checked again here, independently of the exporter's
own validation: through each runtime's public API, at a batch size the
exporter did not use (3), against Keras.
"""
import numpy as np
import pytest

import models
from tests._export_helpers import keras_outputs, run_raw

ATOL = 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", models.list_models())
def test_model_exports_to_every_format(name, tmp_path):
    import onnx

    import export
    from export.onnx_ops import default_opset

    import keras
    keras.utils.set_random_seed(0)  # the same weights every run: a float32 check is exact per seed
    model = models.create_model(name)
    manifest = export.export_model(model, tmp_path / "out")

    arts = {a["format"]: a for a in manifest["artifacts"]}
    assert sorted(arts) == sorted(export.DEFAULT_FORMATS)
    assert manifest["source"]["params"] == model.count_params()
    for a in arts.values():
        assert a["validation"]["passed"] is True
        assert a["validation"]["batches"] == [1, 7]
        assert a["inputs"][0]["shape"][0] is None  # dynamic batch axis

    rng = np.random.default_rng(1)
    x = rng.random((3,) + tuple(model.inputs[0].shape[1:]), dtype=np.float32)
    ref = keras_outputs(model, x)
    for fmt, a in arts.items():
        got = run_raw(tmp_path / "out" / a["path"], x)
        assert len(got) == len(ref), fmt
        for g, r in zip(got, ref):
            assert g.shape == r.shape, fmt
            np.testing.assert_allclose(g, r, atol=ATOL, rtol=1e-5, err_msg=f"{name} {fmt}")

    proto = onnx.load(str(tmp_path / "out" / arts["onnx"]["path"]))
    onnx.checker.check_model(proto, full_check=True)
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {
        default_opset()}
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # symbolic batch
    # Edge runtimes run builtin ops only: no Flex/custom op slipped in.
    assert arts["tflite"]["uses_flex"] is False and arts["tflite"]["custom_ops"] == []


def test_explicit_opset_and_default_opset(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from tf2onnx import constants

    import export
    from export.onnx_ops import default_opset
    from tests._export_helpers import tiny_model

    # The default: tf2onnx's newest opset, if onnxruntime loads a model stamped with it.
    newest = max(constants.OPSET_TO_IR_VERSION)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", newest)])
    probe.ir_version = 8
    ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    assert default_opset() == newest

    manifest = export.export_model(tiny_model(), tmp_path / "out", formats=["onnx"], opset=13)
    a = manifest["artifacts"][0]
    assert a["opset"] == 13 and a["validation"]["passed"]
    proto = onnx.load(str(tmp_path / "out" / a["path"]))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [13]
