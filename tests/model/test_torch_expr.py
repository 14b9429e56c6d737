"""Tests for pikan/model/torch_expr.py: the sympy -> torch compiler and trainable-constant modules."""

import math
import re

import numpy as np
import pytest
import sympy
import torch

import pikan.spec.expr
import pikan.model.torch_expr
from pikan.errors import SpecError
from pikan.spec.expr import parse, symbol
from pikan.model.torch_expr import lift_constants, to_module, to_torch

x, y, z, k = (symbol(n) for n in "xyzk")


def test_compiles_every_function_the_parser_admits():
    # the parser's whitelist and the compiler's table are kept in two files
    assert set(pikan.model.torch_expr._TORCH_UNARY) | {sympy.atan2} == pikan.spec.expr._SYMPY_FUNCTIONS


# ----------------------------------------------------------------- sympy -> torch

DOMAINS = {"x": (0.5, 2.0), "y": (-1.5, 1.5), "z": (0.1, 0.9)}
NUMERIC = [
    "k*x**2/2 + y",
    "sin(x)*cos(y) - tan(z)",
    "exp(-x*y)/sqrt(x)",
    "log(x) + abs(y)",
    "atan2(y, x - 1)",
    "tanh(y)*sinh(z) + cosh(x)",
    "asin(z) + acos(z)*atan(y)",
    "x**(3/2) + x**(-1/2) + x**(1/3) - x**(-5/3)",
    "(x**2 + y**2)**(-3/2)",
    "gaussian(y) + sigmoid(x*y)",
    "x**y + 2**x + pi*E",
    "sign(y)*x + y/(x*z)",
    "asinh(y) + acosh(x + 1) + atanh(z)",
    "x**1.7 + z**-2.5",
]


@pytest.mark.parametrize("text", NUMERIC)
def test_to_torch_matches_numpy(text, rng):
    expr = parse(text, ["x", "y", "z", "k"])
    inputs = {n: rng.uniform(*DOMAINS[n], size=200) for n in "xyz"}
    reference = sympy.lambdify([x, y, z, k], expr, modules="numpy")(
        inputs["x"], inputs["y"], inputs["z"], 0.8)
    f = to_torch(expr, ["x", "y", "z"], params={"k": 0.8})
    out = f(**{n: torch.tensor(v) for n, v in inputs.items()})
    assert out.dtype == torch.float64 and out.shape == (200,)
    np.testing.assert_allclose(out.numpy(), reference, rtol=1e-12, atol=1e-12)
    # positional call and float32
    out32 = f(*(torch.tensor(inputs[n], dtype=torch.float32) for n in "xyz"))
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), reference, rtol=2e-5, atol=2e-5)


def test_to_torch_constants_and_broadcasting():
    xs = torch.linspace(0, 1, 5)
    c = to_torch("k", ["x"], {"k": 3.0})(xs)
    assert c.shape == (5,) and torch.equal(c, torch.full((5,), 3.0))
    c32 = to_torch("2*pi", ["x"])(xs.float())
    assert c32.dtype == torch.float32
    assert torch.equal(c32, torch.full((5,), 2 * math.pi, dtype=torch.float32))
    assert to_torch("exp(1) + 1", []).__call__().item() == pytest.approx(math.e + 1, abs=1e-15)
    # inputs broadcast together; an expression ignoring one still has the full shape
    f = to_torch("x", ["x", "y"])
    assert f(torch.ones(3, 1), torch.ones(4)).shape == (3, 4)
    # a param that is also an input is read from the input
    shadow = to_torch("k*x", ["x", "k"], {"k": 5.0})
    assert shadow(torch.tensor(2.0), torch.tensor(3.0)).item() == 6.0
    g = to_torch("x*y", ["x", "y"])
    assert torch.equal(g(torch.arange(3.0)[:, None], torch.arange(4.0)),
                       torch.arange(3.0)[:, None] * torch.arange(4.0))


def test_to_torch_errors():
    with pytest.raises(SpecError, match=r"unknown name 'q'"):
        to_torch("x + q", ["x"])
    f = to_torch("x*y", ["x", "y"])
    with pytest.raises(SpecError, match="missing input"):
        f(x=torch.ones(2))
    with pytest.raises(SpecError, match=r"unknown input 'yy'.*Did you mean 'y'\?"):
        f(x=torch.ones(2), yy=torch.ones(2))
    with pytest.raises(SpecError, match="expected 2 inputs"):
        f(torch.ones(2))
    with pytest.raises(SpecError, match="complex"):
        to_torch("x + log(-1 + 0*x)", ["x"])
    with pytest.raises(SpecError, match=r"acos\(2\) is not a finite real number"):
        to_torch("x + acos(2)", ["x"])


