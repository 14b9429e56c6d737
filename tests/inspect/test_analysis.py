import numpy as np
import pytest
import torch

import pikan
from pikan.inspect.analysis import energy_drift, importance, structure
from pikan.laws.generators.separability import (
    additive_coupling,
    derivatives,
    multiplicative_coupling,
)
from pikan.errors import SpecError


def _states(n, batch=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.rand(batch, n, generator=g) - 1, 2 * torch.rand(batch, n, generator=g) - 1


def _module(law, coords=("x", "y")):
    spec = pikan.System("s", coords=list(coords),
                        modules=[pikan.Potential("V", inputs=list(coords), law=law)])
    return pikan.compile(spec)


@pytest.fixture(scope="module")
def trained_xyz():
    """A KAN potential V(x, y, z) fitted to V = x^2 + 0.3 y^2 (z irrelevant) on forces."""
    torch.manual_seed(0)
    truth = pikan.System("s", coords=["x", "y", "z"],
                         modules=[pikan.Potential("V", inputs=["x", "y", "z"],
                                                  law="x**2 + 0.3*y**2")])
    model = pikan.compile(truth.learn("V", hidden=[3]), dtype=torch.float64)
    q, v = _states(3, batch=512)
    q, v = q.double(), v.double()
    target = pikan.compile(truth).acceleration(q, v)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = ((model.acceleration(q, v) - target) ** 2).mean()
        loss = loss + 1e-3 * model.blocks["V"].kan.regularization()
        loss.backward()
        opt.step()
    return model, q, v


def test_module_importance_ranks_inputs_and_drops_irrelevant(trained_xyz):
    model, q, v = trained_xyz
    imp = importance(model, (q, v))
    scores = imp["V"]
    assert scores["z"] < 0.01
    assert scores["x"] > scores["y"] > scores["z"]
    assert abs(sum(scores.values()) - 1) < 1e-12


def test_module_importance_of_a_normalised_block_is_that_of_its_kan(trained_xyz):
    """The same KAN in a block normalised for inputs 1e-6 times smaller (fit does this for
    data far from unit size): the same scores on the data in those units."""
    import copy

    model, q, v = trained_xyz
    small = copy.deepcopy(model)
    small.blocks["V"].input_scale.fill_(1e-6)
    small.blocks["V"].output_scale.fill_(1e-12)
    expected = importance(model, (q, v))["V"]
    assert importance(small, (1e-6 * q, 1e-6 * v))["V"] == pytest.approx(expected, rel=1e-9)


def test_system_importance_matches_finite_differences():
    model = _module("x**2/2 + 0.2*x*y**2 + y**2")
    q, v = _states(2)
    imp = importance(model, (q, v))
    state = torch.cat([q, v], 1)
    eps = 1e-6
    for j, coord in enumerate(model.coords):
        fd = []
        for i in range(4):
            d = torch.zeros_like(state)
            d[:, i] = eps
            plus = model.acceleration((state + d)[:, :2], (state + d)[:, 2:])[:, j]
            minus = model.acceleration((state - d)[:, :2], (state - d)[:, 2:])[:, j]
            fd.append(float(((plus - minus) / (2 * eps)).abs().mean() * state[:, i].std()))
        fd = np.array(fd) / sum(fd)
        got = np.array(list(imp[f"a_{coord}"].values()))
        np.testing.assert_allclose(got, fd, rtol=0.1, atol=1e-6)


def test_additive_separability_told_apart():
    q, v = _states(2)
    separable = structure(_module("x**2 + y**4"), (q, v), "V").get("additive", "x", "y")
    coupled = structure(_module("x**2*y**2 + x*y"), (q, v), "V").get("additive", "x", "y")
    assert separable.holds and not coupled.holds
    assert coupled.statistic > 100 * max(separable.statistic, 1e-4)


def test_separability_is_law_extractions_test():
    """The statistics are the couplings of the structure generator (one separability test):
    the additive one of f, the multiplicative one of log|f|, also for a product that
    changes sign."""
    q, v = _states(2)
    model = _module("(2 + x**2)*(3 + y)")
    result = structure(model, (q, v), "V")
    z = model.module_inputs("V", q, v).detach().numpy()
    d = derivatives(lambda t: model.blocks["V"].function(t)[:, 0], z)
    assert result.get("multiplicative", "x", "y").statistic == pytest.approx(
        max(multiplicative_coupling(d, z)[0, 1], multiplicative_coupling(d, z)[1, 0]),
        rel=1e-12, abs=1e-300)
    assert result.get("additive", "x", "y").statistic == pytest.approx(
        max(additive_coupling(d, z)[0, 1], additive_coupling(d, z)[1, 0]), rel=1e-12)
    assert result.get("multiplicative").holds and not result.get("additive").holds
    assert structure(_module("x*y"), (q, v), "V").get("multiplicative").holds
    assert not structure(_module("x**2 + y"), (q, v), "V").get("multiplicative").holds


def test_swap_symmetry_and_parity():
    q, v = _states(2)
    assert structure(_module("x**2 + y**2"), (q, v), "V").get("swap symmetric").holds
    asym = structure(_module("x**2 + 2*y**2"), (q, v), "V")
    assert not asym.get("swap symmetric").holds
    assert asym.get("even", "x").holds
    assert not structure(_module("x**3 + y**2"), (q, v), "V").get("even", "x").holds


def test_split_suggestion_applies_to_the_spec():
    q, v = _states(2)
    model = _module("x**2 + y**4")
    result = structure(model, (q, v), "V")
    split = [s for s in result.suggestions if s.kind == "split"][0]
    assert "split" in str(split)
    spec = split.apply(model.spec.learn("V"))
    assert [m.name for m in spec.modules] == ["V_x", "V_y"]
    assert [m.input_names for m in spec.modules] == [("x",), ("y",)]
    pikan.compile(spec)


def test_structure_rejects_vector_modules():
    spec = pikan.System("f", coords=["x", "y"],
                        modules=[pikan.Dynamics("F", inputs=["v_x", "v_y"], outputs=["x", "y"],
                                                law=["-v_x", "-v_y"])])
    with pytest.raises(SpecError, match="scalar"):
        structure(pikan.compile(spec), _states(2), "F")


def test_energy_drift_small_for_exact_data_and_large_for_wrong_model():
    truth = _module("x**2/2 + y**2")
    data = pikan.simulate(truth.spec, n_trajectories=3, t=(0, 5), dt=0.01, seed=0)
    assert energy_drift(truth, data) < 1e-6
    wrong = _module("x**2 + y**2")
    assert energy_drift(wrong, data) > 1e-2
