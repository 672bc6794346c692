"""``python -m export verify`` on a TRAINED export: the aarch64 runtimes under
QEMU on an emulated Cortex-A72, and OpenVINO on this CPU.

One exam network (trained on the digits as ``train.py`` trains it) is exported
once to ``tflite,onnx`` x ``none,int8``. The references come from outside the
code under test: Keras, the x86 LiteRT / onnxruntime and the aarch64 ones run
through their own public APIs (``tests._export_helpers.run_raw``, in the arm64
root by ``tests._verify_helpers.run_raw_on_arm64``), and OpenVINO's own API.
A tampered artifact and a CPU that computes int8 wrongly must fail, with the
figure in the one line and exit status 2.
"""
import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from export.__main__ import PROG, main
from export.validate import INT8_TOP1_BOUND, TOLERANCES
from tests._export_helpers import keras_outputs, run_raw, trained_exam_mlp
from tests._verify_helpers import emulator_major, run_raw_on_arm64, subset_export
from utils.cli import run_cli

ARTIFACTS = ("model.tflite", "model_int8.tflite", "model.onnx", "model_int8.onnx")
FLOAT_ATOL, FLOAT_RTOL = TOLERANCES[None]


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    model, _, xt = trained_exam_mlp(seed=1)  # int8 agrees 98.5% with Keras: above the bound
    d = tmp_path_factory.mktemp("verify")
    model.save(d / "exam.keras")
    out = d / "out"
    code = run_cli(main, [str(d / "exam.keras"), "--out", str(out), "--formats", "tflite,onnx",
                          "--quantize", "none,int8", "--representative-data", "digits"], PROG)
    assert code == 0
    arts = {a["path"]: a for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert sorted(arts) == sorted(ARTIFACTS)
    # The validation batches (1 and 7 samples) and the int8 agreement samples.
    inputs = {"b1": xt[:1], "b7": xt[:7], "all": xt}
    return {"model": model, "xt": xt, "out": out, "arts": arts, "inputs": inputs,
            "keras": {k: keras_outputs(model, v)[0] for k, v in inputs.items()}}


def _x86(exam, name):
    return {k: run_raw(exam["out"] / name, v)[0] for k, v in exam["inputs"].items()}


def _max_diff(a, b, keys=("b1", "b7")):
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in keys)


def _agreement(a, b):
    return float(np.mean(a["all"].argmax(1) == b["all"].argmax(1)))


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _verify_a72(exam):
    from export.verify import verify_export
    manifest = verify_export(exam["out"], target="aarch64", cpu="cortex-a72", data=exam["xt"])
    on_disk = json.loads((exam["out"] / "manifest.json").read_text())["artifacts"]
    assert [a["verification"] for a in on_disk] == [a["verification"]
                                                     for a in manifest["artifacts"]]
    return {a["path"]: a["verification"] for a in manifest["artifacts"]}


