"""The training benchmark compares like with like: each PyTorch twin in
bench/train_throughput.py has exactly the parameters of the Keras model it is
timed against. Needs the optional PyTorch extra (pip install torch==2.13.0);
skipped without it (marker ``torch``)."""
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="optional extra: pip install torch==2.13.0")

BENCH = Path(__file__).resolve().parent.parent / "bench" / "train_throughput.py"
# The course's exam network (16,295) and 1024-64x8-10 counted by hand:
# (1024*64 + 64) + 7 * (64*64 + 64) + (64*10 + 10).
EXPECTED = {"exam_mlp": 16_295, "deep_mlp_8x64": 65_600 + 7 * 4_160 + 650}


def _bench():
    spec = importlib.util.spec_from_file_location("train_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pytorch_twin_has_the_keras_models_parameters(name):
    import models

    bench = _bench()
    assert name in bench.MODELS
    twin = sum(p.numel() for p in bench._torch_model(name).parameters())
    assert twin == EXPECTED[name] == models.create_model(name).count_params()
