"""Training features against independent references: gradient norms, schedules,
early stopping, divergence, dead units, mixed precision, strategies, tfds, comparison."""
import json
import math

import numpy as np
import pytest

from _train_helpers import small_config, weights
from training import OPTIMIZERS


def test_lr_schedules_follow_their_formulas():
    from training import TrainConfig
    from training.factories import make_lr_schedule

    steps_per_epoch, epochs, lr = 10, 4, 0.02
    total = steps_per_epoch * epochs
    cosine = make_lr_schedule(TrainConfig(lr=lr, epochs=epochs, lr_schedule="cosine"),
                              steps_per_epoch)
    step = make_lr_schedule(TrainConfig(lr=lr, epochs=epochs, lr_schedule="step"),
                            steps_per_epoch)
    assert make_lr_schedule(TrainConfig(lr=lr), steps_per_epoch) == lr
    for t in (0, 7, 20, 29, 30, 39):
        assert float(cosine(t)) == pytest.approx(0.5 * lr * (1 + math.cos(math.pi * t / total)),
                                                 rel=1e-5, abs=1e-8)
        expected = lr if t <= 20 else lr * 0.1 if t <= 30 else lr * 0.01
        assert float(step(t)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_name_builds(name):
    from training import TrainConfig
    from training.factories import make_optimizer

    opt = make_optimizer(TrainConfig(optimizer=name, lr=0.01), 5)
    assert type(opt).__name__.lower() == name
    assert float(opt.learning_rate) == pytest.approx(0.01)


def _one_step_config(tmp_path, **overrides):
    """exam_mlp on 28 training images (limit 40), batch 28: exactly one step per epoch."""
    return small_config(tmp_path / "run", model="exam_mlp", model_overrides={}, limit=40,
                        batch_size=28, epochs=1, **overrides)


def _tape_gradients(seed):
    """Reference: the same initial exam_mlp and its gradient from a plain GradientTape."""
    import keras
    import tensorflow as tf

    import data
    import models

    keras.utils.set_random_seed(seed)
    ref_model = models.create_model("exam_mlp", num_classes=10)
    x, y = data.load_dataset("digits", limit=40).as_numpy("train")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, ref_model(x)))
    return ref_model, [g.numpy() for g in tape.gradient(loss, ref_model.trainable_variables)]


@pytest.mark.slow
def test_gradient_norms_match_a_tape_on_the_initial_weights(tmp_path):
    """One step per epoch: epoch 1's recorded norm is the gradient at the initial weights."""
    from training import train

    cfg = _one_step_config(tmp_path, track_gradients=True)
    res = train(cfg)
    rec = res.history[0]
    ref_model, grads = _tape_gradients(cfg.seed)
    for layer in ("hidden_1", "hidden_2", "hidden_3", "output"):
        ref = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g, v in
                            zip(grads, ref_model.trainable_variables)
                            if v.path.startswith(layer + "/")))
        assert rec[f"grad_norm/{layer}"] == pytest.approx(ref, rel=1e-4), layer
    assert (res.run_dir / "gradient_norms.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("clip", [{"clip_norm": 0.05}, {"clip_value": 0.002}])
def test_clipping_is_proven_by_the_norms_it_reports(tmp_path, clip):
    """One SGD step (28 images, batch 28): the history reports the gradient's global
    norm before and after clipping, and the step moved the weights by exactly
    -lr x the clipped gradient of a plain tape (SGD's first momentum step)."""
    from training import train

    cfg = _one_step_config(tmp_path, optimizer="sgd", lr=0.5, **clip)
    res = train(cfg)
    rec = res.history[0]
    ref_model, grads = _tape_gradients(cfg.seed)
    raw = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    if "clip_norm" in clip:
        applied = [g * (clip["clip_norm"] / raw) for g in grads]
    else:
        applied = [np.clip(g, -clip["clip_value"], clip["clip_value"]) for g in grads]
    applied_norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in applied))
    assert raw > 5 * applied_norm  # clipping really changed this step
    assert rec["grad_norm/global"] == pytest.approx(raw, rel=1e-4)
    assert rec["grad_norm/global_clipped"] == pytest.approx(applied_norm, rel=1e-4)
    if "clip_norm" in clip:
        assert rec["grad_norm/global_clipped"] <= clip["clip_norm"] * (1 + 1e-6)
    for var, ref, g in zip(res.model.trainable_variables, ref_model.trainable_variables, applied):
        np.testing.assert_allclose(var.numpy(), ref.numpy() - 0.5 * g, rtol=1e-5, atol=1e-7)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: saved[k] for k in ("clip_norm", "clip_value")} == {
        "clip_norm": clip.get("clip_norm"), "clip_value": clip.get("clip_value")}


