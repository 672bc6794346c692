"""Competitive nets (ART1, SOM, LVQ) against references the code did not produce:
Fausett's worked ART1 example, minisom trained side by side, scikit-learn's iris,
and numpy written from the papers' formulas."""
import keras
import numpy as np
import pytest

import models
from models.__main__ import main as models_cli
from utils.cli import run_cli


@pytest.fixture(scope="module")
def sk_digits():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


# --- ART1 (Carpenter & Grossberg 1987) --------------------------------------------------

def test_art1_reproduces_fausett_example_5_2():
    # L. Fausett, Fundamentals of Neural Networks (1994), Example 5.2: n = 4, m = 3,
    # vigilance 0.4, L = 2, b(0) = 1/(1+n) = 0.2, t(0) = 1; four vectors in this order.
    x = np.array([[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 1]], np.float32)
    model = models.create_model("art1", input_shape=(4,), max_categories=3, vigilance=0.4)
    history = models.learn(model, x, epochs=2, shuffle=False)
    # The book's weights after the epoch: cluster 1 holds (1,0,0,0), cluster 2
    # (0,0,0,1), cluster 3 is still uncommitted.
    np.testing.assert_allclose(model.categories.bottom_up.numpy(),
                               [[1, 0, .2], [0, 0, .2], [0, 0, .2], [0, 1, .2]], atol=1e-7)
    np.testing.assert_array_equal(model.categories.top_down.numpy(),
                                  [[1, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]])
    assert history["categories"] == [2, 2] and history["changed"][1] == 0
    np.testing.assert_array_equal(model.categorize(x), [0, 1, 0, 1])
    # Scores: y_j = s . b_j where vigilance passes, -1 where it resets the unit.
    np.testing.assert_allclose(np.asarray(model(x)),
                               [[1, -1, .4], [-1, 1, .2], [1, -1, .2], [-1, 1, .4]], atol=1e-6)
    # The first presentation, as Fausett traces it: all y = 0.4, unit 1 wins,
    # b_1 = 2/(1+2) (1,1,0,0).
    first = models.create_model("art1", input_shape=(4,), max_categories=3, vigilance=0.4)
    models.learn(first, x[:1], epochs=1, shuffle=False)
    np.testing.assert_allclose(first.categories.bottom_up.numpy()[:, 0], [2 / 3, 2 / 3, 0, 0],
                               rtol=1e-6)


def test_art1_categories_grow_with_vigilance(sk_digits):
    x = (sk_digits[0][:300] > 0.5).astype(np.float32)
    counts = []
    for vigilance in (0.2, 0.4, 0.6, 0.8):
        model = models.create_model("art1", max_categories=300, vigilance=vigilance)
        models.learn(model, x, epochs=3, seed=0)
        counts.append(model.committed())
    assert counts == sorted(counts) and counts[0] < counts[-1], counts


def test_art1_vigilance_1_gives_every_distinct_pattern_its_own_category():
    rng = np.random.default_rng(0)
    x = (rng.random((14, 20)) < 0.4).astype(np.float32)
    x[1] = x[0] * (rng.random(20) < 0.6)                 # subsets: the hard case for ART1
    x[2] = x[1] * (rng.random(20) < 0.6)
    x = np.unique(x[x.sum(1) > 0], axis=0)
    model = models.create_model("art1", input_shape=(20,), max_categories=40, vigilance=1.0)
    history = models.learn(model, x, epochs=8, seed=3)
    assert history["changed"][-1] == 0                    # learning has settled
    chosen = model.categorize(x)
    assert len(set(chosen.tolist())) == len(x) and (chosen >= 0).all()
    np.testing.assert_array_equal(model.categories.top_down.numpy()[chosen], x)


def test_art1_same_seed_same_weights():
    x = (np.random.default_rng(1).random((40, 16)) < 0.5).astype(np.float32)
    runs = []
    for _ in range(2):
        model = models.create_model("art1", input_shape=(16,), vigilance=0.6)
        models.learn(model, x, epochs=3, seed=7)
        runs.append([w.numpy() for w in model.weights])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# --- SOM (Kohonen 1982, 1990) ----------------------------------------------------------

