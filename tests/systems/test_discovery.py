"""discover on catalogue data recovers the catalogue's laws (harmonic, Kepler and the first-order
Van der Pol by default)."""

import numpy as np
import pikan.systems
import pytest
import sympy

import pikan

FAST = ["harmonic", "kepler", "van_der_pol"]
SLOW = ["pendulum", "anisotropic", "duffing", "spring_chain", "charged_particle", "two_body",
        "double_pendulum", "lotka_volterra", "double_well_flow", "mass_action"]


def _recovered(name: str, seed: int = 0) -> tuple[dict, dict]:
    """Module -> whether its law is the truth's, and module -> its verdict."""
    entry = pikan.systems.get(name)
    data = entry.simulate(seed=seed)
    run = pikan.discover(entry.model(), data, seed=seed, progress=False, plots=False)
    truth = pikan.compile(entry.truth()).spec
    out = {}
    for module, law in run.laws.items():
        # compare in state variables: learned laws may live on rewritten (invariant) inputs
        expected = [pikan.laws.law.in_state(pikan.spec.expr.parse(e), truth.module(module))
                    for e in (entry.laws()[module] if isinstance(entry.laws()[module], list)
                              else [entry.laws()[module]])]
        got = law.in_state if isinstance(law.in_state, list) else [law.in_state]
        if law.kind == "Lagrangian":  # c L has the same motion: compare at the truth's scale
            got = [_rescaled(g, e) for g, e in zip(got, expected)]
        out[module] = all(pikan.equivalent(g, e, up_to_constant=law.up_to_constant)
                          for g, e in zip(got, expected))
    return out, {module: law.verdict for module, law in run.laws.items()}


def _rescaled(expr, truth):
    """``expr`` times the least-squares factor onto ``truth`` (random states, constants
    removed)."""
    names = sorted(expr.free_symbols | truth.free_symbols, key=str)
    points = np.random.default_rng(0).uniform(-1.0, 1.0, size=(500, len(names)))
    f, g = (sympy.lambdify(names, e)(*points.T) * np.ones(len(points)) for e in (expr, truth))
    f, g = f - f.mean(), g - g.mean()
    return sympy.nsimplify(float(np.dot(f, g) / np.dot(f, f)), rational=False) * expr


@pytest.mark.parametrize("name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW])
def test_discover_recovers_catalogue_laws(name):
    recovered, verdicts = _recovered(name)
    assert recovered and all(recovered.values()), recovered
    if pikan.systems.get(name).truth().order == 1:  # exact, and verified as such
        assert set(verdicts.values()) == {"recovered"}, verdicts
