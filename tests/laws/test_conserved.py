"""find_conserved: closed-form conserved quantities, judged on held-out trajectories."""

import numpy as np
import pytest
import sympy

import pikan
from pikan import DataError, Dissipation, Potential, SpecError, System
from pikan.laws.conserved import find_conserved
from pikan.spec.expr import parse


def _same(law, truth: str, rtol: float = 1e-3) -> bool:
    """Whether a conserved quantity equals ``truth`` up to a scale factor and a constant."""
    expr = sympy.expand(law.in_state)
    reference = sympy.expand(parse(truth))
    terms = reference.as_coefficients_dict()
    mine = expr.as_coefficients_dict()
    anchor = next(t for t in terms if t != 1)
    if anchor not in mine:
        return False
    scale = float(mine[anchor]) / float(terms[anchor])
    return pikan.equivalent(sympy.expand(expr / scale), reference, rtol=rtol)


def _found(laws, truth: str, rtol: float = 1e-3):
    return [law for law in laws.values() if _same(law, truth, rtol)]


def _simulate(spec, initial=None, noise=0.0, n=12):
    return pikan.simulate(spec, n_trajectories=n, t=(0, 10), dt=0.02, seed=1, noise=noise,
                          initial=initial)


def test_central_force_gives_energy_and_angular_momentum():
    spec = System("central", coords=["x", "y"], modules=[
        Potential("V", inputs={"r2": "x**2 + y**2"}, law="0.7*r2 + 0.23*r2**2")])
    laws = find_conserved(_simulate(spec))
    assert len(laws) == 2
    assert _found(laws, "x*v_y - y*v_x")
    assert _found(laws, "(v_x**2 + v_y**2)/2 + 0.7*(x**2 + y**2) + 0.23*(x**2 + y**2)**2")
    assert all(law.verdict == "recovered" and law.kind == "Conserved" for law in laws.values())
    assert all(law.error < 1e-4 for law in laws.values())


def test_kepler_energy_through_a_declared_feature():
    spec = System("kepler", coords=["x", "y"], modules=[
        Potential("V", inputs={"r": "sqrt(x**2 + y**2)"}, law="-1.7/r")])

    def initial(rng):
        r, th = rng.uniform(0.8, 1.5), rng.uniform(0, 2 * np.pi)
        vt = np.sqrt(1.7 / r) * rng.uniform(0.8, 1.1)
        return np.array([r * np.cos(th), r * np.sin(th),
                         -vt * np.sin(th) + rng.normal(0, 0.1), vt * np.cos(th)])

    data = _simulate(spec, initial)
    inputs = {"x": "x", "y": "y", "v_x": "v_x", "v_y": "v_y", "r": "sqrt(x**2 + y**2)"}
    laws = find_conserved(data, inputs=inputs)
    energy = _found(laws, "(v_x**2 + v_y**2)/2 - 1.7/sqrt(x**2 + y**2)")
    assert energy and energy[0].verdict == "recovered"
    assert set(energy[0].inputs) == {"v_x", "v_y", "r"}  # written in the feature
    assert _found(laws, "x*v_y - y*v_x")


def test_interacting_pair_conserves_its_momentum_with_the_masses():
    spec = System("pair", coords=["x1", "x2"], masses=[1.0, 2.5], modules=[
        Potential("V", inputs={"d": "x2 - x1"}, law="0.9*d**2/2 + 0.3*d**4")])
    laws = find_conserved(_simulate(spec))
    momentum = _found(laws, "1.0*v_x1 + 2.5*v_x2")
    assert momentum and momentum[0].verdict == "recovered"
    assert len(laws) == 2  # and an energy: nothing more is conserved
    other = next(law for law in laws.values() if law is not momentum[0])
    assert other.verdict == "recovered" and {"x1", "x2"} <= set(other.inputs)


def test_uncoupled_oscillators_give_both_energies_and_no_function_of_them():
    spec = System("two", coords=["x", "y"], params={"k1": 1.3, "k2": 0.37}, modules=[
        Potential("V1", inputs=["x"], law="k1*x**2/2"),
        Potential("V2", inputs=["y"], law="k2*y**2/2")])
    laws = find_conserved(_simulate(spec), max_quantities=3)
    assert len(laws) == 2  # E1, E2; never E1 + E2 or E1**2 beside them
    assert _found(laws, "v_x**2/2 + 0.65*x**2")
    assert _found(laws, "v_y**2/2 + 0.185*y**2")


