"""Values, dtypes and gradients of every registered activation against the
independent NumPy/SciPy reference in tests/_activations_helpers.py."""
import numpy as np
import pytest
import tensorflow as tf

import activations
from _activations_helpers import REFERENCE, softmax_vjp

NAMES = activations.list_activations()
EDGES = [0.0, 1e-7, -1e-7, 1e4, -1e4, 1000.0, -1000.0]
# Rows of 4 so that softmax (axis -1 or 1) sees small, meaningful vectors.
GRID = np.concatenate([np.linspace(-30, 30, 6000), EDGES, [0.0]]).astype(np.float32)
GRID = GRID.reshape(-1, 4)


def _cases():
    """(name, params) for every activation: defaults and its non-default variant."""
    for name in NAMES:
        ref = REFERENCE.get(name)
        yield pytest.param(name, {}, id=f"{name}-default")
        if ref is not None and ref.params:
            yield pytest.param(name, ref.params, id=f"{name}-params")


def _ref_value(name, x64, params):
    return REFERENCE[name].f(x64, **params)


def test_every_registered_activation_has_a_reference():
    missing = sorted(set(NAMES) - set(REFERENCE))
    assert not missing, f"add these to tests/_activations_helpers.py REFERENCE: {missing}"
    assert len(NAMES) >= 24


