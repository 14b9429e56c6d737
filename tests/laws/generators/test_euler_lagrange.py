"""Tests for pikan/laws/generators/euler_lagrange.py: Lagrangian laws by Euler-Lagrange regression."""

import numpy as np
import pikan.systems
import pytest
import sympy

import pikan
from pikan import Dissipation, Lagrangian, System
from pikan.laws.candidates import select
from pikan.laws.generators.euler_lagrange import euler_lagrange_fits, library_terms
from pikan.spec.expr import parse


def _scaled_equal(expr, truth, names, rtol=1e-6):
    """Equal up to a constant factor (a Lagrangian's scale is free) and additive constant."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(0.3, 1.5, size=(200, len(names)))
    f = sympy.lambdify(names, expr)(*pts.T)
    g = sympy.lambdify(names, truth)(*pts.T)
    f, g = f - np.mean(f), g - np.mean(g)
    scale = np.dot(f, g) / np.dot(f, f)
    return np.max(np.abs(scale * f - g)) <= rtol * np.max(np.abs(g))


@pytest.fixture(scope="module")
def pendulum_data():
    entry = pikan.systems.get("double_pendulum")
    data = entry.simulate(seed=0, n_trajectories=3, t=(0.0, 1.0))
    return entry, data


def test_library_has_kinetic_couplings_and_position_factors():
    spec = System("p", coords=["x"], modules=[Lagrangian(
        "L", inputs={"x": "x", "r": "x**2 + 1", "v_x": "v_x"}, law=None)])
    z = np.array([[0.5, 1.25, 0.1], [-0.5, 1.25, 0.2]])
    terms = {str(t) for t in library_terms(spec.module("L"), spec, z)}
    assert {"v_x**2", "v_x**2*cos(x)", "x**2", "sin(x)", "1/r", "v_x/r"} <= terms
    assert "1/x" not in terms  # x changes sign on the samples


def test_double_pendulum_lagrangian_recovered_up_to_scale(pendulum_data):
    entry, data = pendulum_data
    model = pikan.compile(entry.model(), seed=0)  # untrained: the law comes from the motion
    q, v, _ = data.states()
    a, _ = data.accelerations()
    fits = euler_lagrange_fits(model, "L", q, v, a)
    chosen = select(fits, 1e-3)
    assert chosen.error < 1e-8 and chosen.source == "euler-lagrange"
    names = sympy.symbols("theta1 theta2 phi v_theta1 v_theta2")
    assert _scaled_equal(chosen.expr, parse(entry.laws()["L"]), names)
    assert len(chosen.expr.args) == 5  # sparse: the five true terms, nothing else


def test_known_dissipation_fixes_the_scale():
    truth = System("damped", coords=["x"], modules=[
        Lagrangian("L", inputs=["x", "v_x"], law="2*v_x**2/2 - 3*x**2/2"),
        Dissipation("D", inputs=["v_x"], law="0.4*v_x**2/2")])
    data = pikan.simulate(truth, n_trajectories=3, t=(0.0, 3.0), dt=0.05, seed=1)
    model = pikan.compile(truth.learn("L", hidden=[]), seed=0)
    q, v, _ = data.states()
    a, _ = data.accelerations()
    chosen = select(euler_lagrange_fits(model, "L", q, v, a), 1e-3)
    assert pikan.equivalent(chosen.expr, "v_x**2 - 1.5*x**2", rtol=1e-6)


def test_extract_reads_a_lagrangian_through_its_motion(pendulum_data):
    entry, data = pendulum_data
    model = pikan.compile(entry.model(), seed=0)
    law = pikan.extract(model, data)["L"]
    assert law.alternatives[0].source == "euler-lagrange" and law.error < 1e-6
    names = sympy.symbols("theta1 theta2 phi v_theta1 v_theta2")
    assert _scaled_equal(law.expr, parse(entry.laws()["L"]), names)
