"""Validation: run each artifact in its own runtime and compare with Keras.

Checks, in order (like optimum's exporters): output count, then per output
shape and dtype, then values. Float artifacts pass when every element obeys
``|artifact - keras| <= atol + rtol * |keras|`` at batch 1 and batch 7 (7 proves
the batch axis is dynamic). int8 artifacts are judged by agreement with Keras
on real data on what the output decides (top-1 class for class scores; see
:data:`AGREEMENTS`), since int8 rounding moves every output by up to a few
quantization steps. Failures are returned, never raised here: the exporter
collects them over all artifacts and raises one :class:`ValidationError`.
"""
from __future__ import annotations

import time

import numpy as np

from export.formats import TOLERANCES
from models.card import DECISIONS

INT8_TOP1_BOUND = 0.98
VALIDATION_BATCHES = (1, 7)
# Cap on the samples used for int8 agreement: enough for a 0.1% resolution.
AGREEMENT_SAMPLES = 1000
# TFLite Micro vs. LiteRT's builtin int8 kernels: the same decision on this share
# of the samples (their int8 steps are recorded; see compare_with_litert).
MICRO_LITERT_AGREEMENT = 0.995
# How the agreement on each decision of ``models.card.DECISIONS`` is named.
AGREEMENTS = {
    "argmax": "top-1 agreement",                 # class scores; ART1's categories
    "argmin": "best-matching-unit agreement",    # a SOM's distances
    "sign": "recalled-state agreement",          # bipolar states: every unit's sign
    "bits": "state agreement",                   # binary states / probabilities vs 0.5
    "regression": "value agreement",             # every output within REGRESSION_SPAN
}
assert set(AGREEMENTS) == set(DECISIONS), "every decision needs an agreement name"
# A regression sample agrees when each of its outputs is within this fraction of the
# Keras outputs' range (max - min over the agreement samples): a few int8 steps.
REGRESSION_SPAN = 0.05


def decide(outputs: np.ndarray, decision: str = "argmax") -> np.ndarray:
    """Per-sample decisions of ``outputs`` [N, ...]: labels [N], or rows [N, units] for
    the states ("sign", "bits"), where two samples agree only if every unit does.

    A single-unit output under "argmax" decides by the side of 0.5 (a sigmoid).
    """
    if decision not in DECISIONS or decision == "regression":
        raise ValueError(f"No per-sample decision for {decision!r}; one of "
                         f"{', '.join(d for d in DECISIONS if d != 'regression')}.")
    flat = outputs.reshape(len(outputs), -1)
    if decision == "sign":
        return flat > 0
    if decision == "bits" or flat.shape[1] == 1:
        return flat > 0.5
    return np.argmin(flat, 1) if decision == "argmin" else np.argmax(flat, 1)


def agreement_name(validation: dict) -> str:
    """How a validation dict's int8 agreement reads ("top-1 agreement", ...)."""
    return AGREEMENTS.get(validation.get("decision", "argmax"), "agreement")


def validation_inputs(input_specs, batch, rng, data=None) -> list[np.ndarray]:
    """Inputs of batch size ``batch``: real data when given, else uniform [0, 1)."""
    if data is not None and len(data) >= batch:
        return [np.asarray(data[:batch], dtype=np.float32)]
    return [rng.random([batch] + list(spec["shape"][1:]), dtype=np.float32)
            for spec in input_specs]


def _diffs(got, ref):
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = np.abs(ref.astype(np.float64))
    mask = scale > 1e-6  # relative difference is meaningless next to zero
    max_rel = float((diff[mask] / scale[mask]).max()) if mask.any() else 0.0
    return diff, max_abs, max_rel


def failure(artifact, output, check, message, max_abs=None, tolerance=None):
    """One failed check as the exporter and ``export verify`` collect them."""
    return {"artifact": artifact, "output": output, "check": check,
            "message": f"{artifact}: {message}", "max_abs_diff": max_abs,
            "tolerance": tolerance}


