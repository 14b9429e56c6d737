"""The generalization suite's own plumbing (``benchmarks/generalization.py``).

Guards the suite against typos: every system's hand-written numpy equations agree with
the equations pikan compiles from the system's true spec; the scipy-made HDF5 files load
back with the right coordinates; the plain learning specs are what a new user would
write (every module learned, no constraints). The end-to-end run of one system is marked
``slow``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

import pikan
from pikan.laws.law import in_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _gen_systems  # noqa: E402
import generalization  # noqa: E402

SYSTEMS = list(_gen_systems.SYSTEMS.values())
FAMILIES = ("exponential", "inverse_power", "trigonometric", "multiwell", "nonseparable",
            "magnetic", "damping", "constant_force", "nbody", "radial")


def test_the_suite_covers_every_family():
    assert len(SYSTEMS) >= 24
    for family in FAMILIES:
        assert sum(s.family == family for s in SYSTEMS) >= 2, family
    assert {s.family for s in SYSTEMS} == set(FAMILIES)


def test_no_system_is_in_the_catalogue():
    import pikan.systems

    assert not set(_gen_systems.SYSTEMS) & set(pikan.systems.names())


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.name)
def test_numpy_equations_match_the_true_spec(system):
    rng = np.random.default_rng(0)
    q, v = (np.array(a) for a in zip(*[system.sample(rng) for _ in range(5)]))
    # also off the sampled region's centre line: jiggle the states a little
    q = q + 0.05 * rng.standard_normal(q.shape)
    v = v + 0.05 * rng.standard_normal(v.shape)
    model = pikan.compile(system.truth)
    expected = model.acceleration(torch.as_tensor(q, dtype=torch.float64),
                                  torch.as_tensor(v, dtype=torch.float64)).detach().numpy()
    np.testing.assert_allclose(system.accel(q, v), expected, rtol=1e-8,
                               atol=1e-12 * np.abs(expected).max())
    y = np.concatenate([q[0], v[0]])
    np.testing.assert_allclose(system.rhs(0.0, y)[len(system.coords):], expected[0], rtol=1e-8)


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.name)
def test_plain_spec_learns_every_module_without_constraints(system):
    spec = system.plain()
    assert set(spec.learned) == set(system.truth.module_names)
    assert spec.constraints == ()
    for module in spec.modules:
        assert module.law is None and module.constraints == ()
        truth = system.truth.module(module.name)
        # pikan's defaults: nothing tuned per system
        fields = type(module).__dataclass_fields__
        for option in ("hidden", "grid", "order", "mult", "jump"):
            assert getattr(module, option) == fields[option].default, (module.name, option)
        assert dict(module.inputs) == dict(truth.inputs)
    pikan.compile(spec, seed=0)


def test_files_load_back_with_their_coordinates(tmp_path):
    small = {"n_trajectories": 2, "t": (0.0, 1.0), "dt": 0.05}
    for name in ("morse", "magnetic_gradient", "gas_gauss"):
        system = _gen_systems.SYSTEMS[name]
        paths = generalization.write_data(system, (0.0, 0.05), tmp_path, simulation=small)
        clean = pikan.Trajectories.load(paths[0.0])
        noisy = pikan.Trajectories.load(paths[0.05])
        for data in (clean, noisy):
            assert tuple(data.coords) == system.coords and len(data) == 2
            assert len(data[0].t) == 21
        assert clean.has_velocities and not noisy.has_velocities
        # the clean file is the scipy solution: its velocities are the derivative of q
        q, v = clean[0].q, clean[0].v
        np.testing.assert_allclose(np.gradient(q, clean[0].t, axis=0)[1:-1], v[1:-1],
                                   atol=0.02 * np.abs(v).max() + 1e-3)
        # the noisy file holds the same trajectories plus noise of about 5 % of the spread
        spread = clean[0].q.std(axis=0).mean()
        deviation = np.abs(noisy[0].q - clean[0].q).mean()
        assert 0.0 < deviation < 0.5 * spread


def test_the_data_is_the_true_systems_motion():
    """solve_ivp's trajectory agrees with pikan's own integrator of the true spec."""
    system = _gen_systems.SYSTEMS["yukawa_orbit"]
    data = generalization.simulate(system, n_trajectories=1, t=(0.0, 2.0), dt=0.05, seed=3)
    record = data[0]
    initial = np.concatenate([record.q[0], record.v[0]])[None]
    ref = pikan.simulate(system.truth, t=record.t, initial=initial, method="dop853")
    np.testing.assert_allclose(ref[0].q, record.q, atol=1e-6)


def _scaled(expr, factor):
    """Every number of ``expr`` (or of each expression of a list) times ``factor``."""
    if isinstance(expr, list):
        return [_scaled(e, factor) for e in expr]
    return expr.xreplace({n: n * factor for n in expr.atoms(sympy.Float)})


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.name)
def test_scoring_accepts_the_truth_and_rejects_wrong_constants(system):
    for module in system.truth.modules:
        truth = generalization.truth_law(module, system.truth.params)
        # an energy is scored up to its additive constant; a force is not
        right = truth if module.kind == "Dynamics" else truth + 0.37
        law = pikan.Law(module=module.name, kind=module.kind, inputs=module.input_names,
                        expr=right)
        scored = generalization.compare_law(law, system.truth)
        assert scored["exact"] and scored["constant_error"] <= 0.03, (module.name, scored)
        wrong = pikan.Law(module=module.name, kind=module.kind, inputs=module.input_names,
                          expr=_scaled(truth, 1.1))
        assert not generalization.compare_law(wrong, system.truth)["exact"], module.name


@pytest.mark.parametrize("name", ["yukawa_orbit", "toda_chain", "magnetic_bottle"])
def test_scoring_in_the_state_variables(name):
    """A law on inputs the truth does not have is compared through ``in_state``
    (features substituted, summed over bindings)."""
    system = _gen_systems.SYSTEMS[name]
    module = system.truth.modules[-1]
    truth = generalization.truth_law(module, system.truth.params)
    state = ([in_state(e, module) for e in truth] if isinstance(truth, list)
             else in_state(truth, module))
    for factor, exact in ((1.0, True), (1.1, False)):
        law = pikan.Law(module=module.name, kind=module.kind, inputs=("z",),
                        expr=sympy.Symbol("z"), in_state=_scaled(state, factor))
        assert generalization.compare_law(law, system.truth)["exact"] is exact


@pytest.mark.parametrize("name", ["morse", "spring_weight", "magnetic_gradient"])
def test_scoring_reports_how_the_intervals_hold_the_truth(name):
    """With samples of the module's inputs, a law whose template is the truth's form gets
    each constant's true value and whether its interval holds it."""
    system = _gen_systems.SYSTEMS[name]
    module = system.truth.modules[-1]
    truth = generalization.truth_law(module, system.truth.params)
    exprs = truth if isinstance(truth, list) else [truth]
    numbers = sorted({f for e in exprs for f in e.atoms(sympy.Float)}, key=float)
    names = {f: sympy.Symbol(f"c{i}") for i, f in enumerate(numbers)}
    template = [e.xreplace(names) for e in exprs]
    rng = np.random.default_rng(0)
    q, v = (np.array(a) for a in zip(*[system.sample(rng) for _ in range(50)]))
    z = pikan.compile(system.truth).module_inputs(module.name, torch.as_tensor(q),
                                                  torch.as_tensor(v)).detach().numpy()
    for shift, inside in ((0.0, True), (0.05, False)):  # intervals of +-1 %, moved by 5 %
        constants = {str(s): (float(f) * (1 + shift), *sorted((float(f) * (0.99 + shift),
                                                              float(f) * (1.01 + shift))))
                     for f, s in names.items()}
        law = pikan.Law(module=module.name, kind=module.kind, inputs=module.input_names,
                        expr=truth, template=template if isinstance(truth, list)
                        else template[0], constants=constants)
        cover = generalization.compare_law(law, system.truth, z)["coverage"]
        assert set(cover) == {str(s) for s in names.values()}, name
        assert all(c["inside_90"] is inside for c in cover.values()), (name, cover)


