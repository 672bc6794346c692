"""Microcontroller and mobile targets, checked with runtimes the
exporter did not write: the TFLite Micro interpreter, LiteRT, onnxruntime, g++.

One trained exam network is exported once with ``--formats
tflite,onnx,tflite_micro --quantize none,int8``; the tests then read the
files back through each runtime's own API.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from export.__main__ import PROG, main
from tests._export_helpers import (keras_outputs, run_litert_int8, run_raw, run_tflite_micro,
                                   trained_exam_mlp)
from utils.cli import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TFLite Micro's MicroMutableOpResolver methods for the exam network's ops
# (tensorflow/lite/micro/micro_mutable_op_resolver.h).
RESOLVER_METHODS = {"FULLY_CONNECTED": "AddFullyConnected", "RESHAPE": "AddReshape",
                    "SOFTMAX": "AddSoftmax"}


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    model, x, xt = trained_exam_mlp(seed=1)  # 98.5% fully int8: a few digits above the bound
    d = tmp_path_factory.mktemp("micro")
    model.save(d / "exam.keras")
    out = d / "out"
    code = run_cli(main, [str(d / "exam.keras"), "--out", str(out), "--formats",
                          "tflite,onnx,tflite_micro", "--quantize", "none,int8",
                          "--representative-data", "digits"], PROG)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    arts = {(a["format"], a["quantization"]): a for a in manifest["artifacts"]}
    return {"model": model, "x": x, "xt": xt, "out": out, "arts": arts, "manifest": manifest}


@pytest.mark.slow
def test_micro_runs_at_the_reported_arena_and_not_below_the_smallest(exam):
    micro = exam["arts"][("tflite_micro", "int8")]["micro"]
    path = exam["out"] / "model_micro.tflite"
    assert micro["flash_bytes"] == path.stat().st_size
    assert micro["arena_bytes"] >= micro["arena_min_bytes"] + 1024
    assert micro["arena_bytes"] % 16 == 0 and micro["arena_min_bytes"] % 16 == 0
    for arena in (micro["arena_bytes"], micro["arena_min_bytes"]):
        assert run_tflite_micro(path, exam["xt"][:3], arena).shape == (3, 1000)
    # 16 bytes fewer than the smallest arena fails (in a child: the TFLite
    # Micro wrapper may crash instead of raising when an allocation fails).
    code = ("import sys, numpy as np; sys.path.insert(0, %r); "
            "from tests._export_helpers import run_tflite_micro; "
            "run_tflite_micro(%r, np.zeros((1, 32, 32, 1), np.float32), %d)"
            % (ROOT, str(path), micro["arena_min_bytes"] - 16))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0


@pytest.mark.slow
def test_micro_matches_litert_within_one_step_and_keras_top1(exam):
    a = exam["arts"][("tflite_micro", "int8")]
    path = exam["out"] / a["path"]
    xt = exam["xt"][:300]
    ours = run_tflite_micro(path, xt, a["micro"]["arena_bytes"]).astype(int)
    litert = run_litert_int8(path, xt).astype(int)
    assert np.abs(ours - litert).max() <= 1
    assert a["validation"]["litert"]["max_steps"] <= 1
    # int8 I/O with the recorded scale and zero point; top-1 against Keras.
    q = a["micro"]["output_quantization"][0]
    assert a["outputs"][0]["quantization"] == q
    probs = (ours - q["zero_point"]) * q["scale"]
    ref = keras_outputs(exam["model"], xt)[0]
    assert np.mean(probs.argmax(1) == ref.argmax(1)) >= 0.98
    assert a["validation"]["top1_agreement"] >= a["validation"]["top1_bound"] == 0.98
    assert a["ops"] == sorted(RESOLVER_METHODS)


@pytest.mark.slow
def test_logits_range_follows_the_documented_rule(exam):
    """The lower bound of the logits is m - 0.5 (M - m) over the calibration
    samples' logits, recomputed here with Keras (the model minus its softmax)."""
    import keras
    a = exam["arts"][("tflite_micro", "int8")]
    [adjusted] = a["calibration_ranges"]
    idx = np.linspace(0, len(exam["x"]) - 1, 200).astype(int)  # 200 evenly spaced
    model = exam["model"]
    logits = keras.Model(model.inputs, model.get_layer("output").output)(exam["x"][idx])
    logits = np.asarray(logits, dtype=np.float64)
    m, top = logits.max(1).min(), logits.max()
    assert adjusted["used"][0] == pytest.approx(m - 0.5 * (top - m), abs=1e-3)
    assert adjusted["calibrated"][0] == pytest.approx(logits.min(), abs=1e-3)
    assert adjusted["used"][1] == pytest.approx(top, abs=1e-3)


