import pytest
import torch
from pikan.constraints import Even, Odd, Positive, Symmetric, soft_penalty

from pikan.errors import SpecError
from pikan.spec.system import Dynamics, Potential, System

COORDS = ["x1", "y1", "x2", "y2"]


def _system(constraints, inputs=COORDS, law=None, kind=Potential, **extra):
    module = kind("V", inputs=inputs, hidden=[3], grid=4, constraints=constraints, law=law, **extra)
    return System("sym", coords=COORDS, modules=[module])


def _swap(z, i, j):
    idx = list(range(z.shape[1]))
    idx[i], idx[j] = j, i
    return z[:, idx]


def _flip(z, i):
    sign = torch.ones(z.shape[1])
    sign[i] = -1
    return z * sign


# each case: constraints, f(T z) expressed through f(z) (exact relation that must hold)
HARD = {
    "even": ([Even("x1")], lambda f, z: (f(_flip(z, 0)), f(z))),
    "odd": ([Odd("y2")], lambda f, z: (f(_flip(z, 3)), -f(z))),
    "two even": ([Even("x1"), Even("y1")],
                 lambda f, z: (f(_flip(_flip(z, 0), 1)), f(z))),
    "pair": ([Symmetric("x1", "x2")], lambda f, z: (f(_swap(z, 0, 2)), f(z))),
    "three": ([Symmetric("x1", "y1", "x2")],
              lambda f, z: (f(z[:, [1, 2, 0, 3]]), f(z))),
    "particles": ([Symmetric(("x1", "y1"), ("x2", "y2"))],
                  lambda f, z: (f(z[:, [2, 3, 0, 1]]), f(z))),
}


@pytest.mark.parametrize("case", list(HARD))
def test_hard_symmetry_holds_at_init_and_after_training(case, states, fit, build):
    constraints, relation = HARD[case]
    model = build(_system(constraints), seed=3)
    block = model.blocks["V"]
    z = states(64, 4, seed=1)

    def check():
        a, b = relation(block, z)
        assert float((a - b).abs().max()) < 1e-10 * (1 + float(b.abs().max()))
        for c in constraints:
            assert c.violation(model, z, z) < 1e-10

    check()
    target = (z**2).sum(1) + 0.7 * z[:, 0] + 0.4 * z[:, 1] * z[:, 3] + torch.sin(3 * z[:, 2])
    fit(model, lambda: ((block(z) - target) ** 2).mean(), steps=25, lr=0.05)
    check()


def _soft_fit(constraint, target, states, fit, build, steps=100):
    """Violation after the same fit without and with the soft constraint."""
    q = states(96, 4, seed=2)
    v = torch.zeros_like(q)
    results = []
    for constraints in ([], [constraint]):
        model = build(_system(constraints), seed=0)
        block = model.blocks["V"]
        fit(model, lambda m=model, b=block: ((b(q) - target(q)) ** 2).mean()
            + soft_penalty(m, q, v),
            steps=steps, lr=0.03)
        results.append(constraint.violation(model, q, v, module="V"))
    return results


SOFT = {
    "even": (Even("x1", mode="soft", weight=30.0),
             lambda z: z[:, 0] ** 2 + z[:, 1] + 0.3 * z[:, 0]),
    "odd": (Odd("x1", mode="soft", weight=30.0),
            lambda z: z[:, 0] * (1 + z[:, 1]) + 0.3 * z[:, 0] ** 2),
    "pair": (Symmetric("x1", "x2", mode="soft", weight=30.0),
             lambda z: z[:, 0] * z[:, 2] + z[:, 1] + 0.3 * z[:, 0]),
}


@pytest.mark.parametrize("case", list(SOFT))
def test_soft_symmetry_lowers_violation_tenfold(case, states, fit, build):
    constraint, target = SOFT[case]
    free, soft = _soft_fit(constraint, target, states, fit, build)
    assert free > 0.05
    assert soft < free / 10


