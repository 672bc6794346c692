"""The image shape a dataset is loaded in: ``image_size`` (H, W) and ``channels`` (1 or 3).

Sources deliver images in their own shape (the registered MNIST-family sets:
32x32 gray; a ``.npz``, tfds set or image folder: its stored size and
channels); :func:`to_shape` brings them to the asked shape, by default the
zoo's 32x32 gray (:data:`utils.images.IMAGE_SHAPE`):

* colour -> gray with the ITU-R 601 luma weights (``tf.image.rgb_to_grayscale``),
  then another size by bilinear resizing with antialiasing (``tf.image.resize``);
* gray images are never made "colour": ``channels=3`` on them is refused.
"""
from __future__ import annotations

import numpy as np

from utils.images import IMAGE_CHANNELS, IMAGE_SIZE

from ._errors import CorruptDatasetError, DatasetError

CHANNELS = (1, 3)


def image_size_arg(value) -> tuple[int, int] | None:
    """``None``, ``28``, ``(28, 32)`` or the flag text ``"28"`` / ``"28,32"`` -> ``(H, W)``.

    Raises:
        DatasetError: not one or two positive integers.
    """
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else (
        [value] if np.ndim(value) == 0 else list(value))
    try:
        size = tuple(int(p) for p in parts)
        ok = len(size) in (1, 2) and all(s >= 1 and float(p) == s for s, p in zip(size, parts))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DatasetError(f"image_size must be H or H,W (positive integers, e.g. 28 or 64,48); "
                           f"received image_size={value!r}.")
    return size * 2 if len(size) == 1 else size


def channels_arg(value) -> int | None:
    """``None``, 1 or 3.

    Raises:
        DatasetError: any other value.
    """
    if value is None:
        return None
    if isinstance(value, (bool, float)) or value not in CHANNELS:
        raise DatasetError(f"channels must be 1 (gray) or 3 (colour); received channels={value!r}.")
    return int(value)


def target_shape(image_size=None, channels=None) -> tuple[int, int, int]:
    """``(H, W, C)`` asked for, the zoo's 32x32 gray where not given."""
    h, w = image_size_arg(image_size) or (IMAGE_SIZE, IMAGE_SIZE)
    return h, w, channels_arg(channels) or IMAGE_CHANNELS


def refuse_gray_as_colour(what: str) -> DatasetError:
    return DatasetError(f"{what} holds gray images (1 channel); channels=3 needs colour images. "
                        "Fix: drop --channels 3 (gray is --channels 1), or use a colour source.")


def check_stored(shape: tuple, image_size, channels, *, what: str, fix: str) -> None:
    """Refuse an ``image_size``/``channels`` other than the stored ``shape`` of ``what``
    (a converted dataset, an ``x.npy`` folder: read as they are, never resized).

    Raises:
        DatasetError: names the stored shape; ``fix`` says how to get another.
    """
    h, w, c = shape
    size, chans = image_size_arg(image_size), channels_arg(channels)
    if chans == 3 and c == 1:
        raise refuse_gray_as_colour(what)
    if (size is not None and size != (h, w)) or (chans is not None and chans != c):
        raise DatasetError(f"{what} stores {h}x{w} images with {c} channel(s) and is read in "
                           f"that shape. Fix: drop --image-size/--channels, or {fix}.")


def add_shape_arguments(parser, stored: str) -> None:
    """The ``--image-size`` and ``--channels`` flags (train.py, python -m data convert);
    ``stored`` says what keeps its own shape."""
    parser.add_argument("--image-size", dest="image_size", metavar="H[,W]",
                        help="resize the images to H x W (bilinear, antialiased; default 32); "
                        f"{stored} keeps its stored size")
    parser.add_argument("--channels", type=int, metavar="1|3",
                        help="1: gray (default; colour images are converted), 3: colour "
                        f"(refused for gray images); {stored} keeps its stored channels")


def to_shape(images: np.ndarray, shape=(IMAGE_SIZE, IMAGE_SIZE, IMAGE_CHANNELS), *,
             what: str = "The dataset") -> np.ndarray:
    """Any [N,H,W] / [N,H,W,C] batch (uint8 0..255 or float 0..1) -> [N, *shape] float32 in [0,1].

    Raises:
        DatasetError: ``shape`` asks 3 channels of gray images.
        CorruptDatasetError: images that are not [N,H,W] or [N,H,W,C] with C in 1, 3, 4.
    """
    import tensorflow as tf

    h, w, c = shape
    x = np.asarray(images)
    integer = np.issubdtype(x.dtype, np.integer)
    x = x.astype(np.float32)
    if integer:
        x = x / 255.0
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise CorruptDatasetError(f"Expected images [N,H,W] or [N,H,W,C]; got shape {x.shape}.")
    if x.shape[-1] == 4:
        x = x[..., :3]  # alpha is not part of the image
    if x.shape[-1] not in (1, 3):
        raise CorruptDatasetError(f"Images with {x.shape[-1]} channels are not supported "
                                  "(expected 1, 3 or 4).")
    if c == 3 and x.shape[-1] == 1:
        raise refuse_gray_as_colour(what)
    if c == 1 and x.shape[-1] == 3:
        x = tf.image.rgb_to_grayscale(x).numpy()
    if x.shape[1:3] != (h, w):
        x = tf.image.resize(x, (h, w), antialias=True).numpy()
    return x.astype(np.float32)
