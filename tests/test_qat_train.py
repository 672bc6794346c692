"""train.py --qat-epochs: exact resume, the saved QAT model, bad input."""
import numpy as np
import pytest


def cli(argv, capsys):
    """train.py's main through the same run_cli wrapper as the script, in-process."""
    import train
    from utils.cli import run_cli as wrap

    code = wrap(train.main, [str(a) for a in argv], prog="train.py")
    out, err = capsys.readouterr()
    return code, out, err


QUICK = ["--quiet", "--limit", "300", "--no-jit", "--steps-per-execution", "4"]


@pytest.mark.slow
def test_resumed_qat_is_bitwise_equal_to_an_uninterrupted_run(tmp_path, capsys):
    import models
    from models.quantizers import is_quantize_aware
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert cli([*QUICK, "--epochs", "1", "--qat-epochs", "2", "--out", whole], capsys)[0] == 0
    # a finished float run, then its QAT epochs one at a time
    assert cli([*QUICK, "--epochs", "1", "--out", split], capsys)[0] == 0
    assert cli(["--quiet", "--out", split, "--resume", "--qat-epochs", "1"], capsys)[0] == 0
    code, out, _ = cli(["--quiet", "--out", split, "--resume", "--qat-epochs", "2"], capsys)
    assert code == 0 and "resuming" in out
    a, b = (models.load_model(d / "model.keras") for d in (whole, split))
    assert is_quantize_aware(a) and is_quantize_aware(b)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert "QuantDense" in (whole / "audit.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--qat-epochs", "-1"], "qat_epochs must be a non-negative integer"),
    (["--model", "hopfield", "--qat-epochs", "1"], "learns by its own rule"),
    (["--model", "lstm_rows", "--qat-epochs", "1"], "'lstm' (RowLSTM) has no int8"),
])
def test_bad_qat_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    code, _, err = cli([*QUICK, "--epochs", "1", *argv, "--out", out], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0]
    assert not out.exists() or not any(out.iterdir())
