"""Memory nets (Hopfield, BAM, BSB) against references the code did not produce: the
papers' formulas written out in numpy, a published BAM worked example, and the
behaviours the papers prove (recall below capacity, energy descent)."""
import warnings

import keras
import numpy as np
import pytest

import models
from models.__main__ import main as models_cli
from models.hopfield import CapacityWarning
from utils.cli import run_cli


def _patterns(rng, count, units):
    return np.where(rng.random((count, units)) < 0.5, -1.0, 1.0).astype(np.float32)


def _flip(rng, p, fraction):
    out = p.copy()
    for row in out:  # exactly `fraction` of each row's bits flipped
        row[rng.choice(len(row), int(round(fraction * len(row))), replace=False)] *= -1
    return out


# --- Hopfield (1982) -------------------------------------------------------------------

def _async_reference(w, s, sweeps):
    """Hopfield's asynchronous rule in the plainest numpy: unit i = 0..N-1 in turn."""
    s = s.astype(np.float64).copy()
    for _ in range(sweeps):
        for i in range(len(s)):
            h = w[i] @ s
            s[i] = 1.0 if h > 0 else -1.0 if h < 0 else (1.0 if s[i] > 0 else -1.0)
    return s


def test_hopfield_stores_by_hebb_and_recalls_from_20_percent_flipped_bits():
    rng = np.random.default_rng(0)
    p = _patterns(rng, 6, 100)                      # 6 < 0.138 * 100
    model = models.create_model("hopfield", units=100)
    history = models.learn(model, p)
    w = p.T.astype(np.float64) @ p                  # W = sum p p^T, zero diagonal, no 1/N
    np.fill_diagonal(w, 0)
    np.testing.assert_array_equal(model.memory.kernel.numpy(), w)
    assert history["stable_fraction"] == [1.0]
    noisy = _flip(rng, p, 0.2)
    recalled = np.asarray(model(noisy))
    np.testing.assert_array_equal(recalled, p)
    for start, out in zip(noisy[:2], recalled[:2]):  # the fixed unit order, step by step
        np.testing.assert_array_equal(out, _async_reference(w, start, 5))
    # Binary 0/1 patterns are the same memories (0 -> -1).
    binary = models.create_model("hopfield", units=100)
    models.learn(binary, (p + 1) / 2)
    np.testing.assert_array_equal(binary.memory.kernel.numpy(), w)
    np.testing.assert_array_equal(np.asarray(binary((noisy + 1) / 2)), p)


def test_async_recall_never_increases_energy():
    rng = np.random.default_rng(1)
    p = _patterns(rng, 20, 64)                      # far over capacity: long, rough descents
    model = models.create_model("hopfield", units=64, steps=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CapacityWarning)
        models.learn(model, p)
    w = model.memory.kernel.numpy().astype(np.float64)
    starts = _patterns(rng, 30, 64)
    trace = model.recall_trace(starts)              # state after each sweep
    energy = np.stack([-0.5 * np.einsum("bi,ij,bj->b", s, w, s) for s in trace])
    assert np.all(np.diff(energy, axis=0) <= 1e-9)
    assert np.any(np.diff(energy, axis=0) < 0)
    np.testing.assert_allclose(model.energy(trace[-1]), energy[-1])
    # Single unit updates inside the first sweep, through the numpy reference rule.
    s = starts[0].astype(np.float64)
    before = -0.5 * s @ w @ s
    for i in range(64):
        h = w[i] @ s
        s[i] = 1.0 if h > 0 else -1.0 if h < 0 else s[i]
        after = -0.5 * s @ w @ s
        assert after <= before + 1e-9
        before = after
    np.testing.assert_array_equal(trace[1][0], s)


def test_capacity_warning_names_0_138_n():
    rng = np.random.default_rng(2)
    model = models.create_model("hopfield", units=50)
    with pytest.warns(CapacityWarning, match=r"0\.138 N = 6\.9 patterns"):
        models.learn(model, _patterns(rng, 7, 50))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CapacityWarning)
        models.learn(model, _patterns(rng, 6, 50))


def test_sync_mode_is_one_matrix_step_per_step():
    rng = np.random.default_rng(3)
    p = _patterns(rng, 3, 32)
    model = models.create_model("hopfield", units=32, mode="sync", steps=1)
    models.learn(model, p)
    s = _patterns(rng, 5, 32)
    h = s @ model.memory.kernel.numpy()
    np.testing.assert_array_equal(np.asarray(model(s)), np.where(h > 0, 1, np.where(h < 0, -1, s)))


