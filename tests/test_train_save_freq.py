"""--save-freq: a run SIGKILLed mid-epoch and resumed ends bitwise equal to an uninterrupted one."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from _train_helpers import (ROOT, assert_bitwise_equal, converted_digits, small_config,
                            weights)

pytestmark = pytest.mark.slow

# The killed run: SIGKILL right after the first checkpoint written inside epoch 2.
_KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import training.checkpoint as ckpt
    from _train_helpers import small_config
    from training import train

    save = ckpt.save
    def save_then_die(directory, epoch, *args, step=0, **kwargs):
        path = save(directory, epoch, *args, step=step, **kwargs)
        if epoch == 1 and step:
            os.kill(os.getpid(), signal.SIGKILL)
        return path
    ckpt.save = save_then_die
    train(small_config({out!r}, save_freq=5, **{overrides!r}))
""")


def _killed_run(out, overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    code = _KILLER.format(tests=str(ROOT / "tests"), out=str(out), overrides=overrides)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    return converted_digits(tmp_path_factory.mktemp("src"))


@pytest.mark.parametrize("where", ["memory", "streamed"])
def test_sigkill_mid_epoch_then_resume_is_bitwise_equal(where, streamed, tmp_path):
    from training import list_checkpoints, train

    overrides = {"epochs": 2} if where == "memory" else \
        {"epochs": 2, "dataset": streamed, "limit": None}
    full = train(small_config(tmp_path / "full", **overrides))
    killed = _killed_run(tmp_path / "run", overrides)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    names = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert names == ["epoch-0001", "epoch-0001-step-000005"]
    resumed = train(small_config(tmp_path / "run", save_freq=5, **overrides), resume=True)
    assert resumed.epochs_completed == 2
    assert_bitwise_equal(weights(resumed.model), weights(full.model))
    assert resumed.history[-1]["loss"] == full.history[-1]["loss"]