def test_uncoupled_oscillators_at_one_percent_noise_within_three_percent():
    spec = System("two", coords=["x", "y"], modules=[
        Potential("V1", inputs=["x"], law="1.3*x**2/2"),
        Potential("V2", inputs=["y"], law="0.37*y**2/2")])
    laws = find_conserved(_simulate(spec, noise=0.01))
    assert len(laws) == 2
    assert _found(laws, "v_x**2/2 + 0.65*x**2", rtol=0.03)
    assert _found(laws, "v_y**2/2 + 0.185*y**2", rtol=0.03)
    assert all(law.verdict == "recovered" for law in laws.values())


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_damped_system_conserves_nothing_and_says_so(noise):
    spec = System("damped", coords=["x"], modules=[
        Potential("V", inputs=["x"], law="0.8*x**2/2"),
        Dissipation("D", inputs=["v_x"], law="0.1*v_x**2/2")])
    laws = find_conserved(_simulate(spec, noise=noise))
    assert len(laws) == 0
    assert "no conserved quantity" in str(laws) and "poly2" in laws.note


def test_a_model_is_run_from_the_data_initial_states():
    spec = System("pendulum", coords=["th"], params={"g": 3.63}, modules=[
        Potential("V", inputs=["th"], law="-g*cos(th)")])
    data = _simulate(spec, n=8)
    laws = find_conserved(pikan.compile(spec), data=data)
    assert _found(laws, "v_th**2/2 - 3.63*cos(th)")


def test_laws_with_a_note_round_trip_through_json():
    spec = System("two", coords=["x", "y"], modules=[
        Potential("V1", inputs=["x"], law="x**2/2"), Potential("V2", inputs=["y"], law="y**2")])
    laws = find_conserved(_simulate(spec, n=8))
    back = pikan.Laws.from_json(laws.to_json())
    assert [str(law) for law in back.values()] == [str(law) for law in laws.values()]
    empty = pikan.Laws([], note="no conserved quantity: none")
    assert pikan.Laws.from_json(empty.to_json()).note == empty.note


def test_bad_calls_raise_clear_errors():
    spec = System("osc", coords=["x"], modules=[Potential("V", inputs=["x"], law="x**2/2")])
    data = _simulate(spec, n=6)
    with pytest.raises(DataError, match="at least 4 trajectories"):
        find_conserved(data.subset([0, 1, 2]))
    with pytest.raises(SpecError, match="unknown name 'y'"):
        find_conserved(data, inputs={"e": "x + y"})
    with pytest.raises(SpecError, match="max_quantities"):
        find_conserved(data, max_quantities=0)
    with pytest.raises(SpecError, match="needs trajectories"):
        find_conserved(pikan.compile(spec))
    with pytest.raises(SpecError, match="Trajectories or a compiled Model"):
        find_conserved(np.zeros((10, 2)))
    with pytest.raises(SpecError, match="time_limit"):
        find_conserved(data, time_limit=-1)


def test_positions_only_data_get_estimated_velocities():
    spec = System("osc", coords=["x"], modules=[Potential("V", inputs=["x"], law="0.6*x**2")])
    data = _simulate(spec, n=8)
    positions = pikan.Trajectories.from_arrays([r.t for r in data], [r.q for r in data],
                                               coords=["x"])
    laws = find_conserved(positions)
    assert _found(laws, "v_x**2/2 + 0.6*x**2", rtol=1e-3)


def test_first_order_data_give_both_totals_of_a_reaction():
    # A + B <-> C from positions alone (a first-order system: q is the state): a + c and
    # b + c are conserved, so every quantity found is a function of them, and two are found
    import pikan.systems

    made = pikan.systems.get("mass_action").simulate(seed=0, n_trajectories=8)
    data = pikan.Trajectories.from_arrays([np.asarray(r.t) for r in made],
                                          [np.asarray(r.q) for r in made], coords=["a", "b", "c"])
    laws = find_conserved(data, inputs=["a", "b", "c"], time_limit=60)
    recovered = [law for law in laws.values() if law.verdict == "recovered"]
    assert len(recovered) == 2, laws
    a, b, c = sympy.symbols("a b c")
    points = np.random.default_rng(0).uniform(0.3, 1.5, size=(20, 3))
    gradients = []
    for law in recovered:
        grad = [sympy.lambdify((a, b, c), sympy.diff(law.expr, s))(*points.T) * np.ones(20)
                for s in (a, b, c)]
        grad = np.stack(grad, -1)
        along = grad @ np.array([-1.0, -1.0, 1.0])  # the reaction's direction
        assert np.abs(along).max() <= 1e-6 * np.abs(grad).max(), law
        gradients.append(grad)
    cross = np.linalg.norm(np.cross(gradients[0], gradients[1]), axis=-1)
    assert cross.min() > 1e-3 * np.linalg.norm(gradients[0], axis=-1).max()  # independent
