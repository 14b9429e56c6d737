"""Tests for pikan/laws/generators/kan_edges.py: a KAN read as a formula through edge-wise
fits, and behind the generator interface."""

import numpy as np
import sympy
import torch

from pikan.kan import KAN
from pikan.laws.candidates import Target, fit_candidates, select
from pikan.laws.generators import kan_edges
from pikan.laws.generators.base import Candidate, Options
from pikan.laws.generators.kan_edges import VARIANTS, KanEdges, KanReading, kan_formulas

x, y = sympy.symbols("x y")


def test_symbolic_edges_compose_exactly_through_the_graph(rng):
    # exp(sin(pi x) + y^2) as KAN [2, 1, 1] with symbolic edges (the pykan example)
    kan = KAN([2, 1, 1], seed=0, input_names=["x", "y"])
    kan.set_symbolic(0, 0, 0, "sin", a=1.0, b=np.pi, c=0.0, d=0.0)
    kan.set_symbolic(0, 1, 0, "x^2", a=1.0, b=1.0, c=0.0, d=0.0)
    kan.set_symbolic(1, 0, 0, "exp", a=1.0, b=1.0, c=0.0, d=0.0)
    s = rng.uniform(-1, 1, size=(300, 2))
    formulas = kan_formulas(kan, s, prune_threshold=0.0)
    assert set(formulas) == set(VARIANTS)
    (expr,) = formulas["kan"]
    f = sympy.lambdify((x, y), expr, "numpy")
    with torch.no_grad():
        want = kan(torch.tensor(s))[:, 0].numpy()
    np.testing.assert_allclose(f(s[:, 0], s[:, 1]), want, rtol=1e-9)
    assert expr.has(sympy.sin) and expr.has(sympy.exp)


def test_multiplication_node_gives_a_product_after_refit(rng):
    s = rng.uniform(-1, 1, size=(400, 2))
    kan = KAN([2, [0, 1], 1], grid=5, seed=0, input_names=["x", "y"])
    xt = torch.tensor(s)
    target_values = s[:, 0] * s[:, 1]
    yt = torch.tensor(target_values)
    kan.update_grid(xt, adaptivity=0.0)
    opt = torch.optim.Adam(kan.parameters(), lr=0.02)
    for _ in range(400):
        opt.zero_grad()
        loss = torch.mean((kan(xt)[:, 0] - yt) ** 2)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 1e-4
    exprs = [e[0] for e in kan_formulas(kan, s).values()]
    target = Target(("x", "y"), s, "values", target_values)
    best = select(fit_candidates([Candidate(e, np.nan, "kan") for e in exprs], target, 1e-8),
                  1e-8)
    assert best.expr == x * y


def test_kan_is_not_modified_and_jump_weights_are_included(rng):
    kan = KAN([1, 2, 1], seed=0, jump=True, input_names=["x"])
    kan.set_symbolic(0, 0, 0, "x^2", a=2.0)
    kan.set_symbolic(0, 0, 1, "cos", a=1.0, b=1.5, c=0.3)
    kan.set_symbolic(1, 0, 0, "x", a=1.0)
    kan.set_symbolic(1, 1, 0, "x", a=-0.5)
    with torch.no_grad():
        kan.jump.fill_(0.75)
    before = {k: v.clone() for k, v in kan.state_dict().items()}
    s = rng.uniform(-1, 1, size=(200, 1))
    (expr,) = kan_formulas(kan, s, prune_threshold=0.0)["kan"]
    for k, v in kan.state_dict().items():
        assert torch.equal(v, before[k])
    want = 2 * x**2 - sympy.Rational(1, 2) * sympy.cos(1.5 * x + 0.3) + sympy.Rational(3, 4) * x
    f = sympy.lambdify(x, expr - want, "numpy")
    np.testing.assert_allclose(f(s[:, 0]), 0.0, atol=1e-9)


def test_kan_edges_generator_reads_the_kan_once_for_every_output(rng, monkeypatch):
    """A KanReading computes the formulas on first use only (a Dynamics module's outputs
    share them), applies the target's affine map, and names the variants kan, kan:1, ..."""
    kan = KAN([1, 2], seed=0, input_names=["x"])
    kan.set_symbolic(0, 0, 0, "x^2", a=1.0, b=1.0, c=0.0, d=0.0)
    kan.set_symbolic(0, 0, 1, "sin", a=1.0, b=1.0, c=0.0, d=0.0)
    s = rng.uniform(-1, 1, size=(200, 1))
    calls = []
    original = kan_edges.kan_formulas

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(kan_edges, "kan_formulas", counted)
    reading = KanReading(kan, s, ["x"], shift=1.0, scale=2.0)
    target = Target(("x",), s, "values", 1 + 2 * np.sin(s[:, 0]))
    first = KanEdges().generate(target, Options(kan=reading, output=0))
    second = KanEdges().generate(target, Options(kan=reading, output=1))
    assert len(calls) == 1
    assert [c.source for c in first] == ["kan", "kan:1", "kan:2"][:len(first)]
    best = select(fit_candidates(second, target, 1e-8), 1e-8)
    assert sympy.simplify(best.expr - (1 + 2 * sympy.sin(x))) == 0
    assert KanEdges().generate(target, Options()) == []
