"""train.py's rule path: a model that learns by its own rule gets the same run
directory, resume and continuation as a backprop model.

The model is a toy defined here (class prototypes moved towards each example,
a one-prototype-per-class LVQ without the push-away step), registered in the
model and rule registries only while these tests run. Its weights are checked
against the same update written in plain numpy.
"""
import json
import math

import keras
import numpy as np
import pytest

from _train_helpers import assert_bitwise_equal, sigterm_after_epoch, weights

NAME = "test_class_means"


def _fit(model, x, y, *, epochs, seed, on_epoch_end, learning_rate=0.5, decay=0.0):
    """Epoch k visits the examples in the order of default_rng((seed, k))."""
    proto = model.prototypes
    for epoch in range(epochs):
        rate = np.float32(learning_rate * (1.0 - decay * epoch / epochs))
        value = proto.numpy()
        for i in np.random.default_rng((seed, epoch)).permutation(len(x)):
            value[y[i]] += rate * (x[i] - value[y[i]])
        proto.assign(value)
        on_epoch_end(epoch, {"distance": float(np.mean(np.linalg.norm(x - value[y], axis=1)))})


@keras.saving.register_keras_serializable(package="zoo_tests")
class Prototypes(keras.layers.Layer):
    """Scores = minus the squared distance to each class prototype."""

    def __init__(self, num_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def build(self, shape):
        self.prototypes = self.add_weight(shape=(self.num_classes, shape[-1]),
                                          initializer="zeros", trainable=False, name="prototypes")

    def call(self, flat):
        return -keras.ops.sum(keras.ops.square(flat[:, None, :] - self.prototypes[None]), axis=-1)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="zoo_tests")
