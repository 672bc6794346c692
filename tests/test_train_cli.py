"""train.py as a user runs it: outputs, bad input (exit 2, one line, nothing lost), signals."""
import hashlib
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from _train_helpers import ROOT, error_lines, run_cli

FLAGS = ["--model", "--activation", "--dataset", "--epochs", "--batch-size", "--lr",
         "--optimizer", "--seed", "--out", "--resume", "--quiet", "--early-stopping",
         "--lr-schedule", "--mixed-precision", "--track-gradients", "--compare-activations",
         "--num-classes", "--export", "--strategy", "--model-arg", "--rule-arg", "--clip-norm",
         "--clip-value", "--pretrain", "--compare-remedies"]


def cli(argv, capsys):
    """train.py's main through the same run_cli wrapper as the script, in-process (fast)."""
    import train
    from utils.cli import run_cli as wrap

    code = wrap(train.main, [str(a) for a in argv], prog="train.py")
    out, err = capsys.readouterr()
    return code, out, err


def digest(directory):
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_help_documents_every_flag():
    res = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0
    for flag in FLAGS:
        assert flag in res.stdout, flag
    for word in ("model.keras", "checkpoints", "history.json", "exit status", "TF_CONFIG"):
        assert word in res.stdout


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real CLI run in a subprocess: deep_mlp on 3,500 real digits, 3 epochs."""
    out = tmp_path_factory.mktemp("cli") / "run"
    res = run_cli("--model", "deep_mlp", "--epochs", 3, "--batch-size", 64, "--lr", 1e-3,
                  "--num-classes", "auto", "--track-gradients", "--model-arg", "depth=3",
                  "--model-arg", "batch_norm=false", "--quiet", "--out", out)
    assert res.returncode == 0, res.stderr[-2000:]
    return out, res


@pytest.mark.slow
def test_cli_run_learns_and_writes_everything(finished_run):
    import keras

    import activations  # noqa: F401  (registers the layers a .keras file refers to)
    import data

    out, res = finished_run
    for name in ("model.keras", "config.json", "history.json", "history.csv", "summary.json",
                 "audit.md", "audit.json", "curves.png", "gradient_norms.png"):
        assert (out / name).is_file(), name
        assert str(out / name) in res.stdout  # the command says where everything went
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert [p.name for p in (out / "checkpoints").iterdir()] != []
    assert len([l for l in res.stdout.splitlines() if l.startswith("epoch ")]) == 3  # --quiet

    # Reference accuracy: the saved model re-loaded and scored with numpy.
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    config = json.loads((out / "config.json").read_text())
    assert config["model_overrides"] == {"depth": 3, "batch_norm": False}  # JSON values
    assert [l.name for l in model.layers if type(l).__name__ == "Dense"] == [
        "hidden_1", "hidden_2", "hidden_3", "output"]
    x, y = data.load_dataset("digits").as_numpy("test")
    acc = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
    assert acc > 0.5  # 10 classes: chance is 0.1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] == pytest.approx(acc, abs=1e-9)
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    csv_rows = (out / "history.csv").read_text().splitlines()
    assert len(csv_rows) == 4 and "grad_norm/hidden_1" in csv_rows[0]
    from PIL import Image
    for png in ("curves.png", "gradient_norms.png"):
        assert Image.open(out / png).size[0] > 300
    # TensorBoard events hold the same per-epoch scalars as the history.
    import tensorflow as tf
    logged = {}
    for path in (out / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == "val_accuracy":
                    logged[event.step] = float(tf.make_ndarray(value.tensor))
    assert logged == pytest.approx({h["epoch"]: h["val_accuracy"] for h in history}, rel=1e-6)


@pytest.mark.slow
def test_resume_with_other_config_is_refused_and_nothing_changes(finished_run, capsys):
    out, _ = finished_run
    before = digest(out)
    code, _, err = cli(["--out", out, "--resume", "--lr", 0.5], capsys)
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and "lr=0.001" in lines[0] and "lr=0.5" in lines[0]
    code, _, err = cli(["--out", out, "--resume", "--model-arg", "depth=4"], capsys)
    assert code == 2 and "model_overrides={'depth': 3, 'batch_norm': False} but this run asks " \
        "for model_overrides={'depth': 4, 'batch_norm': False}" in error_lines(err)[0]
    # Starting a new run over it (no --resume) is refused too.
    code, _, err = cli(["--out", out, "--model", "deep_mlp"], capsys)
    assert code == 2 and "--resume" in error_lines(err)[0]
    assert digest(out) == before


@pytest.mark.slow
def test_overwrite_replaces_only_the_run_files(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--limit", 640, "--epochs", 1, "--quiet", "--out", out]
    assert cli(args, capsys)[0] == 0
    (out / "notes.txt").write_text("mine")
    first = json.loads((out / "config.json").read_text())
    # A replacement that fails on its data or its model leaves the old run as it was.
    before = digest(out)
    for bad in (["--dataset", tmp_path / "no-such-folder"], ["--model-arg", "no_such_arg=1"]):
        code, _, err = cli([*args, "--overwrite", *bad], capsys)
        assert code == 2 and len(error_lines(err)) == 1, err[-500:]
        assert digest(out) == before, bad
    code, _, err = cli([*args, "--seed", 5, "--overwrite"], capsys)
    assert code == 0, err[-500:]
    assert json.loads((out / "config.json").read_text())["seed"] == 5 != first["seed"]
    assert (out / "notes.txt").read_text() == "mine"
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-0001"]
    code, _, err = cli([*args, "--resume", "--overwrite"], capsys)
    assert code == 2 and "contradict" in error_lines(err)[0]


def _bad_folder(tmp_path):
    from PIL import Image
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "b" / "1.png").write_bytes(b"\x89PNG broken")
    return tmp_path / "imgs"


def _nan_npz(tmp_path):
    x = np.zeros((30, 32, 32), np.float32)
    x[4, 1, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(30) % 3)
    return tmp_path / "nan.npz"


BAD_INPUTS = {
    "unknown_dataset": (lambda t: ["--dataset", "digitz"], "Did you mean 'digits'"),
    "unknown_model": (lambda t: ["--model", "exam_mlpp"], "exam_mlp"),
    "unknown_activation": (lambda t: ["--activation", "relux"], "relux"),
    "missing_folder": (lambda t: ["--dataset", t / "nope" / "imgs"], "not found"),
    "corrupt_folder": (lambda t: ["--dataset", _bad_folder(t)], "1.png"),
    "nan_data": (lambda t: ["--dataset", _nan_npz(t)], "NaN/inf"),
    "bad_optimizer": (lambda t: ["--optimizer", "adamm"], "Did you mean 'adam'"),
    "bad_epochs": (lambda t: ["--epochs", 0], "epochs"),
    "bad_num_classes": (lambda t: ["--num-classes", "many"], "--num-classes"),
    "bad_int": (lambda t: ["--batch-size", "big"], "--batch-size"),
    "head_too_small": (lambda t: ["--model", "deep_mlp", "--num-classes", 5], "--num-classes auto"),
    "nothing_to_resume": (lambda t: ["--resume"], "Nothing to resume"),
    "unknown_model_arg": (lambda t: ["--model", "deep_mlp", "--model-arg", "deph=3"],
                          "Unknown override 'deph' for model family 'deep_mlp'. Did you mean: "
                          "depth? Accepted: input_shape, num_classes, activation"),
    "bad_model_arg_value": (lambda t: ["--model", "deep_mlp", "--model-arg", "depth=0"],
                            "depth"),
    "model_arg_without_value": (lambda t: ["--model-arg", "depth"], "KEY=VALUE"),
    "model_arg_twice": (lambda t: ["--model-arg", "depth=2", "--model-arg", "depth=3"],
                        "depth is given twice"),
    "model_arg_and_flag": (lambda t: ["--model-arg", "activation=tanh", "--activation", "relu"],
                           "activation is given twice"),
    "rule_arg_for_backprop": (lambda t: ["--rule-arg", "sigma=1"], "--rule-arg applies to"),
    "bad_clip_norm": (lambda t: ["--clip-norm", "-1"], "clip_norm must be a positive"),
    "two_clippings": (lambda t: ["--clip-norm", "1", "--clip-value", "1"],
                      "Pass one of --clip-norm and --clip-value"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    make_args, expected = BAD_INPUTS[case]
    keep = tmp_path / "earlier_result.txt"
    keep.write_text("precious")
    code, _, err = cli([*make_args(tmp_path), "--out", tmp_path / "run", "--limit", 640], capsys)
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), err[-500:]
    assert expected in lines[0]
    assert keep.read_text() == "precious"
    assert not (tmp_path / "run" / "model.keras").exists()


def test_unwritable_out_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    code, _, err = cli(["--out", blocker / "run", "--epochs", 1], capsys)
    assert code == 2 and "not writable" in error_lines(err)[0]
    assert blocker.read_text() == "not a directory"


@pytest.mark.slow
def test_diverging_loss_stops_with_epoch_and_batch_in_a_subprocess(tmp_path):
    res = run_cli("--lr", 1e30, "--optimizer", "sgd", "--limit", 640, "--quiet",
                  "--out", tmp_path / "run")
    assert res.returncode == 2
    lines = error_lines(res.stderr)
    assert len(lines) == 1 and "epoch 1, batch" in lines[0] and "diverged" in lines[0]
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.slow
def test_sigterm_keeps_finished_epochs_and_resume_completes(tmp_path):
    import os

    out = tmp_path / "run"
    args = ["--model", "exam_mlp", "--num-classes", "auto", "--limit", 640, "--batch-size", 32,
            "--epochs", 30, "--quiet", "--out", out]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not list((out / "checkpoints").glob("epoch-*")) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-1000:]
    assert "interrupted by SIGTERM" in stderr and "--resume" in stderr
    done = json.loads((out / "history.json").read_text())
    assert 1 <= len(done) < 30 and not (out / "model.keras").exists()
    res = run_cli("--out", out, "--resume", "--quiet")
    assert res.returncode == 0, res.stderr[-1000:]
    assert f"resuming {out} after epoch {len(done)}" in res.stdout
    assert len(json.loads((out / "history.json").read_text())) == 30
