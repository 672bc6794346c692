"""Per-epoch checkpoints that restore a run bit for bit.

A checkpoint is a directory ``checkpoints/epoch-NNNN/`` holding

* ``variables.npz``: every model variable (weights, BatchNorm statistics and the
  dropout layers' SeedGenerator states: a .keras file does not keep those) and
  every optimizer variable (iteration count, moments), in creation order;
* ``state.json``: the number of completed epochs, the history so far, the
  early-stopping counters and the Python / NumPy global RNG states.

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

from .errors import TrainingError

_NAME = re.compile(r"^epoch-(\d{4,})$")
KEEP = 2  # older checkpoints are pruned once a newer one is safely in place


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


def save(directory: Path, epoch: int, model, optimizer, extra: dict) -> Path:
    """Write checkpoint ``epoch`` (number of completed epochs) atomically.

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    target = directory / f"epoch-{epoch:04d}"
    arrays = {f"model_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i:04d}": np.asarray(v.numpy())
                   for i, v in enumerate(optimizer.variables)})
    state = {"epoch": int(epoch), "rng": _rng_state(), **extra}
    with atomic_directory(target) as tmp:
        np.savez(tmp / "variables.npz", **arrays)
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
    for old in list_checkpoints(directory)[:-KEEP]:
        remove_directory(old)
    return target


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and _NAME.match(p.name)
             and (p / "state.json").is_file() and (p / "variables.npz").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def restore(path: Path, model, optimizer) -> dict:
    """Load checkpoint ``path`` into ``model``/``optimizer`` (built) and the global RNGs.

    Returns:
        The checkpoint's state dict (``epoch``, history, ...).

    Raises:
        TrainingError: the checkpoint does not fit this model/optimizer.
    """
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        with np.load(path / "variables.npz") as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise TrainingError(f"Cannot read checkpoint {str(path)!r}: {exc}") from exc
    for prefix, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
        saved = sorted(k for k in arrays if k.startswith(prefix + "_"))
        if len(saved) != len(variables):
            raise TrainingError(f"Checkpoint {str(path)!r} holds {len(saved)} {prefix} variables "
                                f"but the {prefix} has {len(variables)}; it belongs to another "
                                "model. Fix: choose another --out.")
        for key, var in zip(saved, variables):
            value = arrays[key]
            if tuple(value.shape) != tuple(var.shape):
                raise TrainingError(f"Checkpoint {str(path)!r}: {prefix} variable {var.path} has "
                                    f"shape {tuple(var.shape)}, saved {value.shape}.")
            var.assign(value)
    _set_rng_state(state["rng"])
    return state
