"""`python -m activations`: list / describe / plot, and one-line errors."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import activations
from activations import catalogue
from activations.__main__ import PROG, main
from _activations_helpers import REFERENCE
from utils.cli import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(argv, capsys):
    code = run_cli(main, argv, prog=PROG)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_one_row_per_activation(capsys):
    code, out, err = _cli(["list"], capsys)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "parameters", "range", "zero-centred", "monotonic",
                                "saturation"]
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in lines[2:]}
    assert sorted(rows) == activations.list_activations()
    assert rows["sigmoid"] == ["sigmoid", "-", "(0, 1)", "no", "yes", "both sides"]
    assert rows["leaky_relu"][1] == "negative_slope=0.01"


def test_list_pattern_and_describe(capsys):
    code, out, _ = _cli(["list", "hard_*"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 2 + 4
    code, out, _ = _cli(["describe", "softplus"], capsys)
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert fields["parameters"] == "beta=1.0, threshold=20.0"
    assert fields["range"] == r"(0, \infty)"


@pytest.mark.parametrize("argv,needle", [
    (["bogus"], "invalid choice: 'bogus'"),
    (["describe", "softmx"], "Did you mean: softmax"),
    (["describe"], "required: name"),
    (["plot"], "required: --out"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys):
    code, out, err = _cli(argv, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert err.startswith(f"{PROG}: error: ")


def test_unwritable_output_directory_is_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    code, _, err = _cli(["plot", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_module_entry_point_error_is_exactly_one_line():
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("ZOO_TF_VERBOSE", None)
    bad = subprocess.run([sys.executable, "-m", "activations", "describe", "sigmoidd"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    lines = bad.stderr.splitlines()
    assert len(lines) == 1, bad.stderr
    assert lines[0].startswith(
        f"{PROG}: error: Unknown activation 'sigmoidd'. Did you mean: sigmoid")


@pytest.mark.slow
def test_plot_writes_png_grid_and_markdown_table(tmp_path, capsys):
    code, out, _ = _cli(["plot", "--out", str(tmp_path / "report")], capsys)
    assert code == 0
    png, md = tmp_path / "report" / "activations.png", tmp_path / "report" / "activations.md"
    assert out.split() == [str(png), str(md)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    table = [line for line in md.read_text().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in table] == activations.list_activations()
    sigmoid = next(row for row in table if row.startswith("| `sigmoid`"))
    assert sigmoid.endswith("| $(0, 1)$ | no | both sides |")
    assert sorted(p.name for p in md.parent.iterdir()) == ["activations.md", "activations.png"]


def test_failed_report_keeps_the_old_files(tmp_path, monkeypatch):
    (tmp_path / "activations.md").write_text("old table")

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(catalogue, "curves", broken)
    with pytest.raises(RuntimeError):
        catalogue.write_report(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["activations.md"]
    assert (tmp_path / "activations.md").read_text() == "old table"


def test_committed_docs_table_is_current():
    with open(os.path.join(ROOT, "docs", "activations.md"), encoding="utf-8") as f:
        assert f.read() == catalogue.markdown_document(), \
            "regenerate: python -m activations plot --out docs"


@pytest.mark.parametrize("name", activations.list_activations())
def test_plotted_derivative_matches_the_reference(name):
    ref = REFERENCE[name]
    x = np.linspace(-5, 5, 401)
    y, dy = catalogue.curves(name, x)
    if ref.elementwise:
        want_y, want_dy = ref.f(x), ref.df(x)
    else:  # softmax is plotted as softmax([x, 0])[0] = sigmoid(x)
        s = 1 / (1 + np.exp(-x))
        want_y, want_dy = s, s * (1 - s)
    np.testing.assert_allclose(y, want_y, rtol=1e-9, atol=1e-9)
    away = np.ones_like(x, bool)
    for k in ref.kinks():
        away &= np.abs(x - k) > 1e-3
    # A central difference (h = 1e-4) is off by ~h where f'' jumps (softsign at 0).
    np.testing.assert_allclose(dy[away], want_dy[away], rtol=2e-4, atol=2e-4)
