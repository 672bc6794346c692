"""``verify_export``: run an export directory's artifacts on another CPU or
another vendor's engine, compare, and record what ran in the manifest.

Targets (:data:`TARGETS`):

* ``aarch64``: the aarch64 builds of LiteRT (with XNNPACK, and with the
  builtin kernels only) and onnxruntime, in the emulated arm64 root of
  :mod:`export.verify_root`, on an emulated CPU (``cortex-a72`` by default);
* ``openvino``: Intel's OpenVINO on this machine's CPU
  (:mod:`export.verify_openvino`), reading the ONNX and TFLite files itself.

Each artifact runs on exactly the input batches the export validation uses
(``export.validate``: batches 1 and 7 of the held-out samples, and the
agreement samples for int8). The outputs are then judged by the validation's
own rules twice: against the Keras model, and against the same artifact on
x86 in the same kind of kernels (XNNPACK, builtin, onnxruntime). A check that
could silently test other kernels than it claims fails instead: XNNPACK must
show a ``DELEGATE`` node, the builtin run must not, and OpenVINO must run int8
artifacts in int8 precision. Every failure is collected and raised once; the
manifest is updated (atomically) only when everything passed.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from export import manifest as manifest_io
from export.errors import ExportError, ValidationError
from export.validate import failure, validate_artifact
from export.verify_root import CPUS, DEFAULT_CPU
from utils.names import did_you_mean

TARGETS = ("aarch64", "openvino")
# The engines each target runs a format in; formats absent here are skipped
# with the reason in SKIPPED, keyed (format, target), or (format, None) for all.
ENGINES = {"aarch64": {"tflite": ("xnnpack", "builtin"), "onnx": ("onnxruntime",)},
           "openvino": {"tflite": ("openvino",), "onnx": ("openvino",)}}
SKIPPED = {("saved_model", None): "a SavedModel needs full TensorFlow, not an edge runtime",
           ("tflite_micro", "aarch64"): "TFLite Micro has no aarch64 build on PyPI (tflite-micro "
                                        "publishes x86_64 wheels only)",
           ("tflite_micro", "openvino"): "a TFLite Micro file is proven in the TFLite Micro "
                                         "interpreter, which OpenVINO is not"}


class VerificationError(ValidationError):
    """One or more artifacts failed on the target (every failure listed, with its figure)."""

    def __init__(self, failures: list[dict], where: str):
        super().__init__(failures)
        self.args = (f"Verification on {where} failed for {len(failures)} check(s): "
                     + "; ".join(f["message"] for f in failures),)


def check_target(target: str, cpu: str | None) -> tuple[str, str | None]:
    """Normalise ``(target, cpu)``; ``cpu`` applies to ``aarch64`` only.

    Raises:
        ExportError: an unknown target or CPU (the valid ones named).
    """
    if target not in TARGETS:
        raise ExportError(f"Unknown verify target {target!r}.{did_you_mean(target, TARGETS)} "
                          f"Valid targets: {', '.join(TARGETS)}.")
    if target != "aarch64":
        if cpu is not None:
            raise ExportError(f"--cpu applies to --target aarch64 only; received cpu={cpu!r} "
                              f"with target={target!r}.")
        return target, None
    cpu = cpu or DEFAULT_CPU
    if cpu not in CPUS:
        raise ExportError(f"Unknown emulated CPU {cpu!r}.{did_you_mean(cpu, CPUS)} "
                          f"Valid CPUs: {', '.join(CPUS)}.")
    return target, cpu


class _Recorder:
    """A runner that passes through to ``inner`` and keeps every input batch."""

    def __init__(self, inner):
        self.inner, self.input_spec, self.batches = inner, inner.input_spec, []

    def run(self, batch):
        arrays = [np.asarray(a, dtype=np.float32)
                  for a in (batch if isinstance(batch, (list, tuple)) else [batch])]
        self.batches.append(arrays)
        return self.inner.run(arrays)


def _key(arrays) -> tuple:
    return tuple((a.shape, a.tobytes()) for a in arrays)


class _Replay:
    """A runner that answers recorded input batches with the outputs a target computed."""

    def __init__(self, input_spec, batches, outputs):
        self.input_spec = input_spec
        self._answers = {_key(b): o for b, o in zip(batches, outputs)}

    def run(self, batch):
        arrays = [np.asarray(a, dtype=np.float32)
                  for a in (batch if isinstance(batch, (list, tuple)) else [batch])]
        return self._answers[_key(arrays)]


def _reference(manifest: dict, keras_path):
    """The Keras model the artifacts were validated against, as a runner."""
    from export.graph import strip_softmax
    from export.runtime_tf import KerasRunner, load_keras_model
    source = manifest.get("source") or {}
    path = keras_path or source.get("path")
    if not path or not Path(path).is_file():
        raise ExportError(f"The Keras model of this export ({path or 'not recorded'}) is not "
                          "there to compare with: pass --keras MODEL.keras.")
    model = load_keras_model(path)
    return KerasRunner(strip_softmax(model) if source.get("logits_only") else model)


def _jobs(directory: Path, manifest: dict, target: str) -> tuple[list, dict]:
    """``([(entry, path, engine)], {artifact path: skip reason})``, every artifact checked
    against its manifest record (size and sha256) first."""
    jobs, skipped = [], {}
    for entry in manifest["artifacts"]:
        fmt = entry.get("format")
        engines = ENGINES[target].get(fmt)
        if not engines:
            skipped[entry["path"]] = (SKIPPED.get((fmt, target)) or SKIPPED.get((fmt, None))
                                      or f"{target} has no runtime for this format")
            continue
        path = manifest_io.artifact_path(directory, entry)
        manifest_io.verify(path, entry)  # a changed file is refused, not verified
        jobs += [(entry, path, engine) for engine in engines]
    return jobs, skipped


def _int8_steps(spec, got, ref) -> float | None:
    """Max distance in output steps, over the outputs that are int8 tensors."""
    worst = None
    for i, s in enumerate(spec):
        scale = (s.get("quantization") or {}).get("scale")
        if scale:
            d = max(float(np.abs(g[i].astype(np.float64) - r[i]).max()) / scale
                    for g, r in zip(got, ref))
            worst = d if worst is None else max(worst, d)
    return None if worst is None else round(worst, 3)


def _kernel_failures(name, label, engine, quantization, facts) -> list[dict]:
    """Proof that the claimed kernels ran."""
    kernels = facts["kernels"]
    if engine == "xnnpack" and "DELEGATE" not in kernels:
        why = f"XNNPACK did not apply (no DELEGATE node; ops {', '.join(sorted(set(kernels)))})"
    elif engine == "builtin" and "DELEGATE" in kernels:
        why = "a delegate ran where the builtin kernels were asked for"
    elif engine == "openvino" and quantization == "int8" and not {"i8", "u8"} & set(
            facts.get("precisions", ())):
        why = (f"OpenVINO ran the int8 artifact in {', '.join(facts.get('precisions', ()))} "
               "only, not in int8")
    else:
        return []
    return [failure(name, None, "kernels", f"{label}: {why}")]


def verify_export(directory, *, target: str = "aarch64", cpu: str | None = None, data=None,
                  keras_path=None, log=None) -> dict:
    """Run every artifact of an export directory on ``target`` and record it.

    Args:
        directory: an export directory (with ``manifest.json``).
        target: one of :data:`TARGETS`.
        cpu: the emulated CPU for ``aarch64`` (:data:`export.verify_root.CPUS`).
        data: held-out float32 inputs ``[N, ...]``; required when the export has
            int8 artifacts (agreement on real data), else uniform random inputs.
        keras_path: the Keras model to compare with (default: the manifest's source).
        log: called with one line per artifact and engine.

    Returns:
        The updated manifest (``verification`` added to each artifact entry).

    Raises:
        ExportError: unknown target or CPU, missing Keras model or data.
        ManifestError: not an export directory, or an artifact changed since export.
        PrerequisiteError: no emulated root / QEMU / OpenVINO.
        VerificationError: an artifact disagrees or ran other kernels than claimed.
    """
    target, cpu = check_target(target, cpu)
    directory = Path(directory)
    manifest = manifest_io.read(directory)
    jobs, skipped = _jobs(directory, manifest, target)
    if data is None and any(e.get("quantization") == "int8" for e, _, _ in jobs):
        raise ExportError("The export has int8 artifacts, which are judged on real held-out "
                          "data: pass the dataset they were validated on (--data DATASET).")
    backend = _backend(target, cpu)
    reference = _reference(manifest, keras_path)
    from export.verify_worker import load_runner
    where = f"{target} {cpu}" if cpu else target
    failures, records = [], {}
    for entry, path, engine in jobs:
        name, quant = entry["path"], entry.get("quantization")
        label = f"{name} on {where} {backend.engine_name(engine)}"
        rules = dict(quantization=quant, data=data, atol=(entry.get("validation") or {}).get("atol"),
                     decision=(entry.get("validation") or {}).get("decision", "argmax"))
        recorder = _Recorder(reference)
        validate_artifact(name, recorder, reference, **rules)  # the validation's batches
        x86 = load_runner(path, backend.x86_engine(engine, entry["format"]))
        x86_outs = [x86.run(b) for b in recorder.batches]
        start = time.perf_counter()
        outs, facts, error = backend.run(path, engine, recorder.batches)
        record = {"target": target, "cpu": cpu, "engine": engine, **backend.describe(engine),
                  **facts, "wall_seconds": round(time.perf_counter() - start, 3)}
        if error:
            fails = [failure(name, None, "run", f"{label}: {error}")]
        else:
            replay = _Replay(reference.input_spec, recorder.batches, outs)
            record["vs_keras"], f_keras = validate_artifact(name, replay, reference, **rules)
            record["vs_x86"], f_x86 = validate_artifact(name, replay, x86, **rules)
            record["int8_steps_vs_x86"] = _int8_steps(x86.output_spec, outs, x86_outs)
            fails = [dict(f, message=f"{label} vs Keras: {f['message']}") for f in f_keras]
            fails += [dict(f, message=f"{label} vs x86: {_as_x86(f['message'])}") for f in f_x86]
            fails += _kernel_failures(name, label, engine, quant, facts)
        record["passed"] = not fails
        failures += fails
        records.setdefault(name, {})[f"{target}/{cpu}/{engine}" if cpu else
                                     f"{target}/{engine}"] = record
        if log:
            log(_line(label, record))
    if failures:
        raise VerificationError(failures, where)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for entry in manifest["artifacts"]:
        done = entry.setdefault("verification", {})
        for key, record in records.get(entry["path"], {}).items():
            done[key] = dict(record, verified_utc=stamp)
        if entry["path"] in skipped:
            done[f"{target}/{cpu}" if cpu else target] = {"skipped": skipped[entry["path"]]}
    manifest_io.write(directory, manifest)
    return manifest


def _as_x86(message: str) -> str:
    """A validation message about the x86 reference (the validation calls its reference Keras)."""
    return message.replace("|keras|", "|x86|").replace("Keras", "x86")


def _line(label: str, record: dict) -> str:
    if "vs_keras" not in record:
        return f"  {label}: FAILED to run"
    k, x = record["vs_keras"], record["vs_x86"]
    figure = (f"agreement {k['top1_agreement']:.2%} with Keras, {x['top1_agreement']:.2%} with x86"
              if "top1_agreement" in k else
              f"max |diff| {k['max_abs_diff']:.2e} vs Keras, {x['max_abs_diff']:.2e} vs x86")
    steps = record.get("int8_steps_vs_x86")
    return (f"  {label}: {'ok' if record['passed'] else 'FAILED'}: {figure}"
            + (f", {steps:g} int8 steps from x86" if steps is not None else "")
            + f" ({record['seconds']:.2f} s)")


def _backend(target: str, cpu: str | None):
    if target == "openvino":
        from export.verify_openvino import OpenVinoBackend
        return OpenVinoBackend()
    from export.verify_emulated import EmulatedBackend
    return EmulatedBackend(cpu)
