"""The TFLite Micro interpreter behind the :class:`export.runtime.Runner`
interface, and the measurement of the smallest tensor arena.

TFLite Micro runs one sample per ``invoke`` in a fixed arena; the runner
feeds a batch sample by sample and quantizes/dequantizes int8 I/O with each
tensor's scale and zero point, so callers pass and get floats as with every
other runner. :func:`smallest_arena` finds, in 16-byte steps,
the smallest arena in which the interpreter allocates and runs the model;
:func:`arena_with_margin` adds :data:`ARENA_MARGIN` for the device build.
"""
from __future__ import annotations

import math
import os
import re
import signal
from pathlib import Path

import numpy as np

from export.errors import ExportError, ModelLoadError, UnsupportedOpsError
from export.runtime import Runner, _spec, natural_key
from export.runtime_tflite import _dequantize, _quantize

ARENA_ALIGN = 16
# Margin on top of the measured arena, for what the host measurement cannot
# see on a device: allocator and alignment differences between builds and
# scratch buffers that optimized kernels (CMSIS-NN, ESP-NN) request on top of
# the reference kernels measured here. The host build is 64-bit, so its
# pointer-holding structures are larger than a 32-bit MCU's: the measurement
# itself errs on the safe side. 25%, at least 1 KiB.
ARENA_MARGIN = 0.25
ARENA_MARGIN_MIN = 1024
# No model fits in less: the allocator's own structures take ~450 bytes.
ARENA_FLOOR = 512


def _align(n: int) -> int:
    return int(math.ceil(n / ARENA_ALIGN) * ARENA_ALIGN)


def arena_with_margin(smallest: int) -> int:
    """The arena size to declare on the device for a measured ``smallest``."""
    return _align(smallest + max(ARENA_MARGIN_MIN, smallest * ARENA_MARGIN))


