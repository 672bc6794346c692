"""TFLite Micro on a deeper trained network: judged by its decisions, figures recorded truly.

A trained residual_mlp's micro file lands several int8 steps from LiteRT at
its softmax output (each engine rounds about 0.1% of FULLY_CONNECTED outputs
one step off the exact value, and the residual ADDs and the softmax spread
them), while both engines make the same top-1 decision. The export must pass
it, and record figures that the TFLite Micro interpreter, LiteRT and Keras,
run here by their own APIs, reproduce.
"""
import numpy as np
import pytest

from tests._export_helpers import keras_outputs, run_litert_int8, run_tflite_micro


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    import keras

    import data
    import export
    import models
    bundle = data.load_dataset("digits", seed=0)
    x, y = bundle.as_numpy("train")
    xt, _ = bundle.as_numpy("test")
    xt = xt[:300]
    keras.utils.set_random_seed(0)
    model = models.create_model("residual_mlp", num_classes=10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    out = tmp_path_factory.mktemp("micro_residual") / "out"
    manifest = export.export_model(model, out, formats=["tflite_micro"],
                                   representative_data=x[:1000], validation_data=xt)
    return model, xt, out, manifest["artifacts"][0]


@pytest.mark.slow
def test_deep_micro_file_passes_on_decisions_with_its_steps_recorded(residual):
    model, xt, out, art = residual
    path = out / art["path"]
    micro = run_tflite_micro(path, xt, art["micro"]["arena_bytes"]).astype(int)
    litert = run_litert_int8(path, xt).astype(int)
    steps = np.abs(micro - litert).max(axis=1)
    litert_check = art["validation"]["litert"]
    assert litert_check["max_steps"] == steps.max()
    assert litert_check["step_counts"] == {"0": int((steps == 0).sum()),
                                           "1": int((steps == 1).sum()),
                                           "more": int((steps > 1).sum())}
    same = float(np.mean(micro.argmax(1) == litert.argmax(1)))
    assert litert_check["agreement"] == pytest.approx(same, abs=1e-6)
    assert same >= litert_check["bound"] == 0.995
    # The verdict that counts: the file's decisions against Keras'.
    ref = keras_outputs(model, xt)[0]
    with_keras = float(np.mean(micro.argmax(1) == ref.argmax(1)))
    assert art["validation"]["top1_agreement"] == pytest.approx(with_keras, abs=1e-6)
    assert with_keras >= 0.98 and art["validation"]["passed"]
