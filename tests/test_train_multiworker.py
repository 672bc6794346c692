"""MultiWorkerMirroredStrategy for real: two worker processes on 127.0.0.1.

Each worker runs ``training.train`` with ``TF_CONFIG`` describing a two-worker
cluster on loopback ports picked by binding port 0. The reference is a
single-process run of the same config on the default (single-device) path:
the workers' shards of each global batch are exact halves of it, so the
all-reduced gradient equals the single-process one up to summation order.
A lost worker: killed, or hanging with its threads alive, the other
worker stops with one line and exit status 75, and a restarted cluster ends
bitwise where the uninterrupted one did (tests/_cluster_helpers.py).
"""
import json
import shutil

import numpy as np
import pytest

from _cluster_helpers import CLI_ARGS, CONFIG, cli_cluster, cluster, load, run_worker, wait_all
from _train_helpers import error_lines


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """An uninterrupted cluster run of CONFIG (dumps w0, w1) and one process (single)."""
    tmp = tmp_path_factory.mktemp("cluster")
    procs = cluster(tmp / "run", tmp, "w")
    # The single-process reference runs alongside (the workers mostly wait on each other).
    single = run_worker(tmp / "single", {**CONFIG, "jit_compile": False}, tmp / "single")
    wait_all([*procs, single])
    return tmp


@pytest.mark.slow
def test_two_workers_on_loopback_train_like_one_process(uninterrupted, tmp_path):
    out = uninterrupted / "run"
    (w0, r0), (w1, r1), (ws, rs) = (load(uninterrupted / n) for n in ("w0", "w1", "single"))
    assert (r0["chief"], r1["chief"]) == (True, False)

    # Only the chief wrote the run directory; the other worker wrote nothing into it
    # (no second config, no stray files, and the chief's checkpoint is its weights).
    assert {p.name for p in out.iterdir()} == {
        "model.keras", "config.json", "history.json", "history.csv", "summary.json",
        "audit.md", "audit.json", "curves.png", "tensorboard", "checkpoints"}
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["epoch-0001",
                                                                         "epoch-0002"]
    assert json.loads((out / "history.json").read_text()) == r0["history"]
    with np.load(out / "checkpoints" / "epoch-0002" / "variables.npz") as f:
        saved = [f[k] for k in f.files if k.startswith("model:")]  # in variable order
    assert len(saved) == len(w0)
    for a, b in zip(saved, w0):
        np.testing.assert_array_equal(a, b)
    import keras

    import activations  # noqa: F401
    reloaded = keras.saving.load_model(out / "model.keras", safe_mode=True)
    for a, b in zip(reloaded.get_weights(), w0):
        np.testing.assert_array_equal(a, b)

    # The data was sharded, not duplicated: the two workers together saw each
    # training image once per epoch (448 = the single run's count).
    assert [h["samples"] for h in r0["history"]] == [448, 448]
    assert [h["samples"] for h in rs["history"]] == [448, 448]

    # Both workers end with the same weights (all-reduced gradients, same updates)...
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    # ...and those of one process on the whole global batch: the workers' halves of
    # each batch sum to the same gradient up to float summation order.
    assert len(w0) == len(ws)
    for a, b in zip(w0, ws):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([h["loss"] for h in r0["history"]],
                               [h["loss"] for h in rs["history"]], rtol=1e-5)
    # Weights equal to ~1e-6 may flip a borderline arg-max, hence not exact.
    assert r0["test_accuracy"] == pytest.approx(rs["test_accuracy"], abs=0.01)
    assert rs["test_accuracy"] > 0.5  # 10 classes: chance is 0.1

    # Resume across workers: drop the last epoch's checkpoint (as if both workers were
    # killed during epoch 2); a new cluster on fresh ports restores epoch 1 on each
    # worker from the chief's directory and must end with exactly the same weights.
    out = tmp_path / "run"
    shutil.copytree(uninterrupted / "run", out, symlinks=True)  # the fixture's run stays
    shutil.rmtree(out / "checkpoints" / "epoch-0002")
    (out / "model.keras").unlink()
    wait_all(cluster(out, tmp_path, "r", {"resume": True}))
    (r0w, r0r), (r1w, _) = load(tmp_path / "r0"), load(tmp_path / "r1")
    assert [h["epoch"] for h in r0r["history"]] == [1, 2]
    for a, b, c in zip(w0, r0w, r1w):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert (out / "model.keras").is_file()


