"""train.py trains every registered model on real images (the registry decides
what is covered), and refuses the one it mathematically cannot train."""
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
