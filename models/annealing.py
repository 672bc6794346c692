"""Simulated annealing of binary stochastic units (numpy): the schedules, the
unit noise, sweeps and the search behind ``models.anneal``.

References: S. Kirkpatrick, C. D. Gelatt, M. P. Vecchi, "Optimization by
simulated annealing", Science 220:671-680, 1983; S. Geman, D. Geman, IEEE PAMI
6(6), 1984 (``T_k = T0 / log(1 + k)``); H. Szu, R. Hartley, "Fast simulated
annealing", Physics Letters A 122:157-162, 1987 (``T_k = T0 / (1 + k)`` with
Cauchy moves); Y. Takefuji, H. Szu, "Design of parallel distributed Cauchy
machines", IJCNN 1989 (Cauchy noise on binary units).

Units are 0/1 with symmetric weights ``W`` (zero diagonal) and biases ``b``;
``E(s) = -1/2 s^T W s - b^T s``. Unit i's energy gap is
``gap_i = E(s_i = 0) - E(s_i = 1) = W_i . s + b_i``. At temperature T an update
sets ``s_i = 1`` exactly when ``gap_i + T * xi > 0`` for a fresh draw ``xi``:
logistic noise gives ``p(s_i = 1) = sigmoid(gap_i / T)`` (Boltzmann), standard
Cauchy noise ``1/2 + arctan(gap_i / T) / pi`` (Cauchy: heavier tails, larger
jumps at the same temperature). At T = 0 the update is ``s_i = [gap_i > 0]``.
A sweep updates every free unit once; sweep k (k = 1, 2, ...) runs at ``T_k``.
"""
from __future__ import annotations

import numpy as np

SCHEDULES = ("boltzmann", "cauchy")


def temperature(schedule: str, t0: float, k) -> np.ndarray:
    """``T_k`` of sweep ``k`` >= 1: ``T0/log(1+k)`` (boltzmann) or ``T0/(1+k)`` (cauchy)."""
    k = np.asarray(k, dtype=np.float64)
    return t0 / np.log1p(k) if schedule == "boltzmann" else t0 / (1.0 + k)


def noise(schedule: str, rng, size) -> np.ndarray:
    """Unit noise ``xi``: standard logistic (boltzmann) or standard Cauchy (cauchy)."""
    return rng.logistic(size=size) if schedule == "boltzmann" else rng.standard_cauchy(size=size)


def fixed_thresholds(schedule: str, t0: float, steps: int, free: int, seed: int) -> np.ndarray:
    """The call's noise as thresholds ``-T_k xi`` ``[steps + 1, free]``: unit i turns
    on in sweep k when ``gap_i > threshold[k, i]``. The last row is the T = 0 sweep.
    Drawn from ``numpy.random.default_rng(seed)``, so the same config gives the same
    graph."""
    rng = np.random.default_rng(seed)
    temps = temperature(schedule, t0, np.arange(1, steps + 1))[:, None]
    table = -temps * noise(schedule, rng, (steps, free))
    return np.vstack([table, np.zeros((1, free))]).astype(np.float32)


def search(w, b, schedule: str, t0: float, steps: int, rng) -> np.ndarray:
    """Lowest-energy state visited by one annealing run (``models.anneal``).

    Random start; ``steps`` sweeps at ``T_1..T_steps``, then one at T = 0, each in
    a fresh random unit order with fresh noise. The energy is tracked through every
    single-unit change (a flip of unit i changes E by ``-(new - old) * gap_i``).
    """
    n = len(b)
    s = rng.integers(0, 2, n).astype(np.float64)
    energy = float(-0.5 * s @ w @ s - b @ s)
    best, best_energy = s.copy(), energy
    temps = np.append(temperature(schedule, t0, np.arange(1, steps + 1)), 0.0)
    for t in temps:
        xi = noise(schedule, rng, n)
        for i in rng.permutation(n):
            gap = w[i] @ s + b[i]
            new = 1.0 if gap + t * xi[i] > 0 else 0.0
            if new != s[i]:
                energy -= (new - s[i]) * gap
                s[i] = new
                if energy < best_energy:
                    best, best_energy = s.copy(), energy
    return best


def statistics(s, free, w, b, rng, *, schedule, t0, anneal_steps, sample_steps):
    """Co-occurrence statistics of one learning phase (Ackley, Hinton & Sejnowski).

    Anneals the ``free`` units of every row of ``s`` with the schedule floored at
    T = 1 (``anneal_steps`` sweeps), then averages ``s s^T`` and ``s`` over
    ``sample_steps`` sweeps at T = 1. With no free unit the rows are the statistics.

    Returns:
        ``(<s s^T> [n, n], <s> [n], final states)``.
    """
    s = np.asarray(s, dtype=np.float64).copy()
    if not len(free):
        return s.T @ s / len(s), s.mean(0), s
    temps = np.maximum(temperature(schedule, t0, np.arange(1, anneal_steps + 1)), 1.0)
    temps = np.concatenate([temps, np.ones(sample_steps)])
    ss, total = np.zeros_like(w), np.zeros_like(b)
    for sweep, t in enumerate(temps):
        xi = noise(schedule, rng, (len(free), len(s)))
        for j, i in enumerate(rng.permutation(free)):
            s[:, i] = s @ w[i] + b[i] + t * xi[j] > 0
        if sweep >= anneal_steps:
            ss += s.T @ s
            total += s.sum(0)
    count = len(s) * sample_steps
    return ss / count, total / count, s