@pytest.mark.slow
def test_divergence_names_epoch_and_batch_and_keeps_the_good_checkpoint(tmp_path):
    from training import DivergedError, list_checkpoints, train

    def poison(record, model):
        # After epoch 1 is safely checkpointed, blow the weights up: epoch 2 must diverge.
        if record["epoch"] == 1:
            for v in model.trainable_variables:
                v.assign(v * np.float32(1e30))

    cfg = small_config(tmp_path / "run", epochs=3)
    with pytest.raises(DivergedError) as info:
        train(cfg, callbacks=[poison])
    assert info.value.epoch == 2 and info.value.batch == 1
    assert "epoch 2, batch 1/" in str(info.value) and "epoch-0001" in str(info.value)
    kept = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in kept] == ["epoch-0001"]
    with np.load(kept[0] / "variables.npz") as f:
        assert all(np.isfinite(f[k]).all() for k in f.files if f[k].dtype.kind == "f")
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 1


def _hidden_outputs(model, x):
    """Reference forward pass in numpy from the Dense weights (ReLU hidden layers)."""
    outs, h = [], x.reshape(len(x), -1)
    dense = [l for l in model.layers if type(l).__name__ == "Dense"]
    for layer in dense[:-1]:
        kernel, bias = (np.asarray(w) for w in layer.get_weights())
        h = np.maximum(h @ kernel + bias, 0.0)
        outs.append(h)
    return np.concatenate(outs, axis=1)


@pytest.mark.slow
def test_compare_activations_cli_writes_table_plot_and_true_dead_fraction(tmp_path, capsys):
    import keras

    import activations  # noqa: F401
    import data
    import train as train_cli
    from utils.cli import run_cli

    out = tmp_path / "cmp"
    code = run_cli(train_cli.main, ["--compare-activations", "relu,sigmoid", "--model", "exam_mlp",
                                    "--num-classes", "auto", "--limit", "640", "--epochs", "2",
                                    "--quiet", "--out", str(out)], prog="train.py")
    assert code == 0, capsys.readouterr().err[-1000:]
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["activation"] for r in rows] == ["relu", "sigmoid"]
    md = (out / "comparison.md").read_text()
    assert "| relu |" in md and "| sigmoid |" in md
    assert (out / "comparison.png").stat().st_size > 10_000
    x_val, _ = data.load_dataset("digits", limit=640).as_numpy("val")
    relu_model = keras.saving.load_model(out / "relu" / "model.keras", safe_mode=True)
    hidden = _hidden_outputs(relu_model, x_val)
    assert rows[0]["dead_fraction"] == pytest.approx(float(np.mean(~(hidden > 0).any(axis=0))))
    assert rows[1]["dead_fraction"] == 0.0  # a sigmoid is never exactly 0
    for r in rows:
        assert r["first_layer"] == "hidden_1" and r["first_layer_grad_norm"] > 0
        val = [h["val_accuracy"] for h in
               json.loads((out / r["activation"] / "history.json").read_text())]
        expected = None if max(val) < 0.2 else 1 + next(
            i for i, v in enumerate(val) if v >= 0.95 * max(val))
        assert r["epochs_to_converge"] == expected


@pytest.mark.slow
def test_tfds_dataset_trains_end_to_end_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from training import train

    with tfds.testing.mock_data(num_examples=64):
        res = train(small_config(tmp_path / "run", dataset="tfds:mnist", limit=None, epochs=1))
    assert res.epochs_completed == 1 and (tmp_path / "run" / "model.keras").is_file()
    assert res.history[0]["samples_per_s"] > 0


@pytest.mark.slow
def test_mixed_precision_computes_in_bfloat16_and_learns(tmp_path):
    import keras

    from training import train

    res = train(small_config(tmp_path / "run", mixed_precision=True, epochs=3,
                             model_overrides={"depth": 2, "width": 64}))
    dense = [l for l in res.model.layers if type(l).__name__ == "Dense"]
    assert dense[0].compute_dtype == "bfloat16" and dense[0].kernel.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # global policy restored
    assert res.test_accuracy > 0.5


