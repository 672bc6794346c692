"""Hostile files, as a suite.

Every case goes through a real command line (in-process, through ``run_cli``)
and must end in one line on stderr and exit status 2: no traceback, no crash
of the command (a runtime that dies does so in an isolated child), no code run
from the file (``tests/_hostile_payload.py`` leaves a marker if it is ever
imported or called), nothing written outside ``--out``, and an earlier result
in ``--out`` intact.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests._evaluate_helpers import crashing_tflite
from utils.cli import run_cli

pytestmark = pytest.mark.slow  # ~40 s in all: real artifacts, real runtimes

MARKER_ENV = "ZOO_HOSTILE_MARKER"
UNWRITABLE = Path("/sys/zoo-hostile")  # sysfs: mkdir there fails even for root


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small 32x32 classifier as .keras and as a validated export of every format."""
    import keras

    import export

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs, name="hostile_target")
    directory = tmp_path_factory.mktemp("good")
    model.save(directory / "model.keras")
    export.export_model(model, directory / "export")
    return directory


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """The workspace: hostile files go here; the marker must never appear."""
    import sys

    monkeypatch.setenv(MARKER_ENV, str(tmp_path / "MARKER"))
    # Importing the payload runs it: an earlier test must not have imported it already.
    monkeypatch.delitem(sys.modules, "tests._hostile_payload", raising=False)
    return tmp_path


def _tree(root: Path, skip: Path | None = None) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() and not p.is_symlink() else "dir"
            for p in sorted(root.rglob("*"))
            if skip is None or not (p == skip or skip in p.parents)}


COMMANDS = {
    "evaluate": ("evaluate", "evaluate.py"),
    "export": ("export.__main__", "python -m export"),
    "models": ("models.__main__", "python -m models"),
    "train": ("train", "train.py"),
    "activations": ("activations.__main__", "python -m activations"),
}


def refused(ws: Path, command: str, argv: list, capsys, *, out: Path | None = None,
            expect: str = "") -> str:
    """Run a command line; assert the hostile-input contract; return its error line."""
    import importlib

    module, prog = COMMANDS[command]
    outside = _tree(ws, skip=out)
    earlier = _tree(out) if out is not None and out.is_dir() else None
    earlier_file = out.read_bytes() if out is not None and out.is_file() else None
    code = run_cli(importlib.import_module(module).main, [str(a) for a in argv], prog=prog)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    assert "Traceback" not in err[0] and "internal error" not in err[0]
    assert expect.lower() in err[0].lower(), err[0]
    assert not (ws / "MARKER").exists(), "code from the file ran"
    assert _tree(ws, skip=out) == outside, "something was written outside --out"
    if earlier is not None:
        assert _tree(out) == earlier, "the earlier result in --out changed"
    if earlier_file is not None:
        assert out.read_bytes() == earlier_file
    return err[0]


# --------------------------------------------------------------- .keras archives
def _rewrite_keras(src: Path, dst: Path, config=None, extra: dict | None = None) -> Path:
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if config is not None:
        members["config.json"] = json.dumps(config(json.loads(members["config.json"]))).encode()
    members.update(extra or {})
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return dst


def _dense_activation(function: dict):
    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["config"]["activation"] = function
        return config
    return edit


def _extra_layer_class(module: str, name: str):
    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["module"], layer["class_name"], layer["registered_name"] = module, name, None
        return config
    return edit


def _declared_size(src: Path, dst: Path, member: str, size: int) -> Path:
    """A copy whose central directory declares ``size`` bytes for ``member``."""
    data = bytearray(src.read_bytes())
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + length]) == name:
            struct.pack_into("<I", data, at + 24, size)  # uncompressed size
            break
        at = data.find(b"PK\x01\x02", at + 4)
    assert at >= 0
    dst.write_bytes(bytes(data))
    return dst


def keras_cases(good: Path, ws: Path) -> dict:
    src = good / "model.keras"
    payload = {"module": "tests._hostile_payload", "class_name": "function", "config": "run",
               "registered_name": "function"}
    data = src.read_bytes()
    (ws / "truncated.keras").write_bytes(data[:len(data) // 2])
    return {
        "module_function": (_rewrite_keras(src, ws / "call.keras", _dense_activation(payload)),
                            "not registered"),
        "module_class": (_rewrite_keras(src, ws / "system.keras",
                                        _extra_layer_class("os", "system")), "not registered"),
        "declared_size": (_declared_size(src, ws / "bomb.keras", "model.weights.h5",
                                         3_000_000_000), "declares 3,000,000,000 bytes"),
        "dotdot_member": (_rewrite_keras(src, ws / "escape.keras",
                                         extra={"../../escaped.txt": b"x"}),
                          "points outside the archive"),
        "truncated": (ws / "truncated.keras", "not a valid .keras archive"),
    }


@pytest.mark.parametrize("case", ["module_function", "module_class", "declared_size",
                                  "dotdot_member", "truncated"])
def test_crafted_keras_archives(good, ws, capsys, case):
    path, expect = keras_cases(good, ws)[case]
    out = ws / "out"
    refused(ws, "evaluate", [path, "--dataset", "digits", "--limit", "20", "--quiet"], capsys,
            expect=expect)
    refused(ws, "export", [path, "--out", out], capsys, out=out, expect=expect)
    assert not out.exists()
    refused(ws, "models", ["audit", path], capsys, expect=expect)
    assert not (ws / "escaped.txt").exists() and not (ws.parent / "escaped.txt").exists()


# ---------------------------------------------------------------------- ONNX
def _onnx(path: Path, initializer) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 32, 32, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])], [initializer])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _external(dims, location, length):
    from onnx import TensorProto

    tensor = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=dims,
                         data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


