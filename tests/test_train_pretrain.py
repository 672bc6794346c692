"""train.py --pretrain rbm (layer-wise RBM pre-training) and --compare-remedies."""
import json

import numpy as np
import pytest

from _train_helpers import error_lines, small_config


def _cli(argv, capsys):
    import train
    from utils.cli import run_cli

    code = run_cli(train.main, [str(a) for a in argv], prog="train.py")
    return code, *capsys.readouterr()


BAD = {
    "unknown_method": (["--pretrain", "rmb"], "Unknown pre-training 'rmb'; choose one of rbm"),
    "convolutional": (["--pretrain", "rbm", "--model", "lenet5"], "'lenet5' does not qualify: "
                      "it holds conv_1 (Conv2D)"),
    "residual": (["--pretrain", "rbm", "--model", "residual_mlp"], "block_1_add (Add)"),
    "rule_model": (["--pretrain", "rbm", "--model", "som"], "learns by its own rule 'som'"),
    "remedies_with_model": (["--compare-remedies", "--model", "deep_mlp"],
                            "--compare-remedies picks the models itself"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_pretrain_input_is_one_line_and_loses_nothing(case, tmp_path, capsys):
    args, expected = BAD[case]
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")       # an earlier run that --overwrite would replace
    (run / "model.keras").write_text("precious")
    code, _, err = _cli([*args, "--out", run, "--overwrite", "--limit", 320], capsys)
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1 and expected in lines[0], err[-600:]
    assert (run / "model.keras").read_text() == "precious"


def test_each_level_is_an_rbm_on_the_level_below(tmp_path):
    import keras
    from sklearn.datasets import load_digits

    import models
    from training.pretrain import RBM_SETTINGS, pretrain

    x = (load_digits().data[:200] / 16.0).astype(np.float32)
    keras.utils.set_random_seed(1)
    model = models.create_model("deep_mlp", input_shape=(64,), depth=3, width=12,
                                activation="sigmoid")
    output_before = [w.copy() for w in model.get_layer("output").get_weights()]
    report = pretrain(model, x, seed=4, log=lambda *_: None)
    assert [r["layer"] for r in report] == ["hidden_1", "hidden_2", "hidden_3"]
    for a, b in zip(model.get_layer("output").get_weights(), output_before):
        np.testing.assert_array_equal(a, b)   # only the hidden layers are pre-trained
    # Reference for every level: an RBM trained by models.learn on the previous
    # level's p(h|v), computed here in numpy from the pre-trained Dense weights.
    v = x.astype(np.float64)
    for level in (1, 2, 3):
        w, c = model.get_layer(f"hidden_{level}").get_weights()
        rbm = models.create_model("rbm", input_shape=(v.shape[1],), hidden_units=12)
        start = np.random.default_rng(4 + level).normal(0.0, 0.01, (v.shape[1], 12))
        rbm.rbm.kernel.assign(start.astype(np.float32))
        models.learn(rbm, v, seed=4 + level, **RBM_SETTINGS)
        np.testing.assert_allclose(w, rbm.rbm.kernel.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(c, rbm.rbm.hidden_bias.numpy(), rtol=1e-6, atol=1e-7)
        v = 1.0 / (1.0 + np.exp(-(v @ w + c)))


@pytest.mark.slow
def test_pretraining_changes_first_layer_gradients_same_seed_and_budget(tmp_path):
    from training import train

    runs = {}
    for pretrain in (None, "rbm"):
        config = small_config(tmp_path / str(pretrain), model="deep_mlp_sigmoid_8x64",
                              model_overrides={}, limit=640, epochs=1, batch_size=32,
                              track_gradients=True, jit_compile=False, pretrain=pretrain)
        runs[pretrain] = train(config, log=lambda *_: None)
    plain, pre = (runs[k].history[0]["grad_norm/hidden_1"] for k in (None, "rbm"))
    # Measured here: 5.6e-7 with pre-training vs 2.3e-5 without (saturated RBM features
    # before fine-tuning; on all 3,500 images it goes the other way, see docs/models.md).
    assert abs(np.log10(pre / plain)) > 1, (pre, plain)
    assert json.loads((tmp_path / "rbm" / "config.json").read_text())["pretrain"] == "rbm"


@pytest.mark.slow
def test_compare_remedies_writes_table_plot_and_rows(tmp_path, monkeypatch):
    from training import TrainConfig, compare_remedies, remedies

    # Two cheap entries of the table exercise the whole command.
    monkeypatch.setattr(remedies, "REMEDIES", {
        "baseline": remedies.REMEDIES["baseline"],
        "rbm_pretraining": remedies.REMEDIES["rbm_pretraining"]})
    config = TrainConfig(out=str(tmp_path / "cmp"), limit=320, epochs=1, batch_size=32,
                         jit_compile=False, quiet=True)
    report = compare_remedies(config, log=lambda *_: None)
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [r["remedy"] for r in rows] == ["baseline", "rbm_pretraining"] == [
        r["remedy"] for r in report["rows"]]
    for row in rows:
        history = json.loads((tmp_path / "cmp" / row["remedy"] / "history.json").read_text())
        assert row["first_layer"] == "hidden_1"
        assert row["first_layer_grad_norm_first_epoch"] == history[0]["grad_norm/hidden_1"]
        assert row["model"] == "deep_mlp_sigmoid_8x64"
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| baseline | deep_mlp_sigmoid_8x64 | 8 x 64 sigmoid, N(0, 0.05^2) init |" in md
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "cmp" / "baseline" / "config.json").read_text())
    assert saved["model_overrides"] == {"initializer": "random_normal"}
