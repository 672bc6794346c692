"""Registry API, parameter validation, catalogue, and .keras round trips."""
import json
import math
import re
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import activations
from _activations_helpers import REFERENCE

NAMES = activations.list_activations()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The parameter table, typed in independently of the code.
COURSE_PARAMETERS = {
    "linear": {}, "binary_step": {"threshold": 0.0}, "sigmoid": {}, "tanh": {}, "relu": {},
    "leaky_relu": {"negative_slope": 0.01},
    "prelu": {"alpha_initializer": 0.25, "shared_axes": None},
    "rrelu": {"lower": 1 / 8, "upper": 1 / 3}, "elu": {"alpha": 1.0}, "selu": {},
    "gelu": {"approximate": False}, "swish": {"beta": 1.0, "trainable_beta": False},
    "mish": {"beta": 1.0}, "softplus": {"beta": 1.0, "threshold": 20.0}, "softsign": {},
    "hard_sigmoid": {}, "hard_swish": {}, "hard_tanh": {"min_val": -1.0, "max_val": 1.0},
    "tanh_shrink": {}, "soft_shrink": {"lambd": 0.5}, "hard_shrink": {"lambd": 0.5},
    "log_sigmoid": {}, "sinc": {"normalized": False}, "softmax": {"axis": -1},
}
CLASS_NAMES = {"binary_step": "BinaryStep", "hard_swish": "HardSwish", "prelu": "PReLU",
               "leaky_relu": "LeakyReLU", "log_sigmoid": "LogSigmoid"}


def test_the_course_activations_are_registered_with_their_parameters():
    assert NAMES == sorted(COURSE_PARAMETERS)
    for name, params in COURSE_PARAMETERS.items():
        got = activations.describe(name)["parameters"]
        for key, default in params.items():
            assert key in got, f"{name} lacks parameter {key}"
            assert got[key] == pytest.approx(default) if default is not None else got[key] is None


def test_list_activations_filters_with_fnmatch():
    assert activations.list_activations("hard_*") == [
        "hard_shrink", "hard_sigmoid", "hard_swish", "hard_tanh"]
    assert activations.list_activations("*relu") == ["leaky_relu", "prelu", "relu", "rrelu"]
    assert activations.list_activations("nothing*") == []


@pytest.mark.parametrize("name", NAMES)
def test_get_returns_a_new_registered_layer(name):
    a, b = activations.get(name), activations.get(name)
    assert isinstance(a, keras.layers.Layer) and a is not b
    registered = keras.saving.get_registered_name(type(a))
    assert registered == f"activations>{type(a).__name__}"
    if name in CLASS_NAMES:
        assert type(a).__name__ == CLASS_NAMES[name]
    assert activations.get(a) is a


@pytest.mark.parametrize("typo,expected", [
    ("leaky_rellu", "leaky_relu"), ("softmx", "softmax"), ("hardswish", "hard_swish"),
    ("Relu", "relu"),
])
def test_unknown_name_names_the_closest_matches(typo, expected):
    with pytest.raises(ValueError, match=expected) as info:
        activations.get(typo)
    assert isinstance(info.value, activations.UnknownActivationError)
    assert repr(typo) in str(info.value)
    with pytest.raises(activations.UnknownActivationError):
        activations.describe(typo)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_is_named_with_its_value(name):
    with pytest.raises(activations.ActivationParameterError,
                       match=r"'slope'.*Received: slope=0\.3$"):
        activations.get(name, slope=0.3)


def _param_cases():
    for name in NAMES:
        for param in activations.describe(name)["parameters"]:
            yield pytest.param(name, param, id=f"{name}-{param}")


@pytest.mark.parametrize("name,param", list(_param_cases()))
def test_invalid_parameter_value_is_named(name, param):
    with pytest.raises(ValueError, match=rf"Received: {param}='bogus'$") as info:
        activations.get(name, **{param: "bogus"})
    assert isinstance(info.value, activations.ActivationParameterError)


@pytest.mark.parametrize("name,params,bad", [
    ("softplus", {"beta": 0}, "beta=0"),
    ("mish", {"beta": -1.0}, "beta=-1.0"),
    ("hard_tanh", {"min_val": 1.0, "max_val": 0.0}, "max_val=0.0"),
    ("rrelu", {"lower": 0.5, "upper": 0.1}, "upper=0.1"),
    ("rrelu", {"lower": -0.1}, "lower=-0.1"),
    ("leaky_relu", {"negative_slope": math.nan}, "negative_slope=nan"),
    ("soft_shrink", {"lambd": -1}, "lambd=-1"),
    ("gelu", {"approximate": 1}, "approximate=1"),
    ("softmax", {"axis": 1.5}, "axis=1.5"),
    ("prelu", {"shared_axes": [0]}, "shared_axes=[0]"),
])
def test_out_of_range_values_are_refused(name, params, bad):
    with pytest.raises(activations.ActivationParameterError,
                       match=re.escape(f"Received: {bad}") + "$"):
        activations.get(name, **params)


