"""discover on catalogue data recovers the catalogue's laws (harmonic and Kepler by default)."""

import pytest

import pikan
import pikan.systems

FAST = ["harmonic", "kepler"]
SLOW = ["pendulum", "anisotropic", "duffing", "spring_chain", "charged_particle", "two_body",
        "double_pendulum"]


def _recovered(name: str, seed: int = 0) -> dict:
    entry = pikan.systems.get(name)
    data = entry.simulate(seed=seed)
    run = pikan.discover(entry.model(), data, seed=seed, progress=False, plots=False)
    truth = pikan.compile(entry.truth()).spec
    out = {}
    for module, law in run.laws.items():
        # compare in state variables: learned laws may live on rewritten (invariant) inputs
        expected = [pikan.laws.in_state(pikan.expr.parse(e), truth.module(module))
                    for e in (entry.laws()[module] if isinstance(entry.laws()[module], list)
                              else [entry.laws()[module]])]
        got = law.in_state if isinstance(law.in_state, list) else [law.in_state]
        out[module] = all(pikan.equivalent(g, e, up_to_constant=law.up_to_constant)
                          for g, e in zip(got, expected))
    return out


@pytest.mark.parametrize("name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW])
def test_discover_recovers_catalogue_laws(name):
    recovered = _recovered(name)
    assert recovered and all(recovered.values()), recovered
