"""Checkpoints are keyed by variable path: another creation order restores right,
and any other mismatch is refused naming it (never restored silently wrong)."""
import json

import keras
import numpy as np
import pytest

from _train_helpers import error_lines


class _TwoLayers(keras.Model):
    """Two 4x4 Dense layers; ``reverse`` creates them in the other order, so
    ``model.variables`` lists them the other way round (same paths and shapes)."""

    def __init__(self, reverse=False, width=4, names=("a", "b")):
        super().__init__()
        if reverse:
            self.second = keras.layers.Dense(width, name=names[1])
            self.first = keras.layers.Dense(width, name=names[0])
        else:
            self.first = keras.layers.Dense(width, name=names[0])
            self.second = keras.layers.Dense(width, name=names[1])

    def call(self, x):
        return self.second(self.first(x))


def _built(**kwargs):
    model = _TwoLayers(**kwargs)
    model(np.zeros((1, 4), np.float32))
    return model


def test_another_creation_order_restores_by_path(tmp_path):
    from training import checkpoint as ckpt

    keras.utils.set_random_seed(1)
    source = _built()
    target = _built(reverse=True)
    assert [v.path for v in source.variables] != [v.path for v in target.variables]
    assert [v.shape for v in source.variables] == [v.shape for v in target.variables]
    path = ckpt.save(tmp_path, 1, source, None, {"history": []})
    ckpt.restore(path, target)
    for layer in ("a", "b"):
        for name in ("kernel", "bias"):
            np.testing.assert_array_equal(
                getattr(target.get_layer(layer), name).numpy(),
                getattr(source.get_layer(layer), name).numpy())


@pytest.mark.parametrize("other, message", [
    (dict(width=5), "variable 'model:a/kernel' has shape (4, 4) there but (4, 5) in this run"),
    (dict(names=("a", "c")), "has no variable 'model:c/kernel' of this run"),
])
def test_a_mismatch_is_refused_naming_it(tmp_path, other, message):
    from training import CheckpointMismatchError
    from training import checkpoint as ckpt

    path = ckpt.save(tmp_path, 1, _built(), None, {"history": []})
    target = _built(**other)
    before = [v.numpy().copy() for v in target.variables]
    with pytest.raises(CheckpointMismatchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ckpt.restore(path, target)
    for var, value in zip(target.variables, before):
        np.testing.assert_array_equal(var.numpy(), value)  # nothing assigned


def test_extra_and_index_keyed_variables_are_refused(tmp_path):
    from training import CheckpointMismatchError
    from training import checkpoint as ckpt

    model = _built()
    path = ckpt.save(tmp_path, 1, model, None, {"history": []})
    with np.load(path / "variables.npz") as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(path / "variables.npz", **arrays, **{"model:c/kernel": np.zeros(2)})
    with pytest.raises(CheckpointMismatchError, match="holds variable 'model:c/kernel', which"):
        ckpt.restore(path, model)
    # The format before path keys: indices say nothing about which variable they were.
    np.savez(path / "variables.npz", **{f"model_{i:04d}": a for i, a in enumerate(arrays.values())})
    with pytest.raises(CheckpointMismatchError, match="creation index.*--overwrite"):
        ckpt.restore(path, model)


@pytest.mark.slow
def test_resume_from_a_tampered_checkpoint_is_one_line(tmp_path, capsys):
    import train
    from utils.cli import run_cli

    out = tmp_path / "run"
    args = ["--model", "deep_mlp", "--num-classes", "auto", "--model-arg", "depth=1",
            "--model-arg", "width=8", "--limit", "200", "--epochs", "1", "--quiet",
            "--out", str(out)]
    assert run_cli(train.main, args, prog="train.py") == 0
    assert json.loads((out / "config.json").read_text())["model_overrides"] == {
        "depth": 1, "width": 8}
    ckpt_dir = out / "checkpoints" / "epoch-0001"
    with np.load(ckpt_dir / "variables.npz") as f:
        arrays = {k.replace("hidden_1/kernel", "hidden_9/kernel"): f[k] for k in f.files}
    np.savez(ckpt_dir / "variables.npz", **arrays)
    capsys.readouterr()
    code = run_cli(train.main, ["--out", str(out), "--resume", "--epochs", "2"], prog="train.py")
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1
    assert "has no variable 'model:hidden_1/kernel' of this run" in lines[0]
    assert json.loads((out / "config.json").read_text())["epochs"] == 1  # nothing changed
