"""The one safe way to load a ``.keras`` file, and name-or-path resolution.

Every package that loads a ``.keras`` file comes here (``export.runtime``,
``evaluation``, ``python -m models audit``). Loading uses ``safe_mode=True``:
a ``.keras`` file can carry Python bytecode in a Lambda layer, or name any
module and function in its config, which would run on load. Before Keras sees
the file, the archive is checked here, from its bytes only:

* a zip archive whose members have plain relative names (no ``..``, no
  absolute paths) and sane declared sizes (:data:`MAX_CONFIG_BYTES`,
  :data:`MAX_MEMBER_BYTES`), so a zip bomb is refused unread;
* a ``config.json`` in which every ``module`` is ours or Keras', or names a
  class already registered in this process (a config naming ``os.system`` is
  refused before Keras could import anything), and no Lambda layer or lambda
  function appears (:func:`lambda_layers`, the one Lambda detection of the project).

Suffixes are matched case-insensitively (``MODEL.KERAS`` loads), as
``export.runtime.artifact_kind`` does.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import keras

import activations  # noqa: F401  (registers our layers so .keras files deserialize)
from models._registry import create_model
from models.card import CARD_MEMBER, attach_card, parse_card
from models.errors import ModelConfigError, ModelLoadError

KERAS_SUFFIX = ".keras"
# config.json of the largest registered model is ~100 KiB; weights of a model this
# zoo can train fit well below 2 GiB. Declared sizes above these are refused unread.
MAX_CONFIG_BYTES = 16 * 2 ** 20
MAX_MEMBER_BYTES = 2 * 2 ** 30
MAX_CARD_BYTES = 2 ** 20  # a card with 1,000 class names is ~20 KiB
# Modules a config may name: Keras itself and the packages that register layers.
TRUSTED_MODULES = ("keras", "activations", "models")


def _walk(config):
    """Every dict in a nested Keras config."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def lambda_layers(config) -> list[str]:
    """Names of the Lambda layers and lambda functions in a Keras config (empty: none).

    The only Lambda test of the project: it reads ``class_name`` fields, never
    substrings of the text (a layer *named* "lambda_free" is not a Lambda).
    """
    layers, functions = set(), False
    for d in _walk(config):
        if d.get("class_name") == "Lambda":
            inner = d.get("config")
            named = isinstance(inner, dict) and isinstance(inner.get("name"), str)
            layers.add(inner["name"] if named else "Lambda")
        functions = functions or d.get("class_name") == "__lambda__"
    # A serialized lambda outside any Lambda layer (say, as a Dense activation) runs too.
    return sorted(layers) or (["__lambda__"] if functions else [])


def _unregistered(config) -> tuple[str, str] | None:
    """``(class_name, module)`` of the first object from outside :data:`TRUSTED_MODULES`
    that is not registered in this process, else None.

    Keras would import such a module by the name written in the file; refusing
    it first means a config naming ``os.system`` never gets that far.
    """
    for d in _walk(config):
        module = d.get("module")
        if module is None or (isinstance(module, str)
                              and module.split(".")[0] in TRUSTED_MODULES):
            continue
        registered = d.get("registered_name")
        if isinstance(registered, str) and \
                keras.saving.get_registered_object(registered) is not None:
            continue  # the caller imported the module that registers it
        return str(d.get("class_name")), str(module)
    return None