def _structure(name, outputs, refs, batch) -> list[dict]:
    if len(outputs) != len(refs):
        return [failure(name, None, "count",
                         f"{len(outputs)} output(s), Keras has {len(refs)} (batch {batch})")]
    fails = []
    for i, (got, ref) in enumerate(zip(outputs, refs)):
        if got.shape != ref.shape:
            fails.append(failure(name, f"output_{i}", "shape",
                                  f"output_{i} shape {list(got.shape)} != Keras "
                                  f"{list(ref.shape)} (batch {batch})"))
        elif got.dtype != ref.dtype:
            fails.append(failure(name, f"output_{i}", "dtype",
                                  f"output_{i} dtype {got.dtype} != Keras {ref.dtype}"))
    return fails


def validate_artifact(name, runner, reference, *, quantization=None, atol=None,
                      data=None, seed=0, decision="argmax",
                      tolerance=None) -> tuple[dict, list[dict]]:
    """Compare ``runner`` with the Keras ``reference`` runner.

    Args:
        name: the artifact's path (relative), used in messages.
        runner, reference: :class:`export.runtime.Runner` objects.
        quantization: None | "float16" | "dynamic" | "int8".
        atol: overrides the absolute tolerance (float kinds only).
        tolerance: ``(atol, rtol)`` of the artifact's format
            (``export.formats.ExportFormat.tolerance``); default the quantization's
            (``export.formats.TOLERANCES``).
        data: real inputs ``[N, ...]`` (required for int8 agreement).
        decision: what the first output decides (``models.card.DECISIONS``), which an int8
            artifact must agree with Keras on.

    Returns:
        ``(result, failures)``: the manifest's ``validation`` dict and a list
        of failure dicts (empty when it passed).
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    default_atol, rtol = tolerance or TOLERANCES.get(quantization, TOLERANCES[None])
    atol = default_atol if atol is None else float(atol)
    result = {"batches": list(VALIDATION_BATCHES), "outputs": []}
    if quantization != "int8":
        result.update(atol=atol, rtol=rtol)
    failures = []
    per_output: dict[int, dict] = {}
    for batch in VALIDATION_BATCHES:
        inputs = validation_inputs(reference.input_spec, batch, rng, data)
        refs = reference.run(inputs)
        try:
            outs = runner.run(inputs)
        except Exception as exc:  # runtimes raise their own types; report, go on
            failures.append(failure(name, None, "run", f"the runtime failed at batch "
                                     f"{batch}: {' '.join(str(exc).split())[:200]}"))
            continue
        fails = _structure(name, outs, refs, batch)
        failures += fails
        if fails:
            continue
        for i, (got, ref) in enumerate(zip(outs, refs)):
            diff, max_abs, max_rel = _diffs(got, ref)
            entry = per_output.setdefault(i, {"name": f"output_{i}", "max_abs_diff": 0.0,
                                              "max_rel_diff": 0.0})
            entry["max_abs_diff"] = max(entry["max_abs_diff"], max_abs)
            entry["max_rel_diff"] = max(entry["max_rel_diff"], max_rel)
            if quantization == "int8":
                continue
            bad = diff > atol + rtol * np.abs(ref.astype(np.float64))
            if bad.any() or not np.isfinite(got).all():
                failures.append(failure(
                    name, f"output_{i}", "values",
                    f"output_{i} max abs diff {max_abs:.3g} exceeds tolerance "
                    f"atol={atol:g} + rtol={rtol:g}*|keras| at batch {batch} "
                    f"({int(bad.sum())} of {bad.size} elements)", max_abs, atol))
    result["outputs"] = [per_output[i] for i in sorted(per_output)]
    if quantization == "int8" and not failures:
        agreement = _agreement(runner, reference, data, decision)
        result.update(agreement)
        if agreement["top1_agreement"] < agreement["top1_bound"]:
            failures.append(failure(
                name, "output_0", "agreement",
                f"{agreement_name(agreement)} with Keras {agreement['top1_agreement']:.4f} on "
                f"{agreement['samples']} samples is below the bound "
                f"{agreement['top1_bound']} (max abs diff "
                f"{result['outputs'][0]['max_abs_diff']:.3g})",
                result["outputs"][0]["max_abs_diff"], agreement["top1_bound"]))
    result["max_abs_diff"] = max((o["max_abs_diff"] for o in result["outputs"]), default=None)
    result["max_rel_diff"] = max((o["max_rel_diff"] for o in result["outputs"]), default=None)
    result["passed"] = not failures
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result, failures


def _agreement_inputs(data) -> np.ndarray:
    x = np.asarray(data, dtype=np.float32)
    if len(x) > AGREEMENT_SAMPLES:
        x = x[np.linspace(0, len(x) - 1, AGREEMENT_SAMPLES).astype(int)]
    return x


def compare_with_litert(name, runner, path, data, steps, decision="argmax"
                        ) -> tuple[dict, list[dict]]:
    """TFLite Micro's outputs vs. LiteRT's on the same int8 file.

    LiteRT runs its builtin int8 kernels without the XNNPACK delegate (XNNPACK
    requantizes in float). Checked op by op against a numpy reference of the
    int8 arithmetic (``bench/micro_kernels.py``), neither engine is exact: both
    requantize in fixed point and land one step off the exact
    ``round(acc * s_in * s_w / s_out)`` on about 0.1% of FULLY_CONNECTED
    outputs, mostly the same ones, not always (LiteRT's reference kernels,
    ``BUILTIN_REF``, are exact, and therefore further from TFLite Micro). Depth,
    residual ADDs, TANH and the final SOFTMAX spread one step over several (8
    output steps on a trained residual_mlp, 5 on lenet5, at most 1 on
    exam_mlp), so a bound in output steps would have to grow with depth. The
    two engines are instead required to make the same decision (the model
    card's) on ``MICRO_LITERT_AGREEMENT`` of the samples; the steps are
    recorded: the worst, and how many samples are 0, 1 and more steps apart.

    Args:
        steps: the output scale (one int8 step) of each output.
        decision: what the first output decides (``models.card.DECISIONS``).

    Returns:
        ``(result, failures)``; ``result`` has ``max_steps``, ``step_counts``,
        ``agreement``, ``samples``, ``bound`` and ``passed``.
    """
    from export.runtime_tflite import TFLiteRunner
    x = _agreement_inputs(data)
    ours = runner.run(x)
    theirs = TFLiteRunner(path, kernels="builtin").run(x)
    per_sample = np.max([np.abs(a.astype(np.float64) - b).reshape(len(x), -1).max(axis=1) / s
                         for a, b, s in zip(ours, theirs, steps)], axis=0)
    per_sample = np.rint(per_sample).astype(int)
    same = decide(ours[0], decision) == decide(theirs[0], decision)
    agreement = float(np.mean(same.reshape(len(x), -1).all(axis=1)))
    result = {"max_steps": int(per_sample.max()), "samples": int(len(x)),
              "step_counts": {"0": int((per_sample == 0).sum()), "1": int((per_sample == 1).sum()),
                              "more": int((per_sample > 1).sum())},
              "agreement": round(agreement, 6), "bound": MICRO_LITERT_AGREEMENT,
              "decision": decision, "runtime": "LiteRT builtin int8 kernels (no XNNPACK)"}
    result["passed"] = agreement >= MICRO_LITERT_AGREEMENT
    if result["passed"]:
        return result, []
    return result, [failure(name, "output_0", "litert",
                             f"TFLite Micro and LiteRT's builtin kernels make the same "
                             f"decision on {agreement:.2%} of {len(x)} samples (bound "
                             f"{MICRO_LITERT_AGREEMENT:.1%}; up to {result['max_steps']} int8 "
                             "steps apart)", agreement, MICRO_LITERT_AGREEMENT)]


def _agreement(runner, reference, data, decision="argmax") -> dict:
    """Agreement of the first output's decisions with Keras' on real data (the key
    keeps its name, ``top1_agreement``, for every decision)."""
    x = _agreement_inputs(data)
    ref = reference.run(x)[0]
    got = np.concatenate([runner.run(x[i:i + 256])[0] for i in range(0, len(x), 256)])
    if decision == "regression":
        span = float(np.ptp(ref)) or 1.0
        same = (np.abs(got.astype(np.float64) - ref) <= REGRESSION_SPAN * span
                ).reshape(len(x), -1).all(axis=1)
    else:
        same = (decide(got, decision) == decide(ref, decision)).reshape(len(x), -1).all(axis=1)
    return {"top1_agreement": round(float(np.mean(same)), 6), "top1_bound": INT8_TOP1_BOUND,
            "samples": int(len(x)), "decision": decision}
