"""The one safe way to load a ``.keras`` file, and name-or-path resolution.

Loading always uses ``safe_mode=True``: a ``.keras`` file can carry Python
bytecode in a Lambda layer, which would run on load. Such files are refused
before Keras is asked, with a message that says why.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras

import activations  # noqa: F401  (registers our layers so .keras files deserialize)
from models._registry import create_model
from models.errors import ModelConfigError, ModelLoadError


def _class_names(config) -> set:
    """Every ``class_name`` in a nested Keras config."""
    found = set()
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class_name"), str):
                found.add(item["class_name"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """Load a ``.keras`` file safely (``safe_mode=True``, Lambda layers refused).

    Args:
        path: a ``.keras`` archive written by ``model.save``.
        compile: restore the saved optimizer/loss (False for inference only).

    Returns:
        The loaded ``keras.Model``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ModelLoadError: not a ``.keras`` file, a truncated or corrupt archive,
            a model holding a Lambda layer, or anything Keras cannot load.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such model file: {path}")
    if path.is_dir() or path.suffix != ".keras":
        raise ModelLoadError(f"Expected a .keras file saved by model.save(...). Received: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not a valid .keras archive (truncated or not a model "
                             "file); save it again with model.save(path).")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            bad = archive.testzip()
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError, OSError, EOFError) as exc:
        raise ModelLoadError(f"{path} is not a readable .keras archive ({exc}); "
                             "save it again with model.save(path).") from None
    if bad is not None:
        raise ModelLoadError(f"{path} is corrupt (member {bad!r} fails its checksum).")
    if "Lambda" in _class_names(config):
        raise ModelLoadError(
            f"{path} contains a Lambda layer, which would run arbitrary Python code on load; "
            "refused (safe_mode). Replace the Lambda with a registered layer.")
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types; the caller needs one.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"Cannot load {path}: {first}") from exc
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{path} holds a {type(model).__name__}, not a keras.Model.")
    return model


def resolve_model(target: str, **overrides) -> keras.Model:
    """A registered model name (built with ``overrides``) or a ``.keras`` path.

    Raises:
        UnknownModelError / ModelConfigError: as for ``create_model``.
        ModelLoadError: as for :func:`load_model`.
        ModelConfigError: overrides given together with a file.
    """
    if target.endswith(".keras") or os.sep in target or Path(target).exists():
        if overrides:
            raise ModelConfigError(f"Overrides ({', '.join(overrides)}) only apply to registered "
                                   f"model names, not to a saved file. Received: {target}")
        return load_model(target)
    return create_model(target, **overrides)
