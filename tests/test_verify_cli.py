"""`python -m export verify`: bad input is one line and exit status 2, nothing written."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _verify(*args):
    return subprocess.run([sys.executable, "-m", "export", "verify", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, words", [
    (["--target", "armv7"], ["Unknown verify target 'armv7'", "aarch64, openvino"]),
    (["--cpu", "cortex-a99"], ["Unknown emulated CPU 'cortex-a99'", "cortex-a72"]),
    (["--target", "openvino", "--cpu", "cortex-a72"], ["--cpu applies to --target aarch64"]),
])
def test_unknown_target_or_cpu_is_one_line_exit_2(tmp_path, args, words):
    proc = _verify(str(tmp_path), *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_not_an_export_directory_is_one_line_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    proc = _verify(str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "manifest" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
