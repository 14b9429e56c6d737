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
