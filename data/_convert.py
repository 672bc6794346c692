"""``python -m data convert``: any dataset source -> the streamed shard format.

The source is split exactly as :func:`data.load_dataset` splits it
(:func:`data.split_indices`), and the shards are written by parallel
processes into a temporary directory that is published in one step
(:func:`utils.io.atomic_directory`): ``DIR`` is either the previous complete
dataset or the new one, also when the disk fills up halfway.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from utils.io import atomic_directory, atomic_write_json
from utils.progress import Progress

from ._bundle import SPLITS
from ._errors import CorruptDatasetError, DatasetError
from ._stream import FORMAT, METADATA, VERSION, check_labels, shard_bounds, shard_name, write_shard

# Examples per training shard when --shards is not given (about 50 MB of 32x32 gray).
SHARD_EXAMPLES = 50_000

# What the forked writer processes read: set in the parent just before the pool starts.
_JOB: dict = {}


def load_npy_folder(root: Path):
    """``x.npy`` (uint8 [N,H,W] or [N,H,W,C]) and ``y.npy`` (int [N]), memory-mapped.

    Optional ``x_test.npy``/``y_test.npy`` are an official test pool.

    Returns:
        ``pools`` as in :class:`data._sources.RawData` (``x`` stays a memory map).
    """
    pools = {}
    for pool, (xn, yn) in {"all": ("x.npy", "y.npy"), "test": ("x_test.npy", "y_test.npy")}.items():
        if not (root / xn).is_file():
            continue
        try:
            x = np.load(root / xn, mmap_mode="r", allow_pickle=False)
            y = np.load(root / yn, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CorruptDatasetError(f"Cannot read {root / xn} / {root / yn}: {exc}. Fix: save "
                                      "them with numpy.save (x uint8 images, y integer labels).")
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise CorruptDatasetError(f"{root / xn} holds {x.dtype} of shape {x.shape}; expected "
                                      "uint8 images [N,H,W] or [N,H,W,C].")
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise CorruptDatasetError(f"{root / yn} holds {y.dtype} of shape {y.shape}; expected "
                                      "integer labels [N].")
        if len(x) != len(y):
            raise CorruptDatasetError(f"{root / xn} has {len(x)} images but {root / yn} has "
                                      f"{len(y)} labels; they must have the same length.")
        pools[pool] = (x if x.ndim == 4 else x[..., None], y.astype(np.int64))
    if "test" in pools:
        pools["train"] = pools.pop("all")
    return pools


class Reshaped:
    """``x[rows]`` of a memory-mapped pool brought to ``shape`` as uint8, as the writers
    read it: chunk by chunk, so the source is never loaded whole."""

    def __init__(self, x, shape: tuple, what: str):
        self.x, self.target, self.what = x, tuple(shape), what
        self.shape = (len(x), *self.target)

    def __getitem__(self, rows) -> np.ndarray:
        from ._shape import to_shape

        x = to_shape(self.x[rows], self.target, what=self.what)
        return np.rint(x * 255.0).clip(0, 255).astype(np.uint8)


def _npy_shape(pools: dict, image_size, channels, what: str):
    """The shape to store an ``x.npy`` folder in: its own, unless asked for another."""
    from ._shape import channels_arg, image_size_arg, refuse_gray_as_colour

    h, w, c = next(iter(pools.values()))[0].shape[1:]
    size, chans = image_size_arg(image_size) or (h, w), channels_arg(channels) or c
    if chans == 3 and c == 1:
        raise refuse_gray_as_colour(what)
    return (*size, chans)


def _source(source, num_classes, image_size=None, channels=None):
    """``(pools of uint8 images, num_classes, class_names, description)``."""
    from . import _check_split_values, _load_raw
    from ._shape import target_shape

    root = Path(os.fspath(source))
    if root.is_dir() and (root / "x.npy").is_file():
        pools = load_npy_folder(root)
        what, description = str(root / "x.npy"), f"arrays x.npy/y.npy from {root}"
        shape = _npy_shape(pools, image_size, channels, what)
        if shape != next(iter(pools.values()))[0].shape[1:]:
            pools = {p: (Reshaped(x, shape, what), y) for p, (x, y) in pools.items()}
            description += f", resized to {shape[0]}x{shape[1]}x{shape[2]}"
        k = num_classes or int(max(int(y.max()) for _, y in pools.values() if len(y)) + 1)
        for pool, (_, y) in pools.items():
            check_labels(y, k, f"{root} ({pool})")
        return pools, k, tuple(str(i) for i in range(k)), description
    shape = target_shape(image_size, channels)
    raw = _load_raw(source, None, shape)
    _check_split_values(source, raw, shape)
    k = num_classes or raw.num_classes
    names = raw.class_names if len(raw.class_names) == k else tuple(str(i) for i in range(k))
    pools = {}
    for pool, (x, y) in raw.pools.items():
        check_labels(y, k, f"{source!r} ({pool})")
        # The loaders' floats are uint8 / 255 (or resized): rint(x * 255) restores the bytes.
        pools[pool] = (np.rint(x * 255.0).clip(0, 255).astype(np.uint8), y)
    return pools, k, names, raw.description


def _write_job(split: str, index: int, count: int) -> dict:
    pool, rows = _JOB["splits"][split]
    x, y = _JOB["pools"][pool]
    bounds = shard_bounds(len(rows), count)
    return write_shard(_JOB["root"] / shard_name(split, index, count), x, y,
                       rows[bounds[index]:bounds[index + 1]])


def convert(source, out, *, shards: int | None = None, num_classes: int | None = None,
            validation_fraction: float = 0.1, workers: int | None = None,
            progress: bool = True, image_size=None, channels: int | None = None) -> Path:
    """Convert ``source`` into the streamed format in directory ``out``.

    Args:
        source: anything ``load_dataset`` accepts, or a folder with ``x.npy``/``y.npy``.
        out: the dataset directory to write (replaced atomically if it exists).
        shards: training shards (val/test get shards in proportion); default one
            per :data:`SHARD_EXAMPLES` examples.
        num_classes: the class count (default: the source's, or max label + 1).
        validation_fraction: as for :func:`data.load_dataset`.
        workers: writer processes (default: the CPUs, at most the shards).
        progress: show a progress bar of the examples written.
        image_size, channels: the stored shape, as for :func:`data.load_dataset`
            (default 32x32 gray); an ``x.npy`` folder is stored in its own shape
            unless they ask another (resized chunk by chunk, in one process).

    Returns:
        ``out`` as a Path.

    Raises:
        DatasetError: bad source, labels outside ``num_classes``, bad arguments.
        OSError: ``out`` is unwritable or the disk is full (nothing is published).
    """
    from . import TEST_FRACTION

    if shards is not None and (not isinstance(shards, int) or shards < 1):
        raise DatasetError(f"--shards must be a positive integer; received {shards!r}.")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise DatasetError(f"--num-classes must be a positive integer; received {num_classes!r}.")
    if not 0.0 < float(validation_fraction) < 1.0 - TEST_FRACTION:
        raise DatasetError(f"validation_fraction must be in (0, {1 - TEST_FRACTION}); "
                           f"received {validation_fraction!r}.")
    _check_out(out)
    pools, k, names, description = _source(source, num_classes, image_size, channels)
    if any(isinstance(x, Reshaped) for x, _ in pools.values()):
        workers = 1  # resizing runs TensorFlow, which forked writer processes must not
    return write_dataset(pools, out, num_classes=k, class_names=names, description=description,
                         source=str(source), shards=shards,
                         validation_fraction=validation_fraction, workers=workers,
                         progress=progress)


def _check_out(out) -> None:
    if Path(out).exists() and not Path(out).is_dir():
        raise DatasetError(f"--out {str(out)!r} is a file; pass a directory path.")


def write_dataset(pools: dict, out, *, num_classes: int, class_names, description: str,
                  source: str, shards: int | None = None, validation_fraction: float = 0.1,
                  workers: int | None = None, progress: bool = True) -> Path:
    """Split ``pools`` (as in ``RawData``, uint8 images) and write them to ``out``.

    ``x`` of a pool only needs ``shape`` and ``x[rows]`` (a memory map, or an
    object that synthesises the rows), read by forked writer processes.
    See :func:`convert` for the other arguments.
    """
    from . import split_indices

    _check_out(out)
    out, k, names, source = Path(out), int(num_classes), tuple(class_names), str(source)
    splits = split_indices(pools, float(validation_fraction))
    for split in SPLITS:
        if len(splits[split][1]) == 0:
            raise CorruptDatasetError(f"Dataset {source!r} has no {split} examples after "
                                      "splitting; it needs more images per class.")
    n_train = len(splits["train"][1])
    shards = shards or max(1, -(-n_train // SHARD_EXAMPLES))
    counts = {s: max(1, min(len(rows), int(round(shards * len(rows) / n_train))))
              for s, (_, rows) in splits.items()}
    counts["train"] = min(shards, n_train)
    shape = tuple(int(d) for d in pools[splits["train"][0]][0].shape[1:])
    total = sum(len(rows) for _, rows in splits.values())
    jobs = [(s, i, counts[s]) for s in SPLITS for i in range(counts[s])]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    with atomic_directory(out) as tmp:
        _JOB.update(root=tmp, pools=pools, splits=splits)
        entries: dict = {s: [None] * counts[s] for s in SPLITS}
        try:
            with Progress(f"convert {out}", total, unit="images",
                          live=None if progress else False, silent=not progress) as bar:
                if workers == 1:
                    for job in jobs:
                        entries[job[0]][job[1]] = entry = _write_job(*job)
                        bar.update(bar.done + entry["count"])
                else:
                    context = multiprocessing.get_context("fork")
                    with ProcessPoolExecutor(workers, mp_context=context) as pool:
                        futures = {pool.submit(_write_job, *job): job for job in jobs}
                        for future in as_completed(futures):
                            split, index, _ = futures[future]
                            entries[split][index] = entry = future.result()
                            bar.update(bar.done + entry["count"])
        finally:
            _JOB.clear()
        meta = {"format": FORMAT, "version": VERSION, "source": source,
                "description": description, "shape": list(shape), "dtype": "uint8",
                "num_classes": k, "class_names": list(names),
                "validation_fraction": float(validation_fraction),
                "splits": {s: {"count": int(len(splits[s][1])), "shards": entries[s]}
                           for s in SPLITS}}
        atomic_write_json(tmp / METADATA, meta)
    return out