def test_hopfield_audit_shows_stored_and_independent_counts():
    model = models.create_model("hopfield")          # 64 units
    row = next(r for r in models.audit(model).rows if r.name == "hopfield")
    assert row.formula == "(64 x 64) = 4,096" and row.params == 4096 == model.count_params()
    assert "64 x 63 / 2 = 2,016 independent" in row.note
    bsb_row = next(r for r in models.audit(models.create_model("bsb")).rows if r.name == "bsb")
    assert bsb_row.params == 4096 and "2,080 independent" in bsb_row.note   # 64 * 65 / 2
    assert bsb_row.activation == "hard_tanh"
    # Hopfield's and BAM's units are bipolar thresholds: the audit names sign, and that
    # function applied to the field is the recall wherever no field is exactly zero.
    for name in ("hopfield", "bam"):
        memory = models.create_model(name)
        layer_row = next(r for r in models.audit(memory).rows if r.name == name)
        assert layer_row.activation == "sign", (name, layer_row.activation)
    rng = np.random.default_rng(4)
    sync = models.create_model("hopfield", units=32, mode="sync", steps=1)
    # zero diagonal: field_i = sum_p p_i (p.s - p_i s_i), each term odd for 32 units,
    # so 3 patterns give an odd sum: never zero
    models.learn(sync, _patterns(rng, 3, 32))
    s = _patterns(rng, 6, 32)
    h = s @ sync.memory.kernel.numpy()
    assert np.all(h != 0)
    np.testing.assert_array_equal(np.asarray(sync.memory.activation(h)), np.asarray(sync(s)))


# --- BAM (Kosko 1988) -----------------------------------------------------------------

# The worked example of Wikipedia's "Bidirectional associative memory" article (also
# the test case of several public BAM implementations): binary pairs, their matrix,
# and A1 M = (4, 2, -2, -4) -> B1.
A = np.array([[1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0]], np.float32)
B = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], np.float32)
M = np.array([[2, 0, 0, -2], [0, -2, 2, 0], [2, 0, 0, -2],
              [-2, 0, 0, 2], [0, 2, -2, 0], [-2, 0, 0, 2]], np.float32)


def test_bam_worked_example_both_directions_from_half_erased_inputs():
    model = models.create_model("bam", input_units=6, output_units=4)
    history = models.learn(model, A, B)
    np.testing.assert_array_equal(model.memory.kernel.numpy(), M)
    np.testing.assert_array_equal(A[0] @ M, [4, 2, -2, -4])
    assert history["forward_recall"] == [1.0] and history["backward_recall"] == [1.0]
    x, y = 2 * A - 1, 2 * B - 1
    np.testing.assert_array_equal(np.asarray(model(A)), y)          # binary in, bipolar out
    np.testing.assert_array_equal(model.backward(B), x)
    for half in (slice(0, 3), slice(3, 6)):                          # 0 = erased (unknown)
        erased = x.copy()
        erased[:, half] = 0
        np.testing.assert_array_equal(np.asarray(model(erased)), y)
    for half in (slice(0, 2), slice(2, 4)):
        erased = y.copy()
        erased[:, half] = 0
        np.testing.assert_array_equal(model.backward(erased), x)
    np.testing.assert_allclose(model.energy(x, y), -0.5 * np.einsum("bi,ij,bj->b", x, M, y))


def test_bam_recalls_random_pairs_from_half_erased_inputs():
    rng = np.random.default_rng(4)
    x, y = _patterns(rng, 3, 120), _patterns(rng, 3, 60)
    model = models.create_model("bam", input_units=120, output_units=60)
    models.learn(model, x, y)
    np.testing.assert_array_equal(model.memory.kernel.numpy(), x.T @ y)
    ex, ey = x.copy(), y.copy()
    for row in ex:
        row[rng.choice(120, 60, replace=False)] = 0
    for row in ey:
        row[rng.choice(60, 30, replace=False)] = 0
    np.testing.assert_array_equal(np.asarray(model(ex)), y)
    np.testing.assert_array_equal(model.backward(ey), x)


# --- BSB (Anderson et al. 1977) -------------------------------------------------------

def test_bsb_converges_to_the_stored_corner_from_noisy_starts():
    rng = np.random.default_rng(5)
    p = _patterns(rng, 4, 64)
    model = models.create_model("bsb", units=64)     # feedback 0.5, 20 steps
    models.learn(model, p)
    w = p.T.astype(np.float64) @ p / 64
    np.testing.assert_allclose(model.memory.kernel.numpy(), w, rtol=1e-6)
    target = np.repeat(p, 10, axis=0)
    starts = np.clip(0.5 * target + rng.normal(0, 0.5, target.shape), -1, 1).astype(np.float32)
    assert np.mean(np.sign(starts) != target) > 0.1  # really noisy: >10% wrong signs
    final = np.asarray(model(starts))
    assert np.mean(np.all(final == target, axis=1)) >= 0.9
    x = starts.astype(np.float64)                     # Anderson's update written out
    for _ in range(20):
        x = np.clip(x + 0.5 * x @ w, -1, 1)
    np.testing.assert_allclose(final, x, atol=1e-5)
    energy = np.stack([model.energy(s) for s in model.recall_trace(starts)])
    assert np.all(np.diff(energy, axis=0) <= 1e-4)   # Golden (1986): W is PSD