@pytest.mark.parametrize("name,params", list(_cases()))
def test_float32_values_match_reference(name, params):
    layer = activations.get(name, **params)
    got = np.asarray(layer(GRID, training=False), dtype=np.float64)
    want = _ref_value(name, GRID.astype(np.float64), params)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # The functional form computes the same thing as the layer.
    if name != "prelu":  # prelu's functional form takes the weight tensor itself
        fn_params = {k: v for k, v in params.items() if k not in ("trainable_beta", "seed")}
        got_fn = np.asarray(activations.get_function(name)(GRID, **fn_params), np.float64)
        np.testing.assert_allclose(got_fn, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_infinities_where_defined(name):
    points = REFERENCE[name].inf
    if not points:
        pytest.skip(f"{name} is not evaluated at +-inf (reason in tests/_activations_helpers.py)")
    x = np.array([points], dtype=np.float32)
    got = np.asarray(activations.get(name)(x), dtype=np.float64)
    np.testing.assert_allclose(got, REFERENCE[name].f(x.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("name,x,want", [
    ("softplus", 1000.0, 1000.0),
    ("softplus", -1000.0, 0.0),
    ("sigmoid", -1000.0, 0.0),
    ("sigmoid", 1000.0, 1.0),
    ("log_sigmoid", -1000.0, -1000.0),
    ("log_sigmoid", 1000.0, 0.0),
    ("mish", 1000.0, 1000.0),
    ("mish", -1000.0, 0.0),
    ("sinc", 0.0, 1.0),
])
def test_extremes_are_finite_and_exact(name, x, want):
    got = np.asarray(activations.get(name)(np.array([[x]], np.float32)))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, [[want]], atol=1e-6)


def test_softmax_of_huge_logits_is_finite():
    got = np.asarray(activations.get("softmax")(np.array([[1000.0, 0.0]], np.float32)))
    np.testing.assert_array_equal(got, [[1.0, 0.0]])


@pytest.mark.parametrize("logits,want,decimals", [
    ([8, 5, 0], [0.9523, 0.0474, 0.0003], 4),
    ([1.2, 0.9, 0.75], [0.42, 0.31, 0.27], 2),
    ([0.25, 1.23, -0.8], [0.249, 0.664, 0.087], 3),
])
def test_course_softmax_examples(logits, want, decimals):
    got = np.asarray(activations.get("softmax")(np.array([logits], np.float32)))[0]
    np.testing.assert_array_equal(np.round(got.astype(np.float64), decimals), want)


# Tolerances a few units in the last place of each format (float16 eps ~1e-3,
# bfloat16 eps ~8e-3); the reference is evaluated at the already-rounded input.
LOW_PRECISION = {"float16": ("float16", 4e-3), "bfloat16": ("bfloat16", 3e-2),
                 "float64": ("float64", 1e-9), "mixed_float16": ("float16", 4e-3)}


@pytest.mark.parametrize("policy", list(LOW_PRECISION))
@pytest.mark.parametrize("name,params", list(_cases()))
def test_other_dtypes_follow_the_policy_and_match(name, params, policy):
    compute, tol = LOW_PRECISION[policy]
    layer = activations.get(name, dtype=policy, **params)
    x = tf.cast(GRID, compute)
    y = layer(x, training=False)
    assert y.dtype == compute
    got = np.asarray(tf.cast(y, tf.float64))
    x64 = np.asarray(tf.cast(x, tf.float64))
    want = _ref_value(name, x64, params)
    finite = np.isfinite(want)
    assert np.isfinite(got[finite]).all(), f"{name} overflowed in {policy}"
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("name", [n for n in NAMES if n != "prelu"])
def test_functional_form_keeps_the_input_dtype(name, dtype):
    y = activations.get_function(name)(tf.constant(GRID[:4], dtype))
    assert y.dtype == dtype


def _grad(layer, x, upstream):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(upstream * layer(x, training=False))
    return np.asarray(tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO),
                      dtype=np.float64)


@pytest.mark.parametrize("name,params", list(_cases()))
def test_gradient_matches_analytic_derivative(name, params):
    ref = REFERENCE[name]
    layer = activations.get(name, **params)
    x64 = GRID.astype(np.float64)
    upstream = np.random.default_rng(0).uniform(-1, 1, GRID.shape).astype(np.float32)
    got = _grad(layer, GRID, upstream if not ref.elementwise else np.ones_like(GRID))
    assert np.isfinite(got).all(), f"non-finite gradient of {name}"
    if ref.elementwise:
        want = ref.df(x64, **params)
    else:
        want = softmax_vjp(x64, upstream.astype(np.float64), axis=params.get("axis", -1))
    away = np.ones(GRID.shape, bool)
    for k in ref.kinks(**params):
        away &= np.abs(x64 - k) > 1e-3
    np.testing.assert_allclose(got[away], want[away], rtol=1e-5, atol=1e-5)


def test_sinc_gradient_at_zero_is_finite_and_zero():
    for normalized in (False, True):
        g = _grad(activations.get("sinc", normalized=normalized),
                  np.array([[0.0, 1e-7, -1e-7]], np.float32), 1.0)
        np.testing.assert_allclose(g, 0.0, atol=1e-6)


def test_rrelu_training_samples_slopes_within_bounds():
    layer = activations.get("rrelu", lower=0.1, upper=0.3, seed=1)
    x = -np.ones((64, 64), np.float32)
    slopes1 = -np.asarray(layer(x, training=True))
    slopes2 = -np.asarray(layer(x, training=True))
    for s in (slopes1, slopes2):
        assert s.min() >= 0.1 and s.max() <= 0.3
        assert s.std() > 0.04  # U(0.1, 0.3) has std 0.058: per element, not one slope
    assert not np.array_equal(slopes1, slopes2)  # a fresh draw every step
    positive = np.abs(x)
    np.testing.assert_array_equal(np.asarray(layer(positive, training=True)), positive)


def test_rrelu_inference_uses_the_mean_slope_exactly():
    layer = activations.get("rrelu", lower=0.1, upper=0.3)
    x = np.linspace(-5, 5, 101, dtype=np.float32)[None]
    want = np.where(x >= 0, x, np.float32(0.2) * x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), want)
    np.testing.assert_array_equal(np.asarray(layer(x)), want)  # inference by default


def test_prelu_alpha_is_trainable_and_shared():
    layer = activations.get("prelu", shared_axes=[1, 2])
    layer.build((None, 5, 5, 3))
    assert tuple(layer.alpha.shape) == (1, 1, 3)
    np.testing.assert_array_equal(layer.alpha.numpy(), 0.25)
    assert [w.name for w in layer.trainable_weights] == ["alpha"]


def test_swish_beta_is_a_weight_only_when_trainable():
    assert not activations.get("swish", beta=2.0).weights
    layer = activations.get("swish", beta=2.0, trainable_beta=True)
    layer(np.zeros((1, 2), np.float32))
    assert [float(w.numpy()) for w in layer.trainable_weights] == [2.0]
