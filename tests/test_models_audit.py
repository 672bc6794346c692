"""The audit on foreign and saved models, its three formats, the safe loader
and the ``python -m models`` command line."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import activations
import models
from models.__main__ import main as cli_main
from tests._models_helpers import built, summary_totals
from utils.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_batchnorm_rows_split_trainable_and_statistics():
    result = models.audit(built("deep_mlp_16x32_bn"))
    bn = next(r for r in result.rows if r.name == "hidden_1_bn")
    # gamma, beta (trainable); moving mean, variance (not trained).
    assert (bn.weights, bn.biases, bn.statistics) == (32, 32, 64)
    assert (bn.trainable, bn.non_trainable) == (64, 64)
    assert "gamma" in bn.formula and "moving variance" in bn.formula and bn.formula.endswith("= 128")
    dense = next(r for r in result.rows if r.name == "hidden_1")
    assert dense.biases == 0 and dense.formula == "(1024 x 32) = 32,768"
    assert dense.activation == "relu"   # found through the BN layer
    assert result.non_trainable_params == 16 * 64 == summary_totals(built("deep_mlp_16x32_bn"))["non_trainable"]


def test_audit_of_a_plain_keras_model_with_activation_layers():
    inp = keras.Input((8,))
    x = keras.layers.Dense(4, name="d1")(inp)
    x = keras.layers.Activation("tanh", name="a1")(x)
    x = keras.layers.Dense(6, name="d2")(x)
    x = activations.get("swish")(x)
    x = keras.layers.Dense(3, activation="softmax", name="d3")(x)
    model = keras.Model(inp, x)
    result = models.audit(model)
    by_name = {r.name: r for r in result.rows}
    assert by_name["d1"].activation == "tanh" and by_name["a1"].activation == "tanh"
    assert by_name["d2"].activation == "swish"
    assert by_name["d3"].activation == "softmax"
    assert result.activations_used == {"softmax": ["output"], "swish": ["hidden"], "tanh": ["hidden"]}
    assert result.total_params == (8 * 4 + 4) + (4 * 6 + 6) + (6 * 3 + 3) == model.count_params()
    assert result.total_macs == 8 * 4 + 4 * 6 + 6 * 3


def test_audit_of_nested_and_shared_layers_counts_each_variable_once():
    block = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="inner_dense"),
                              keras.layers.BatchNormalization(name="inner_bn")], name="block")
    shared = keras.layers.Dense(5, name="shared")
    inp = keras.Input((6,))
    x = shared(block(inp))                         # the same Dense used twice
    x = keras.layers.Dense(2, name="head")(shared(x))
    model = keras.Model(inp, x)
    result = models.audit(model)
    names = [r.name for r in result.rows]
    assert "block/inner_dense" in names and "block/inner_bn" in names
    reference = summary_totals(model)
    assert result.total_params == model.count_params() == reference["total"]
    assert result.non_trainable_params == reference["non_trainable"] == 2 * 5
    assert result.total_params == (6 * 5 + 5) + 4 * 5 + (5 * 5 + 5) + (5 * 2 + 2)


def test_audit_rejects_non_models():
    with pytest.raises(TypeError, match="keras.Model"):
        models.audit("exam_mlp")


def test_json_and_csv_carry_the_same_numbers():
    result = models.audit(built("lenet5"))
    data = json.loads(result.to_json())
    assert data["total_params"] == built("lenet5").count_params()
    assert data["sizes_bytes"] == {"float32": 4 * data["total_params"],
                                   "float16": 2 * data["total_params"], "int8": data["total_params"]}
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["name"] for r in rows] == [r["name"] for r in data["rows"]]
    assert sum(int(r["params"]) for r in rows) == data["total_params"]
    assert sum(int(r["bytes_float32"]) for r in rows) == 4 * data["total_params"]


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """A saved model using our activations, and three files that must be refused."""
    d = tmp_path_factory.mktemp("keras_files")
    model = models.create_model("deep_mlp_8x64", activation="leaky_relu", output_activation="softmax")
    good = d / "good.keras"
    model.save(good)
    data = good.read_bytes()
    (d / "truncated.keras").write_bytes(data[: len(data) // 2])
    (d / "notes.txt").write_text("not a model\n")
    (d / "text.keras").write_text("not a model either\n")
    inp = keras.Input((4,))
    keras.Model(inp, keras.layers.Lambda(lambda t: t * 2.0)(inp)).save(d / "lambda.keras")
    return d, model


def test_saved_keras_file_audits_like_the_original(keras_files):
    d, original = keras_files
    loaded = models.load_model(d / "good.keras")
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(original(x)), rtol=1e-6)
    a, b = models.audit(loaded), models.audit(original)
    assert a.total_params == b.total_params == original.count_params()
    assert a.activations_used == {"leaky_relu": ["hidden"], "softmax": ["output"]}


@pytest.mark.parametrize("filename, match", [
    ("truncated.keras", "not a valid .keras archive"),
    ("text.keras", "not a valid .keras archive"),
    ("notes.txt", "Expected a .keras file"),
    ("lambda.keras", "Lambda"),
])
def test_loader_refuses_unsafe_or_broken_files(keras_files, filename, match):
    d, _ = keras_files
    with pytest.raises(models.ModelLoadError, match=match):
        models.load_model(d / filename)


def _cli(argv, capsys):
    code = run_cli(cli_main, argv, prog="python -m models")
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list_and_docs_table_is_current(capsys):
    code, out, _ = _cli(["list", "deep_mlp*", "--exclude", "*_bn"], capsys)
    rows = [line.split() for line in out.splitlines()]
    assert code == 0 and [r[0] for r in rows] == models.list_models("deep_mlp*", exclude="*_bn")
    for name, count in rows:  # the parameter count of the model really built
        assert int(count.replace(",", "")) == models.create_model(name).count_params()
    code, out, _ = _cli(["list", "exam_mlp"], capsys)
    assert out.split() == ["exam_mlp", "16,295"]  # the course's exam network
    code, out, _ = _cli(["list", "--markdown"], capsys)
    assert code == 0
    for name in models.list_models():
        assert f"| `{name}` | {models.describe(name)['params']:,} |" in out
    # docs/models.md embeds exactly this table: regenerate it when this fails
    # (python -m models list --markdown).
    assert out in (ROOT / "docs" / "models.md").read_text()


def test_cli_audit_formats_and_atomic_out(keras_files, tmp_path, capsys):
    d, original = keras_files
    out_file = tmp_path / "audit.json"
    code, out, _ = _cli(["audit", str(d / "good.keras"), "--format", "json", "--out", str(out_file)],
                        capsys)
    assert code == 0 and str(out_file) in out
    assert json.loads(out_file.read_text())["total_params"] == original.count_params()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp left behind
    code, out, _ = _cli(["audit", "exam_mlp", "--format", "csv", "--set", "hidden_units=[8]"], capsys)
    assert code == 0
    assert sum(int(r["params"]) for r in csv.DictReader(io.StringIO(out))) == (
        1024 * 8 + 8) + (8 * 1000 + 1000)
    code, out, _ = _cli(["summary", "exam_mlp", "--activation", "tanh", "--num-classes", "10"],
                        capsys)
    assert code == 0
    assert "Total params: 5,405" in out   # Keras' own summary: 5,125 + 60 + 110 + 110
    assert "**tanh**" in out and "(10 x 10) + 10 = 110" in out


@pytest.mark.parametrize("argv, match", [
    (["audit", "exam_mpl"], "exam_mlp"),
    (["summary", "deep_mlp", "--set", "depth=-2"], "depth"),
    (["summary", "deep_mlp", "--set", "width=0"], "width"),
    (["audit", "lenet5", "--activation", "relu_ish"], "relu_ish"),
    (["audit", "lenet5", "--set", "foo=1"], "foo"),
    (["audit", "{d}/truncated.keras"], "truncated"),
    (["audit", "{d}/notes.txt"], ".keras"),
    (["audit", "{d}/lambda.keras"], "Lambda"),
    (["audit", "{d}/missing.keras"], "No such"),
])
def test_cli_errors_are_one_line_exit_2(keras_files, capsys, argv, match):
    d, _ = keras_files
    code, out, err = _cli([a.format(d=d) for a in argv], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("python -m models: error: ") and match in err


@pytest.mark.slow
def test_cli_subprocess_exit_status_2(keras_files, tmp_path):
    # One real process: the module entry point wires run_cli and exit codes.
    d, _ = keras_files
    proc = subprocess.run([sys.executable, "-m", "models", "audit", str(d / "lambda.keras")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = [l for l in proc.stderr.splitlines() if l.startswith("python -m models")]
    assert len(lines) == 1 and "Lambda" in lines[0] and "Traceback" not in proc.stderr


def test_recurrent_macs_count_every_timestep():
    # An LSTM multiplies input and state by its four gates' matrices at every
    # step: steps x (features + units) x 4 units, written out by hand here.
    import keras

    inputs = keras.Input((32, 12))
    model = keras.Model(inputs, keras.layers.LSTM(16, name="lstm")(inputs))
    row = next(r for r in models.audit(model).rows if r.name == "lstm")
    assert row.macs == 32 * (12 + 16) * 4 * 16
    rows = models.audit(models.create_model("lstm_rows")).rows
    assert next(r for r in rows if r.name == "lstm").macs == 32 * (32 + 64) * 4 * 64
