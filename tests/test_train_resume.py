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
