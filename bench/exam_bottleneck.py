#!/usr/bin/env python3
"""How much a d-unit linear bottleneck allows on bench/exam_scale.py's 1000-class set.

The exam network squeezes 1,024 pixels through 5 hidden units. This measures
what 5 (and more) numbers per image can carry on the synthetic set, with no
training involved: project the images onto the top-d principal directions of
the 1000 class means (the best linear d-D view for isotropic pixel noise) and
classify by the nearest class mean there. That is what d numbers per image
can carry through a linear layer (nonlinear units may do better; a network
whose training does not find such a projection does worse), so the figure
separates "the bottleneck is too narrow" from "training failed".

    .venv/bin/python bench/exam_bottleneck.py --dims 5,10
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exam_scale import CLASSES, SyntheticImages, class_patterns  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dims", default="5,10", help="bottleneck widths to measure")
    p.add_argument("--fit", type=int, default=200_000, help="images to estimate class means")
    p.add_argument("--test", type=int, default=20_000, help="held-out images to classify")
    args = p.parse_args(argv)
    n_total = args.fit + args.test
    images = SyntheticImages(np.arange(n_total) % CLASSES, class_patterns(CLASSES))
    means = np.zeros((CLASSES, images.shape[1] * images.shape[2]))
    for start in range(0, args.fit, 20_000):
        rows = np.arange(start, min(start + 20_000, args.fit))
        np.add.at(means, rows % CLASSES, images[rows].reshape(len(rows), -1) / 255.0)
    means /= args.fit // CLASSES
    test_rows = np.arange(args.fit, n_total)
    x, y = images[test_rows].reshape(len(test_rows), -1) / 255.0, test_rows % CLASSES
    _, _, vt = np.linalg.svd(means - means.mean(axis=0), full_matrices=False)
    for d in (int(v) for v in args.dims.split(",")):
        z, centres = x @ vt[:d].T, means @ vt[:d].T
        dist = (z ** 2).sum(1)[:, None] - 2 * z @ centres.T + (centres ** 2).sum(1)[None]
        accuracy = float(np.mean(dist.argmin(axis=1) == y))
        print(f"{d:3d}-unit linear bottleneck: nearest class mean accuracy {accuracy:.4f} "
              f"on {len(y):,} held-out images (chance {1 / CLASSES:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