@pytest.mark.parametrize("case, expect", [
    ("outside", "points outside the directory"),
    ("absolute", "should be a relative path"),
    ("huge", "declares 40,000,000,000 bytes"),
])
def test_crafted_onnx(ws, capsys, case, expect):
    secret = ws / "secret.bin"
    secret.write_bytes(np.ones(10240, np.float32).tobytes())
    folder = ws / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"\0" * 64)
    location = {"outside": "../secret.bin", "absolute": str(secret), "huge": "w.bin"}[case]
    dims = [100_000, 100_000] if case == "huge" else [1024, 10]
    path = _onnx(folder / "m.onnx", _external(dims, location, 4 * dims[0] * dims[1]))
    refused(ws, "evaluate", [path, "--dataset", "digits", "--limit", "20", "--quiet"], capsys,
            expect=expect)


# --------------------------------------------------------------------- TFLite
@pytest.mark.parametrize("case", ["truncated", "flip0", "flip1", "flip_middle", "crafted_crash"])
def test_broken_tflite(good, ws, capsys, case):
    data = bytearray((good / "export" / "model.tflite").read_bytes())
    path = ws / f"{case}.tflite"
    if case == "truncated":
        path.write_bytes(bytes(data[:len(data) // 3]))
    elif case == "crafted_crash":
        crashing_tflite(good / "export" / "model.tflite", path)
    elif case == "flip_middle":
        # A flipped weight still loads and runs: only the export's manifest can tell.
        shutil.copytree(good / "export", ws / "export")
        path = ws / "export" / "model.tflite"
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        data[{"flip0": 0, "flip1": 1}[case]] ^= 0x80
        path.write_bytes(bytes(data))
    target = ws / "export" if case == "flip_middle" else path
    refused(ws, "evaluate", [target, "--dataset", "digits", "--limit", "20", "--quiet"], capsys,
            expect=path.name)


# ------------------------------------------------------------------ manifests
@pytest.mark.parametrize("rel", ["../stolen.tflite", "ABSOLUTE", "link.tflite"])
def test_manifest_paths_leaving_the_directory(good, ws, capsys, rel):
    directory = ws / "export"
    shutil.copytree(good / "export", directory)
    stolen = ws / "stolen.tflite"
    shutil.copy(good / "export" / "model.tflite", stolen)
    (directory / "link.tflite").symlink_to(stolen)
    rel = str(stolen) if rel == "ABSOLUTE" else rel
    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in manifest["artifacts"]:
        if entry["path"] == "model.tflite":
            entry["path"] = rel
    (directory / "manifest.json").write_text(json.dumps(manifest))
    refused(ws, "evaluate", [directory, "--dataset", "digits", "--limit", "20", "--quiet"],
            capsys, expect="outside")
    refused(ws, "export", ["bench", directory, "--threads", "1", "--batches", "1"], capsys,
            expect="outside")


def test_bench_of_an_artifact_that_crashes_its_runtime(good, ws, capsys):
    from export import manifest as manifest_io

    directory = ws / "export"
    shutil.copytree(good / "export", directory)
    crashing_tflite(good / "export" / "model.tflite", directory / "model.tflite")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] == "model.tflite"]
    size, digest = manifest_io.sha256(directory / "model.tflite")
    manifest["artifacts"][0].update(size_bytes=size, sha256=digest)  # a crafted, "valid" export
    (directory / "manifest.json").write_text(json.dumps(manifest))
    refused(ws, "export", ["bench", directory, "--threads", "1", "--batches", "1"], capsys,
            expect="crashed its runtime (SIG")  # SIGSEGV or SIGBUS, depending on the pages


# ------------------------------------------------------------------ datasets
class _Payload:
    """Unpickling this runs tests._hostile_payload.run (it creates the marker)."""

    def __reduce__(self):
        from tests._hostile_payload import run
        return run, ()


def test_npz_with_pickled_objects(good, ws, capsys):
    marker = Path(os.environ[MARKER_ENV])
    evil = ws / "evil.npz"
    objects = np.empty(4, dtype=object)
    objects[:] = [_Payload()] * 4
    np.savez(evil, x=objects, y=np.arange(4))
    shutil.rmtree(marker, ignore_errors=True)  # pickling imported the payload module
    out = ws / "run"
    refused(ws, "train", ["--dataset", evil, "--epochs", 1, "--quiet", "--out", out], capsys,
            out=out, expect="allow_pickle")
    refused(ws, "evaluate", [good / "export" / "model.tflite", "--dataset", evil, "--quiet"],
            capsys, expect="allow_pickle")


def _png(width: int, height: int) -> bytes:
    """A tiny PNG file that declares ``width`` x ``height`` 1-bit pixels."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("case, expect", [
    ("bomb", "decompression bomb"),
    ("bomb_warning_size", "decompression bomb"),
    ("zero_bytes", "cannot identify image file"),
    ("not_an_image", "cannot identify image file"),
    ("no_images", "contains no images"),
])
def test_image_folders(ws, capsys, case, expect):
    from PIL import Image

    folder = ws / "images"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        Image.new("L", (32, 32), 100 if label == "a" else 200).save(folder / label / "ok.png")
    bad = folder / "b" / "bad.png"
    if case == "bomb":
        bad.write_bytes(_png(50_000, 50_000))  # 2.5e9 pixels
    elif case == "bomb_warning_size":
        bad.write_bytes(_png(12_000, 12_000))  # between PIL's warning and error limits
    elif case == "zero_bytes":
        bad.write_bytes(b"")
    elif case == "not_an_image":
        bad.write_text("this is a text file with a .png name")
    else:
        (folder / "b" / "ok.png").unlink()
        (folder / "b" / "notes.txt").write_text("not an image")
    out = ws / "run"
    refused(ws, "train", ["--dataset", folder, "--epochs", 1, "--quiet", "--out", out], capsys,
            out=out, expect=expect)


# ------------------------------------------------------- unwritable and full outputs
def _output_commands(good: Path, out: Path) -> dict:
    tflite = good / "export" / "model.tflite"
    return {
        "export": ("export", [good / "model.keras", "--out", out, "--formats", "tflite"]),
        "evaluate_report": ("evaluate", [tflite, "--dataset", "digits", "--limit", "20",
                                         "--quiet", "--report", out]),
        "evaluate_json": ("evaluate", [tflite, "--dataset", "digits", "--limit", "20",
                                       "--quiet", "--json", out / "r.json"]),
        "audit": ("models", ["audit", "exam_mlp", "--out", out / "audit.md"]),
        "plot": ("activations", ["plot", "--out", out]),
        "train": ("train", ["--epochs", 1, "--limit", 64, "--quiet", "--out", out]),
    }


@pytest.mark.parametrize("command", ["export", "evaluate_report", "evaluate_json", "audit",
                                     "plot", "train"])
@pytest.mark.parametrize("where", ["sysfs", "under_a_file"])
def test_unwritable_output_location(good, ws, capsys, command, where):
    if where == "sysfs":
        out = UNWRITABLE / "out"
    else:
        (ws / "a_file").write_text("a file where a directory should be")
        out = ws / "a_file" / "out"
    name, argv = _output_commands(good, out)[command]
    refused(ws, name, argv, capsys)


@pytest.fixture
def full_disk():
    """While active, no file of this process may grow past ``limit`` bytes (EFBIG):
    what a full output location looks like to the writer."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def fill(limit: int):
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))

    yield fill
    resource.setrlimit(resource.RLIMIT_FSIZE, old)
    signal.signal(signal.SIGXFSZ, old_handler)


@pytest.mark.parametrize("command, limit", [("export", 20_000), ("audit", 300),
                                            ("plot", 20_000)])
def test_full_output_location_keeps_the_earlier_result(good, ws, capsys, full_disk, command,
                                                       limit):
    import importlib

    out = ws / "out"
    name, argv = _output_commands(good, out)[command]
    module, prog = COMMANDS[name]
    # A first run succeeds: that is the earlier result which must survive.
    assert run_cli(importlib.import_module(module).main, [str(a) for a in argv], prog=prog) == 0
    capsys.readouterr()
    full_disk(limit)
    # The exporter's SavedModel writer is TensorFlow's, which names the error without
    # an errno; utils.cli.filesystem_failure finds it, so every command gives the hint.
    err = refused(ws, name, argv, capsys, out=out / "audit.md" if command == "audit" else out,
                  expect="the output location is full")
    assert "File too large" in err


def test_full_output_location_for_a_new_run(good, ws, capsys, full_disk):
    out = ws / "run"
    name, argv = _output_commands(good, out)["train"]
    full_disk(20_000)
    refused(ws, name, argv, capsys, out=out, expect="the output location is full")
