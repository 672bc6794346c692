#!/usr/bin/env python3
"""Measured figures of the stochastic and radial-basis nets (docs/models.md).

    .venv/bin/python bench/stochastic_nets.py                 # everything, ~5 min on 2 cores
    .venv/bin/python bench/stochastic_nets.py --only anneal   # rbm | anneal | encoder | rbf

- rbm: CD-1 and PCD against scikit-learn's BernoulliRBM on its digits scaled to
  [0, 1] (64 hidden, learning rate 0.1, batch 10, 7 epochs, 80/20 split): the
  exact pseudo-likelihood (all 64 units flipped in turn, from free energies) and a
  logistic regression on the hidden probabilities, three seeds each.
- anneal: ``models.anneal`` on random energies (W, b ~ N(0, 1)) of 12, 14 and 16
  units against the brute-forced minimum: the fraction of runs (10 energies per
  size x 20 seeds) that reach it, per number of sweeps, for both schedules.
- encoder: the 4-2-4 encoder of Ackley, Hinton & Sejnowski (1985), 20 seeds, up
  to 1,000 epochs: the first epoch (checked every 10) at which the model's call
  completes V2 from a clamped V1 for all four patterns with four distinct codes.
- rbf: XOR and iris 5-fold cross-validation.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import models  # noqa: E402
from models.rbm import pseudo_likelihood  # noqa: E402

STEPS = (1, 2, 4, 8, 16, 32, 64, 128)


def rbm() -> dict:
    import keras
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=0.2, random_state=0,
                                              stratify=y)

    def lr_accuracy(f_tr, f_te):
        with threadpool_limits(1):
            return LogisticRegression(max_iter=2000).fit(f_tr, y_tr).score(f_te, y_te)

    rows = {}
    for seed in range(3):
        sk = BernoulliRBM(n_components=64, learning_rate=0.1, batch_size=10, n_iter=7,
                          random_state=seed).fit(x_tr)
        twin = models.create_model("rbm", input_shape=(64,))
        twin.rbm.kernel.assign(sk.components_.T.astype(np.float32))
        twin.rbm.hidden_bias.assign(sk.intercept_hidden_.astype(np.float32))
        twin.rbm.visible_bias.assign(sk.intercept_visible_.astype(np.float32))
        rows.setdefault("sklearn BernoulliRBM (PCD)", []).append(
            (pseudo_likelihood(twin, x_tr).mean(), lr_accuracy(sk.transform(x_tr),
                                                              sk.transform(x_te))))
        for persistent in (False, True):
            keras.utils.set_random_seed(seed)
            model = models.create_model("rbm", input_shape=(64,))
            models.learn(model, x_tr, epochs=7, learning_rate=0.1, batch_size=10,
                         persistent=persistent, seed=seed)
            features = [np.asarray(model(a.astype(np.float32))) for a in (x_tr, x_te)]
            rows.setdefault("models rbm, " + ("PCD" if persistent else "CD-1"), []).append(
                (pseudo_likelihood(model, x_tr).mean(), lr_accuracy(*features)))
    return {name: {"pseudo_likelihood": [round(float(p), 3) for p, _ in r],
                   "lr_accuracy": [round(float(a), 4) for _, a in r]} for name, r in rows.items()}


def anneal() -> dict:
    rates = {}
    for name in ("boltzmann", "cauchy_machine"):
        hits = {s: 0 for s in STEPS}
        runs = 0
        for n in (12, 14, 16):
            states = np.array(list(itertools.product((0.0, 1.0), repeat=n)))
            for problem in range(10):
                rng = np.random.default_rng((n, problem))
                w = np.triu(rng.normal(size=(n, n)), 1)
                model = models.create_model(name, units=n)
                model.machine.kernel.assign((w + w.T).astype(np.float32))
                model.machine.bias.assign(rng.normal(size=n).astype(np.float32))
                lowest = model.energy(states).min()
                for seed in range(20):
                    runs += 1
                    for s in STEPS:
                        found = model.energy(models.anneal(model, steps=s, seed=seed)[None])[0]
                        hits[s] += found <= lowest + 1e-9
        rates[name] = {s: round(hits[s] / runs, 3) for s in STEPS}
    return {"runs_per_cell": 600, "success_rate_by_sweeps": rates}


def encoder() -> dict:
    connectivity = np.ones((10, 10), int) - np.eye(10, dtype=int)
    connectivity[:4, 4:8] = connectivity[4:8, :4] = 0
    patterns = np.hstack([np.eye(4), np.eye(4)])
    probe = np.hstack([np.eye(4), np.zeros((4, 4))]).astype(np.float32)
    out = {}
    for name in ("boltzmann", "cauchy_machine"):
        solved = []
        for seed in range(20):
            model = models.create_model(name, units=10, hidden_units=2, clamped=4,
                                        connectivity=connectivity.tolist())
            first = []

            def check(epoch, logs):
                if first or epoch % 10 != 9:
                    return
                s = np.asarray(model(probe))
                if (s[:, 4:8] == np.eye(4)).all() and len({tuple(r) for r in s[:, 8:]}) == 4:
                    first.append(epoch + 1)

            models.learn(model, patterns, epochs=1000, seed=seed, on_epoch_end=check)
            solved.append(first[0] if first else None)
        done = [e for e in solved if e is not None]
        out[name] = {"solved": f"{len(done)}/20", "median_epochs": statistics.median(done)
                     if done else None, "epochs": solved}
    return out


def rbf() -> dict:
    from sklearn.datasets import load_iris
    from sklearn.model_selection import StratifiedKFold

    xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    model = models.create_model("rbf_network", input_shape=(2,), centers=4, num_classes=2)
    models.learn(model, xor, [0, 1, 1, 0], epochs=3)
    x, y = load_iris(return_X_y=True)
    scores = {}
    for centers in (6, 10, 15):
        fold = []
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
            m = models.create_model("rbf_network", input_shape=(4,), centers=centers,
                                    num_classes=3)
            models.learn(m, x[tr], y[tr], seed=0)
            fold.append(float(np.mean(np.asarray(m(x[te].astype(np.float32))).argmax(1) == y[te])))
        scores[centers] = round(float(np.mean(fold)), 4)
    return {"xor_outputs": np.asarray(model(xor)).argmax(1).tolist(),
            "iris_5fold_accuracy_by_centers": scores}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("rbm", "anneal", "encoder", "rbf"))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    results = {}
    for name, fn in (("rbm", rbm), ("anneal", anneal), ("encoder", encoder), ("rbf", rbf)):
        if args.only in (None, name):
            start = time.perf_counter()
            results[name] = fn()
            results[name]["seconds"] = round(time.perf_counter() - start, 1)
            print(json.dumps({name: results[name]}, indent=1), flush=True)
    if args.json:
        from utils.io import atomic_write_json
        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