@pytest.mark.slow
def test_cortex_a72_proves_xnnpack_applied_and_agrees_with_x86(exam, arm64_root):
    """One emulated verification (the expensive part), two properties: every
    artifact ran on aarch64 in the kernels claimed, and the aarch64 outputs,
    computed here again through the runtimes' own APIs, agree with the x86 ones
    within the float tolerance / int8 agreement bound, the figures verify
    recorded being these very differences."""
    a72 = _verify_a72(exam)
    for name in ARTIFACTS:
        engines = ("xnnpack", "builtin") if name.endswith(".tflite") else ("onnxruntime",)
        assert sorted(k for k in a72[name] if k.startswith("aarch64/")) == sorted(
            f"aarch64/cortex-a72/{e}" for e in engines)
        for engine in engines:
            record = a72[name][f"aarch64/cortex-a72/{engine}"]
            assert record["passed"] and record["machine"] == "aarch64"
            assert "aarch64 wheel" in record["runtime"] and "qemu" in record["emulator"]
            if engine == "xnnpack":
                assert record["delegate"] and "DELEGATE" in record["kernels"]
            elif engine == "builtin":
                assert not record["delegate"] and "FULLY_CONNECTED" in record["kernels"]
            else:
                assert record["kernels"] == ["CPUExecutionProvider"]

    arm = dict(zip(ARTIFACTS, run_raw_on_arm64([exam["out"] / n for n in ARTIFACTS],
                                               exam["inputs"])))
    for name in ARTIFACTS:
        x86 = _x86(exam, name)
        engine = "xnnpack" if name.endswith(".tflite") else "onnxruntime"
        record = a72[name][f"aarch64/cortex-a72/{engine}"]
        if "int8" in name:
            assert _agreement(arm[name], x86) >= INT8_TOP1_BOUND
            assert record["vs_x86"]["top1_agreement"] == pytest.approx(_agreement(arm[name], x86))
            assert record["vs_keras"]["top1_agreement"] == pytest.approx(
                _agreement(arm[name], exam["keras"]))
            assert record["vs_keras"]["top1_agreement"] >= INT8_TOP1_BOUND
        else:
            for k in ("b1", "b7"):
                assert np.all(np.abs(arm[name][k] - x86[k])
                              <= FLOAT_ATOL + FLOAT_RTOL * np.abs(x86[k])), (name, k)
            assert record["vs_x86"]["max_abs_diff"] == pytest.approx(
                _max_diff(arm[name], x86), rel=1e-6, abs=1e-12)
            assert record["vs_keras"]["max_abs_diff"] == pytest.approx(
                _max_diff(arm[name], exam["keras"]), rel=1e-6, abs=1e-12)


def _tamper_tflite_bias(path, model) -> None:
    """Add 3 to every other bias of the output layer, in place (the file still loads)."""
    bias = [layer for layer in model.layers if layer.weights][-1].get_weights()[1]
    data = path.read_bytes()
    assert data.count(bias.tobytes()) == 1
    tampered = bias.copy()
    tampered[::2] += 3.0
    path.write_bytes(data.replace(bias.tobytes(), tampered.tobytes()))


@pytest.mark.slow
def test_a_tampered_artifact_fails_with_its_figure_and_exit_2(exam, arm64_root, tmp_path,
                                                             capsys):
    d = subset_export(exam["out"], tmp_path / "tampered", ["model.tflite"])
    _tamper_tflite_bias(d / "model.tflite", exam["model"])
    # Not re-recorded: the manifest's sha256 refuses it before anything runs.
    before = (d / "manifest.json").read_bytes()
    assert run_cli(main, ["verify", str(d), "--data", "digits"], PROG) == 2
    line = _one_error_line(capsys)
    assert "model.tflite' does not match its export manifest: sha256" in line
    # Re-recorded (a converter that wrote wrong weights): the numbers refuse it.
    manifest = json.loads(before)
    manifest["artifacts"][0]["sha256"] = hashlib.sha256((d / "model.tflite").read_bytes()
                                                        ).hexdigest()
    (d / "manifest.json").write_text(json.dumps(manifest))
    before = (d / "manifest.json").read_bytes()
    assert run_cli(main, ["verify", str(d), "--cpu", "cortex-a72", "--data", "digits"],
                   PROG) == 2
    line = _one_error_line(capsys)
    x86 = {k: run_raw(d / "model.tflite", exam["inputs"][k])[0] for k in ("b1", "b7")}
    figure = float(np.abs(x86["b7"].astype(np.float64) - exam["keras"]["b7"]).max())
    assert figure > 0.01
    for engine in ("LiteRT XNNPACK", "LiteRT builtin kernels"):
        assert (f"model.tflite on aarch64 cortex-a72 {engine} vs Keras: model.tflite: output_0 "
                f"max abs diff {figure:.3g} exceeds tolerance") in line
        assert f"{engine} vs x86" not in line  # the same wrong file on both machines
    assert (d / "manifest.json").read_bytes() == before