REQUIRED = {"formula": str, "derivative": str, "range": str, "zero_centered": bool,
            "monotonic": bool, "saturates": str, "computation": str, "typical_use": str,
            "reference": str, "parameters": dict}


@pytest.mark.parametrize("name", NAMES)
def test_catalogue_entry_is_complete(name):
    entry = activations.describe(name)
    for key, kind in REQUIRED.items():
        assert isinstance(entry[key], kind), f"{name}.{key} = {entry.get(key)!r}"
    assert entry["saturates"] in {"no", "both sides", "negative side", "positive side"}
    assert entry["vanishing_gradient"] in (True, False, "less prone")
    assert entry["computation"] in {"cheap", "moderate", "expensive"}
    assert entry["name"] == name


def test_catalogue_follows_the_course_summary_table():
    sig, tanh, relu, leaky = (activations.describe(n) for n in
                              ("sigmoid", "tanh", "relu", "leaky_relu"))
    assert (sig["range"], sig["zero_centered"], sig["saturates"],
            sig["vanishing_gradient"]) == ("(0, 1)", False, "both sides", True)
    assert (tanh["range"], tanh["zero_centered"], tanh["saturates"],
            tanh["vanishing_gradient"]) == ("(-1, 1)", True, "both sides", True)
    assert (relu["zero_centered"], relu["saturates"], relu["vanishing_gradient"],
            relu["computation"]) == (False, "negative side", "less prone", "cheap")
    assert "hidden" in relu["typical_use"]
    assert (leaky["saturates"], leaky["vanishing_gradient"]) == ("no", False)
    assert "multi-class" in activations.describe("softmax")["typical_use"]


def test_catalogue_monotonicity_agrees_with_the_reference():
    x = np.linspace(-10, 10, 20001)
    for name in NAMES:
        ref = REFERENCE[name]
        if not ref.elementwise:
            continue
        y = ref.f(x)
        monotone = bool(np.all(np.diff(y) >= -1e-12))
        assert activations.describe(name)["monotonic"] == monotone, name


# --- .keras round trip in a fresh process --------------------------------------

CHILD = r"""
import json, sys
import numpy as np
import keras
import activations  # registers the layers: no custom_objects needed

folder, names = sys.argv[1], sys.argv[2].split(",")
x = np.load(f"{folder}/x.npy")
results = {}
for name in names:
    model = keras.saving.load_model(f"{folder}/{name}.keras", safe_mode=True)
    np.save(f"{folder}/{name}.out.npy", np.asarray(model(x, training=False)))
    np.savez(f"{folder}/{name}.weights.npz", *model.get_weights())
    results[name] = model.get_layer("act").get_config()
print(json.dumps(results))
"""


def _trained_model(name, params, x):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, kernel_initializer="glorot_uniform")(inputs)
    hidden = activations.get(name, name="act", **params)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    optimizer = keras.optimizers.SGD(0.5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - 1.0))
    # binary_step passes no gradient to the first Dense: zeros, not None.
    grads = [tf.zeros_like(w) if g is None else g
             for g, w in zip(tape.gradient(loss, model.trainable_weights),
                             model.trainable_weights)]
    optimizer.apply(grads, model.trainable_weights)
    return model


@pytest.mark.slow
def test_keras_round_trip_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(0, 3, (16, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    expected = {}
    for name in NAMES:
        model = _trained_model(name, REFERENCE[name].params, x)
        model.save(tmp_path / f"{name}.keras")
        expected[name] = (np.asarray(model(x, training=False)), model.get_weights(),
                          model.get_layer("act").get_config())
    # The training step really moved the learnable activation parameters.
    prelu_alpha = expected["prelu"][2]
    assert prelu_alpha["alpha_initializer"]["config"]["value"] == pytest.approx(0.1)
    trained = {n: [w for w in expected[n][1] if w.size == 1] for n in ("prelu", "swish")}
    assert len(trained["prelu"]) == len(trained["swish"]) == 1
    assert all(abs(w.item() - 0.1) > 1e-6 for w in trained["prelu"])
    assert all(abs(w.item() - 1.7) > 1e-6 for w in trained["swish"])

    env = {**os.environ, "PYTHONPATH": ROOT}
    run = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), ",".join(NAMES)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    configs = json.loads(run.stdout.strip().splitlines()[-1])
    for name, (outputs, weights, config) in expected.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.out.npy"), outputs,
                                      err_msg=name)
        reloaded = np.load(tmp_path / f"{name}.weights.npz")
        assert len(reloaded.files) == len(weights), name
        for i, w in enumerate(weights):
            np.testing.assert_array_equal(reloaded[f"arr_{i}"], w, err_msg=name)
        assert json.loads(json.dumps(config)) == configs[name], name
