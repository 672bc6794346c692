"""Every registered model: builds, runs, and its closed-form parameter count,
audit totals and Keras' own summary agree. Plus the registry's error paths."""
import numpy as np
import pytest

import models
from tests._models_helpers import built, summary_totals

ALL = models.list_models()


def test_registry_has_the_course_models():
    for name in ("perceptron", "neuron_2in", "feedforward_2_2_1", "exam_mlp", "deep_mlp",
                 "residual_mlp", "lenet5"):
        assert name in ALL
    assert len(models.list_models("deep_mlp_*")) >= 3
    assert len(models.list_models("residual_mlp_*")) >= 2
    # At least one preset is big enough to matter for export/benchmarks.
    assert max(models.describe(n)["params"] for n in ALL) >= 100_000


@pytest.mark.parametrize("name", ALL)
def test_builds_runs_and_counts_agree(name):
    info = models.describe(name)
    model = built(name)
    x = np.random.default_rng(0).random((2, *info["input_shape"]), dtype=np.float32)
    y = np.asarray(model(x))
    classes = info["num_classes"]
    if info["learning_rule"] is None:
        # Binary problems use one output unit; more classes one unit each.
        assert y.shape == (2, classes if classes > 2 else 1)
    else:
        # Classic nets (Hopfield, SOM, ...) declare their own output (a state, distances).
        assert y.shape == (2, *model.outputs[0].shape[1:])
    assert np.isfinite(y).all()
    assert info["params"] == model.count_params()
    result = models.audit(model)
    reference = summary_totals(model)
    assert result.total_params == model.count_params() == reference["total"]
    assert result.trainable_params == reference["trainable"]
    assert result.non_trainable_params == reference["non_trainable"]
    assert sum(r.weights + r.biases + r.statistics for r in result.rows) == reference["total"]


@pytest.mark.parametrize("name", ALL)
def test_formula_holds_for_overrides(name):
    # A parameterised activation (PReLU: one slope per unit) on a non-square,
    # three-channel input exercises every term of each family's formula.
    overrides = dict(activation="prelu", num_classes=7, input_shape=(16, 20, 3))
    # Families without an activation or classes (Hopfield, SOM, ...) take the rest.
    accepted = models.describe(name)["defaults"]
    overrides = {k: v for k, v in overrides.items() if k in accepted}
    model = models.create_model(name, **overrides)
    assert models.describe(name, **overrides)["params"] == model.count_params()
    assert models.audit(model).total_params == summary_totals(model)["total"]


def test_list_models_patterns_and_exclude():
    assert ALL == sorted(ALL)
    deep = models.list_models("deep_mlp*")
    assert deep and all(n.startswith("deep_mlp") for n in deep)
    assert models.list_models("deep_mlp*", exclude="*_bn") == [n for n in deep if not n.endswith("_bn")]
    assert models.list_models("*", exclude=["deep_*", "residual_*"]) == [
        n for n in ALL if not n.startswith(("deep_", "residual_"))]
    assert models.list_models("no_such_*") == []


def test_unknown_name_suggests_closest():
    with pytest.raises(models.UnknownModelError, match="exam_mlp") as info:
        models.create_model("exam_mpl")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="Unknown model"):
        models.describe("lenet")


def test_unknown_override_is_named_with_accepted_list():
    with pytest.raises(models.ModelConfigError, match="'dept'") as info:
        models.create_model("deep_mlp", dept=3)
    message = str(info.value)
    assert "depth" in message and "width" in message and "Accepted" in message


@pytest.mark.parametrize("overrides, match", [
    (dict(depth=-1), "depth"),
    (dict(depth=0), "depth"),
    (dict(width=0), "width"),
    (dict(dropout=1.5), "dropout"),
    (dict(batch_norm="yes"), "batch_norm"),
    (dict(num_classes=0), "num_classes"),
    (dict(input_shape=(32, -1)), "input_shape"),
    (dict(activation="no_such_activation"), "no_such_activation"),
    (dict(activation=3), "activation"),
    (dict(initializer="not_an_init"), "initializer"),
])
def test_bad_values_raise_value_error(overrides, match):
    with pytest.raises(ValueError, match=match):
        models.create_model("deep_mlp", **overrides)


