"""The onnxruntime runner behind :class:`export.runtime.Runner` (CPU provider)."""
from __future__ import annotations

from export.runtime import Runner, _load_error, _spec, natural_key


class OnnxRunner(Runner):
    """Runs an ``.onnx`` file with onnxruntime's CPU provider."""

    kind = "onnx"

    def __init__(self, path, num_threads=None):
        super().__init__(path)
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(num_threads or 0)  # 0: all cores
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail, InvalidGraph, ...
            raise _load_error("onnxruntime", path, exc) from exc
        self._inputs = sorted(self.session.get_inputs(), key=lambda t: natural_key(t.name))
        self._outputs = sorted(self.session.get_outputs(), key=lambda t: natural_key(t.name))
        self.input_spec = [_spec(t.name, _ort_shape(t.shape), _ort_dtype(t.type))
                           for t in self._inputs]
        self.output_spec = [_spec(t.name, _ort_shape(t.shape), _ort_dtype(t.type))
                            for t in self._outputs]
        self._out_names = [t.name for t in self._outputs]

    def _run(self, arrays):
        feed = {t.name: a for t, a in zip(self._inputs, arrays)}
        try:
            return self.session.run(self._out_names, feed)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail/RuntimeException on a bad file
            raise _load_error("onnxruntime", self.path, exc, doing="run") from exc


def _ort_shape(shape):
    return [d if isinstance(d, int) else None for d in shape]


def _ort_dtype(type_str: str):
    # onnxruntime reports "tensor(float)", "tensor(int8)", ...
    inner = type_str[type_str.find("(") + 1:type_str.rfind(")")]
    return {"float": "float32", "double": "float64", "float16": "float16"}.get(inner, inner)
