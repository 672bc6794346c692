"""The ``aarch64`` target of ``export.verify``: artifacts run by
:mod:`export.verify_worker` in the emulated arm64 root, one process per
artifact and engine, so that a crash is attributed to exactly one of them."""
from __future__ import annotations

import json
import subprocess
import tempfile
from importlib.metadata import version
from pathlib import Path

from export.verify_root import QEMU, check_qemu, emulated, require_root
from export.verify_worker import batches as load_batches
from export.verify_worker import save_batches
from utils.isolation import signal_name

_REPO = Path(__file__).resolve().parent.parent
_WORKER = Path(__file__).resolve().parent / "verify_worker.py"
ENGINE_NAMES = {"xnnpack": "LiteRT XNNPACK", "builtin": "LiteRT builtin kernels",
                "onnxruntime": "onnxruntime"}
_PACKAGES = {"xnnpack": "ai-edge-litert", "builtin": "ai-edge-litert",
             "onnxruntime": "onnxruntime"}
# An emulated run of one artifact takes seconds; minutes means it hangs.
TIMEOUT_S = 600


class EmulatedBackend:
    """Runs batches through the aarch64 runtimes on an emulated ``cpu``."""

    def __init__(self, cpu: str):
        self.root = require_root()
        self.cpu = cpu
        out = subprocess.run([check_qemu(), "--version"], capture_output=True, text=True)
        self.emulator = (out.stdout.splitlines() or [QEMU])[0]

    def engine_name(self, engine: str) -> str:
        return ENGINE_NAMES[engine]

    def x86_engine(self, engine: str, fmt: str) -> str:
        return engine  # the same kernels' x86 build

    def describe(self, engine: str) -> dict:
        package = _PACKAGES[engine]
        return {"runtime": f"{package} {version(package)} (aarch64 wheel)",
                "emulator": self.emulator}

    def run(self, path, engine: str, inputs) -> tuple[list | None, dict, str | None]:
        """``(outputs per batch, facts, error)``: the facts name the kernels that ran."""
        with tempfile.TemporaryDirectory(prefix="zoo-verify-") as tmp:
            tmp = Path(tmp)
            save_batches(tmp / "inputs.npz", inputs)
            job = {"artifact": str(Path(path).resolve()), "engine": engine,
                   "inputs": str(tmp / "inputs.npz"), "outputs": str(tmp / "outputs.npz"),
                   "report": str(tmp / "report.json")}
            (tmp / "job.json").write_text(json.dumps(job))
            with emulated(self.cpu, self.root) as (argv, env):
                env["PYTHONPATH"] += f":{_REPO}"
                try:
                    proc = subprocess.run([*argv, str(_WORKER), str(tmp / "job.json")], env=env,
                                          capture_output=True, text=True, timeout=TIMEOUT_S,
                                          stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    return None, {}, f"the emulated run did not finish within {TIMEOUT_S} s"
            if proc.returncode or not (tmp / "report.json").exists():
                return None, {}, _crash(proc)
            report = json.loads((tmp / "report.json").read_text())
            outputs = load_batches(tmp / "outputs.npz")
        kernels = sorted(set(report["kernels"]))
        facts = {"kernels": kernels, "delegate": "DELEGATE" in kernels,
                 "seconds": report["seconds"], "machine": report["machine"]}
        return outputs, facts, None


def _crash(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("INFO:")]
    last = lines[-1][:200] if lines else "no output"
    if proc.returncode < 0:
        return f"the emulated runtime crashed ({signal_name(-proc.returncode)}): {last}"
    return f"the emulated runtime exited with status {proc.returncode}: {last}"
