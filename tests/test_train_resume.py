"""Exact resume and seed determinism: compared bit for bit (np.array_equal)."""
import json

import numpy as np
import pytest

from _train_helpers import (assert_bitwise_equal, sigterm_after_epoch, small_config, weights)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from training import train

    res = train(small_config(tmp_path_factory.mktemp("full") / "run"))
    return res, weights(res.model)


def test_model_has_dropout_so_rng_state_matters(uninterrupted):
    res, _ = uninterrupted
    assert any(type(l).__name__ == "Dropout" for l in res.model.layers)
    assert res.epochs_completed == 3 and not res.interrupted


def test_same_seed_gives_identical_weights(uninterrupted, tmp_path):
    from tensorflow.python.framework import config as tf_config

    from training import train

    before = tf_config.is_op_determinism_enabled()
    again = train(small_config(tmp_path / "again"))
    assert tf_config.is_op_determinism_enabled() == before  # the process-wide switch is restored
    assert_bitwise_equal(weights(again.model), uninterrupted[1])
    other = train(small_config(tmp_path / "other", seed=8))
    assert not np.array_equal(weights(other.model)[0], uninterrupted[1][0])


def test_sigterm_then_resume_equals_uninterrupted(uninterrupted, tmp_path):
    from training import list_checkpoints, train

    cfg = small_config(tmp_path / "run")
    # SIGTERM arrives right after epoch 1's checkpoint: epoch 2 starts, is cut short, is lost.
    first = train(cfg, callbacks=[sigterm_after_epoch(1)])
    assert first.interrupted == "SIGTERM" and first.epochs_completed == 1
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["epoch-0001"]
    assert not (tmp_path / "run" / "model.keras").exists()

    resumed = train(cfg, resume=True)
    assert resumed.resumed_from == 1 and resumed.epochs_completed == 3
    assert_bitwise_equal(weights(resumed.model), uninterrupted[1])
    # The history is continuous, and identical to the uninterrupted run's.
    full_hist = json.loads((uninterrupted[0].run_dir / "history.json").read_text())
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["loss"] for h in hist] == [h["loss"] for h in full_hist]


def test_dropout_state_is_in_the_checkpoint(uninterrupted):
    """Without the seed-generator state the resumed dropout masks would differ."""
    from training import list_checkpoints

    res, final = uninterrupted
    ckpt = list_checkpoints(res.run_dir / "checkpoints")[-1]
    assert ckpt.name == "epoch-0003"
    # Keyed by the owning layer's name, not by Keras' per-process seed_generator_N path.
    with np.load(ckpt / "variables.npz") as f:
        files = set(f.files)
        seeds = sorted(k for k in files if k.endswith("/seed_generator_state"))
        assert seeds == ["model:hidden_1_dropout/seed_generator_state",
                         "model:hidden_2_dropout/seed_generator_state"]
        saved = [f[k] for k in _model_keys(res.model)]
    assert_bitwise_equal(saved, final)


def _model_keys(model):
    """The checkpoint key of each model variable: its owning layer's name and its name."""
    owners = {id(v): layer.name for layer in model.layers for v in layer.variables}
    return [f"model:{owners[id(v)]}/{v.name}" for v in model.variables]


def test_resume_of_a_finished_run_changes_nothing(uninterrupted):
    from training import train

    res, w = uninterrupted
    again = train(small_config(res.run_dir), resume=True)
    assert again.epochs_completed == 3 and again.resumed_from == 3
    assert_bitwise_equal(weights(again.model), w)


def test_continuing_a_finished_run_equals_a_longer_run(uninterrupted, tmp_path):
    """2 epochs, finished, then --resume --epochs 3: bitwise the straight 3-epoch run."""
    from training import train

    short = train(small_config(tmp_path / "run", epochs=2))
    assert short.epochs_completed == 2 and (tmp_path / "run" / "model.keras").is_file()
    longer = train(small_config(tmp_path / "run", epochs=3), resume=True)
    assert longer.resumed_from == 2 and longer.epochs_completed == 3
    assert_bitwise_equal(weights(longer.model), uninterrupted[1])
    full_hist = json.loads((uninterrupted[0].run_dir / "history.json").read_text())
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["loss"] for h in hist] == [h["loss"] for h in full_hist]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 3


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_continuing_a_scheduled_run_is_refused_and_changes_nothing(tmp_path, schedule, capsys):
    """The schedule is a function of the total steps: refused before any work."""
    import train as train_cli
    from training import TrainConfig
    from utils.cli import run_cli

    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(lr_schedule=schedule, epochs=20, out=str(run)).resolved()
    (run / "config.json").write_text(json.dumps(saved.to_dict()))
    before = (run / "config.json").read_text()
    code = run_cli(train_cli.main, ["--out", str(run), "--resume", "--epochs", "30"],
                   prog="train.py")
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("train.py")]
    assert code == 2 and len(err) == 1
    assert f"from 20 to 30 epochs: its {schedule} learning-rate schedule" in err[0]
    assert "Fix: start a new run with --epochs 30" in err[0]
    assert (run / "config.json").read_text() == before and sorted(run.iterdir()) == [
        run / "config.json"]


def test_early_stopping_keeps_the_best_weights_also_across_resume(tmp_path):
    """model.keras and the test score come from the best val_loss epoch (Keras'
    restore_best_weights); a run interrupted after that epoch ends the same."""
    import keras

    import data
    from training import train

    # A large learning rate on 448 images overfits fast: val loss stalls within a few epochs.
    cfg = small_config(tmp_path / "full", epochs=40, early_stopping=2, lr=0.02)
    res = train(cfg)
    val = [h["val_loss"] for h in res.history]
    best = int(np.argmin(val)) + 1
    assert res.stopped_early and res.best_epoch == best
    assert best == len(val) - 2 and min(val[best:]) >= val[best - 1]  # patience 2, then stop
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["best_epoch"] == best and summary["best"]["val_loss"] == val[best - 1]

    # Reference: the saved model scored by numpy on the validation and test splits.
    model = keras.saving.load_model(tmp_path / "full" / "model.keras", safe_mode=True)
    bundle = data.load_dataset("digits", limit=640)
    for split, expected in (("val", val[best - 1]), ("test", summary["test_loss"])):
        x, y = bundle.as_numpy(split)
        probs = model.predict(x, verbose=0).astype(np.float64)
        assert float(np.mean(-np.log(probs[np.arange(len(y)), y]))) == \
            pytest.approx(expected, rel=1e-5)
    assert summary["test_accuracy"] == pytest.approx(
        float(np.mean(model.predict(bundle.as_numpy("test")[0], verbose=0).argmax(1)
                      == bundle.as_numpy("test")[1])))

    resumed_cfg = small_config(tmp_path / "cut", epochs=40, early_stopping=2, lr=0.02)
    first = train(resumed_cfg, callbacks=[sigterm_after_epoch(best + 1)])
    assert first.interrupted and first.epochs_completed == best + 1
    again = train(resumed_cfg, resume=True)
    assert again.best_epoch == best and again.epochs_completed == res.epochs_completed
    assert_bitwise_equal(weights(again.model), weights(res.model))