@pytest.mark.slow
def test_float_io_variant_runs_in_tflite_micro(exam, tmp_path):
    import export
    m = export.export_model(exam["model"], tmp_path / "out", formats=["tflite_micro"],
                            micro_io="float32", representative_data=exam["x"],
                            validation_data=exam["xt"][:300])
    a = m["artifacts"][0]
    assert a["inputs"][0]["dtype"] == "float32" and a["micro"]["io"] == "float32"
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(a["ops"])
    assert a["validation"]["passed"] and a["validation"]["litert"]["max_steps"] <= 1
    from tflite_micro import runtime
    interp = runtime.Interpreter.from_file(str(tmp_path / "out" / a["path"]),
                                           arena_size=a["micro"]["arena_bytes"])
    interp.set_input(exam["xt"][:1], 0)
    interp.invoke()
    probs = interp.get_output(0)
    ref = keras_outputs(exam["model"], exam["xt"][:1])[0]
    assert probs.dtype == np.float32 and probs.argmax() == ref.argmax()


@pytest.mark.slow
def test_c_array_compiles_and_round_trips_byte_exact(exam, tmp_path):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed")
    out = exam["out"]
    for name in ("model_data.h", "model_data.cc"):
        shutil.copy(out / name, tmp_path / name)
    (tmp_path / "dump.cc").write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n'
        "int main(int argc, char** argv) {\n"
        "  if (reinterpret_cast<std::uintptr_t>(g_model) % 16 != 0) return 3;\n"
        '  std::FILE* f = std::fopen(argv[1], "wb");\n'
        "  return std::fwrite(g_model, 1, g_model_len, f) == g_model_len && "
        "std::fclose(f) == 0 ? 0 : 4;\n}\n")
    subprocess.run([gxx, "-std=c++17", "-Wall", "-Werror", "-O0", "-o", "dump",
                    "dump.cc", "model_data.cc"], cwd=tmp_path, check=True)
    subprocess.run([str(tmp_path / "dump"), str(tmp_path / "back.tflite")], check=True)
    assert (tmp_path / "back.tflite").read_bytes() == (out / "model_micro.tflite").read_bytes()
    header = (out / "model_data.h").read_text()
    assert "extern const unsigned char g_model[];" in header
    assert "extern const unsigned int g_model_len;" in header


@pytest.mark.slow
def test_resolver_registers_every_op_once(exam):
    from ai_edge_litert.interpreter import Interpreter
    path = exam["out"] / "model_micro.tflite"
    used = {op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()}
    text = (exam["out"] / "op_resolver.h").read_text()
    calls = re.findall(r"resolver\.(Add\w+)\(\)", text)
    assert sorted(calls) == sorted(RESOLVER_METHODS[o] for o in used)
    assert f"MicroMutableOpResolver<{len(used)}>" in text
    manifest_files = exam["arts"][("tflite_micro", "int8")]["micro"]["sources"]
    assert sorted(manifest_files) == ["model_data.cc", "model_data.h", "op_resolver.h"]


@pytest.mark.slow
def test_int8_onnx_agrees_with_keras_and_is_smaller(exam):
    import onnx
    float_a, int8_a = exam["arts"][("onnx", None)], exam["arts"][("onnx", "int8")]
    path = exam["out"] / int8_a["path"]
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    xt = exam["xt"]
    got = run_raw(path, xt)[0]
    ref = keras_outputs(exam["model"], xt)[0]
    agreement = float(np.mean(got.argmax(1) == ref.argmax(1)))
    assert agreement >= 0.98
    assert int8_a["validation"]["top1_agreement"] == pytest.approx(agreement, abs=1e-9)
    assert int8_a["size_bytes"] < float_a["size_bytes"]