# --- every memory net: saving, export, errors -------------------------------------------

def test_trained_memories_reload_with_safe_mode_and_no_custom_objects(tmp_path):
    rng = np.random.default_rng(6)
    p = _patterns(rng, 3, 64)
    for name, args in (("hopfield", (p,)), ("bsb", (p,)), ("bam", (p[:, :16], p[:, 16:32]))):
        model = models.create_model(name)
        models.learn(model, *args)
        model.save(tmp_path / f"{name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
        x = _flip(rng, p, 0.1)[:, :loaded.inputs[0].shape[1]]
        np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


@pytest.mark.slow
def test_trained_hopfield_exports_and_every_runtime_recalls(tmp_path):
    import export
    from tests._export_helpers import run_raw

    rng = np.random.default_rng(7)
    p = _patterns(rng, 4, 64)
    model = models.create_model("hopfield")
    models.learn(model, p)
    manifest = export.export_model(model, tmp_path / "out")
    noisy = _flip(rng, p, 0.2)
    for art in manifest["artifacts"]:
        assert art["validation"]["passed"]
        (got,) = run_raw(tmp_path / "out" / art["path"], noisy)
        np.testing.assert_array_equal(got, p, err_msg=art["format"])
    assert manifest["artifacts"][-1]["uses_flex"] is False


@pytest.mark.parametrize("name, overrides, match", [
    ("hopfield", dict(mode="fast"), "mode must be one of 'async', 'sync'"),
    ("hopfield", dict(steps=0), "steps must be an integer >= 1"),
    ("hopfield", dict(units=10, input_shape=(12,)), "units=10 contradicts input_shape"),
    ("bsb", dict(feedback=0), r"feedback must be a number in \(0.0"),
    ("bam", dict(output_units=0), "output_units must be an integer >= 1"),
])
def test_bad_configs_are_model_config_errors(name, overrides, match):
    with pytest.raises(models.ModelConfigError, match=match):
        models.create_model(name, **overrides)


def test_bad_patterns_are_learning_rule_errors():
    hop = models.create_model("hopfield", units=16)
    with pytest.raises(models.LearningRuleError, match=r"bipolar \(\+1/-1\) or binary.*0\.5"):
        models.learn(hop, np.full((2, 16), 0.5))
    with pytest.raises(models.LearningRuleError, match=r"\[n_patterns, 16\].*\(2, 10\)"):
        models.learn(hop, np.ones((2, 10)))
    bam = models.create_model("bam", input_units=6, output_units=4)
    with pytest.raises(models.LearningRuleError, match="same number of rows.*2 x rows, 1 y rows"):
        models.learn(bam, A, B[:1])
    with pytest.raises(models.LearningRuleError, match="supervised"):
        models.learn(bam, A)
    with pytest.raises(models.LearningRuleError, match=r"y must be \[n, 4\]"):
        bam.backward(np.ones((1, 5)))
    assert models.create_model("hopfield", units=10).inputs[0].shape[1] == 10  # units alone


def test_cli_bad_memory_config_is_one_line_exit_2(capsys):
    code = run_cli(models_cli, ["summary", "hopfield", "--set", "mode=fast"], prog="python -m models")
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "mode must be one of" in err


def test_train_py_hooks_store_class_prototypes_and_plot_the_energy(tmp_path):
    from sklearn.datasets import load_digits
    digits = load_digits()
    # Images as train.py hands them over: [n, rows, cols, 1] in [0, 1].
    x, y = (digits.data / 16.0).astype(np.float32).reshape(-1, 8, 8, 1), digits.target
    for name in ("hopfield", "bsb", "bam"):
        model = models.create_model(name, input_shape=(8, 8, 1))
        px, py = model.prepare_training_data(x[:1000], y[:1000])
        means = np.stack([x[:1000][y[:1000] == c].mean(0).ravel() for c in range(10)])
        centre = x[:1000].reshape(1000, 64).mean(0)   # brighter than the average digit
        np.testing.assert_array_equal(px, np.where(means > centre, 1, -1))   # one per class
        if name == "bam":   # codes: rows 1..10 of the 16 x 16 Sylvester-Hadamard matrix
            import scipy.linalg
            np.testing.assert_array_equal(py, scipy.linalg.hadamard(16)[1:11])
            assert np.all(py @ py.T == 16 * np.eye(10))
        with warnings.catch_warnings():  # 10 digit prototypes in 64 units: over 0.138 N
            warnings.simplefilter("ignore", CapacityWarning)
            models.learn(model, px, py)
        scores = model.evaluate_rule(x[1000:1300], y[1000:1300])
        assert 0.1 < scores["recall_accuracy"] <= 1.0, (name, scores)   # chance is 0.1
        if name != "bam":
            paths = model.learning_plots(x[1000:], y[1000:], {}, tmp_path / name)
            assert sorted(paths) == ["energy", "recall"]
            assert all(p.stat().st_size > 1000 for p in paths.values())