def test_som_matches_minisom_on_uniform_2d_data():
    minisom = pytest.importorskip("minisom", reason="minisom is a reference-only extra "
                                  "(pip install minisom==2.3.6)")
    data = np.random.default_rng(0).random((1000, 2)).astype(np.float32)
    model = models.create_model("som")               # 10 x 10, sigma 5 -> 0.3, rate 0.5
    start = model.map.prototypes.numpy().astype(np.float64).reshape(10, 10, 2)
    models.learn(model, data, epochs=10, seed=0)     # 10,000 updates
    ref = minisom.MiniSom(10, 10, 2, sigma=1.0, learning_rate=0.5, random_seed=0)
    ref._weights = start.copy()                       # same start, same budget
    ref.train(data, 10_000, random_order=True)
    ours = minisom.MiniSom(10, 10, 2)
    ours._weights = model.map.prototypes.numpy().astype(np.float64).reshape(10, 10, 2)
    qe, te = ours.quantization_error(data), ours.topographic_error(data)
    assert qe <= 1.2 * ref.quantization_error(data)
    assert te <= ref.topographic_error(data) + 0.1
    # Our own metrics are minisom's definitions.
    assert model.quantization_error(data) == pytest.approx(qe, rel=1e-6)
    assert model.topographic_error(data) == pytest.approx(te, abs=1e-9)


def test_som_call_is_distances_in_row_major_grid_order():
    model = models.create_model("som", grid=(3, 4), input_shape=(5,))
    w = np.random.default_rng(2).random((12, 5)).astype(np.float32)
    model.map.prototypes.assign(w)
    x = np.random.default_rng(3).random((6, 5)).astype(np.float32)
    expected = np.sqrt(((x[:, None, :].astype(np.float64) - w[None]) ** 2).sum(-1))
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6)
    np.testing.assert_array_equal(model.positions()[5], [1, 1])      # unit 5 = row 1, col 1
    np.testing.assert_allclose(np.asarray(model(w[7:8]))[0, 7], 0, atol=1e-6)


@pytest.mark.slow
def test_som_on_the_embedded_digits_makes_a_readable_map(tmp_path):
    import data
    bundle = data.load_dataset("digits", limit=2000)
    x, y = bundle.as_numpy("train")
    xt, yt = bundle.as_numpy("test")
    pick = np.random.default_rng(0).permutation(len(x))[:1500]
    model = models.create_model("som", input_shape=x.shape[1:])
    history = models.learn(model, x[pick], epochs=3)
    bmu = np.asarray(model.predict(x[pick], verbose=0)).argmin(1)
    unit_label = np.array([np.bincount(y[pick][bmu == u], minlength=10).argmax()
                           for u in range(100)])
    # Readable: a unit's prototype is a digit of one class (its label names held-out
    # digits well above chance) and neighbours mostly show the same digit.
    test_bmu = np.asarray(model.predict(xt, verbose=0)).argmin(1)
    assert np.mean(unit_label[test_bmu] == yt) > 0.6
    grid = unit_label.reshape(10, 10)
    same = np.concatenate([(grid[:, 1:] == grid[:, :-1]).ravel(), (grid[1:] == grid[:-1]).ravel()])
    assert same.mean() > 0.4                           # chance: about 0.1
    assert history["quantization_error"][-1] < history["quantization_error"][0]
    paths = model.learning_plots(xt, yt, history, tmp_path)
    assert sorted(paths) == ["som_prototypes", "u_matrix"]
    assert all(p.stat().st_size > 1000 for p in paths.values())


def test_som_same_seed_same_map():
    data = np.random.default_rng(4).random((200, 3)).astype(np.float32)
    maps = []
    for _ in range(2):
        model = models.create_model("som", grid=(4, 4), input_shape=(3,))
        models.learn(model, data, epochs=2, seed=5)
        maps.append(model.map.prototypes.numpy())
    np.testing.assert_array_equal(*maps)


# --- LVQ1 (Kohonen) --------------------------------------------------------------------

def test_lvq_iris_5_fold_cv_at_least_0_92_with_3_prototypes_per_class():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import StratifiedKFold
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    scores = []
    for fold, (train, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0)
                                         .split(x, y)):
        model = models.create_model("lvq", input_shape=(4,), num_classes=3, prototypes_per_class=3)
        models.learn(model, x[train], y[train], seed=fold)
        scores.append(np.mean(np.asarray(model(x[test])).argmax(1) == y[test]))
    assert np.mean(scores) >= 0.92, scores


def test_lvq_scores_are_minus_the_nearest_prototype_distance_per_class():
    model = models.create_model("lvq", input_shape=(2,), num_classes=2, prototypes_per_class=2)
    w = np.array([[0, 0], [5, 5], [1, 0], [9, 9]], np.float32)   # classes 0, 0, 1, 1
    model.codebook.prototypes.assign(w)
    x = np.array([[0.2, 0], [0.9, 0.1], [8, 8]], np.float32)
    d = np.sqrt(((x[:, None] - w[None]) ** 2).sum(-1))
    np.testing.assert_allclose(np.asarray(model(x)), -np.stack([d[:, :2].min(1), d[:, 2:].min(1)], 1),
                               rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(model(x)).argmax(1), [0, 1, 1])


