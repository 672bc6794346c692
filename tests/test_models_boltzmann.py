"""Boltzmann and Cauchy machines: annealing against the brute-forced minimum,
the 4-2-4 encoder of Ackley, Hinton & Sejnowski (1985), the energy formula,
the deterministic call in every runtime, and bad input."""
import itertools

import numpy as np
import pytest

import models

MACHINES = ("boltzmann", "cauchy_machine")


def _all_states(n):
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)))


def _energies(states, w, b):
    return -0.5 * np.einsum("ni,ij,nj->n", states, w, states) - states @ b


def _machine(name, w, b, **overrides):
    model = models.create_model(name, units=len(b), **overrides)
    model.machine.kernel.assign(w.astype(np.float32))
    model.machine.bias.assign(b.astype(np.float32))
    return model


def _random_energy(n, seed):
    rng = np.random.default_rng(seed)
    w = np.triu(rng.normal(size=(n, n)), 1)
    return w + w.T, rng.normal(size=n)


@pytest.mark.parametrize("name", MACHINES)
def test_anneal_reaches_the_brute_forced_minimum_from_most_seeds(name):
    w, b = _random_energy(14, seed=1)
    model = _machine(name, w, b)
    w, b = model.parameters()  # the float32 weights the machine holds
    energies = _energies(_all_states(14), w, b)   # all 16,384 states
    found = [model.energy(models.anneal(model, steps=32, seed=s)[None])[0] for s in range(20)]
    hits = sum(abs(e - energies.min()) < 1e-9 for e in found)
    # bench/stochastic_nets.py over 30 energies x 20 seeds: 0.94 / 0.90 at 32 sweeps.
    assert hits >= 16, (name, hits)
    assert min(found) >= energies.min() - 1e-9


def test_energy_and_call_follow_the_definitions():
    w, b = _random_energy(6, seed=2)
    model = _machine("boltzmann", w, b, steps=3, clamped=2)
    w, b = model.parameters()
    states = _all_states(6)
    np.testing.assert_allclose(model.energy(states), _energies(states, w, b), rtol=1e-12)
    # The call: 3 sweeps over units 2..5 in order at the fixed thresholds, then T = 0;
    # recomputed here from the layer's threshold table with plain numpy.
    thresholds = model.machine.thresholds
    x = states[::7].astype(np.float32)
    s = x.astype(np.float64).copy()
    for sweep in range(4):
        for j, i in enumerate(range(2, 6)):
            s[:, i] = (s @ w[i] + b[i]) > thresholds[sweep, j]
    np.testing.assert_array_equal(np.asarray(model(x)), s)
    np.testing.assert_array_equal(thresholds[-1], 0.0)  # the last sweep is at T = 0
    np.testing.assert_array_equal(s[:, :2], x[:, :2])    # clamped units kept the input


@pytest.mark.slow
def test_boltzmann_machine_learns_the_4_2_4_encoder():
    # Ackley, Hinton & Sejnowski (1985), section 5: V1 (4 units) and V2 (4 units)
    # talk only through 2 hidden units; each pattern has one V1 unit on and the
    # same V2 unit on. A solution gives every pattern its own 2-bit hidden code.
    connectivity = np.ones((10, 10), int) - np.eye(10, dtype=int)
    connectivity[:4, 4:8] = connectivity[4:8, :4] = 0
    patterns = np.hstack([np.eye(4), np.eye(4)])
    model = models.create_model("boltzmann", units=10, hidden_units=2, clamped=4,
                                connectivity=connectivity.tolist())
    history = models.learn(model, patterns, epochs=300, seed=3)
    assert history["correlation_gap"][-1] < history["correlation_gap"][0]
    w, b = model.parameters()
    assert np.array_equal(w, w.T) and not w.diagonal().any()
    assert not w[:4, 4:8].any()  # no connection was grown between V1 and V2
    # Reference: brute force over the 64 completions of each clamped V1.
    completions = _all_states(6)
    codes = set()
    for pattern in patterns:
        states = np.hstack([np.tile(pattern[:4], (64, 1)), completions])
        best = states[_energies(states, w, b).argmin()]
        np.testing.assert_array_equal(best[4:8], pattern[4:8])
        codes.add(tuple(best[8:]))
    assert len(codes) == 4
    # The model's own inference: anneal V2 and H with V1 clamped.
    out = np.asarray(model(np.hstack([np.eye(4), np.zeros((4, 4))]).astype(np.float32)))
    np.testing.assert_array_equal(out[:, 4:8], np.eye(4))
    assert len({tuple(row) for row in out[:, 8:]}) == 4


@pytest.mark.slow
def test_call_is_deterministic_in_every_runtime(tmp_path):
    import export
    from tests._export_helpers import run_raw

    w, b = _random_energy(12, seed=4)
    # Cauchy noise has the widest thresholds; both machines share the graph.
    model = _machine("cauchy_machine", w * 3, b)
    model.save(tmp_path / "m.keras")
    again = models.load_model(tmp_path / "m.keras")
    x = (np.random.default_rng(5).random((9, 12)) > 0.5).astype(np.float32)
    reference = np.asarray(model(x))
    np.testing.assert_array_equal(np.asarray(again(x)), reference)
    manifest = export.export_model(again, tmp_path / "out")
    for artifact in manifest["artifacts"]:
        got = run_raw(tmp_path / "out" / artifact["path"], x)[0]
        np.testing.assert_array_equal(got, reference, err_msg=artifact["format"])


def test_audit_counts_the_symmetric_matrix_both_ways():
    rows = {r.name: r for r in models.audit(models.create_model("cauchy_machine", units=10)).rows}
    assert rows["units"].formula == "(10 x 10) + 10 = 110"
    assert "10 x 9 / 2 = 45 independent" in rows["units"].note
    assert models.describe("boltzmann", input_shape=(8,), hidden_units=2)["defaults"]["units"] == 10


def test_bad_input_is_a_one_line_error():
    model = models.create_model("boltzmann", units=4)
    with pytest.raises(models.LearningRuleError, match=r"binary units.*found \[0.5\]") as info:
        models.learn(model, np.array([[0.0, 0.5, 1.0, 1.0]]))
    assert "\n" not in str(info.value)
    with pytest.raises(models.LearningRuleError, match="flip_on"):
        models.learn(model, np.ones((2, 4)), flip_on=1.5)
    with pytest.raises(models.ModelConfigError, match="anneal needs"):
        models.anneal(models.create_model("rbm"))
    with pytest.raises(models.ModelConfigError, match="steps"):
        models.anneal(model, steps=0)
    with pytest.raises(models.ModelConfigError, match="units=5 must equal"):
        models.create_model("boltzmann", units=5, input_shape=(3,))
    with pytest.raises(models.ModelConfigError, match="connectivity must be a symmetric"):
        models.create_model("boltzmann", units=3, connectivity=[[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(models.ModelConfigError, match="clamped"):
        models.create_model("cauchy_machine", units=3, clamped=4)