def test_summary_counts_confident_wrong_laws():
    rows = [
        {"system": "morse", "noise": 0.0, "wall_s": 10.0, "error": None,
         "laws": {"V": {"exact": True, "verdict": "recovered"}}},
        {"system": "damped_pendulum", "noise": 0.0, "wall_s": 30.0, "error": None,
         "laws": {"V": {"exact": True, "verdict": "recovered"},
                  "D": {"exact": False, "verdict": "recovered"}}},
        {"system": "lj_1d", "noise": 0.0, "wall_s": None, "error": "RuntimeError: x",
         "laws": {}},
    ]
    result = generalization.summary(rows)
    assert result["noise"]["0"]["laws_exact"] == 2 and result["noise"]["0"]["laws"] == 4
    assert result["noise"]["0"]["rows_with_error"] == 1
    assert result["confident_wrong"] == 1 and result["median_s"] == 20.0
    assert "damped_pendulum" in result["confident_wrong_laws"][0]


@pytest.mark.slow
def _row_or_death(name: str, noise: float, marker: str) -> dict:
    """A worker's row; the first worker given the row at 5 % dies (no exception: killed),
    and every one with ``marker`` "always"."""
    if marker == "always":
        os._exit(9)
    if noise == 0.05 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(9)
    return {"system": name, "noise": noise, "error": None, "wall_s": 1.0,
            "laws": {"V": {"exact": True, "verdict": "recovered"}}}


def test_a_dying_worker_costs_its_rows_a_rerun_not_the_suite(tmp_path):
    marker = str(tmp_path / "died")
    tasks = [("morse", noise, marker) for noise in (0.01, 0.05, 0.1)]
    rows = generalization.run_rows(tasks, jobs=2, fn=_row_or_death)
    assert os.path.exists(marker)  # a worker did die
    assert [r["noise"] for r in rows] == [0.01, 0.05, 0.1]
    assert all(r["error"] is None for r in rows)
    # a row that kills every worker it runs in is an error row, after TRIES pools
    always = [("morse", 0.05, "always")]
    (row,) = generalization.run_rows(always, jobs=1, fn=_row_or_death)
    assert "BrokenProcessPool" in row["error"] and row["system"] == "morse"


def test_one_system_end_to_end(tmp_path):
    out = generalization.main(["--systems", "spring_weight", "--noise", "0", "--jobs", "1",
                               "--out", str(tmp_path / "g.json")])
    (row,) = out["rows"]
    assert row["error"] is None, row.get("traceback")
    assert row["laws"]["V"]["exact"]
    assert (tmp_path / "g.json").exists()
