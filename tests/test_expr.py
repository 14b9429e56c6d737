"""Tests for pikan/expr.py: the safe parser and the sympy -> torch compiler."""

import math
import os
import random
import sys

import numpy as np
import pytest
import sympy
import torch

from pikan.errors import SpecError
from pikan.expr import (
    RESERVED,
    free_names,
    parse,
    substitute,
    symbol,
    to_module,
    to_string,
    to_torch,
)

x, y, z, k = (symbol(n) for n in "xyzk")
NAMES = ["x", "y", "z", "k"]


# ------------------------------------------------------------------------ grammar


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x + 2*y", x + 2 * y),
        ("x^2 + 1", x**2 + 1),  # ^ is a power, with power precedence
        ("-x^2", -(x**2)),
        ("2^3^2", sympy.Integer(512)),  # right-associative, like **
        ("+x - -y", x + y),
        ("x/y/2", x / (2 * y)),
        ("(x + y)*(x - y)", (x + y) * (x - y)),
        ("1e-3*x", sympy.Float(1e-3) * x),
        ("1.5E+2", sympy.Float(150.0)),
        ("3", sympy.Integer(3)),
        ("k*x**2/2", k * x**2 / 2),
        ("sqrt(x)", sympy.sqrt(x)),
        ("abs(x) + Abs(y)", sympy.Abs(x) + sympy.Abs(y)),
        ("arcsin(x) + arccos(y) + arctan(z)", sympy.asin(x) + sympy.acos(y) + sympy.atan(z)),
        ("atan2(y, x) + arctan2(z, x)", sympy.atan2(y, x) + sympy.atan2(z, x)),
        ("exp(x)*log(y)", sympy.exp(x) * sympy.log(y)),
        ("sin(x)**2 + cos(x)**2 + tan(z)",
         sympy.sin(x) ** 2 + sympy.cos(x) ** 2 + sympy.tan(z)),
        ("tanh(x) + sinh(y) + cosh(z)", sympy.tanh(x) + sympy.sinh(y) + sympy.cosh(z)),
        ("asinh(x) + acosh(y) + arctanh(z)", sympy.asinh(x) + sympy.acosh(y) + sympy.atanh(z)),
        ("sgn(x)*sign(y)", sympy.sign(x) * sympy.sign(y)),
        ("gaussian(x)", sympy.exp(-(x**2))),
        ("sigmoid(x)", 1 / (1 + sympy.exp(-x))),
        ("pi*E*x", sympy.pi * sympy.E * x),
    ],
)
def test_parse_grammar(text, expected):
    assert parse(text, NAMES) == expected


def test_parse_makes_plain_symbols_and_double_floats():
    expr = parse("x*y", ["x", "y"])
    assert expr == sympy.Symbol("x") * sympy.Symbol("y")
    assert parse(2) == sympy.Integer(2)
    assert parse(0.25) == sympy.Float(0.25)
    # symbols with assumptions and long floats are made canonical so equal laws compare equal
    real = sympy.Symbol("x", positive=True) ** 2 + sympy.Float("0.1", 40)
    assert parse(real, ["x"]) == sympy.Symbol("x") ** 2 + sympy.Float(0.1)


def test_parse_without_allowed_accepts_any_valid_name():
    assert parse("alpha*theta_1") == symbol("alpha") * symbol("theta_1")
    with pytest.raises(SpecError, match="bare function name 'sin'"):
        parse("sin + 1")
    with pytest.raises(SpecError, match="__class__"):
        parse("__class__")


def test_reserved_names():
    assert {"sin", "atan2", "pi", "E", "Abs", "arcsin", "gaussian"} <= RESERVED


# ------------------------------------------------------------------- unsafe input

UNSAFE = [
    "__import__('os').system('touch pwned')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "lambda: 1",
    "open('pwned', 'w')",
    "eval('1')",
    "exec('import os')",
    "[x for x in y]",
    "{x: 1 for x in y}",
    "(x for x in y)",
    "f'{x}'",
    "'x'",
    "b'x'",
    "x[0]",
    "x if y else z",
    "x < y",
    "x and y",
    "not x",
    "~x",
    "x // y",
    "x % y",
    "x @ y",
    "x << 2",
    "x | y",
    "x & y",
    "(x := 2)",
    "[x, y]",
    "(x, y)",
    "{x}",
    "sin(x=1)",
    "sin(*x)",
    "x.real",
    "getattr(x, 'a')",
    "True",
    "None",
    "...",
    "1j",
    "x = 1",
    "import os",
    "1e999",
    "10**10**10",
    "1/0",
    "log(0)",
    "sqrt(-1)",
    "(-8)**(1/3)",
]


