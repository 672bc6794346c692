"""The command line: export prints the artifacts with sizes and validation;
the manifest's sizes and hashes are the files'; bench times every artifact."""
import hashlib
import json

import pytest

from export.__main__ import PROG, main
from tests._export_helpers import tiny_model
from utils.cli import run_cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    tiny_model().save(d / "tiny.keras")
    return d


@pytest.mark.slow
def test_export_command_writes_a_true_manifest(exported, capsys):
    out = exported / "out"
    assert run_cli(main, [str(exported / "tiny.keras"), "--out", str(out)], PROG) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["params"] == 4 * 6 + 6 + 6 * 3 + 3
    assert manifest["source"]["path"] == str(exported / "tiny.keras")
    assert {"tensorflow", "keras", "tf2onnx", "onnxruntime", "ai-edge-litert"} <= set(
        manifest["tool_versions"])
    for a in manifest["artifacts"]:
        path = out / a["path"]
        assert f"`{a['path']}`" in printed
        if path.is_file():
            data = path.read_bytes()
            assert a["size_bytes"] == len(data)
            assert a["sha256"] == hashlib.sha256(data).hexdigest()
        else:  # SavedModel directory: sum of its files
            assert a["size_bytes"] == sum(p.stat().st_size for p in path.rglob("*")
                                          if p.is_file())
        assert a["inputs"] == [{"name": "input", "shape": [None, 4], "dtype": "float32"}]
        assert a["outputs"][0]["name"] == "output_0"
        assert a["outputs"][0]["shape"] == [None, 3]
    assert (out / "manifest.md").read_text().count("| `") == 3
    assert printed.count("max abs diff") == 3


@pytest.mark.slow
def test_bench_times_every_artifact(exported, capsys):
    out = exported / "out"
    if not (out / "manifest.json").exists():
        assert run_cli(main, [str(exported / "tiny.keras"), "--out", str(out)], PROG) == 0
    capsys.readouterr()
    assert run_cli(main, ["bench", str(out), "--threads", "1", "--batches", "1,4"], PROG) == 0
    table = capsys.readouterr().out.strip().splitlines()
    rows = [r for r in table[2:] if r.startswith("| `")]
    assert [r.split("|")[2].strip() for r in rows] == ["keras", "saved_model", "onnx", "tflite"]
    for r in rows:
        ms = [float(c) for c in r.strip("|").split("|")[-2:]]
        assert all(m > 0 for m in ms), r
