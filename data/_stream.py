"""The streamed dataset format: fixed-length uint8 records in shards, plus metadata.json.

A converted dataset is a directory::

    metadata.json                  counts per split, classes, shape, shards + sha256
    train-00000-of-00004.bin ...   records of one split, in split order
    val-00000-of-00001.bin ...
    test-00000-of-00001.bin ...

A record is ``int32`` label (little endian) followed by the image, ``H*W*C``
uint8 bytes in row-major order. Fixed-length records are what TensorFlow's
``tf.data.FixedLengthRecordDataset`` reads natively (the CIFAR-10 binary
layout), and because every record has the same size, record ``i`` of a shard
sits at byte ``i * record_bytes``: numpy reads any set of records directly
(a memory map), so an epoch can visit a global permutation of all examples,
not only a shuffle within a shard or buffer. TFRecord has no such random
access.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
from pathlib import Path

import numpy as np

from ._errors import CorruptDatasetError, DatasetError

METADATA = "metadata.json"
FORMAT = "zoo-fixed-records"
VERSION = 1
LABEL_DTYPE = np.dtype("<i4")
# The most bytes of one shard a read maps at a time. Reading records through a map
# makes resident not only their pages but the cached pages around each one (the
# kernel's fault-around, which MADV_RANDOM does not stop), so a read of records
# scattered over a whole map makes about all of it resident: a 10M-image set's
# training reads peaked at its 7.2 GB of shards. The window bounds that.
WINDOW_BYTES = 32 << 20


def is_streamed(path) -> bool:
    """True when ``path`` is a directory written by ``python -m data convert``."""
    try:
        return (Path(os.fspath(path)) / METADATA).is_file()
    except (TypeError, OSError):
        return False


def record_dtype(shape) -> np.dtype:
    """numpy view of one record: ``y`` (int32) then ``x`` (uint8 ``shape``)."""
    return np.dtype([("y", LABEL_DTYPE), ("x", np.uint8, tuple(int(d) for d in shape))])


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.bin"


def shard_bounds(n: int, shards: int) -> np.ndarray:
    """Start offsets of ``shards`` contiguous, near-equal parts of ``n`` rows (and ``n``)."""
    return np.linspace(0, n, shards + 1).round().astype(np.int64)


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_metadata(root: Path, *, verify: bool = True) -> dict:
    """Read and check ``root/metadata.json`` against the shards beside it.

    Every shard must exist with exactly ``count * record_bytes`` bytes; with
    ``verify`` its sha256 must match too.

    Raises:
        CorruptDatasetError: unreadable or inconsistent metadata, a missing,
            truncated or corrupted shard (named, with how to fix it).
    """
    fix = f"Fix: convert the dataset again (python -m data convert SOURCE --out {root})."
    try:
        meta = json.loads((root / METADATA).read_text())
        shape = tuple(int(d) for d in meta["shape"])
        splits = meta["splits"]
        record_bytes = record_dtype(shape).itemsize
        for split, info in splits.items():
            if sum(int(s["count"]) for s in info["shards"]) != int(info["count"]):
                raise CorruptDatasetError(
                    f"{root / METADATA}: split {split!r} says {info['count']} examples but its "
                    f"shards hold {sum(int(s['count']) for s in info['shards'])}. {fix}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptDatasetError(f"Cannot read {root / METADATA}: {exc}. {fix}") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CorruptDatasetError(f"{root / METADATA} is not a {FORMAT} v{VERSION} dataset. {fix}")
    for split, info in splits.items():
        for shard in info["shards"]:
            path = root / shard["file"]
            expected = int(shard["count"]) * record_bytes
            size = path.stat().st_size if path.is_file() else None
            if size != expected:
                got = "missing" if size is None else f"{size:,} bytes"
                raise CorruptDatasetError(
                    f"Shard {path} is {got}; metadata says {expected:,} bytes "
                    f"({shard['count']} records). {fix}")
            if verify and sha256_file(path) != shard["sha256"]:
                raise CorruptDatasetError(f"Shard {path} is corrupted: its sha256 does not match "
                                          f"{METADATA}. {fix}")
    return meta


def write_shard(path: Path, x, y, rows: np.ndarray, *, progress=None,
                chunk: int = 8192) -> dict:
    """Write the records ``x[rows]``/``y[rows]`` (uint8 images, int labels) to ``path``.

    ``progress(n)`` is called after every ``chunk`` records.

    Returns:
        The shard's metadata entry ``{"file", "count", "sha256"}``.
    """
    dtype = record_dtype(x.shape[1:])
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            records = np.empty(len(part), dtype)
            records["x"] = x[part]
            records["y"] = y[part]
            data = records.tobytes()
            f.write(data)
            digest.update(data)
            if progress is not None:
                progress(len(part))
        f.flush()
        os.fsync(f.fileno())
    return {"file": path.name, "count": int(len(rows)), "sha256": digest.hexdigest()}


class ShardedSplit:
    """Random access to one split's records across its shards (mapped per read, read-only)."""

    def __init__(self, root: Path, info: dict, shape: tuple):
        self.root, self.shape = root, shape
        self.dtype = record_dtype(shape)
        self.files = [root / s["file"] for s in info["shards"]]
        counts = [int(s["count"]) for s in info["shards"]]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.count = int(self.offsets[-1])

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Records ``rows`` (split-order indices, any order) as ``(x uint8, y int64)``.

        Each shard is mapped one window of at most :data:`WINDOW_BYTES` at a time,
        for this read only, so the resident memory of a read is at most one window
        beyond its result, whatever the size of the dataset or of its shards.
        """
        rows = np.asarray(rows, dtype=np.int64)
        x = np.empty((len(rows), *self.shape), np.uint8)
        y = np.empty(len(rows), np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.count):
            raise IndexError(f"Record indices must be in [0, {self.count}); received "
                             f"[{int(rows.min())}, {int(rows.max())}].")
        order = np.argsort(rows, kind="stable")  # ascending file offsets: sequential reads
        ordered = rows[order]
        bounds = np.searchsorted(ordered, self.offsets)
        for s in np.flatnonzero(np.diff(bounds)):
            part = slice(bounds[s], bounds[s + 1])
            with open(self.files[s], "rb") as f:
                records = self._read_shard(f, ordered[part] - self.offsets[s])
            # Plain uint8 views of the byte rows: a structured field's copy is slower.
            x[order[part]] = records[:, LABEL_DTYPE.itemsize:].reshape(-1, *self.shape)
            y[order[part]] = np.ascontiguousarray(records[:, :LABEL_DTYPE.itemsize]).view(
                LABEL_DTYPE)[:, 0]
        return x, y

    def _read_shard(self, f, local: np.ndarray) -> np.ndarray:
        """Records ``local`` (sorted indices within one open shard) as byte rows
        ``[n, record bytes]``, window by window."""
        size = self.dtype.itemsize
        out = np.empty((len(local), size), np.uint8)  # byte rows: a plain copy per window
        window = local * size // WINDOW_BYTES
        starts = np.concatenate([[0], np.flatnonzero(np.diff(window)) + 1, [len(local)]])
        for a, b in zip(starts[:-1], starts[1:]):
            first, last = int(local[a]), int(local[b - 1])
            begin = first * size
            offset = begin - begin % mmap.ALLOCATIONGRANULARITY
            length = (last + 1) * size - offset
            mm = mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ, offset=offset)
            try:
                if hasattr(mm, "madvise") and (b - a) * size * 4 < length:
                    # Scattered records: no read-ahead of the bytes between them.
                    mm.madvise(mmap.MADV_RANDOM)
                view = np.frombuffer(mm, np.uint8, count=(last - first + 1) * size,
                                     offset=begin - offset).reshape(-1, size)
                # mode="clip" (the indices are in range): "raise" would buffer the copy.
                np.take(view, local[a:b] - first, axis=0, out=out[a:b], mode="clip")
                del view  # the map can only close once no array points into it
            finally:
                mm.close()
        return out

    def tf_dataset(self, batch_size: int):
        """The split in order as a native ``tf.data.FixedLengthRecordDataset`` of
        ``(x float32 in [0,1], y int32)`` batches."""
        import tensorflow as tf

        h, w, c = self.shape
        label_bytes = LABEL_DTYPE.itemsize

        def decode(records):
            raw = tf.io.decode_raw(records, tf.uint8)
            y = tf.bitcast(tf.reshape(raw[:, :label_bytes], [-1, label_bytes]), tf.int32)
            x = tf.reshape(raw[:, label_bytes:], [-1, h, w, c])
            return tf.cast(x, tf.float32) / 255.0, y

        ds = tf.data.FixedLengthRecordDataset([str(f) for f in self.files], self.dtype.itemsize)
        return ds.batch(batch_size).map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                                        deterministic=True)


def check_labels(y: np.ndarray, num_classes: int, what: str) -> None:
    """Raise DatasetError when a label is outside ``0..num_classes-1``."""
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DatasetError(f"{what} has labels in [{int(y.min())}, {int(y.max())}] but "
                           f"{num_classes} classes. Fix: pass --num-classes {int(y.max()) + 1} "
                           "or more, or fix the labels (they must be 0..num_classes-1).")
