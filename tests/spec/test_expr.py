"""Tests for pikan/spec/expr.py: the safe parser (the torch compiler is in test_expr_torch.py)."""

import math
import os
import pathlib
import random
import re
import subprocess
import sys

import pytest
import sympy

from pikan.errors import SpecError
from pikan.spec.expr import (RESERVED, double_value, free_names, overflowing_part, parse,
                             substitute, symbol, to_string)

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


def test_parser_imports_no_torch():
    """pikan.spec.system builds on the parser and never imports torch: neither may pikan/spec/expr.py."""
    package = pathlib.Path(__file__).resolve().parents[2] / "pikan"
    script = (
        "import sys, types\n"
        "package = types.ModuleType('pikan')\n"  # skip pikan/__init__.py, which imports torch
        f"package.__path__ = [{str(package)!r}]\n"
        "sys.modules['pikan'] = package\n"
        "sys.modules['torch'] = None\n"  # any torch import now raises ImportError
        "import pikan.spec.expr\n"
        "print(pikan.spec.expr.to_string(pikan.spec.expr.parse('k*x^2/2', ['k', 'x'])))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "k*x**2/2"


# ------------------------------------------------------------- double precision range


@pytest.mark.parametrize("text, part", [
    ("exp(exp(exp(exp(1000))))", "exp(1000)"),   # evalf itself overflowed here before
    ("exp(1000)*x", "exp(1000)"),
    ("sin(exp(exp(15)))*x", "exp(exp(15))"),     # evalf would need millions of digits
    ("-sinh(800) + x", "sinh(800)"),
    ("x*" + "9" * 400, "1.00e+400"),
])
def test_constants_beyond_double_range_are_refused(text, part):
    with pytest.raises(SpecError, match=r"module 'V' law .*" + re.escape(part)
                       + r" is outside double precision range"):
        parse(text, where="module 'V' law")


@pytest.mark.parametrize("text, shown", [
    ("x**(10**300)", "1.00e+300"), ("x**(1e300)", "1.00e+300"), ("x**-1025", "-1025"),
    ("exp(x)**(2**80)", None),  # sympy folds it into exp(2**80*x): a finite coefficient
])
def test_powers_beyond_double_range_are_refused(text, shown):
    if shown is None:
        assert parse(text) == sympy.exp(sympy.Integer(2)**80 * x)
        return
    with pytest.raises(SpecError, match=r"module 'V' law .*the exponent " + re.escape(shown)
                       + r" is beyond \+-1024"):
        parse(text, where="module 'V' law")


def test_sympy_input_beyond_double_range_is_refused():
    with pytest.raises(SpecError, match=r"exp\(1000\) is outside double precision range"):
        parse(sympy.exp(sympy.exp(sympy.exp(sympy.exp(1000)))))
    with pytest.raises(SpecError, match="the exponent 1.00e\\+300 is beyond"):
        parse(x ** (sympy.Integer(10) ** 300))


@pytest.mark.parametrize("text", ["x**1024", "x**-1024", "2**1023*x", "exp(709)*x",
                                  "acos(2)*x", "sqrt(2)*x**3 + pi", "exp(-exp(3))*x"])
def test_constants_within_double_range_parse_unchanged(text):
    # acos(2) is complex, not overflowing: compiling refuses it, parsing keeps it
    expr = parse(text)
    assert parse(to_string(expr)) == expr


def test_double_value_follows_ieee_arithmetic():
    e = sympy.exp
    assert double_value(e(e(e(e(1000))))) == math.inf
    assert double_value(e(-e(1000))) == 0.0        # the inner overflow gives exp(-inf) = 0
    assert math.isnan(double_value(sympy.sin(e(e(15)))))
    assert math.isnan(double_value(sympy.acos(2)))
    assert double_value(-sympy.sinh(1000)) == -math.inf
    assert double_value(sympy.sqrt(2) * sympy.pi) == math.sqrt(2) * math.pi
    assert double_value(k * x, {"k": 2.0, "x": 3.0}) == 6.0
    assert overflowing_part(e(e(k)) * x, {"k": 1000.0}) == e(k)
    assert overflowing_part(e(e(k)) * x, {"k": 2.0}) is None
    assert overflowing_part(x * sympy.Integer(10) ** 400) == sympy.Integer(10) ** 400
    # a tree far deeper than the recursion limit is evaluated without recursion
    deep = sympy.Integer(1)
    for _ in range(5000):
        deep = sympy.sin(deep, evaluate=False)
    assert 0.0 < double_value(deep) < 1.0
