"""The ``openvino`` target of ``export.verify``: Intel's OpenVINO runtime
reads the ONNX and TFLite files itself (its own front ends, its own CPU
kernels) and runs them on this machine's CPU.

The CPU plugin runs float32 models in bfloat16 where the CPU has it, unless
told otherwise: ``INFERENCE_PRECISION_HINT`` is set to f32, so that a float32
artifact is judged by the float32 tolerance. int8 artifacts keep their int8
kernels (the precision hint does not apply to quantized ops); which
precisions ran is read back from the compiled model.
"""
from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from export.runtime import Runner, _load_error, natural_key
from export.verify_root import PrerequisiteError

PACKAGE = "openvino"
DEVICE = "CPU"
CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def _core():
    try:
        import openvino
    except ImportError:
        raise PrerequisiteError(f"OpenVINO is not installed: `pip install -r requirements.txt` "
                                f"installs the pinned {PACKAGE} package.") from None
    return openvino


class OpenVinoRunner(Runner):
    """Runs an ``.onnx`` or ``.tflite`` file with OpenVINO on the CPU, any batch size.

    Args:
        output_names: the artifact's output tensor names in our output order
            (OpenVINO keeps the file's own tensor names); default: natural order.
    """

    kind = "openvino"

    def __init__(self, path, output_names=None):
        super().__init__(path)
        ov = _core()
        core = ov.Core()
        try:
            model = core.read_model(str(path))
            batchless = {i: ov.PartialShape([-1, *list(i.get_partial_shape())[1:]])
                         for i in model.inputs}
            model.reshape(batchless)  # a TFLite file fixes batch 1 in its tensors
            self.compiled = core.compile_model(model, DEVICE, CONFIG)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses
            raise _load_error("OpenVINO", path, exc) from exc
        outputs = {o.get_any_name(): o for o in self.compiled.outputs}
        names = list(output_names) if output_names else sorted(outputs, key=natural_key)
        self._outputs = [outputs[n] for n in names]
        self.input_spec = [{"name": i.get_any_name(), "dtype": "float32",
                            "shape": [None, *[d.get_length() for d in list(
                                i.get_partial_shape())[1:]]]} for i in self.compiled.inputs]
        self.output_spec = [{"name": n, "dtype": "float32", "shape": [None]} for n in names]

    def precisions(self) -> list[str]:
        """The precisions the compiled model's nodes run in (f32, i8, u8, ...)."""
        nodes = self.compiled.get_runtime_model().get_ops()
        return sorted({str(n.get_rt_info()["runtimePrecision"].astype(str)) for n in nodes})

    def _run(self, arrays):
        try:
            result = self.compiled(arrays)
        except Exception as exc:  # noqa: BLE001
            raise _load_error("OpenVINO", self.path, exc, doing="run") from exc
        return [np.asarray(result[o]) for o in self._outputs]


class OpenVinoBackend:
    """Runs batches through OpenVINO in this process."""

    def __init__(self):
        _core()

    def engine_name(self, engine: str) -> str:
        return "OpenVINO CPU f32"

    def x86_engine(self, engine: str, fmt: str) -> str:
        return "onnxruntime" if fmt == "onnx" else "xnnpack"  # the artifact's own runtime

    def describe(self, engine: str) -> dict:
        try:
            release = version(PACKAGE)
        except PackageNotFoundError:
            release = None
        return {"runtime": f"{PACKAGE} {release}", "device": DEVICE, **CONFIG}

    def run(self, path, engine: str, inputs) -> tuple[list | None, dict, str | None]:
        from export.verify_worker import load_runner
        x86 = load_runner(path, self.x86_engine(engine, path.suffix.lstrip(".")))
        try:
            runner = OpenVinoRunner(path, output_names=_tensor_names(x86))
            start = time.perf_counter()
            outputs = [runner.run(b) for b in inputs]
        except Exception as exc:  # noqa: BLE001 - reported as this artifact's failure
            return None, {}, " ".join(str(exc).split())[:300]
        facts = {"kernels": sorted({str(n.get_rt_info()["layerType"].astype(str))
                                    for n in runner.compiled.get_runtime_model().get_ops()}),
                 "precisions": runner.precisions(),
                 "seconds": round(time.perf_counter() - start, 4)}
        return outputs, facts, None


def _tensor_names(runner) -> list[str]:
    """The output tensor names of an x86 runner, in its output order."""
    if runner.kind == "tflite":
        return [d["name"] for d in runner._out]
    return list(runner._out_names)