def test_wrapped_block_keeps_torch_func_and_double_backward(states, fit, build):
    """A force loss (gradient of a hard-Even potential) trains: double backward works."""
    spec = System("trap", coords=["x", "y"],
                  modules=[Potential("V", inputs=["x", "y"], hidden=[4], grid=5,
                                     constraints=[Even("x"), Even("y")])])
    model = build(spec, seed=0)
    q = states(128, 2, seed=4)
    v = torch.zeros_like(q)
    target = -torch.stack([q[:, 0], 2 * q[:, 1]], 1)  # V = x^2/2 + y^2
    loss = lambda: ((model.acceleration(q, v) - target) ** 2).mean()
    first = float(loss())
    last = fit(model, loss, steps=60, lr=0.03)
    assert last < first / 5
    # still exactly even, and per-sample Jacobians through the wraps agree with autograd
    assert Even("x").violation(model, q, v, module="V") < 1e-10
    block = model.blocks["V"]
    jac = torch.func.vmap(torch.func.jacrev(lambda z: block(z[None])[0]))(q)
    z = q.clone().requires_grad_()
    auto = torch.autograd.grad(block(z).sum(), z)[0]
    torch.testing.assert_close(jac, auto, rtol=1e-12, atol=1e-12)


def test_hard_parity_on_a_dynamics_applies_to_every_output(states, build):
    spec = System("d", coords=["x", "y"],
                  modules=[Dynamics("F", inputs=["x", "y", "v_x"], outputs=["x", "y"],
                                    hidden=[3], grid=4, constraints=[Odd("v_x")])])
    model = build(spec)
    z = states(32, 3)
    f = model.blocks["F"]
    torch.testing.assert_close(f(_flip(z, 2)), -f(z), rtol=0, atol=1e-12)


def test_symmetric_round_trips_and_labels():
    spec = _system([Symmetric(("x1", "y1"), ("x2", "y2"), mode="soft", weight=3.0),
                    Symmetric("x1", "x2"), Even("y1"), Odd("y2", mode="soft")])
    back = System.from_json(spec.to_json())
    assert back == spec
    assert [c.label for c in back.modules[0].constraints] == [
        "Symmetric((x1, y1), (x2, y2))", "Symmetric(x1, x2)", "Even(y1)", "Odd(y2)"]
    assert Symmetric(["x", "y"]) == Symmetric("x", "y") == Symmetric(names=("x", "y"))


@pytest.mark.parametrize("make, match", [
    (lambda: _system([Even("z1")]), r"'z1' is not an input of the module.*"),
    (lambda: _system([Symmetric("x1", "x22")]), r"'x22' is not an input.*Did you mean 'x2'"),
    (lambda: _system([Even("x1"), Odd("x1", mode="soft")]), r"Even\(x1\) and Odd\(x1\)"),
    (lambda: _system([Odd("x1"), Positive()]), r"Odd\(x1\) and Positive\(\)"),
    (lambda: Symmetric("x1"), "at least two"),
    (lambda: Symmetric(("x1", "y1"), ("x2",)), "equal lengths"),
    (lambda: Symmetric("a", "b", "c", "d", "e", "f"), "at most 5 groups"),
    (lambda: Even("x1", mode="firm"), "expected 'hard' or 'soft'"),
    (lambda: Even("x1", weight=-1.0), "weight"),
    (lambda: System("s", coords=["x"], constraints=[Even("x")]), "module constraint"),
])
def test_bad_symmetry_specs_raise(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_soft_symmetric_with_many_groups_is_allowed(states, build):
    c = Symmetric("a", "b", "c", "d", "e", "f", mode="soft")
    spec = System("many", coords=list("abcdef"),
                  modules=[Potential("V", inputs=list("abcdef"), hidden=[2], grid=3,
                                     constraints=[c])])
    model = build(spec)
    q = states(16, 6)
    assert 0.01 < c.violation(model, q, q) < 10
