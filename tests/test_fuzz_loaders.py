"""Bounded fuzzing of every artifact kind's loader.

Hypothesis draws random truncations and bit flips of real artifacts (a small
model saved as .keras and exported to SavedModel, ONNX and TFLite); each
mutated file goes through what ``evaluate.py`` does with it, in a child
process (``utils.isolation``, the one child runner: LiteRT and ONNX Runtime
can die on such files). Every case must end in one of three ways: it loads
and runs, it is refused with a typed error (a one-line exit 2 at the command
line), or it kills only the isolated child (an ArtifactCrashError line). An
exception of any other type is a loader that lets a runtime's error escape
untyped, which the command line would report as an internal error.

Each kind gets a few seconds (``ZOO_FUZZ_SECONDS``, default 4); the number of
cases that ran is printed (``pytest -s``) and must not be trivially small.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from utils.isolation import ChildCrashError, call_isolated

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("ZOO_FUZZ_SECONDS", "4"))
EXAMPLES = int(os.environ.get("ZOO_FUZZ_EXAMPLES", "300"))
MIN_CASES = 10  # fewer means the budget went to start-up, and nothing was fuzzed
INPUT_SHAPE = [8]

# A mutation: where (a fraction of the file), what (truncate, or flip one bit), which file.
MUTATION = st.tuples(st.sampled_from(["truncate", "flip", "flip", "flip"]),
                     st.floats(0, 1, exclude_max=True), st.integers(0, 7), st.integers(0, 99))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    import keras

    import export

    keras.utils.set_random_seed(0)
    # Fixed names: the artifacts' bytes (so the drawn cases) do not depend on which
    # tests created layers in this process before.
    inputs = keras.Input(INPUT_SHAPE, name="x")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="scores")(hidden)
    model = keras.Model(inputs, outputs, name="fuzz_target")
    directory = tmp_path_factory.mktemp("fuzz")
    model.save(directory / "model.keras")
    export.export_model(model, directory / "export")
    return {"keras": directory / "model.keras", "saved_model": directory / "export" / "saved_model",
            "onnx": directory / "export" / "model.onnx",
            "tflite": directory / "export" / "model.tflite"}


def _mutants(source: Path, kind: str, directory: Path) -> list[str]:
    """Hypothesis' mutated copies of ``source`` (lists of 1-3 mutations each)."""
    files = ([p.relative_to(source) for p in sorted(source.rglob("*")) if p.is_file()]
             if source.is_dir() else [Path()])
    paths: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.lists(MUTATION, min_size=1, max_size=3))
    def draw(mutations):
        target = directory / f"case{len(paths):04d}{source.suffix}"
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
        for how, where, bit, which in mutations:
            file = target / files[which % len(files)] if source.is_dir() else target
            data = bytearray(file.read_bytes())
            at = int(where * len(data)) if data else 0
            if how == "truncate":
                del data[at:]
            elif data:
                data[at] ^= 1 << bit
            file.write_bytes(bytes(data))
        paths.append(str(target))

    draw()
    return paths


def _fuzz(kind: str, paths: list[str]) -> dict:
    """Run ``paths`` through the loader in isolated children for ``SECONDS`` of loading
    (child start-up not counted; a crash costs a new child)."""
    outcomes: dict[int, list] = {}
    spent, start = 0.0, 0
    hard_stop = time.monotonic() + 10 * SECONDS + 60  # a stalled machine cannot hang CI
    while start < len(paths) and spent < SECONDS and time.monotonic() < hard_stop:
        current = [start]

        def progress(i, offset=start):
            current[0] = offset + i

        began = time.monotonic()
        try:
            result = call_isolated(
                "tests._fuzz_helpers:load_batch",
                {"paths": paths[start:], "input_shape": INPUT_SHAPE, "budget_s": SECONDS - spent,
                 "warm_up": kind in ("keras", "saved_model")},
                on_progress=progress, what=f"fuzz case {start}", timeout=120)
        except ChildCrashError as exc:  # a runtime died on case current[0]: isolated
            outcomes[current[0]] = ["crash", str(exc)]
            spent += 0.5  # the case ran, start-up included: count it roughly
            start = current[0] + 1
            continue
        spent += result["seconds"] if result["outcomes"] else time.monotonic() - began
        for i, outcome in enumerate(result["outcomes"]):
            outcomes[start + i] = outcome
        start += len(result["outcomes"])
    return outcomes


@pytest.mark.parametrize("kind", ["keras", "saved_model", "onnx", "tflite"])
def test_mutated_artifacts_are_refused_typed_or_crash_only_their_child(artifacts, tmp_path,
                                                                       kind):
    paths = _mutants(artifacts[kind], kind, tmp_path)
    outcomes = _fuzz(kind, paths)
    counts = {k: sum(1 for o in outcomes.values() if o[0] == k)
              for k in ("ok", "user", "crash", "bug")}
    print(f"\nfuzz {kind}: {len(outcomes)} cases in {SECONDS:g} s: {counts}")
    bugs = [(paths[i], o[1]) for i, o in sorted(outcomes.items()) if o[0] == "bug"]
    assert bugs == [], bugs[:5]
    assert len(outcomes) >= MIN_CASES, counts
    assert counts["user"] > 0  # the mutations really broke files
