"""MultiWorkerMirroredStrategy for real: two worker processes on 127.0.0.1.

Each worker runs ``training.train`` with ``TF_CONFIG`` describing a two-worker
cluster on loopback ports picked by binding port 0. The reference is a
single-process run of the same config on the default (single-device) path:
the workers' shards of each global batch are exact halves of it, so the
all-reduced gradient equals the single-process one up to summation order.
"""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from _train_helpers import ROOT

# One worker of the cluster: train, then dump this worker's final weights and
# result (a non-chief writes nothing into --out, so the driver saves them).
_WORKER = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from _train_helpers import small_config, weights
from training import train
cfg = json.loads(sys.argv[3])
resume = cfg.pop("resume", False)
res = train(small_config(sys.argv[1], **cfg), resume=resume)
np.savez(sys.argv[4], *weights(res.model))
with open(sys.argv[4] + ".json", "w") as f:
    json.dump({"chief": res.chief, "history": res.history,
               "test_accuracy": res.test_accuracy}, f)
"""

# Batch 45 on 448 training images: every global batch splits 23 + 22 between
# the workers and the last one is partial (43 = 22 + 21), so the loss must be
# normalised by the all-reduced global count, not local count x replicas.
_CONFIG = {"model_overrides": {"depth": 2, "width": 32}, "epochs": 2, "batch_size": 45,
           "steps_per_execution": 4}


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _env(tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _run_worker(out, config, dump, tf_config=None):
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(out), str(ROOT / "tests"), json.dumps(config),
         str(dump)], cwd=ROOT, env=_env(tf_config), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _load(dump):
    with np.load(str(dump) + ".npz") as f:
        arrays = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    return arrays, json.loads((dump.parent / (dump.name + ".json")).read_text())


def _cluster(out, tmp_path, tag, extra=None):
    """Start a fresh two-worker cluster on loopback; return its worker processes."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return [_run_worker(out, {**_CONFIG, "strategy": "multiworker", **(extra or {})},
                        tmp_path / f"{tag}{i}",
                        {"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(2)]


def _wait_all(procs, timeout=120):
    """Wait for every process; kill all of them if one fails or hangs (a worker
    whose peer died waits in a collective forever)."""
    deadline = time.monotonic() + timeout  # one bound for the whole cluster
    try:
        for p in procs:
            _, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert p.returncode == 0, stderr[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.slow
def test_two_workers_on_loopback_train_like_one_process(tmp_path):
    out = tmp_path / "run"
    procs = _cluster(out, tmp_path, "w")
    # The single-process reference runs alongside (the workers mostly wait on each other).
    single = _run_worker(tmp_path / "single", {**_CONFIG, "jit_compile": False},
                         tmp_path / "single")
    _wait_all([*procs, single])

    (w0, r0), (w1, r1), (ws, rs) = (_load(tmp_path / n) for n in ("w0", "w1", "single"))
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
    import shutil

    shutil.rmtree(out / "checkpoints" / "epoch-0002")
    (out / "model.keras").unlink()
    _wait_all(_cluster(out, tmp_path, "r", {"resume": True}))
    (r0w, r0r), (r1w, _) = _load(tmp_path / "r0"), _load(tmp_path / "r1")
    assert [h["epoch"] for h in r0r["history"]] == [1, 2]
    for a, b, c in zip(w0, r0w, r1w):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert (out / "model.keras").is_file()


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