@pytest.mark.slow
def test_a_killed_worker_stops_the_cluster_and_every_worker_resumes_bitwise(uninterrupted,
                                                                            tmp_path):
    """SIGKILL the chief (with the coordination service it hosts) once its first
    checkpoint is written: the other worker prints one line and exits 75; a
    restarted cluster continues to the uninterrupted run's weights, bitwise."""
    import training

    out = tmp_path / "run"
    victim, survivor = cli_cluster(tmp_path, "k", [*CLI_ARGS, "--out", out], (0, "kill"))
    (_, _), (_, stderr) = wait_all([victim, survivor], codes=[-9, training.WORKER_LOST_EXIT])
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == error_lines(stderr) and len(lines) == 1, stderr[-2000:]
    line = lines[0]
    assert line.startswith("train.py: error: lost worker 0 (127.0.0.1:"), line
    assert "during epoch 2" in line and "stopped answering" in line
    assert f"the last complete checkpoint, {out / 'checkpoints' / 'epoch-0001'}, is kept" in line
    assert line.endswith(f"restarting every worker, each with its own TF_CONFIG, with: "
                         f"python train.py --out {out} --resume")
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-0001"]

    wait_all(cli_cluster(tmp_path, "r", ["--out", out, "--resume"]))
    expected, _ = load(uninterrupted / "w0")
    for dump in ("r0", "r1"):
        resumed, _ = load(tmp_path / dump)
        assert len(resumed) == len(expected)
        for a, b in zip(resumed, expected):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_hung_worker_is_declared_lost_after_the_worker_timeout(tmp_path):
    """A worker that sleeps with every thread alive: TensorFlow would wait in the
    all-reduce for ever; the other worker gives up after --worker-timeout."""
    import training

    out = tmp_path / "run"
    survivor, hung = cli_cluster(tmp_path, "h", [*CLI_ARGS, "--out", out, "--worker-timeout", 3],
                                 (1, "hang"))
    try:
        [(_, stderr)] = wait_all([survivor], codes=[training.WORKER_LOST_EXIT])
        assert hung.poll() is None  # still hanging: the survivor did not wait for it
    finally:
        hung.kill()
        hung.communicate()
    [line] = [line for line in stderr.splitlines() if line.strip()]
    assert line.startswith("train.py: error: lost worker 1 (127.0.0.1:"), line
    assert "it answers, but no all-reduce finished for 3 s" in line
    assert "epoch-0001, is kept" in line and line.endswith(f"--out {out} --resume")


@pytest.mark.parametrize("tf_config, expected", [
    (None, (None, 0, True)),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}},
     ("worker", 0, True)),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}},
     ("worker", 1, False)),
    # With a "chief" job, worker 0 is an ordinary worker (TensorFlow's rule).
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
     ("worker", 0, False)),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
     ("chief", 0, True)),
])
def test_chief_is_read_from_tf_config(tf_config, expected):
    from training.factories import task_from_tf_config

    env = {} if tf_config is None else {"TF_CONFIG": json.dumps(tf_config)}
    assert task_from_tf_config(env) == expected


def test_malformed_tf_config_is_a_clear_error():
    from training.errors import TrainingError
    from training.factories import task_from_tf_config

    with pytest.raises(TrainingError, match="TF_CONFIG is not valid JSON.*received"):
        task_from_tf_config({"TF_CONFIG": "{'cluster': 1}"})


def test_compare_activations_refuses_multiworker(tmp_path):
    from training import TrainConfig, compare_activations
    from training.errors import TrainingError

    config = TrainConfig(strategy="multiworker", out=str(tmp_path / "cmp"))
    with pytest.raises(TrainingError, match="multiworker.*--activation"):
        compare_activations(config, ["relu", "tanh"])
    assert not (tmp_path / "cmp").exists()


def test_lost_worker_exit_status_and_wait_are_documented_and_checked():
    import subprocess
    import sys

    from _train_helpers import ROOT
    from training import WORKER_LOST_EXIT, TrainConfig
    from training.errors import TrainingError

    res = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0
    help_text = " ".join(res.stdout.split())
    assert f"{WORKER_LOST_EXIT} a worker of a --strategy multiworker cluster was lost" in help_text
    assert "--worker-timeout SECONDS" in help_text and "(default 60)" in help_text
    for bad in (0, -1, float("inf"), "10"):
        with pytest.raises(TrainingError, match="worker_timeout must be a positive number"):
            TrainConfig(worker_timeout=bad)