def read_config(path: str | os.PathLike) -> dict:
    """The ``config.json`` of a ``.keras`` archive, after the archive checks above.

    Nothing of the archive is decompressed except ``config.json`` (bounded).

    Raises:
        ModelLoadError: missing file, not a ``.keras`` zip archive, a member with an
            unsafe name or an absurd declared size, no or unreadable ``config.json``.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"No such model file: '{path}' (not found). Pass the path of a .keras file "
                             "saved by model.save(...).")
    if not path.is_file():
        raise ModelLoadError(f"Not a Keras model file: '{path}' is a directory. Pass the path "
                             "of a .keras file saved by model.save(...).")
    if path.suffix.lower() != KERAS_SUFFIX:
        raise ModelLoadError(f"Not a Keras model file: '{path}'. Expected a .keras file saved "
                             "by model.save(...).")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            for info in members:
                name = info.filename
                if name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name) \
                        or re.match(r"^[A-Za-z]:", name):
                    raise ModelLoadError(f"'{path}' is refused: archive member {name!r} points "
                                         "outside the archive.")
                if info.file_size > MAX_MEMBER_BYTES:
                    raise ModelLoadError(
                        f"'{path}' is refused: archive member {name!r} declares "
                        f"{info.file_size:,} bytes (limit {MAX_MEMBER_BYTES:,}).")
            info = next((i for i in members if i.filename == "config.json"), None)
            if info is None:
                raise ModelLoadError(f"Not a Keras model file: '{path}' is not a valid .keras "
                                     "archive (no config.json); save it with model.save(path).")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelLoadError(f"'{path}' is refused: its config.json declares "
                                     f"{info.file_size:,} bytes (limit {MAX_CONFIG_BYTES:,}).")
            config = json.loads(archive.read(info))
            # Every member's checksum: a bit flip in the weights is caught here, once.
            bad = archive.testzip()
    except ModelLoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, json.JSONDecodeError, UnicodeDecodeError,
            OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ModelLoadError(f"Not a Keras model file: '{path}' is not a valid .keras archive "
                             f"(truncated or corrupt: {_first_line(exc)}); save it again with "
                             "model.save(path).") from None
    if bad is not None:
        raise ModelLoadError(f"Not a Keras model file: '{path}' is corrupt (member {bad!r} "
                             "fails its checksum); save it again with model.save(path).")
    if not isinstance(config, dict):
        raise ModelLoadError(f"'{path}' is not a valid .keras archive: config.json holds a "
                             f"{type(config).__name__}, not a model config.")
    return config


def load_model(path: str | os.PathLike, compile: bool = True,
               safe_mode: bool = True) -> keras.Model:
    """Load a ``.keras`` file safely (``safe_mode=True``, Lambda layers refused).

    Args:
        path: a ``.keras`` archive written by ``model.save``.
        compile: restore the saved optimizer/loss (False for inference only).
        safe_mode: False allows Lambda layers, which run code from the file
            (``evaluate.py --unsafe``); the archive checks still apply.

    Returns:
        The loaded ``keras.Model``.

    Raises:
        ModelLoadError: missing, not a ``.keras`` file, a truncated or corrupt
            archive, a refused member or module, a Lambda layer (safe mode),
            a class that is not registered, or anything else Keras cannot load.
    """
    path = Path(path)
    config = read_config(path)
    unregistered = _unregistered(config)
    if unregistered is not None:
        name, module = unregistered
        raise ModelLoadError(
            f"Cannot load '{path}': it uses {name!r}, which is not registered (module "
            f"{module!r} named in the file is never imported: that could run code from it). "
            "Import the module that defines it (decorated with "
            "keras.saving.register_keras_serializable) first, or rebuild the model from "
            "registered layers.")
    lambdas = lambda_layers(config)
    if safe_mode and lambdas:
        raise ModelLoadError(
            f"'{path}' contains a Lambda layer ({', '.join(lambdas)}), which would run "
            "arbitrary Python code on load; refused (safe_mode). Replace the Lambda with a "
            "registered layer.")
    try:
        with _keras_named(path) as keras_path:
            model = keras.saving.load_model(keras_path, compile=compile, safe_mode=safe_mode)
    except Exception as exc:  # Keras raises many types; the caller needs one.
        raise ModelLoadError(f"Cannot load '{path}': {_load_hint(exc)}") from exc
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"'{path}' holds a {type(model).__name__}, not a keras.Model.")
    card = read_card(path)
    if card is not None:
        attach_card(model, card, where=f"'{path}' ({CARD_MEMBER})")
    return model


def read_card(path: str | os.PathLike) -> dict | None:
    """The model card stored in a ``.keras`` archive (``models.card``), None if it has none.

    Raises:
        ModelCardError: the stored card is not valid JSON or not a card.
    """
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(CARD_MEMBER)
        except KeyError:
            return None
        if info.file_size > MAX_CARD_BYTES:
            raise ModelLoadError(f"'{path}' is refused: its {CARD_MEMBER} declares "
                                 f"{info.file_size:,} bytes (limit {MAX_CARD_BYTES:,}).")
        return parse_card(archive.read(info), f"'{path}' ({CARD_MEMBER})")


@contextlib.contextmanager
def _keras_named(path: Path):
    # Keras dispatches on a lower-case ".keras" ending; give it one for MODEL.KERAS.
    if path.suffix == KERAS_SUFFIX:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="keras-load-") as tmp:
        link = Path(tmp) / ("model" + KERAS_SUFFIX)
        os.symlink(path.resolve(), link)
        yield link


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_hint(exc: BaseException) -> str:
    """The root cause of a Keras load failure, in one actionable sentence."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(" ".join(str(seen).split()))
        seen = seen.__cause__ or seen.__context__
    missing = re.search(r"Could not locate (?:class|function) '([^']+)'", " | ".join(chain))
    if missing:
        return (f"it uses {missing.group(1)!r}, which is not registered. Import the module "
                "that defines it (decorated with keras.saving.register_keras_serializable) "
                "first, or rebuild the model from registered layers.")
    return f"not a loadable Keras model ({(chain[-1] or type(exc).__name__)[:200]})."


def resolve_model(target: str, **overrides) -> keras.Model:
    """A registered model name (built with ``overrides``) or a ``.keras`` path.

    Raises:
        UnknownModelError / ModelConfigError: as for ``create_model``.
        ModelLoadError: as for :func:`load_model`.
        ModelConfigError: overrides given together with a file.
    """
    if target.lower().endswith(KERAS_SUFFIX) or os.sep in target or Path(target).exists():
        if overrides:
            raise ModelConfigError(f"Overrides ({', '.join(overrides)}) only apply to registered "
                                   f"model names, not to a saved file. Received: {target}")
        return load_model(target)
    return create_model(target, **overrides)
