"""train.py end to end for the memory and competitive nets: the command line writes the
usual run directory with the SOM's plots, --export ships validated artifacts, --resume
replays the rule exactly, and bad settings are one-line errors. (Every net's run
directory and plots: tests/test_train_models.py.)"""
import json

import keras
import pytest

from _train_helpers import assert_bitwise_equal, sigterm_after_epoch, weights

def _train_py(argv, capsys):
    import train
    from utils.cli import run_cli

    code = run_cli(train.main, argv, prog="train.py")
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_train_py_som_on_digits_writes_the_run_directory_and_exports(tmp_path, capsys):
    out = tmp_path / "som"
    code, stdout, err = _train_py(["--model", "som", "--dataset", "digits", "--limit", "300",
                                   "--epochs", "2", "--out", str(out), "--export", "--quiet"],
                                  capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learning_rule"] == "som" and summary["epochs_completed"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 2 and config["lr"] is None   # the rule's own schedule
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"quantization_error", "topographic_error", "val_quantization_error"} <= set(history[0])
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert type(model).__name__ == "Som" and model.count_params() == 100 * 1024
    import data
    x_test, y_test = data.load_dataset("digits", limit=300).as_numpy("test")
    metrics = model.evaluate_rule(x_test, y_test)    # the saved model gives the summary's figures
    assert summary["test_quantization_error"] == pytest.approx(metrics["quantization_error"])
    assert summary["test_topographic_error"] == pytest.approx(metrics["topographic_error"])
    assert json.loads((out / "audit.json").read_text())["total_params"] == 102_400
    assert {p.name for p in (out / "plots").iterdir()} == {"som_prototypes.png", "u_matrix.png"}
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    # A SOM outputs distances, not class scores: float32 artifacts only (top-1
    # agreement, the int8 files' check, would say nothing about it).
    assert sorted(a["format"] for a in manifest["artifacts"]) == ["onnx", "saved_model", "tflite"]
    assert not any(a.get("quantization") not in (None, "float32") for a in manifest["artifacts"])
    assert all(a["validation"]["passed"] for a in manifest["artifacts"])
    assert "quantization_error" in stdout and "float32 artifacts only" in stdout


@pytest.mark.slow
def test_resumed_som_run_is_bitwise_equal(tmp_path):
    # The SOM's schedule depends on the epoch and the run's length only, so a resumed
    # run replays the finished epochs exactly.
    from training import TrainConfig, train

    def config(out, **kw):
        return TrainConfig(model="som", dataset="digits", limit=120, epochs=3, seed=1,
                           out=str(out), quiet=True, model_overrides={"grid": [3, 3]}, **kw)

    full = train(config(tmp_path / "full"), log=lambda *_: None)
    first = train(config(tmp_path / "cut"), callbacks=[sigterm_after_epoch(1)],
                  log=lambda *_: None)
    assert first.interrupted == "SIGTERM" and first.epochs_completed == 1
    resumed = train(config(tmp_path / "cut"), resume=True, log=lambda *_: None)
    assert resumed.epochs_completed == 3
    assert_bitwise_equal(weights(resumed.model), weights(full.model))


@pytest.mark.parametrize("argv, match", [
    (["--model", "art1", "--model-arg", "vigilance=1.5"], "vigilance must be a number in"),
    (["--model", "som", "--model-arg", "grid=[0,5]"], "grid must be (rows, cols)"),
    (["--model", "lvq", "--rule-arg", "init=pca"], "init must be 'samples' or 'keep'"),
    (["--model", "hopfield", "--lr", "0.1"], "has no learning_rate"),
    (["--model", "som", "--rule-arg", "sigma=-1"], "sigma must be a number > 0"),
])
def test_train_py_bad_settings_are_one_line_exit_2(argv, match, tmp_path, capsys):
    code, out, err = _train_py([*argv, "--dataset", "digits", "--limit", "100", "--epochs", "1",
                                "--out", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and match in err, err
