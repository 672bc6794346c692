"""Every registered activation and every Keras builtin activation x every format.

All cases share one model (one output per activation, see export/matrix.py),
exported once; each case is still its own test. If the shared export fails,
``run_matrix`` re-exports activation by activation so each failing test names
its own error.
"""
import numpy as np
import pytest

import export
from export import matrix
from tests._export_helpers import keras_outputs, run_raw

CASES = matrix.activation_cases()


def _export_matrix(work):
    model = matrix.matrix_model(CASES)
    try:
        manifest = export.export_model(model, work / "out")
    except export.ExportError:
        return {"errors": matrix.run_matrix(CASES)}
    x = np.random.default_rng(2).random((5, matrix.INPUT_DIM), dtype=np.float32)
    ref = keras_outputs(model, x)
    got = {a["format"]: run_raw(work / "out" / a["path"], x) for a in manifest["artifacts"]}
    return {"manifest": manifest, "ref": ref, "got": got}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The matrix export, computed once per test session: pytest-xdist
    workers share the base temp directory, and a file lock lets the first
    worker export while the other waits and reuses its result."""
    import fcntl
    import pickle

    import os
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is <session>/popen-gw<i>: share the
    # session directory. Without xdist, basetemp itself is the session's.
    shared = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) \
        / "export_activation_matrix"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = shared / "result.pickle"
        if cache.exists():
            return pickle.loads(cache.read_bytes())
        result = _export_matrix(shared)
        cache.write_bytes(pickle.dumps(result))
        return result


def test_matrix_covers_both_registries():
    import activations
    names = {c.split(":", 1)[1] for c in CASES if c.startswith("ours:")}
    assert names == set(activations.list_activations())
    builtin = {c.split(":", 1)[1] for c in CASES if c.startswith("keras:")}
    # The ops tf2onnx leaves unconverted come from these two (Expm1, Erfc).
    assert {"gelu", "gelu_approximate", "celu", "relu", "softmax"} <= builtin


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_activation_exports_and_validates(case, exported):
    if "errors" in exported:
        result = exported["errors"][case]
        bad = {f: r for f, r in result.items() if not isinstance(r, dict)}
        assert not bad, f"{case}: {bad}"
        return
    i = CASES.index(case)
    for a in exported["manifest"]["artifacts"]:
        assert a["validation"]["passed"], (case, a["format"])
        ref, got = exported["ref"][i], exported["got"][a["format"]][i]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5,
                                   err_msg=f"{case} {a['format']}")


def test_onnx_handlers_match_numpy(tmp_path):
    """Expm1/Erfc/Log1p/Xlogy, which tf2onnx 1.17 cannot convert, run in
    onnxruntime and match numpy/scipy."""
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    from scipy import special

    import export.onnx_ops  # noqa: F401  (registers the handlers)

    spec = [tf.TensorSpec([None, 4], tf.float32, name="x")]

    @tf.function(input_signature=spec)
    def f(x):
        return {"expm1": tf.math.expm1(x), "erfc": tf.math.erfc(x),
                "log1p": tf.math.log1p(tf.abs(x)), "xlogy": tf.math.xlogy(x, tf.abs(x) + 1.0)}

    proto, _ = tf2onnx.convert.from_function(f, input_signature=spec, opset=18)
    onnx.checker.check_model(proto, full_check=True)
    assert not {"Expm1", "Erfc", "Log1p", "Xlogy"} & {n.op_type for n in proto.graph.node}
    x = np.array([[-3.0, -1e-3, 0.0, 2.5], [0.5, -0.5, 1e-4, 4.0]], np.float32)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))
    np.testing.assert_allclose(out["expm1"], np.expm1(x), atol=1e-6)
    np.testing.assert_allclose(out["erfc"], special.erfc(x), atol=1e-6)
    np.testing.assert_allclose(out["log1p"], np.log1p(np.abs(x)), atol=1e-6)
    np.testing.assert_allclose(out["xlogy"], special.xlogy(x, np.abs(x) + 1), atol=1e-6)