def test_bad_values_other_families():
    with pytest.raises(ValueError, match="input_shape"):
        models.create_model("lenet5", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="pooling"):
        models.create_model("lenet5", pooling="median")
    with pytest.raises(ValueError, match="hidden_units"):
        models.create_model("exam_mlp", hidden_units=(5, 0))
    with pytest.raises(ValueError, match="course_weights"):
        models.create_model("neuron_2in", course_weights=True, input_shape=(3,))
    with pytest.raises(ValueError, match="width"):
        models.create_model("residual_mlp", width=0)


def test_duplicate_registration_is_an_error():
    def exam_mlp(**overrides):  # same name as the registered builder
        raise AssertionError("must never be called")
    with pytest.raises(ValueError, match="already registered"):
        models.register_model(exam_mlp)
    assert models.describe("exam_mlp")["params"] == 16_295


def test_activation_layer_instance_is_accepted_and_cloned():
    import activations
    layer = activations.get("leaky_relu", negative_slope=0.2)
    model = models.create_model("deep_mlp_8x64", activation=layer)
    acts = [l for l in model.layers if type(l) is type(layer)]
    assert len(acts) == 8 and len({id(l) for l in acts}) == 8
    assert all(l.get_config()["negative_slope"] == pytest.approx(0.2) for l in acts)


def test_initializer_matches_activation():
    def kernel_init(name, **overrides):
        layer = models.create_model(name, **overrides).get_layer("hidden_1")
        return type(layer.kernel_initializer).__name__
    assert kernel_init("deep_mlp_8x64") == "HeNormal"
    assert kernel_init("deep_mlp_sigmoid_8x64") == "GlorotUniform"
    assert kernel_init("deep_mlp", activation="tanh") == "GlorotUniform"
    assert kernel_init("deep_mlp_selu_8x128") == "LecunNormal"
    assert kernel_init("deep_mlp", initializer="zeros") == "Zeros"


def test_selu_dropout_is_alpha_dropout_and_bn_drops_bias():
    import keras
    model = models.create_model("deep_mlp_selu_8x128", dropout=0.1)
    assert any(isinstance(l, keras.layers.AlphaDropout) for l in model.layers)
    bn = models.create_model("deep_mlp_16x32_bn").get_layer("hidden_1")
    assert bn.bias is None


def test_describe_reports_defaults_and_reference():
    info = models.describe("exam_mlp")
    assert info["input_shape"] == [32, 32, 1] and info["num_classes"] == 1000
    assert info["defaults"]["activation"] == "relu"
    assert info["defaults"]["output_activation"] == "softmax"
    assert info["description"] and info["reference"]
    for name in ALL:
        assert models.describe(name)["description"], name


def test_output_activation_none_gives_logits():
    model = models.create_model("exam_mlp", output_activation=None)
    x = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    logits = np.asarray(model(x))
    probs = np.asarray(built("exam_mlp")(x))
    assert not np.allclose(logits.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_residual_skips_are_identities():
    # With each block's second Dense zeroed, a block maps x -> x + 0 = x, so the
    # net reduces to stem -> relu -> head (relu of a relu output changes nothing);
    # the reference is computed with numpy from the stem and head weights.
    model = models.create_model("residual_mlp", depth=2, width=8, input_shape=(4,), num_classes=3)
    for i in (1, 2):
        layer = model.get_layer(f"block_{i}_dense_2")
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    w_s, b_s = model.get_layer("stem").get_weights()
    w_o, b_o = model.get_layer("output").get_weights()
    z = np.maximum(x @ w_s + b_s, 0) @ w_o + b_o
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-5, atol=1e-6)
    rows = {r.name: r for r in models.audit(model).rows}
    # Identity mappings: only the last sum is activated (before the head).
    assert rows["block_1_add"].activation is None and rows["block_2_add"].activation == "relu"


def test_every_model_card_names_a_decision_the_exporter_judges():
    """The card's decision is what an int8 artifact must agree with Keras on."""
    from export.validate import AGREEMENTS
    cards = {name: models.model_card(models.create_model(name)) for name in models.list_models()}
    decisions = {name: card["decision"] for name, card in cards.items()}
    assert set(decisions.values()) <= set(AGREEMENTS)
    assert decisions["som"] == "argmin" and decisions["hopfield"] == "sign"
    assert decisions["rbm"] == "bits" and decisions["exam_mlp"] == "argmax"
    # a model with classes decides by argmax over exactly that many outputs
    for name, card in cards.items():
        if card["classes"] is not None:
            assert card["decision"] == "argmax", name
            width = models.create_model(name).outputs[0].shape[-1]
            assert card["classes"]["count"] == width or (width == 1 and card["classes"]["count"] == 2), name