class ClassMeans(keras.Model):
    """A subclassed model, as most rule models are, holding its prototypes in a layer."""
    learning_rule = NAME

    def __init__(self, input_shape=(32, 32, 1), num_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.in_shape, self.num_classes = tuple(input_shape), int(num_classes)
        self.flatten = keras.layers.Flatten(name="flatten")
        self.scores = Prototypes(num_classes, name="prototypes")

    def build(self, shape):
        self.scores.build((None, math.prod(self.in_shape)))

    @property
    def prototypes(self):
        return self.scores.prototypes

    def call(self, x):
        return self.scores(self.flatten(x))

    def get_config(self):
        return {**super().get_config(), "input_shape": list(self.in_shape),
                "num_classes": self.num_classes}

    def prepare_training_data(self, x, y):
        return x.reshape(len(x), -1), y

    def learning_plots(self, x, y, history, out_dir):
        from training.plots import _figure, _save

        plt = _figure()
        fig, axes = plt.subplots(1, self.num_classes, figsize=(self.num_classes, 1.2))
        for c, ax in enumerate(np.atleast_1d(axes)):
            ax.imshow(self.prototypes.numpy()[c].reshape(self.in_shape[:2]), cmap="gray")
            ax.axis("off")
        try:
            return {"plot_prototypes": _save(fig, out_dir / "prototypes.png")}
        finally:
            plt.close(fig)


def _build(config):
    model = ClassMeans(config["input_shape"], config["num_classes"])
    model.build((None, *config["input_shape"]))
    return model


@pytest.fixture(scope="module")
def class_means():
    """The toy in both registries for this module only (list_models() elsewhere never sees it)."""
    from models import _registry, rules

    rules.register_rule(NAME, supervised=True, reference="test only", default_epochs=2)(_fit)
    family = _registry.Family(NAME, {"input_shape": (32, 32, 1), "num_classes": 10}, _build,
                              lambda c: c["num_classes"] * math.prod(c["input_shape"]),
                              "test only", rule_owner=ClassMeans)

    def test_class_means(**overrides):
        """Toy rule model: one prototype per class."""
        return family.variant(overrides)

    _registry.register_model(test_class_means)
    yield NAME
    _registry._REGISTRY.pop(NAME)
    rules._RULES.pop(NAME)


def _reference(x, y, num_classes, epochs, seed, learning_rate, decay=0.0):
    proto = np.zeros((num_classes, x.shape[1]), np.float32)
    for epoch in range(epochs):
        rate = np.float32(learning_rate * (1.0 - decay * epoch / epochs))
        for i in np.random.default_rng((seed, epoch)).permutation(len(x)):
            proto[y[i]] += rate * (x[i] - proto[y[i]])
    return proto


def _config(out, **overrides):
    from training import TrainConfig

    values = dict(model=NAME, num_classes="auto", dataset="digits", limit=300, seed=3,
                  out=str(out), quiet=True)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def finished(class_means, tmp_path_factory):
    from training import train

    out = tmp_path_factory.mktemp("rule") / "run"
    return train(_config(out, epochs=3, lr=0.3), log=lambda *_: None)


def test_rule_run_writes_the_usual_run_directory(finished):
    import data

    out = finished.run_dir
    config = json.loads((out / "config.json").read_text())
    assert (config["epochs"], config["lr"], config["batch_size"]) == (3, 0.3, None)
    bundle = data.load_dataset("digits", limit=300)
    x, y = bundle.as_numpy("train")
    expected = _reference(x.reshape(len(x), -1), y, 10, 3, 3, 0.3)
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(model.prototypes.numpy(), expected)

    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    x_val, y_val = bundle.as_numpy("val")
    val_scores = -((x_val.reshape(len(x_val), 1, -1) - expected[None]) ** 2).sum(-1)
    assert history[-1]["val_accuracy"] == pytest.approx(np.mean(val_scores.argmax(1) == y_val))
    assert history[-1]["distance"] == pytest.approx(
        float(np.mean(np.linalg.norm(x.reshape(len(x), -1) - expected[y], axis=1))), rel=1e-6)
    assert "distance" in (out / "history.csv").read_text().splitlines()[0]

    x_test, y_test = bundle.as_numpy("test")
    test_scores = -((x_test.reshape(len(x_test), 1, -1) - expected[None]) ** 2).sum(-1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learning_rule"] == NAME and summary["epochs_completed"] == 3
    assert summary["test_accuracy"] == pytest.approx(np.mean(test_scores.argmax(1) == y_test))
    assert summary["test_accuracy"] > 0.5  # ten classes: chance is 0.1
    assert summary["params"] == 10 * 1024
    audit = json.loads((out / "audit.json").read_text())
    assert audit["total_params"] == 10 * 1024 == model.count_params()
    for name in ("curves.png", "plots/prototypes.png", "history.csv", "audit.json"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-0002", "epoch-0003"]


def test_sigterm_then_resume_replays_and_ends_bitwise_equal(finished, tmp_path):
    from training import list_checkpoints, train

    cfg = _config(tmp_path / "run", epochs=3, lr=0.3)
    first = train(cfg, callbacks=[sigterm_after_epoch(1)], log=lambda *_: None)
    assert first.interrupted == "SIGTERM" and first.epochs_completed == 1
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["epoch-0001"]
    assert not (tmp_path / "run" / "model.keras").exists()
    logs = []
    resumed = train(_config(tmp_path / "run"), resume=True, log=logs.append)
    assert "replaying 1 epoch" in logs[0]
    assert resumed.resumed_from == 1 and resumed.epochs_completed == 3
    assert_bitwise_equal(weights(resumed.model), weights(finished.model))
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    full = json.loads((finished.run_dir / "history.json").read_text())
    assert [h["distance"] for h in hist] == [h["distance"] for h in full]


def test_rule_parameters_and_gradient_settings_are_checked(class_means, tmp_path):
    from training import TrainingError, train

    def refused(match, **kw):
        with pytest.raises(TrainingError, match=match):
            train(_config(tmp_path / "x", **kw), log=lambda *_: None)

    refused(r"Unknown parameter 'decai'.*Did you mean: decay\?.*Accepted: decay", rule_args={"decai": 1})
    refused("with --lr, not --rule-arg", rule_args={"learning_rate": 0.1})
    refused("has no batch_size; received --batch-size 32", batch_size=32)
    refused("early_stopping=2 does not apply.*own rule", early_stopping=2)
    refused("optimizer='sgd' does not apply", optimizer="sgd")
    with pytest.raises(TrainingError, match="--rule-arg applies to models that learn by their"):
        train(_config(tmp_path / "y", model="exam_mlp", rule_args={"decay": 0.5}))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # nothing written


def test_continuing_a_finished_rule_run_equals_a_longer_run(finished, tmp_path, capsys):
    """2 epochs, then --resume --epochs 3: bitwise the 3-epoch run. A rule whose rate
    decays over the run's epochs cannot be continued: refused, nothing changed."""
    import train as train_cli
    from utils.cli import run_cli

    out = tmp_path / "run"
    base = ["--model", NAME, "--num-classes", "auto", "--limit", 300, "--seed", 3, "--quiet",
            "--out", out, "--lr", 0.3]
    argv = [str(a) for a in base]
    assert run_cli(train_cli.main, argv + ["--epochs", "2"], prog="train.py") == 0
    assert run_cli(train_cli.main, ["--out", str(out), "--resume", "--epochs", "3"],
                   prog="train.py") == 0
    assert json.loads((out / "config.json").read_text())["epochs"] == 3
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(model.prototypes.numpy(), finished.model.prototypes.numpy())

    decaying = tmp_path / "decay"
    argv = [str(a) for a in base[:-4]] + ["--out", str(decaying), "--rule-arg", "decay=0.5"]
    assert run_cli(train_cli.main, argv + ["--epochs", "2"], prog="train.py") == 0
    before = (decaying / "config.json").read_text(), (decaying / "model.keras").read_bytes()
    capsys.readouterr()
    code = run_cli(train_cli.main, ["--out", str(decaying), "--resume", "--epochs", "3"],
                   prog="train.py")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "does not reproduce checkpoint epoch-0002" in err[0] and "total number" in err[0]
    assert before == ((decaying / "config.json").read_text(),
                      (decaying / "model.keras").read_bytes())


def test_evaluate_rule_hook_and_default_metrics():
    from training.rule_path import evaluate

    class Hooked:
        def evaluate_rule(self, x, y):
            return {"recall": np.float32(0.25)}

    assert evaluate(Hooked(), None, None, 10) == {"recall": 0.25}
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]], np.float32)
    assert evaluate(lambda x, training: scores[x], np.arange(3), np.array([1, 0, 0]), 3) == \
        {"accuracy": pytest.approx(2 / 3)}
    assert evaluate(lambda x, training: scores[x], np.arange(3), np.array([1, 0, 0]), 4) == {}
