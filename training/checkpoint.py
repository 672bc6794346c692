"""Per-epoch checkpoints that restore a run bit for bit, or refuse to.

A checkpoint is a directory ``checkpoints/epoch-NNNN/`` holding

* ``variables.npz``: every model variable (weights, BatchNorm statistics, the
  dropout layers' SeedGenerator states, which a .keras file does not keep, and
  a rule model's state) and every optimizer variable (iteration count,
  moments), each under its *key* (see :func:`variable_keys`);
* ``state.json``: the number of completed epochs, the history so far, the
  early-stopping counters and the Python / NumPy global RNG states.

Keys are paths, not creation order: a model whose variables are created in
another order restores correctly, and a checkpoint whose keys or shapes do not
match the model is refused naming the first mismatch
(:class:`CheckpointMismatchError`), never restored silently wrong. Checkpoints
of older versions, keyed by creation index (``model_0000``), are refused too:
an index says nothing about which variable it was.

The data order needs no state: epoch k's order is a pure function of
``(seed, k)`` (``data.epoch_permutation``). Each checkpoint is built in a
temporary directory and renamed into place (``utils.io.atomic_directory``), so
a kill at any moment leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np

from utils.io import atomic_directory, remove_directory

from .errors import CheckpointMismatchError, TrainingError

# epoch-NNNN: NNNN epochs done; epoch-NNNN-step-SSSSSS: and SSSSSS steps of the next one.
_NAME = re.compile(r"^epoch-(\d{4,})(?:-step-(\d{6,}))?$")
KEEP = 2  # older checkpoints are pruned once a newer one is safely in place
_INDEX_KEY = re.compile(r"^(model|optimizer)_\d{4}$")  # the format before path keys


def _layer_owners(model) -> dict[int, str]:
    """``id(variable) -> "outer/inner"``: the names of the layers that own it.

    Layer names are what a model's builder chose (``hidden_1``,
    ``hidden_1_dropout``); variable *paths* are not always stable, e.g. a
    dropout layer's seed generator is named by a process-wide counter
    (``seed_generator_7``), so a second model in the same process would differ.
    """
    owners: dict[int, str] = {}

    def walk(layer, prefix):
        # Children first: a variable belongs to the innermost layer that holds it.
        for child in layer._flatten_layers(include_self=False, recursive=False):
            walk(child, f"{prefix}{child.name}/")
        for var in layer.variables:
            owners.setdefault(id(var), prefix)

    walk(model, "")
    return owners


def _unique(keys: list[str]) -> list[str]:
    """Number repeated keys in order (``k``, ``k#1``, ...)."""
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(key if n == 0 else f"{key}#{n}")
    return out


def variable_keys(model, optimizer=None) -> list[tuple[str, object]]:
    """``(key, variable)`` for every model variable, then every optimizer variable.

    A model variable's key is ``model:<owning layers>/<variable name>`` (e.g.
    ``model:hidden_1/kernel``); an optimizer variable's is
    ``optimizer:<variable name>`` (its slots are named after the model
    variable's path, e.g. ``hidden_1_kernel_momentum``; the optimizer's own name
    is left out because Keras numbers it per process: ``adam``, ``adam_1``).
    """
    owners = _layer_owners(model)
    model_vars = list(model.variables)
    keys = _unique([f"model:{owners.get(id(v), '')}{v.name}" for v in model_vars])
    pairs = list(zip(keys, model_vars))
    if optimizer is not None:
        opt_vars = list(optimizer.variables)
        pairs += zip(_unique([f"optimizer:{v.name}" for v in opt_vars]), opt_vars)
    return pairs


def _rng_state() -> dict:
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def save(directory: Path, epoch: int, model, optimizer, extra: dict, step: int = 0) -> Path:
    """Write checkpoint ``epoch`` (number of completed epochs) atomically.

    Args:
        directory: the run's ``checkpoints/`` directory.
        epoch: completed epochs (names the checkpoint ``epoch-NNNN``).
        model / optimizer: whose variables to save (``optimizer`` None for a
            model that learns by its own rule).
        extra: JSON-able state to keep beside the RNG states (history, ...).
        step: steps of epoch ``epoch + 1`` already done (a mid-epoch checkpoint,
            named ``epoch-NNNN-step-SSSSSS``); 0 at an epoch's end.

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    target = directory / (f"epoch-{epoch:04d}" + (f"-step-{step:06d}" if step else ""))
    arrays = {key: np.asarray(v.numpy()) for key, v in variable_keys(model, optimizer)}
    state = {"epoch": int(epoch), "step": int(step), "rng": _rng_state(), **extra}
    with atomic_directory(target) as tmp:
        np.savez(tmp / "variables.npz", **arrays)
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
    for old in list_checkpoints(directory)[:-KEEP]:
        remove_directory(old)
    return target


def save_best(directory: Path, epoch: int, model) -> Path:
    """``checkpoints/best/``: the model variables of epoch ``epoch``, the best so far.

    Early stopping restores them at the end (like Keras' ``restore_best_weights``);
    kept apart from the pruned ``epoch-NNNN`` checkpoints, so a run resumed
    after its best epoch still ends with that epoch's weights.
    """
    target = Path(directory) / "best"
    arrays = {key: np.asarray(v.numpy()) for key, v in variable_keys(model)}
    with atomic_directory(target) as tmp:
        np.savez(tmp / "variables.npz", **arrays)
        (tmp / "state.json").write_text(json.dumps({"epoch": int(epoch)}))
    return target


def restore_best(directory: Path, model, epoch: int) -> None:
    """Load ``checkpoints/best/`` into ``model``, which must hold epoch ``epoch``.

    Raises:
        TrainingError: it is missing or holds another epoch than the checkpoints name.
        CheckpointMismatchError: its variables do not match the model.
    """
    path = Path(directory) / "best"
    arrays, state = read(path)
    if state.get("epoch") != epoch:
        raise TrainingError(f"Checkpoint {str(path)!r} holds epoch {state.get('epoch')} but the "
                            f"run's best epoch is {epoch}. Fix: resume again (the best epoch's "
                            "weights are rewritten when it is trained again) or start a new run.")
    pairs = variable_keys(model)
    check_fits(path, arrays, pairs)
    for key, var in pairs:
        var.assign(arrays[key])


def epoch_of(path: Path) -> int:
    """The completed epochs a checkpoint directory ``epoch-NNNN`` holds."""
    return int(_NAME.match(Path(path).name).group(1))


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and _NAME.match(p.name)
             and (p / "state.json").is_file() and (p / "variables.npz").is_file()]
    return sorted(found, key=lambda p: tuple(int(g or 0) for g in _NAME.match(p.name).groups()))


def read(path: Path) -> tuple[dict, dict]:
    """``(arrays by key, state)`` of checkpoint ``path``, without touching any model.

    Raises:
        TrainingError: the checkpoint cannot be read.
    """
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        with np.load(path / "variables.npz") as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise TrainingError(f"Cannot read checkpoint {str(path)!r}: {exc}") from exc
    return arrays, state


def check_fits(path: Path, arrays: dict, pairs: list[tuple[str, object]]) -> None:
    """Refuse ``arrays`` unless they hold exactly the keys and shapes of ``pairs``.

    Raises:
        CheckpointMismatchError: the first key or shape that differs, named.
    """
    where = f"Checkpoint {str(path)!r}"
    fix = "Fix: resume it with the model and settings that wrote it, or choose another --out."
    if any(_INDEX_KEY.match(k) for k in arrays):
        raise CheckpointMismatchError(
            f"{where} keys its variables by creation index (model_0000, ...), the format "
            "before variable paths; an index cannot be checked against this model's "
            "variables, so it is not restored. Fix: start a new run (--overwrite).")
    wanted = dict(pairs)
    for key, var in pairs:
        if key not in arrays:
            raise CheckpointMismatchError(f"{where} has no variable {key!r} of this run. {fix}")
        if tuple(arrays[key].shape) != tuple(var.shape):
            raise CheckpointMismatchError(
                f"{where}: variable {key!r} has shape {tuple(arrays[key].shape)} there but "
                f"{tuple(var.shape)} in this run. {fix}")
    extra = [k for k in arrays if k not in wanted]
    if extra:
        raise CheckpointMismatchError(f"{where} holds variable {extra[0]!r}, which this run "
                                      f"does not have. {fix}")


def restore(path: Path, model, optimizer=None) -> dict:
    """Load checkpoint ``path`` into ``model``/``optimizer`` (built) and the global RNGs.

    Returns:
        The checkpoint's state dict (``epoch``, history, ...).

    Raises:
        TrainingError: unreadable checkpoint.
        CheckpointMismatchError: its variables do not match the model/optimizer.
    """
    arrays, state = read(path)
    pairs = variable_keys(model, optimizer)
    check_fits(path, arrays, pairs)
    for key, var in pairs:
        var.assign(arrays[key])
    _set_rng_state(state["rng"])
    return state


def first_difference(arrays: dict, model) -> str | None:
    """The key of the first model variable whose value differs from ``arrays`` (bitwise)."""
    for key, var in variable_keys(model):
        if not np.array_equal(np.asarray(var.numpy()), arrays[key]):
            return key
    return None
