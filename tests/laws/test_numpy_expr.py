"""Tests for pikan/laws/numpy_expr.py: numpy evaluation of sympy expressions."""

import numpy as np
import pytest
import sympy
import torch

from pikan.laws.numpy_expr import numpy_function
from pikan.model.torch_expr import to_torch

x, y = sympy.symbols("x y")


@pytest.mark.parametrize("text", [
    "3*x**2 - y/2 + 1", "exp(-x**2)*sin(2*y + 0.3)", "sqrt(x**2 + y**2) + abs(x)",
    "log(x**2 + 1)/(y**2 + 2)", "atan(x) + tanh(y) - cosh(x/3)", "x**0.5 + x**-2.5",
])
def test_numpy_function_agrees_with_the_torch_compiler(text, rng):
    z = rng.uniform(0.2, 2.0, size=(64, 2))
    expr = sympy.sympify(text)
    got = numpy_function(expr, ["x", "y"])(z[:, 0], z[:, 1])
    want = to_torch(expr, ["x", "y"])(torch.tensor(z[:, 0]), torch.tensor(z[:, 1])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_numpy_function_checks_names_and_broadcasts_constants():
    f = numpy_function(sympy.pi * x + 2, ["x", "c"])
    np.testing.assert_allclose(f(np.array([0.0, 1.0]), 3.0), [2.0, np.pi + 2])
    assert numpy_function(sympy.Integer(3), ["x"])(np.zeros(4)) == 3.0
    with pytest.raises(ValueError, match="not in"):
        numpy_function(x * y, ["x"])


def test_constants_and_powers_beyond_double_range_give_ieee_values():
    # numpy_function evaluates candidates with NaN/inf semantics; it never raises for them
    e = sympy.exp
    z = np.array([0.5, 1.0, 2.0, -2.0])
    assert numpy_function(e(e(e(e(1000)))), ["x"])(z) == np.inf   # evalf overflowed before
    np.testing.assert_array_equal(numpy_function(x ** sympy.Integer(10) ** 400, ["x"])(z),
                                  [0.0, 1.0, np.inf, np.inf])    # float() overflowed before
    np.testing.assert_array_equal(numpy_function(x * e(1000), ["x"])(z),
                                  [np.inf, np.inf, np.inf, -np.inf])
    assert np.isnan(numpy_function(x * sympy.sin(e(e(15))), ["x"])(z)).all()  # no evalf hang
    np.testing.assert_array_equal(numpy_function(x * e(-e(1000)), ["x"])(z), 0.0 * z)
    # constants within range are still evaluated with evalf, exactly as before
    assert numpy_function(x * sympy.sqrt(2), ["x"])(1.0) == float(sympy.sqrt(2).evalf())