@pytest.mark.slow
def test_export_flag_hands_the_model_to_the_exporter(tmp_path, capsys):
    import train as train_cli
    from utils.cli import run_cli

    out = tmp_path / "run"
    code = run_cli(train_cli.main, ["--export", "--epochs", "1", "--limit", "640", "--quiet",
                                    "--out", str(out)], prog="train.py")
    stdout = capsys.readouterr().out
    assert code == 0
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    kinds = {(a["format"], a["quantization"]) for a in manifest["artifacts"]}
    assert {("saved_model", None), ("onnx", None), ("tflite", None)} <= kinds
    # int8 ships exactly when it validated; otherwise train.py says it left it out.
    assert (("tflite", "int8") in kinds) != ("left out model_int8.tflite" in stdout)
    lines = [line for line in stdout.splitlines() if "export:" in line]
    for art in manifest["artifacts"]:
        assert (out / "export" / art["path"]).exists()
        assert art["validation"]["passed"] is True
        line = next(line for line in lines if f" {art['path']} " in line)
        assert f"{art['size_bytes']:,} bytes" in line and "validated" in line


_TWO_REPLICAS = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[2])
from _train_helpers import small_config, weights
from training import train
arch = {"depth": 2, "width": 32}
one = train(small_config(sys.argv[1] + "/one", epochs=2, jit_compile=False, model_overrides=arch))
two = train(small_config(sys.argv[1] + "/two", epochs=2, strategy="mirrored", model_overrides=arch))
assert tf.distribute.MirroredStrategy().num_replicas_in_sync == 2
print("MAXDIFF", max(float(np.max(np.abs(a - b))) for a, b in zip(weights(one.model), weights(two.model))))
"""


@pytest.mark.slow
def test_two_replica_mirrored_equals_one_device(tmp_path):
    """Two logical CPUs: each replica gets half of every batch; the all-reduced
    gradient of the global-batch mean must equal the single-device gradient."""
    import os
    import subprocess
    import sys

    from _train_helpers import ROOT

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", _TWO_REPLICAS, str(tmp_path), str(ROOT / "tests")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    maxdiff = float(res.stdout.split("MAXDIFF")[1])
    assert maxdiff < 1e-5


def test_gradient_norms_are_unscaled_under_loss_scaling():
    """float16 training scales the loss by 2**15; the recorded norms must not be."""
    import keras
    import tensorflow as tf

    import data
    import models
    from training.steps import Steps

    x, y = data.load_dataset("digits", limit=200).as_numpy("train")
    x_all, y_all = tf.constant(x[:32]), tf.constant(y[:32].astype(np.int32))
    idx = tf.constant(np.arange(32, dtype=np.int32)[None])
    norms = []
    for wrap in (False, True):
        keras.utils.set_random_seed(3)
        model = models.create_model("exam_mlp", num_classes=10)
        opt = keras.optimizers.Adam(1e-3)
        if wrap:
            opt = keras.optimizers.LossScaleOptimizer(opt)
        opt.build(model.trainable_variables)
        steps = Steps(model, opt, tf.distribute.get_strategy(), jit_compile=False,
                      track_gradients=True)
        norms.append(steps.fused_chunk(x_all, y_all, idx, tf.constant(1))[2].numpy())
    assert float(opt.dynamic_scale.numpy()) > 1000  # the loss really was scaled
    np.testing.assert_allclose(norms[1], norms[0], rtol=1e-5)


@pytest.mark.slow
def test_training_on_a_folder_of_pngs_learns(tmp_path, capsys):
    """Three classes that differ in where a bright bar is: learnable well above 1/3."""
    from PIL import Image

    import train as train_cli
    from utils.cli import run_cli

    rng = np.random.default_rng(0)
    for c, name in enumerate(["top", "middle", "bottom"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(40):
            img = rng.integers(0, 60, (24, 24), dtype=np.uint8)
            img[c * 8:(c + 1) * 8] = rng.integers(180, 256, (8, 24), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "imgs" / name / f"{i}.png")
    out = tmp_path / "run"
    code = run_cli(train_cli.main, ["--dataset", str(tmp_path / "imgs"), "--model", "deep_mlp",
                                    "--num-classes", "auto", "--epochs", "5", "--batch-size", "16",
                                    "--lr", "1e-3", "--quiet", "--out", str(out)], prog="train.py")
    assert code == 0, capsys.readouterr().err[-1000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.8
    assert json.loads((out / "config.json").read_text())["dataset"] == str(tmp_path / "imgs")
