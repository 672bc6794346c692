"""evaluate() on a converted dataset streams its split and scores exactly as in memory."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from _train_helpers import ROOT
from test_data_stream import _digits_uint8

FIELDS = ("accuracy", "top5_accuracy", "loss", "precision", "recall", "confusion_matrix",
          "agreement")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The same 640 digits as a .npz (in memory) and converted (streamed, 3 test shards)."""
    import data

    tmp = tmp_path_factory.mktemp("evalstream")
    x, y = _digits_uint8(640)
    np.savez(tmp / "d.npz", x=x, y=y)
    return tmp, tmp / "d.npz", data.convert(tmp / "d.npz", tmp / "ds", shards=9, progress=False)


@pytest.fixture(scope="module")
def artifacts(sets):
    """A briefly trained 10-class exam_mlp as .keras (run in-process) and .tflite (isolated)."""
    import export
    import models

    import data

    tmp, npz, _ = sets
    x, y = data.load_dataset(npz).as_numpy("train")
    model = models.create_model("exam_mlp", num_classes=10, hidden_units=(32,))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    model.save(tmp / "m.keras")
    export.export_model(model, tmp / "export", formats=("tflite",))
    return [tmp / "m.keras", tmp / "export" / "model.tflite"]


def _same(a, b):
    assert a.num_examples == b.num_examples and a.class_names == b.class_names
    for ra, rb in zip(a.artifacts, b.artifacts, strict=True):
        assert np.array_equal(ra.predictions, rb.predictions)
        for field in FIELDS:
            assert getattr(ra, field) == getattr(rb, field), field


@pytest.mark.slow
@pytest.mark.parametrize("limit", [None, 50])
def test_streamed_evaluation_equals_in_memory(sets, artifacts, limit, monkeypatch):
    import data
    from evaluation import evaluate

    _, npz, converted = sets
    mem = evaluate(artifacts, dataset=str(npz), batch_size=16, progress=False, limit=limit)
    # The streamed split is never loaded whole: only batch-sized reads of its shards.
    monkeypatch.setattr(data.StreamedBundle, "as_numpy", None)
    reads = []
    real_read = data._stream.ShardedSplit.read
    monkeypatch.setattr(data._stream.ShardedSplit, "read",
                        lambda self, rows: reads.append(len(rows)) or real_read(self, rows))
    disk = evaluate(artifacts, dataset=str(converted), batch_size=16, progress=False, limit=limit)
    _same(disk, mem)
    assert 0.3 < mem.artifacts[0].accuracy < 1.0  # a model that learned something, not chance
    images = [n for n in reads if n <= 16]  # the .keras batches (labels come in one chunk)
    assert sum(images) >= (limit or 128) and max(images) == 16


@pytest.mark.slow
def test_cli_streams_a_converted_set(sets, artifacts):
    """evaluate.py --dataset DIR scores as evaluate() does on the .npz in memory."""
    from evaluation import evaluate

    _, npz, converted = sets
    mem = evaluate(artifacts[:1], dataset=str(npz), progress=False).artifacts[0]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "evaluate.py", str(artifacts[0]), "--dataset",
                          str(converted), "--quiet", "--json"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    disk = json.loads(res.stdout)["artifacts"][0]
    for field in FIELDS:
        assert disk[field] == getattr(mem, field), field
