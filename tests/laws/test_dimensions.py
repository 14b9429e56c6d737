"""The Buckingham pi form of a static law (pikan.laws.dimensions)."""

from fractions import Fraction

import numpy as np
import pytest
import sympy

from pikan.errors import DataError, SpecError
from pikan.laws.dimensions import pi_form
from pikan.spec.units import check_dimensions, parse_units, units_map

HEAT = {"kappa": "W/(m*K)", "T1": "K", "T2": "K", "A": "m**2", "d": "m"}


def form_of(units: dict, output: str):
    return pi_form(units_map(units, "test"), list(units), parse_units(output))


def test_heat_conduction_reduces_to_two_groups_with_whole_powers():
    form = form_of(HEAT, "W")
    assert form.prefactor_expr() == sympy.sympify("kappa*T1*d")
    assert set(form.group_exprs()) == {sympy.sympify("T2/T1"), sympy.sympify("A/d**2")}
    units = units_map(HEAT, "test")
    for group in form.group_exprs():
        assert check_dimensions(group, units, pure_numbers=True).unit.dimensionless
    prefactor = check_dimensions(form.prefactor_expr(), units, pure_numbers=True).unit
    assert prefactor.same_dimension(parse_units("W"))


def test_monomials_leave_no_group():
    form = form_of({"pr": "Pa", "V": "m**3"}, "J")
    assert form.groups == () and form.prefactor == (Fraction(1), Fraction(1))
    form = form_of({"G": "m**3/(kg*s**2)", "M": "kg", "r": "m"}, "m/s")
    assert form.groups == ()
    assert form.prefactor == (Fraction(1, 2), Fraction(1, 2), Fraction(-1, 2))


def test_pure_numbers_are_groups_of_their_own():
    form = form_of({"theta": "1", "sigma": "rad"}, "1")
    assert form.prefactor_expr() == 1
    assert form.group_exprs() == (sympy.Symbol("theta"), sympy.Symbol("sigma"))


def test_law_maps_back_and_reduce_matches_it():
    form = form_of(HEAT, "W")
    g = sympy.sympify("(pi_1 - 1)*pi_2")
    assert sympy.simplify(form.law(g) - sympy.sympify("kappa*(T2 - T1)*A/d")) == 0
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 5, (50, 5))
    y = x[:, 0] * (x[:, 2] - x[:, 1]) * x[:, 3] / x[:, 4]
    z, w = form.reduce(x, y)
    assert z.shape == (50, 2)
    names = form.group_names
    assert np.allclose(w, (z[:, names.index("pi_1")] - 1) * z[:, names.index("pi_2")])


def test_missing_dimensional_constant_is_named():
    with pytest.raises(SpecError, match="dimensional constant"):
        form_of({"m": "kg", "v": "m/s"}, "W")
    with pytest.raises(SpecError, match="no units for"):
        pi_form(units_map({"m": "kg"}, "test"), ["m", "v"], parse_units("J"))


def test_fractional_power_of_a_negative_input_is_a_data_error():
    form = form_of({"G": "m**3/(kg*s**2)", "M": "kg", "r": "m"}, "m/s")
    x = np.array([[1.0, 1.0, -2.0]] * 10)
    with pytest.raises(DataError, match="not finite"):
        form.reduce(x, np.ones(10))
