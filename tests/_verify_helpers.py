"""Helpers for the ``export verify`` tests: the emulated arm64 root, and the
artifacts run on it through each runtime's own API.

:func:`arm64_root` backs the session fixture of ``tests/conftest.py``: the
first test that needs the root builds it (``export.verify_root.build_root``,
apt-get installing qemu-user-static and debootstrap where they are missing),
later runs find it cached under ``$ZOO_CACHE`` / ``~/.cache/zoo``. The build
takes a file lock, so two pytest-xdist workers asking at once build it once.

:func:`run_raw_on_arm64` runs ``tests._export_helpers.run_raw`` (the runtimes'
public APIs, not ``export.runtime``) inside the root, so the tests compare the
aarch64 outputs with x86 without going through the code they test.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# The guest side of run_raw_on_arm64: numpy, LiteRT and onnxruntime only.
_GUEST = """
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from tests._export_helpers import run_raw
job = json.load(open(sys.argv[1]))
with np.load(job["inputs"]) as f:
    inputs = {{k: f[k] for k in f.files}}
out = {{}}
for i, path in enumerate(job["artifacts"]):
    for name, x in inputs.items():
        out[f"{{i}}/{{name}}"] = run_raw(path, x)[0]
np.savez(job["outputs"], **out)
"""


def arm64_root() -> Path:
    """The built arm64 root (built here, under its lock, when it is not cached)."""
    import pytest

    from export.verify_root import PrerequisiteError, build_root
    try:
        return build_root(install=True, log=lambda line: print(line, flush=True))
    except PrerequisiteError as exc:
        pytest.fail(f"the emulated arm64 root cannot be built on this machine: {exc}")


def run_raw_on_arm64(paths, inputs: dict, cpu: str = "cortex-a72") -> list[dict]:
    """First outputs of each artifact in ``paths`` on each named input of ``inputs``,
    computed by the aarch64 LiteRT (its default XNNPACK) / onnxruntime on ``cpu``.

    Returns:
        One dict per path, ``{input name: output array}``.
    """
    from export.verify_root import emulated
    with tempfile.TemporaryDirectory(prefix="zoo-test-arm64-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "inputs.npz", **inputs)
        job = {"artifacts": [str(Path(p).resolve()) for p in paths],
               "inputs": str(tmp / "inputs.npz"), "outputs": str(tmp / "outputs.npz")}
        (tmp / "job.json").write_text(json.dumps(job))
        (tmp / "guest.py").write_text(_GUEST.format(root=str(ROOT)))
        with emulated(cpu) as (argv, env):
            proc = subprocess.run([*argv, str(tmp / "guest.py"), str(tmp / "job.json")],
                                  env=env, capture_output=True, text=True, timeout=600,
                                  stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr[-2000:]
        with np.load(tmp / "outputs.npz") as f:
            return [{name: f[f"{i}/{name}"] for name in inputs} for i in range(len(paths))]


def emulator_major() -> int:
    """The major version of the installed qemu-aarch64-static."""
    from export.verify_root import check_qemu
    out = subprocess.run([check_qemu(), "--version"], capture_output=True, text=True).stdout
    return int(out.split("version ")[1].split(".")[0])


def subset_export(src: Path, dst: Path, keep) -> Path:
    """A copy of the export ``src`` whose manifest lists only the artifacts in ``keep``."""
    import shutil

    from export import manifest as manifest_io
    shutil.copytree(src, dst)
    manifest = manifest_io.read(dst)
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] in keep]
    for a in manifest["artifacts"]:
        a.pop("verification", None)
    manifest_io.write(dst, manifest)
    return dst