def test_to_torch_under_torch_func(rng):
    f = to_torch("x**3*y + sin(x)*exp(y)", ["x", "y"])
    xs, ys = (torch.tensor(rng.normal(size=50)) for _ in range(2))
    # vmap over a batch equals the batched call
    assert torch.allclose(torch.func.vmap(f)(xs, ys), f(xs, ys), rtol=0, atol=1e-14)
    # grad and second derivatives against the analytic ones
    dfdx = torch.func.vmap(torch.func.grad(f, argnums=0))(xs, ys)
    assert torch.allclose(dfdx, 3 * xs**2 * ys + torch.cos(xs) * torch.exp(ys), atol=1e-12)
    d2fdx2 = torch.func.vmap(torch.func.grad(torch.func.grad(f, argnums=0), argnums=0))(xs, ys)
    assert torch.allclose(d2fdx2, 6 * xs * ys - torch.sin(xs) * torch.exp(ys), atol=1e-12)
    jac = torch.func.jacrev(lambda v: f(v[0], v[1]))(torch.stack([xs[0], ys[0]]))
    assert torch.allclose(jac[1], xs[0] ** 3 + torch.sin(xs[0]) * torch.exp(ys[0]), atol=1e-12)
    # constant expressions under vmap
    assert torch.equal(torch.func.vmap(to_torch("k", ["x"], {"k": 2.0}))(xs),
                       torch.full((50,), 2.0))


def test_to_torch_gradcheck_double_backward(rng):
    f = to_torch("atan2(y, x) + sqrt(x**2 + y**2)**(-3/2) + abs(x)*x", ["x", "y"])
    xs = torch.tensor(rng.uniform(0.5, 2.0, size=6), requires_grad=True)
    ys = torch.tensor(rng.uniform(-1.0, 1.0, size=6), requires_grad=True)
    assert torch.autograd.gradcheck(f, (xs, ys))
    assert torch.autograd.gradgradcheck(f, (xs, ys))
    # finite differences of the force -dV/dx
    (force,) = torch.autograd.grad(f(xs, ys).sum(), xs, create_graph=True)
    h = 1e-6
    fd = (f(xs + h, ys) - f(xs - h, ys)) / (2 * h)
    assert torch.allclose(force, fd, atol=1e-7)
    force.sum().backward()  # double backward into the inputs
    assert xs.grad is not None and torch.isfinite(xs.grad).all()


# -------------------------------------------------------------------- to_module


def test_to_module_constants_are_parameters_and_expr_round_trips():
    expr = parse("0.5*x**2 + 2*sin(3.0*x) - x/3 + 1 + x**1.5", ["x"])
    module = to_module(expr, ["x"])
    assert sorted(module.constants.tolist()) == sorted([0.5, 2.0, 3.0, -1 / 3, 1.0, 1.5])
    assert module.constants.requires_grad
    assert module.expr() == expr  # untouched constants keep their exact form
    xs = torch.linspace(0.1, 2.0, 7)
    assert torch.allclose(module(xs), to_torch(expr, ["x"])(xs), rtol=1e-14)
    assert torch.allclose(module(x=xs), module(xs))
    # integer exponents, signs and named params are structure, not constants
    fixed = to_module("k*x**2 - y", ["x", "y"], params={"k": 2.0})
    assert fixed.constants.numel() == 0
    none = to_module(expr, ["x"], trainable_constants=False)
    assert list(none.parameters()) == []
    assert none.expr() == expr


def test_to_module_fits_constants_with_adam():
    torch.manual_seed(0)
    module = to_module("2.0*x + 0.5 + 0.3*sin(x)", ["x"])
    xs = torch.linspace(-2, 2, 64)
    target = 3.0 * xs + 1.0 - 0.7 * torch.sin(xs)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    first = None
    for _ in range(400):
        optimizer.zero_grad()
        loss = ((module(xs) - target) ** 2).mean()
        first = loss.item() if first is None else first
        loss.backward()
        optimizer.step()
    assert loss.item() < 1e-6 * first
    fitted = module.expr()
    expected = parse("3.0*x + 1.0 - 0.7*sin(x)", ["x"])
    assert float(sympy.N(abs(fitted - expected).subs(x, 0.37))) < 1e-3
    values = sorted(module.constants.tolist())
    np.testing.assert_allclose(values, [-0.7, 1.0, 3.0], atol=2e-3)


