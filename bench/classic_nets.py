#!/usr/bin/env python3
"""The measured figures docs/models.md quotes for the memory and competitive nets.

Prints, with fixed seeds: Hopfield recall from 20% flipped bits as the number of
stored patterns grows past 0.138 N; BSB corners reached from noisy starts; BAM
recall from half-erased pairs; ART1 categories per vigilance on scikit-learn's
digits; LVQ1's 5-fold CV on iris; the SOM against minisom (same data, start and
budget; minisom is an optional reference: pip install minisom==2.3.6) and the SOM
of the embedded digits. About a minute on two cores.

    .venv/bin/python bench/classic_nets.py
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from models.hopfield import CapacityWarning  # noqa: E402


def _patterns(rng, count, units):
    return np.where(rng.random((count, units)) < 0.5, -1.0, 1.0).astype(np.float32)


def _flip(rng, p, fraction):
    out = p.copy()
    for row in out:
        row[rng.choice(len(row), int(round(fraction * len(row))), replace=False)] *= -1
    return out


def memory_nets(rng) -> None:
    print("Hopfield, N = 100, exactly 20% of the bits flipped, 5 async sweeps:")
    for count in (5, 10, 13, 20, 30):
        p = _patterns(rng, count, 100)
        net = models.create_model("hopfield", units=100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CapacityWarning)
            models.learn(net, p)
        exact = np.all(np.asarray(net(_flip(rng, p, 0.2))) == p, axis=1).mean()
        print(f"  P = {count:2d} ({count / 100:.2f} N): recalled exactly {exact:.2f}")
    p = _patterns(rng, 4, 64)
    bsb = models.create_model("bsb", units=64)
    models.learn(bsb, p)
    target = np.repeat(p, 10, axis=0)
    start = np.clip(0.5 * target + rng.normal(0, 0.5, target.shape), -1, 1).astype(np.float32)
    print(f"BSB, 4 corners of 64 units, 40 starts with {np.mean(np.sign(start) != target):.0%} "
          f"wrong signs: {np.all(np.asarray(bsb(start)) == target, axis=1).mean():.0%} "
          "end in their corner")
    x, y = _patterns(rng, 3, 120), _patterns(rng, 3, 60)
    bam = models.create_model("bam", input_units=120, output_units=60)
    models.learn(bam, x, y)
    ex, ey = x.copy(), y.copy()
    ex[:, :60] = 0
    ey[:, 30:] = 0
    print(f"BAM, 3 pairs of 120 and 60 bits, half erased: forward "
          f"{np.all(np.asarray(bam(ex)) == y, axis=1).mean():.2f}, backward "
          f"{np.all(bam.backward(ey) == x, axis=1).mean():.2f}")


def competitive_nets() -> None:
    from sklearn.datasets import load_digits, load_iris
    from sklearn.model_selection import StratifiedKFold

    bits = (load_digits().data[:300] / 16 > 0.5).astype(np.float32)
    print(f"ART1 on 300 binarised scikit-learn digits ({len(np.unique(bits, axis=0))} "
          "distinct), 3 epochs:")
    for vigilance in (0.2, 0.4, 0.6, 0.8, 0.9, 1.0):
        art = models.create_model("art1", max_categories=300, vigilance=vigilance)
        models.learn(art, bits, epochs=3)
        print(f"  vigilance {vigilance}: {art.committed()} categories")
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    scores = []
    for fold, (train, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0)
                                         .split(x, y)):
        lvq = models.create_model("lvq", input_shape=(4,), num_classes=3, prototypes_per_class=3)
        models.learn(lvq, x[train], y[train], seed=fold)
        scores.append(float(np.mean(np.asarray(lvq(x[test])).argmax(1) == y[test])))
    print(f"LVQ1 on iris, 5-fold CV, 3 prototypes per class: {np.round(scores, 3).tolist()}, "
          f"mean {np.mean(scores):.3f}")


def self_organizing_maps() -> None:
    import data

    points = np.random.default_rng(0).random((1000, 2)).astype(np.float32)
    som = models.create_model("som")
    start = som.map.prototypes.numpy().astype(np.float64).reshape(10, 10, 2)
    t0 = time.perf_counter()
    models.learn(som, points, epochs=10)
    ours_s = time.perf_counter() - t0
    print(f"SOM 10 x 10, 1,000 uniform 2-D points, 10,000 updates: QE "
          f"{som.quantization_error(points):.4f}, TE {som.topographic_error(points):.3f} "
          f"({ours_s:.2f} s)")
    try:
        from minisom import MiniSom
    except ImportError:
        print("  minisom not installed (pip install minisom==2.3.6): no side-by-side figures")
    else:
        for sigma in (1.0, 5.0):
            ref = MiniSom(10, 10, 2, sigma=sigma, learning_rate=0.5, random_seed=0)
            ref._weights = start.copy()
            t0 = time.perf_counter()
            ref.train(points, 10_000, random_order=True)
            print(f"  minisom sigma {sigma}: QE {ref.quantization_error(points):.4f}, TE "
                  f"{ref.topographic_error(points):.3f} ({time.perf_counter() - t0:.2f} s)")
    bundle = data.load_dataset("digits")
    x, y = bundle.as_numpy("train")
    xt, yt = bundle.as_numpy("test")
    som = models.create_model("som", input_shape=x.shape[1:])
    t0 = time.perf_counter()
    models.learn(som, x, epochs=5)
    seconds = time.perf_counter() - t0
    bmu = som.predict_rows(som.as_rows(x)).argmin(1)
    label = np.array([np.bincount(y[bmu == u], minlength=10).argmax() for u in range(100)])
    accuracy = np.mean(label[som.predict_rows(som.as_rows(xt)).argmin(1)] == yt)
    grid = label.reshape(10, 10)
    same = np.concatenate([(grid[:, 1:] == grid[:, :-1]).ravel(), (grid[1:] == grid[:-1]).ravel()])
    print(f"SOM 10 x 10 on {len(x):,} embedded digits, 5 epochs ({seconds:.1f} s): test QE "
          f"{som.quantization_error(xt):.2f}, TE {som.topographic_error(xt):.3f}; unit labels "
          f"classify {accuracy:.1%} of the test digits; neighbours share a label {same.mean():.0%}")


def main() -> int:
    memory_nets(np.random.default_rng(0))
    competitive_nets()
    self_organizing_maps()
    return 0


if __name__ == "__main__":
    sys.exit(main())
