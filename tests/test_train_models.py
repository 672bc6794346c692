"""train.py trains every registered model on real images (the registry decides
what is covered), and refuses the one it mathematically cannot train."""
import json
import math

import pytest

import models
from _train_helpers import small_config


@pytest.fixture(scope="module")
def digits_bundle():
    import data

    return data.load_dataset("digits", batch_size=64, seed=0, limit=256)


def _has_binary_step(name):
    model = models.create_model(name)
    return any(layer.__class__.__name__ == "BinaryStep" for layer in model.layers)


@pytest.mark.slow
@pytest.mark.parametrize("name", models.list_models())
def test_every_registered_model_trains_on_digits(name, tmp_path, digits_bundle):
    from training import TrainingError, train

    if models.describe(name)["learning_rule"] is not None:
        _trains_by_its_rule(name, tmp_path, digits_bundle, train)
        return
    config = small_config(tmp_path / name, model=name, model_overrides={}, limit=256,
                          epochs=1, batch_size=64, steps_per_execution=4,
                          # XLA compile time dominates one tiny epoch of the deep presets;
                          # the compiled path itself is covered by the other training tests.
                          jit_compile=False)
    if _has_binary_step(name):
        # Rosenblatt's unit: its derivative is 0 everywhere, backprop has nothing to follow.
        with pytest.raises(TrainingError, match="binary_step"):
            train(config, bundle=digits_bundle, log=lambda *_: None)
        return
    result = train(config, bundle=digits_bundle, log=lambda *_: None)
    assert result.epochs_completed == 1
    assert math.isfinite(result.history[0]["loss"])
    # The data decided the input, also for the course's 2-input models.
    assert tuple(result.model.inputs[0].shape[1:]) == digits_bundle.input_shape == (32, 32, 1)
    assert (tmp_path / name / "model.keras").is_file()


def _trains_by_its_rule(name, tmp_path, bundle, train):
    # A classic net (Hopfield, SOM, ...): its own rule with its own defaults, so none of
    # the gradient-descent settings and no num_classes (memory nets have no classes).
    config = small_config(tmp_path / name, model=name, model_overrides={}, limit=256,
                          epochs=1, batch_size=None, lr=None, num_classes=None,
                          steps_per_execution=32)
    result = train(config, bundle=bundle, log=lambda *_: None)
    assert result.epochs_completed == 1 and result.learning_rule == models.describe(name)[
        "learning_rule"]
    assert result.history[0] and all(math.isfinite(v) for v in result.history[0].values())
    assert tuple(result.model.inputs[0].shape[1:]) == bundle.input_shape == (32, 32, 1)
    assert (tmp_path / name / "model.keras").is_file()
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    assert summary["learning_rule"] == result.learning_rule
    assert any(k.startswith("test_") and summary[k] is not None for k in summary), summary
    # The plots that explain the net (SOM grid, energy over recall, ART1 templates).
    plots = sorted((tmp_path / name / "plots").glob("*.png"))
    assert bool(plots) == hasattr(result.model, "learning_plots")
    assert all(p.stat().st_size > 1000 for p in plots)