def test_to_module_is_functional_and_dtype_movable(rng):
    module = to_module("1.5*exp(-0.5*x**2)", ["x"])
    xs = torch.tensor(rng.normal(size=10))
    new = {1.5: 2.0, -0.5: -0.25}
    params = {"constants": torch.tensor([new[v] for v in module.constants.tolist()])}
    out = torch.func.functional_call(module, params, (xs,))
    assert torch.allclose(out, 2.0 * torch.exp(-0.25 * xs**2), atol=1e-14)
    grads = torch.func.grad(lambda p: torch.func.functional_call(module, p, (xs,)).sum())(params)
    outer = module.constants.tolist().index(1.5)
    assert torch.allclose(grads["constants"][outer], torch.exp(-0.25 * xs**2).sum())
    module32 = to_module("1.7*x + 0.1", ["x"]).float()
    assert module32(xs.float()).dtype == torch.float32
    assert module32.expr() == parse("1.7*x + 0.1")  # float32 rounding is not a change


@pytest.mark.parametrize("law, part", [
    ("exp(exp(exp(exp(1000))))*x", "exp(1000)"),   # was an OverflowError from sympy's evalf
    ("x**(10**300)", "the exponent 1.00e+300"),     # was an OverflowError from torch
])
def test_laws_beyond_double_range_raise_spec_error(law, part):
    for build in (to_torch, to_module):
        with pytest.raises(SpecError, match=re.escape(part)):
            build(law, ["x"])


@pytest.mark.parametrize("law, part", [
    ("exp(k)*x", "exp(k)"),
    ("exp(exp(k))*x", "exp(k)"),        # sympy overflowed substituting k
    ("sin(exp(exp(k)))*x", "exp(k)"),   # sympy would need millions of digits
])
def test_params_that_overflow_a_constant_raise_spec_error(law, part):
    for build in (to_torch, to_module):
        with pytest.raises(SpecError, match=re.escape(part) + " is outside double precision range"):
            build(law, ["x"], {"k": 1000.0})


def test_constants_from_params_fold_as_before():
    f = to_torch("exp(k)*x + sin(exp(k))", ["x"], {"k": 700.0})
    value = f(torch.tensor([1.0], dtype=torch.float64))
    expected = math.exp(700.0) + float(sympy.sin(sympy.exp(sympy.Float(700.0))).evalf(30))
    assert value.item() == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("law, free", [
    ("(0.349*x*y - 0.366*y)/(0.685*x + 1)", 3),  # scaled top and bottom alike: the 1 fixed
    ("y*(0.351*x - 0.37)/(1 + 0.7*x)", 3),
    ("2.5*x/(0.3*x + 1)", 2),
    ("x/(1.0 + 0.5*x)", 2),  # no scale on top: both constants below are free
    ("1/(2 + 3.0*x)", 2),
    ("0.6/(r**2 + 1)", 2),  # r**2 has no free coefficient: the shift is free
])
def test_a_quotient_scaled_top_and_bottom_lifts_one_constant_less(law, free):
    """The exact number of a denominator is not a constant when numerator and denominator
    both carry a free scale: the law is the same scaled top and bottom."""
    _, dummies, _ = lift_constants(sympy.sympify(law))
    assert len(dummies) == free


def test_a_snapped_quotient_lifts_one_constant_less_too():
    _, dummies, _ = lift_constants(sympy.sympify("(-2*y/5 + 7*x*y/20)/(7*x/10 + 1)"))
    assert len(dummies) == 3


def test_a_refined_constant_absorbs_the_fixed_pi_beside_it():
    a, b, r = sympy.symbols("a b r")
    module = to_module(sympy.pi / 4 * a * b + sympy.pi * r**2 / 3, ["a", "b", "r"])
    assert sorted(module._originals) == [sympy.Rational(1, 4), sympy.Rational(1, 3)]
    with torch.no_grad():  # a b's 1/4 refined
        module.constants[module._originals.index(sympy.Rational(1, 4))] = 0.8 / math.pi
    expr = module.expr()
    assert sympy.pi not in expr.coeff(a * b).atoms() and abs(float(expr.coeff(a * b)) - 0.8) < 1e-12
    assert expr.coeff(r**2) == sympy.pi / 3  # unchanged: exact