@pytest.mark.parametrize("text", UNSAFE)
def test_unsafe_text_is_rejected_without_running_anything(text, tmp_path, monkeypatch):
    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "system", lambda *a: calls.append(("system", a)))

    def audit(event, args):
        # code compiled from text (not imported from a file) must never run
        if event == "exec" and getattr(args[0], "co_filename", "") in ("<string>", "<unknown>"):
            calls.append((event, args))
        if event in ("os.system", "subprocess.Popen", "os.posix_spawn", "os.exec", "os.remove"):
            calls.append((event, args))

    sys.addaudithook(audit)  # cannot be removed; it only records into this test's list
    with pytest.raises(SpecError, match="module 'V' law"):
        parse(text, ["x", "y", "z"], where="module 'V' law")
    calls_seen = list(calls)
    calls.clear()
    assert calls_seen == []
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "text",
    [
        "(" * 500 + "x" + ")" * 500,
        "sin(" * 150 + "x" + ")" * 150,
        "-" * 19_000 + "x",
        "x+" * 9_000 + "x",
        "x" * 30_000,
        "9" * 5_000,
        "E**1e308",
        "exp(1000.0)",
        "-1./0.0",
        "",
        "   ",
    ],
)
def test_huge_or_deep_input_is_a_spec_error(text):
    with pytest.raises(SpecError):
        parse(text, ["x"])


def test_random_token_soup_only_raises_spec_error():
    """Random strings of expression tokens: a sympy expression that prints and parses back,
    or a SpecError, never another exception."""
    tokens = ["x", "y", "0", "1", "2", "0.5", "1e308", "0.0", ".", "e", "+", "-", "*", "/",
              "**", "^", "(", ")", ",", "sin(", "log(", "sqrt(", "atan2(", "acos(", "exp(",
              "abs(", "pi", "E", " ", "[", "'", "_", "lambda", ":"]
    generator = random.Random(0)
    parsed = 0
    for _ in range(1500):
        text = "".join(generator.choice(tokens) for _ in range(generator.randint(1, 12)))
        try:
            expr = parse(text, ["x", "y"])
        except SpecError:
            continue
        parsed += 1
        assert parse(to_string(expr), ["x", "y"]) == expr
    assert parsed > 20  # the soup does exercise the accepting path


def test_long_flat_sum_is_fine():
    expr = parse(" + ".join(f"{i}*x**{i}" for i in range(1, 1000)), ["x"])
    assert expr.subs(x, 1) == sum(range(1, 1000))


@pytest.mark.parametrize(
    "text, allowed, message",
    [
        ("kk*x", ["k", "x"], r"unknown name 'kk'.*Did you mean 'k'\?"),
        ("theta1 + x", ["theta_1", "x"], r"unknown name 'theta1'.*Did you mean 'theta_1'\?"),
        ("sinn(x)", ["x"], r"unknown function 'sinn'.*Did you mean 'sin'\?"),
        ("arcsinh(x) + atann(x)", ["x"], r"unknown function 'atann'.*Did you mean 'atan'\?"),
        ("sin(x, x)", ["x"], "sin takes 1"),
        ("x y", ["x", "y"], "not a valid expression"),
    ],
)
def test_error_messages_name_the_token_and_suggest(text, allowed, message):
    with pytest.raises(SpecError, match=message):
        parse(text, allowed, where="module 'V' law")


def test_sympy_input_is_checked():
    f = sympy.Function("f")
    for bad in [f(x), sympy.Integral(x, x), sympy.I * x, sympy.oo * x, sympy.zoo,
                sympy.Piecewise((x, x > 0), (0, True)), sympy.EulerGamma * x,
                sympy.Dummy("d") * x]:
        with pytest.raises(SpecError, match="law"):
            parse(bad, ["x"], where="law")
    with pytest.raises(SpecError, match=r"unknown name 'xx'.*Did you mean 'x'\?"):
        parse(sympy.Symbol("xx") * x, ["x"])
    for bad in [sympy.ImmutableMatrix([x]), sympy.Eq(x, 1)]:
        with pytest.raises(SpecError, match="not supported|scalar sympy expression"):
            parse(bad, ["x"])
    with pytest.raises(SpecError, match="got MutableDenseMatrix"):
        parse(sympy.Matrix([x]), ["x"])


def test_to_string_round_trips_exactly(rng):
    exprs = [parse(t, NAMES) for t in [
        "k*x**2/2 + 0.1*y", "atan2(y, x)", "x**(3/2)/sqrt(y)", "-exp(-x)/3 + E",
        "abs(x)**3", "sigmoid(x*y)", "1/(x + 1e-12)", "pi*sin(2*x)",
    ]]
    exprs += [sympy.Float(v) * x + sympy.Float(w) for v, w in rng.normal(size=(20, 2)) * 1e3]
    exprs += [sympy.Float(v) * y**2 for v in rng.uniform(1e-9, 1e-7, size=5)]
    for expr in exprs:
        assert parse(to_string(expr), NAMES) == expr


def test_free_names_and_substitute():
    expr = parse("k*d**2/2", ["k", "d"])
    assert free_names(expr) == {"k", "d"}
    assert free_names("sin(x) + y") == {"x", "y"}
    out = substitute(expr, {"d": "x2 - x1", "k": 2})
    assert out == (symbol("x2") - symbol("x1")) ** 2
    # substitution is simultaneous
    assert substitute("a + b", {"a": "b", "b": "a"}) == parse("a + b")


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