@pytest.mark.slow
def test_a_cpu_that_computes_int8_wrongly_fails_verification(exam, arm64_root, tmp_path,
                                                            capsys):
    """QEMU's ``max`` CPU (SVE, SME, i8mm): XNNPACK's int8 kernels compute wrong
    results there under QEMU 7, the version this was measured with."""
    if emulator_major() != 7:
        pytest.skip("the wrong int8 results of QEMU's max CPU were measured on QEMU 7")
    d = subset_export(exam["out"], tmp_path / "max", ["model_int8.tflite"])
    before = (d / "manifest.json").read_bytes()
    assert run_cli(main, ["verify", str(d), "--cpu", "max", "--data", "digits"], PROG) == 2
    line = _one_error_line(capsys)
    figures = re.findall(r"on aarch64 max LiteRT XNNPACK vs (Keras|x86): [^;]*? agreement "
                         r"with \1 ([0-9.]+) on 1000 samples is below the bound 0.98", line)
    assert sorted(k for k, _ in figures) == ["Keras", "x86"], line
    assert all(float(f) < 0.5 for _, f in figures), line
    assert "builtin" not in line  # the builtin int8 kernels stay right on the same CPU
    assert (d / "manifest.json").read_bytes() == before


def _openvino(path, x):
    """The first output of ``path`` in OpenVINO's CPU plugin, in float32 precision."""
    import openvino as ov
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({i: ov.PartialShape([-1, *list(i.get_partial_shape())[1:]])
                   for i in model.inputs})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(compiled([x])[compiled.outputs[0]])


@pytest.mark.slow
def test_openvino_runs_float32_within_1e5_and_int8_within_its_bound(exam):
    from export.verify import verify_export
    manifest = verify_export(exam["out"], target="openvino", data=exam["xt"])
    arts = {a["path"]: a["verification"] for a in manifest["artifacts"]}
    for name in ARTIFACTS:
        record = arts[name]["openvino/openvino"]
        assert record["passed"] and record["runtime"].startswith("openvino ")
        ours = {k: _openvino(exam["out"] / name, v) for k, v in exam["inputs"].items()}
        keras = exam["keras"]
        if "int8" in name:
            assert {"i8", "u8"} & set(record["precisions"])
            assert _agreement(ours, keras) >= INT8_TOP1_BOUND
            assert record["vs_keras"]["top1_agreement"] == pytest.approx(_agreement(ours, keras))
        else:
            for k in ("b1", "b7"):
                assert np.abs(ours[k] - keras[k]).max() <= 1e-5
            assert record["vs_keras"]["max_abs_diff"] == pytest.approx(
                _max_diff(ours, keras), rel=1e-6, abs=1e-12)
            assert record["vs_keras"]["max_abs_diff"] <= FLOAT_ATOL


@pytest.mark.slow
@pytest.mark.parametrize("target, key, reason", [
    ("aarch64", "aarch64/cortex-a72", "TFLite Micro has no aarch64 build on PyPI (tflite-micro "
                                      "publishes x86_64 wheels only)"),
    ("openvino", "openvino", "a TFLite Micro file is proven in the TFLite Micro interpreter, "
                             "which OpenVINO is not"),
], ids=["aarch64", "openvino"])
def test_a_format_the_target_cannot_run_is_recorded_as_skipped_with_the_reason(
        exam, arm64_root, tmp_path, target, key, reason):
    """A TFLite Micro entry (the int8 file under the name and format the exporter gives
    it; exporting one for real costs more than this test checks)."""
    from export.verify import verify_export
    d = subset_export(exam["out"], tmp_path / "micro", [])
    shutil.copy(d / "model_int8.tflite", d / "model_micro.tflite")
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["artifacts"] = [dict(exam["arts"]["model_int8.tflite"], path="model_micro.tflite",
                                  format="tflite_micro")]
    (d / "manifest.json").write_text(json.dumps(manifest))
    done = verify_export(d, target=target, data=exam["xt"])["artifacts"][0]["verification"]
    assert done == {key: {"skipped": reason}}