# --- every competitive net: saving, export, errors ---------------------------------------

def test_trained_nets_reload_with_safe_mode_and_export(tmp_path, sk_digits):
    import export
    from tests._export_helpers import run_raw

    x, y = sk_digits
    trained = {}
    for name, args, kwargs in (("art1", ((x[:100] > 0.5).astype(np.float32),), {"epochs": 2}),
                               ("som", (x[:100],), {"epochs": 1}),
                               ("lvq", (x[:100], y[:100]), {"epochs": 2})):
        model = models.create_model(name, input_shape=(64,), **(
            {"num_classes": 10} if name == "lvq" else {}))
        models.learn(model, *args, **kwargs)
        model.save(tmp_path / f"{name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        np.testing.assert_array_equal(np.asarray(loaded(x[100:110])), np.asarray(model(x[100:110])))
        trained[name] = model
    manifest = export.export_model(trained["art1"], tmp_path / "art1", formats=["tflite"])
    (got,) = run_raw(tmp_path / "art1" / manifest["artifacts"][0]["path"], x[100:140])
    np.testing.assert_allclose(got, np.asarray(trained["art1"](x[100:140])), atol=1e-6)


@pytest.mark.parametrize("name, overrides, match", [
    ("art1", dict(vigilance=1.5), r"vigilance must be a number in \[0.0, 1.0\]"),
    ("art1", dict(vigilance=-0.1), "vigilance must be"),
    ("art1", dict(L=1), "L must be"),
    ("som", dict(grid=(0, 5)), r"grid must be \(rows, cols\)"),
    ("som", dict(grid=()), "grid must be"),
    ("som", dict(grid=(3,)), "grid must be"),
    ("som", dict(sigma=0), "sigma must be"),
    ("lvq", dict(prototypes_per_class=0), "prototypes_per_class must be"),
])
def test_bad_configs_are_model_config_errors(name, overrides, match):
    with pytest.raises(models.ModelConfigError, match=match):
        models.create_model(name, **overrides)


def test_bad_data_are_learning_rule_errors():
    art = models.create_model("art1", input_shape=(4,))
    with pytest.raises(models.LearningRuleError, match="binary patterns"):
        models.learn(art, np.full((2, 4), 0.5))
    with pytest.raises(models.LearningRuleError, match="row 1 is all zeros"):
        models.learn(art, np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(models.LearningRuleError, match=r"shape \[n, 4\]"):
        models.learn(art, np.ones((2, 5)))
    lvq = models.create_model("lvq", input_shape=(4,), num_classes=3)
    with pytest.raises(models.LearningRuleError, match="supervised: pass the labels"):
        models.learn(lvq, np.ones((6, 4)))
    with pytest.raises(models.LearningRuleError, match=r"labels must be integers in 0\.\.2"):
        models.learn(lvq, np.ones((2, 4)), np.array([0, 3]))
    with pytest.raises(models.LearningRuleError, match="sigma must be a number > 0"):
        models.learn(models.create_model("som"), np.ones((3, 2)), sigma=-1.0)


def test_cli_bad_vigilance_is_one_line_exit_2(capsys):
    code = run_cli(models_cli, ["audit", "art1", "--set", "vigilance=1.5"], prog="python -m models")
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "vigilance" in err


def test_train_py_hooks_score_and_plot(tmp_path, sk_digits):
    x, y = sk_digits[0].reshape(-1, 8, 8, 1), sk_digits[1]   # images, as train.py has them
    art = models.create_model("art1", input_shape=(8, 8, 1), max_categories=40, vigilance=0.5)
    bits, labels = art.prepare_training_data(x[:500], y[:500])
    np.testing.assert_array_equal(bits, x[:500].reshape(500, 64) > 0.5)
    models.learn(art, bits, epochs=2)
    scores = art.evaluate_rule(x[500:800], y[500:800])
    assert scores["categories"] == art.committed() > 1 and 0.1 < scores["purity"] <= 1
    assert sorted(art.learning_plots(x[500:], y[500:], {}, tmp_path)) == ["categories"]
    som = models.create_model("som", input_shape=(8, 8, 1), grid=(5, 5))
    models.learn(som, x[:500], epochs=2)
    assert som.evaluate_rule(x[500:800], y[500:800]) == {
        "quantization_error": som.quantization_error(x[500:800]),
        "topographic_error": som.topographic_error(x[500:800])}
    lvq = models.create_model("lvq", input_shape=(8, 8, 1), num_classes=10)
    models.learn(lvq, x[:500], y[:500], epochs=5)
    assert sorted(lvq.learning_plots(x, y, {}, tmp_path)) == ["lvq_prototypes"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["categories.png", "lvq_prototypes.png"]
