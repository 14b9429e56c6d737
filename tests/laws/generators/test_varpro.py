"""Tests for pikan/laws/generators/varpro.py: laws with one scanned nonlinear constant."""

import numpy as np
import pytest
import sympy

from pikan.laws.candidates import Target, fit_candidates, select
from pikan.laws.generators.base import Options
from pikan.laws.generators.varpro import VarPro, varpro_candidates
from pikan.laws.law import equivalent

x = sympy.Symbol("x")


def _best(cands, target, tolerance=1e-9):
    return select(fit_candidates(cands, target, tolerance), tolerance)


@pytest.mark.parametrize("law, low, high", [
    ("1.73*(1 - exp(-1.37*(x - 0.83)))**2", 0.62, 1.35),  # Morse
    ("0.87*exp(-1.43*x)/1.43 + 0.87*x", -1.0, 1.0),  # Toda bond (any sign)
    ("-1.21*exp(-0.37*x)/x", 0.8, 1.4),  # Yukawa
    ("0.61/(x**2 + 0.43)", 0.87, 1.21),  # soft core
    ("-1.31/sqrt(x**2 + 0.2209)", 0.5, 1.5),  # Plummer
    ("0.93*exp(-1.27*x**2)", 0.3, 2.5),  # Gaussian core
    ("1.7*exp(-2.3*x**2)", -2.0, 2.0),  # Gaussian bump across its centre
])
def test_varpro_recovers_a_scanned_rate_or_shift_from_forces(rng, law, low, high):
    """The scan plus the 1-D refinement of the projected residual land on the true rate
    (or shift) before any common refit: the linear fit is already exact."""
    truth = sympy.sympify(law)
    s = rng.uniform(low, high, size=(600, 1))
    force = sympy.lambdify(x, sympy.diff(truth, x), "numpy")(s[:, 0])
    target = Target(("x",), s, "gradient", np.asarray(force, dtype=np.float64)[:, None])
    cands = varpro_candidates(target)
    assert min(c.error for c in cands) < 1e-7
    best = _best(cands, target)
    assert equivalent(best.expr, truth), str(best.expr)


def test_varpro_works_on_values_and_skips_many_inputs(rng):
    s = rng.uniform(0.62, 1.35, size=(500, 1))
    target = Target(("x",), s, "values", 2 * (1 - np.exp(-1.5 * (s[:, 0] - 1))) ** 2)
    best = _best(varpro_candidates(target), target)
    assert equivalent(best.expr, "2*(1 - exp(-1.5*(x - 1)))**2", up_to_constant=False)
    three = Target(("x", "y", "z"), rng.uniform(1, 2, (50, 3)), "values", np.ones(50))
    assert varpro_candidates(three) == []


def test_varpro_generator_gates_its_families_by_the_library(rng):
    s = rng.uniform(0.62, 1.35, size=(300, 1))
    target = Target(("x",), s, "values", np.exp(-1.5 * s[:, 0]))
    assert VarPro().generate(target, Options(library=["sin"])) == []
    sources = {c.source for c in VarPro().generate(target, Options(library=["exp"]))}
    assert sources == {"varpro:exp-rate", "varpro:gaussian-width"}
    sources = {c.source for c in VarPro().generate(target, Options(library=["gaussian"]))}
    assert sources == {"varpro:gaussian-width"}


def test_gaussian_width_is_scanned_for_one_input_only(rng):
    """Beside another input's terms a Gaussian is a small correction to any law, not a law:
    a target of two inputs gets no Gaussian candidates."""
    s = rng.uniform(-1.5, 1.5, size=(400, 2))
    one = Target(("x",), s[:, :1], "values", np.exp(-1.3 * s[:, 0] ** 2))
    assert any(c.source == "varpro:gaussian-width" for c in varpro_candidates(one))
    two = Target(("x", "y"), s, "values", np.exp(-1.3 * s[:, 0] ** 2) + s[:, 1] ** 2)
    assert not any(c.source == "varpro:gaussian-width" for c in varpro_candidates(two))


def test_two_exponentials_of_one_rate_are_written_with_the_rate_once(rng):
    """A Morse well's ``exp(-a x)`` and ``exp(-2 a x)`` share the rate: the candidate is a
    square with one rate constant, so a refit on noisy data cannot pull two rates apart."""
    s = rng.uniform(0.62, 1.35, size=(500, 1))
    target = Target(("x",), s, "values", 1.73 * (1 - np.exp(-1.37 * (s[:, 0] - 0.83))) ** 2)
    cands = varpro_candidates(target)
    assert min(c.error for c in cands) < 1e-7
    best = _best(cands, target)
    assert len(best.expr.atoms(sympy.exp)) == 1, str(best.expr)
    assert equivalent(best.expr, "1.73*(1 - exp(-1.37*(x - 0.83)))**2", up_to_constant=False)