def _io_names(content: bytes) -> tuple[list[str], list[str]]:
    """Input and output names (signature keys when present) in subgraph order."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model = schema.Model.GetRootAs(content, 0)
    graph = model.Subgraphs(0)
    ins = [graph.Inputs(i) for i in range(graph.InputsLength())]
    outs = [graph.Outputs(i) for i in range(graph.OutputsLength())]
    names = {t: graph.Tensors(t).Name().decode() for t in ins + outs}
    if model.SignatureDefsLength():
        sig = model.SignatureDefs(0)
        for i in range(sig.InputsLength()):
            names[sig.Inputs(i).TensorIndex()] = sig.Inputs(i).Name().decode()
        for i in range(sig.OutputsLength()):
            names[sig.Outputs(i).TensorIndex()] = sig.Outputs(i).Name().decode()
    return [names[t] for t in ins], [names[t] for t in outs]


def _interpreter(content: bytes, arena_size: int, quiet: bool = True):
    from tflite_micro import runtime

    from utils.stderr import silenced_stderr_fd
    if not quiet:
        return runtime.Interpreter.from_bytes(content, arena_size=int(arena_size))
    with silenced_stderr_fd():  # TFLite Micro reports allocation failures on fd 2
        return runtime.Interpreter.from_bytes(content, arena_size=int(arena_size))


def _probe(content: bytes, arena_size: int, inputs) -> tuple[str | None, int | None]:
    """Run the model once in ``arena_size`` bytes.

    Returns:
        ``(why it failed or None, bytes)``: on success the arena TFLite
        Micro's recording allocator reports as used, on failure the bytes its
        last failed allocation reported missing (None where it said nothing).

    Each probe runs in a forked copy of the (light) search process, with fds
    1 and 2 sent to a file: when an allocation fails inside a kernel's Prepare, TFLite Micro's
    Python wrapper can go on with a null buffer and die of SIGSEGV (the exam
    network does at 8 KiB), and some kernels abort instead of raising (int8
    SOFTMAX on logits of a tiny scale). A fork costs milliseconds and needs
    no re-import, where a fresh interpreter per probe would cost a second.
    """
    import faulthandler
    import tempfile
    with tempfile.TemporaryFile() as log:
        pid = os.fork()
        if pid == 0:  # the probe: reports through its output and exit status only
            faulthandler.disable()  # a crash is an answer here, not a bug to dump
            os.dup2(log.fileno(), 1)  # TFLite Micro prints its reports to stdout,
            os.dup2(log.fileno(), 2)  # Python errors go to stderr
            try:
                interp = _interpreter(content, arena_size, quiet=False)
                for i, x in enumerate(inputs):
                    interp.set_input(x, i)
                interp.invoke()
                interp.print_allocations()
                code = 0
            except BaseException as exc:  # noqa: BLE001 (any failure is the answer)
                os.write(2, ("\nFAILED: " + " ".join(str(exc).split())[:200]).encode())
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        log.seek(0)
        text = log.read().decode(errors="replace")
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    found = re.findall(r"Arena allocation total (\d+) bytes" if ok else r"missing: (\d+)", text)
    number = int(found[-1]) if found else None
    if os.WIFSIGNALED(status):
        return f"the interpreter died of {signal.Signals(os.WTERMSIG(status)).name}", number
    if not ok:
        return _failure_reason(text), number
    return None, number


def _failure_reason(log: str) -> str:
    """TFLite Micro's own account of a failed run: the kernel that failed and
    why ("Node SQRT (number 3) failed to invoke", after the check that failed)."""
    lines = [l.strip() for l in log.splitlines() if l.strip()]
    for i, line in enumerate(lines):
        if re.match(r"Node \w+ \(number \d+\) failed to (prepare|invoke)", line):
            cause = lines[i - 1].split(" ", 1)[-1] if i and "was not true" not in lines[i - 1] \
                else ""
            return line + (f" ({cause})" if cause else "")
    return log.rsplit("FAILED: ", 1)[-1].strip() or "it failed"


def smallest_arena(path) -> int:
    """The smallest arena (a multiple of 16 bytes) in which TFLite Micro's
    interpreter allocates every tensor of the ``.tflite`` file and runs it once.

    The search runs in one light child process (``utils.isolation``: numpy,
    LiteRT and TFLite Micro, no TensorFlow) that forks once per probe, so a
    crashing probe costs neither this process nor a re-import.

    Raises:
        UnsupportedOpsError: a TFLite Micro kernel refuses the model (named).
        ExportError: TFLite Micro fails or crashes on the model in any arena.
    """
    from utils.isolation import call_isolated
    found = call_isolated("export.micro_runtime:_arena_worker", {"path": str(path)},
                          what=f"TFLite Micro's arena search on {str(path)!r}",
                          crash_error=ExportError)
    if found.get("kernel"):  # allocation succeeded: the kernel itself refuses the model
        op = found["kernel"]
        raise UnsupportedOpsError(
            f"TFLite Micro's {op} kernel cannot run this fully-int8 model: "
            f"{found['reason']}. Replace the layer that lowers to {op}, or export to "
            "tflite instead.", [op])
    if found.get("reason"):
        raise ExportError(f"TFLite Micro cannot run the converted model even in a "
                          f"64 MiB arena: {found['reason']}{_hint(Path(path).read_bytes())}")
    return found["arena"]


def _arena_worker(payload: dict, report_progress=None) -> dict:
    """The search of :func:`smallest_arena`, in the isolated child.

    Starts from what TFLite Micro's recording allocator reports a run used
    (it leaves out temporary allocations of Prepare), then grows by what each
    failed allocation reports missing, and ends when that size works and 16
    bytes less does not; a bisection settles any case those steps miss.

    Returns:
        ``{"arena": bytes}``, or ``{"reason": ..., "kernel": op or None}``.
    """
    from ai_edge_litert.interpreter import Interpreter
    from tflite_micro import runtime
    content = Path(payload["path"]).read_bytes()
    inputs = [np.zeros(d["shape"], d["dtype"])
              for d in Interpreter(model_content=content).get_input_details()]
    # tflite_micro's Interpreter counts resource variables by unpacking the
    # whole flatbuffer into Python objects, ~0.1 s per probe for a 47 KB model;
    # the count is the same for every probe, so this worker counts once.
    variables = runtime.count_resource_variables(content)
    runtime.count_resource_variables = lambda model: variables
    high = _align(max(4 * len(content), 4096))
    while (found := _probe(content, high, inputs))[0] is not None:
        # A kernel that fails to invoke refuses the model; one that fails to
        # prepare may only lack memory, until even 64 MiB does not help.
        node = re.match(r"Node (\w+) \(number \d+\) failed to (invoke|prepare)", found[0])
        kernel = node.group(1) if node and (node.group(2) == "invoke" or high >= 1 << 26) \
            else None
        if kernel or high >= 1 << 26:
            return {"reason": found[0], "kernel": kernel}
        high *= 4
    low, size = ARENA_FLOOR - ARENA_ALIGN, _align(found[1] or ARENA_FLOOR)
    for _ in range(16):  # follow the allocator's own "missing: N bytes"
        if not low < size < high:
            break
        reason, missing = _probe(content, size, inputs)
        if reason is None:
            high = size
            size -= ARENA_ALIGN
        else:
            low = size
            if not missing:
                break
            size = _align(size + missing)
        if high - low <= ARENA_ALIGN:
            return {"arena": high}
    while high - low > ARENA_ALIGN:  # bisection between a failing and a working size
        mid = min(_align((low + high) // 2), high - ARENA_ALIGN)
        if _probe(content, mid, inputs)[0] is None:
            high = mid
        else:
            low = mid
    return {"arena": high}


def _hint(content: bytes) -> str:
    from export.tflite_convert import tflite_ops
    ops = tflite_ops(content)["ops"]
    hint = f" (ops: {', '.join(ops)})."
    if "SOFTMAX" in ops:
        hint += (" TFLite Micro's int8 SOFTMAX aborts on logits of a tiny scale (an "
                 "untrained model); train the model, or drop the softmax (--logits-only).")
    return hint


def _details(interp, which: str, count: int) -> list[dict]:
    get = interp.get_input_details if which == "input" else interp.get_output_details
    return [get(i) for i in range(count)]


def _quantization(detail) -> dict | None:
    params = detail.get("quantization_parameters") or {}
    scales, zeros = params.get("scales"), params.get("zero_points")
    if np.dtype(detail["dtype"]) not in (np.int8, np.uint8, np.int16) or scales is None \
            or not len(scales):
        return None
    return {"scale": float(scales[0]), "zero_point": int(zeros[0])}


class TFLiteMicroRunner(Runner):
    """Runs a ``.tflite`` file in the TFLite Micro interpreter (``tflite_micro``).

    Args:
        path: the ``.tflite`` file.
        arena_size: tensor arena in bytes (default: the measured smallest arena
            plus :data:`ARENA_MARGIN`, as the manifest records it).
        num_threads: ignored (TFLite Micro is single-threaded); accepted so
            that every runner takes the same arguments.
    """

    kind = "tflite_micro"

    def __init__(self, path, arena_size: int | None = None, num_threads=None):
        super().__init__(path)
        self.content = Path(path).read_bytes()
        if arena_size is None:
            arena_size = arena_with_margin(smallest_arena(path))
        self.arena_size = int(arena_size)
        try:
            self.interpreter = _interpreter(self.content, self.arena_size)
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"TFLite Micro cannot prepare {str(self.path)!r} in a "
                                 f"{self.arena_size}-byte arena: {exc}") from exc
        in_names, out_names = _io_names(self.content)
        self._in = _details(self.interpreter, "input", len(in_names))
        self._out = _details(self.interpreter, "output", len(out_names))
        self._in_order = sorted(range(len(in_names)), key=lambda i: natural_key(in_names[i]))
        self._out_order = sorted(range(len(out_names)), key=lambda i: natural_key(out_names[i]))
        self.input_spec = [_spec(in_names[i], self._in[i]["shape"], self._in[i]["dtype"],
                                 _quantization(self._in[i])) for i in self._in_order]
        self.output_spec = [_spec(out_names[i], self._out[i]["shape"], self._out[i]["dtype"],
                                  _quantization(self._out[i])) for i in self._out_order]

    def _run(self, arrays):
        outputs = [[] for _ in self._out]
        for n in range(arrays[0].shape[0]):
            for position, i in enumerate(self._in_order):
                detail = self._in[i]
                self.interpreter.set_input(_to_tensor(arrays[position][n:n + 1], detail), i)
            self.interpreter.invoke()
            for i, detail in enumerate(self._out):
                outputs[i].append(_from_tensor(self.interpreter.get_output(i), detail))
        return [np.concatenate(outputs[i]) for i in self._out_order]


def _litert_detail(detail) -> dict:
    """TFLite Micro's tensor details in LiteRT's form, for runtime's (de)quantizers."""
    q = _quantization(detail) or {"scale": 0.0, "zero_point": 0}
    return {"dtype": detail["dtype"], "quantization": (q["scale"], q["zero_point"])}


def _to_tensor(x, detail):
    return _quantize(x, _litert_detail(detail)).reshape(detail["shape"])


def _from_tensor(y, detail):
    return _dequantize(np.asarray(y), _litert_detail(detail))
