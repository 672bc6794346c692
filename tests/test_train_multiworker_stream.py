"""A two-worker loopback cluster on a streamed set: each worker reads only its part."""
import json

import numpy as np
import pytest

from _cluster_helpers import CONFIG, cluster, load, run_worker, wait_all
from _train_helpers import converted_digits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    return converted_digits(tmp_path_factory.mktemp("src"))


def test_each_replica_reads_its_own_disjoint_columns(streamed):
    """The union of the replicas' reads is every training example once per epoch."""
    import data
    from training.distributed import shard_bounds
    from training.steps import epoch_blocks

    bundle = data.load_dataset(streamed, batch_size=45, seed=7)
    seen = {0: [], 1: []}
    for blocks, n in epoch_blocks(bundle, 0, 45, 4):
        bounds = shard_bounds(blocks.shape[1], 2)
        for r in (0, 1):
            seen[r].extend(blocks[:n, bounds[r]:bounds[r + 1]].reshape(-1).tolist())
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(bundle.sizes["train"]))


def test_streamed_cluster_trains_like_one_process(streamed, tmp_path):
    extra = {"dataset": streamed, "limit": None}
    procs = cluster(tmp_path / "run", tmp_path, "w", extra)
    single = run_worker(tmp_path / "single", {**CONFIG, **extra, "jit_compile": False},
                        tmp_path / "single")
    wait_all([*procs, single])
    (w0, r0), (w1, _), (ws, rs) = (load(tmp_path / n) for n in ("w0", "w1", "single"))
    assert [h["samples"] for h in r0["history"]] == [448, 448]
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(w0, ws):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([h["loss"] for h in r0["history"]],
                               [h["loss"] for h in rs["history"]], rtol=1e-5)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == streamed