@pytest.mark.slow
def test_gpu_delegate_verdict_in_manifest(exam):
    for key in (("tflite", None), ("tflite", "int8"), ("tflite_micro", "int8")):
        assert exam["arts"][key]["gpu_delegate"]["compatible"] is True
    assert "gpu_delegate" not in exam["arts"][("onnx", None)]
    md = (exam["out"] / "manifest.md").read_text()
    assert "| GPU delegate |" in md and "TFLite Micro (`model_micro.tflite`" in md


def test_gpu_delegate_rules_name_the_rejected_ops(tmp_path):
    import keras

    import export
    inp = keras.Input((4, 4))
    h = keras.layers.Flatten()(inp)  # Keras' Flatten: SHAPE/STRIDED_SLICE/PACK + RESHAPE
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    m = export.export_model(model, tmp_path / "out", formats=["tflite"], static_flatten=False)
    gpu = m["artifacts"][0]["gpu_delegate"]
    # gpu_compatibility.cc: SHAPE is not in its op switch; RESHAPE needs one runtime input.
    assert gpu["compatible"] is False and {"SHAPE", "RESHAPE"} <= set(gpu["rejected_ops"])
    assert any(r["reason"] == "Not supported op SHAPE" for r in gpu["rejected"])


# ---------------------------------------------------------------- bad input
def _refused(capsys, argv, out, expect):
    code = run_cli(main, argv, PROG)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"{PROG}: error:"), err
    assert expect in err, err
    assert not out.exists() and sorted(os.listdir(out.parent)) == sorted(
        p.name for p in out.parent.iterdir())
    return err


def test_micro_without_representative_data_says_what_to_pass(tmp_path, capsys):
    from tests._export_helpers import tiny_model
    tiny_model().save(tmp_path / "tiny.keras")
    before = sorted(os.listdir(tmp_path))
    _refused(capsys, [str(tmp_path / "tiny.keras"), "--out", str(tmp_path / "out"),
                      "--formats", "tflite_micro"], tmp_path / "out", "--representative-data")
    assert sorted(os.listdir(tmp_path)) == before


def test_micro_refuses_dynamic_shapes_naming_the_input(tmp_path):
    import keras

    import export
    inp = keras.Input((None, 8), name="frames")
    model = keras.Model(inp, keras.layers.Dense(3)(inp))
    with pytest.raises(export.ExportError) as exc:
        export.export_model(model, tmp_path / "out", formats=["tflite_micro"],
                            representative_data=np.zeros((8, 5, 8), np.float32))
    message = str(exc.value)
    assert "\n" not in message and "'frames'" in message and "static shapes" in message
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path) == []


@pytest.mark.slow
def test_micro_refuses_ops_it_lacks_and_so_does_tflite_micro(tmp_path):
    import keras
    import tensorflow as tf

    import export
    inp = keras.Input((8,))
    h = keras.layers.Dense(16, activation=lambda t: keras.activations.gelu(t, approximate=False))(inp)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    with pytest.raises(export.UnsupportedOpsError) as exc:
        export.export_model(model, tmp_path / "out", formats=["tflite_micro"],
                            representative_data=x)
    assert exc.value.ops == ["GELU"] and "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path) == []
    # The reference: TFLite Micro's own interpreter refuses the int8 GELU model.
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.representative_dataset = lambda: ([x[i:i + 1]] for i in range(len(x)))
    (tmp_path / "gelu.tflite").write_bytes(conv.convert())
    code = ("from tflite_micro import runtime; "
            "runtime.Interpreter.from_file(%r, arena_size=1 << 20)" % str(tmp_path / "gelu.tflite"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "GELU" in proc.stderr + proc.stdout


# ---------------------------------------------------------------- every model
@pytest.mark.slow
@pytest.mark.parametrize("name", __import__("models").list_models())
def test_every_model_exports_to_micro_or_names_what_is_missing(name):
    from export import ExportError, matrix_models
    cell = matrix_models.run_micro_matrix(name, trained=False)[name]["tflite_micro"]
    if isinstance(cell, dict):
        assert cell["flash_bytes"] > 0 and cell["arena_bytes"] >= 512 + 1024
        from export.micro import MICRO_OPS
        assert set(cell["ops"]) <= set(MICRO_OPS)
    else:  # one line naming the ops (upper-case TFLite op names) it is about
        assert cell.split(":")[0] in {c.__name__ for c in (ExportError, *_subclasses(ExportError))}
        assert "\n" not in cell and re.search(r"\b[A-Z][A-Z0-9_]{2,}\b", cell), cell


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)
