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
def test_unknown_target_or_cpu_is_one_line_exit_2(tmp_path, args, words, capsys):
    code, lines = _in_process([str(tmp_path), *args], capsys)
    assert code == 2
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    assert list(tmp_path.iterdir()) == []


def test_not_an_export_directory_is_one_line_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    proc = _verify(str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "manifest" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.fixture(scope="module")
def float_export(tmp_path_factory):
    """An untrained float32 export (the prerequisites fail before any number matters)."""
    import export
    from tests._export_helpers import tiny_model
    out = tmp_path_factory.mktemp("prereq") / "out"
    export.export_model(tiny_model(), out, formats=["tflite"])
    return out


def _in_process(args, capsys):
    from export.__main__ import PROG, main
    from utils.cli import run_cli
    code = run_cli(main, ["verify", *args], PROG)
    return code, capsys.readouterr().err.strip().splitlines()


def _tree(path):
    return {p: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("missing, words", [
    ("qemu", ["qemu-aarch64-static not found", "apt-get install qemu-user-static"]),
    ("root", ["is not built", "python -m export verify --build-root"]),
])
def test_a_missing_prerequisite_is_one_line_exit_2_nothing_written(
        float_export, tmp_path, monkeypatch, capsys, missing, words):
    from export import verify_root
    if missing == "qemu":
        monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-aarch64-static on it
    else:
        monkeypatch.setattr(verify_root, "check_qemu", lambda: "/usr/bin/qemu-aarch64-static")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    before = _tree(float_export)
    code, lines = _in_process([str(float_export), "--cpu", "cortex-a53"], capsys)
    assert code == 2 and len(lines) == 1 and all(w in lines[0] for w in words), lines
    assert _tree(float_export) == before
    assert not (tmp_path / "cache").exists()


def test_build_root_without_the_tools_or_root_is_one_line_exit_2_nothing_written(
        tmp_path, monkeypatch, capsys):
    import os
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu, debootstrap, dpkg-deb, apt-get
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, lines = _in_process(["--build-root"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert ("Missing debootstrap, dpkg, qemu-user-static: install with `apt-get install "
            "debootstrap dpkg qemu-user-static`") in lines[0]
    assert sorted(tmp_path.iterdir()) == []
