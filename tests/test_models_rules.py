"""models.learn: the one entry point for rules beside backpropagation, checked
with a toy rule (running mean of the data) whose result numpy computes."""
import keras
import numpy as np
import pytest

import models
from models import rules


@rules.register_rule("test_running_mean", supervised=False, reference="test only",
                     default_epochs=3)
def _running_mean(model, x, y, *, epochs, seed, on_epoch_end, rate=0.5):
    w = model.get_layer("mean").w
    for epoch in range(epochs):
        order = np.random.default_rng((seed, epoch)).permutation(len(x))
        value = w.numpy()
        for i in order:
            value = value + rate * (x[i] - value)
        w.assign(value)
        on_epoch_end(epoch, {"distance": float(np.linalg.norm(value - x.mean(0)))})


class _Mean(keras.layers.Layer):
    learning_rule = "test_running_mean"

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="zeros", trainable=False)

    def call(self, x):
        return x - self.w


def _toy():
    inputs = keras.Input((3,))
    return keras.Model(inputs, _Mean(name="mean")(inputs))


def _reference(x, epochs, seed, rate):
    value = np.zeros(x.shape[1], np.float32)
    for epoch in range(epochs):
        for i in np.random.default_rng((seed, epoch)).permutation(len(x)):
            value = value + rate * (x[i] - value)
    return value


def test_learn_runs_the_models_rule_and_returns_keras_style_history():
    x = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    model = _toy()
    seen = []
    history = models.learn(model, x, seed=4, rate=0.25, on_epoch_end=lambda e, l: seen.append(e))
    np.testing.assert_allclose(model.get_layer("mean").w.numpy(), _reference(x, 3, 4, 0.25),
                               rtol=1e-6)
    assert list(history) == ["distance"] and len(history["distance"]) == 3
    assert seen == [0, 1, 2]
    assert rules.get_rule("test_running_mean").params == {"rate": 0.5}


def test_learn_errors_name_the_fix():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(models.LearningRuleError, match="backpropagation.*train.py"):
        models.learn(models.create_model("exam_mlp"), x)
    with pytest.raises(models.LearningRuleError, match=r"Unknown parameter 'rat'.*rate"):
        models.learn(_toy(), x, rat=1.0)
    with pytest.raises(models.LearningRuleError, match="epochs must be"):
        models.learn(_toy(), x, epochs=0)
    with pytest.raises(models.LearningRuleError, match="Unknown learning rule"):
        rules.get_rule("hebian")
    with pytest.raises(ValueError, match="already registered"):
        rules.register_rule("test_running_mean", supervised=False, reference="")(_running_mean)


def test_backprop_models_describe_no_rule():
    assert models.describe("exam_mlp")["learning_rule"] is None
