"""The data's evidence about forces (pikan/laws/evidence.py): which kind the data call for,
the weak-form noise floor, and that the weak kind tells laws apart where pointwise estimates
of noisy accelerations cannot."""

import copy
import math

import numpy as np
import pytest

import pikan
from pikan.data.derivatives import savgol_derivative
from pikan.data.trajectories import Trajectories
from pikan.laws.evidence import MAX_WINDOWS, POLYORDER, evidence
from pikan.spec.system import Potential, System

WELL = System("well", coords=["x", "y"], params={"g": 0.29},
              modules=[Potential("V", inputs=["x", "y"],
                                 law="0.73*(x**2 - 1.21)**2 + 0.685*y**2 + g*x*y")])


@pytest.fixture(scope="module")
def clean():
    return pikan.simulate(WELL, n_trajectories=6, t=(0, 10), dt=0.05, seed=0,
                          initial=lambda rng: (rng.uniform([-1.6, -0.7], [1.6, 0.7]),
                                               rng.uniform(-0.5, 0.5, 2)))


def positions(data):
    return Trajectories.from_arrays([r.t for r in data], [r.q for r in data],
                                    coords=list(data.coords))


def test_the_kind_follows_the_data(clean):
    assert evidence(clean).kind == "measured"
    assert evidence(positions(clean)).kind == "estimated"
    noisy = positions(clean).with_noise(0.01, seed=1)
    proof = evidence(noisy)
    assert proof.kind == "weak" and "noisy" in proof.reason
    assert proof.q.ndim == 3 and proof.weights.shape == proof.q.shape[:2]
    assert proof.target.shape == (proof.q.shape[0], 2) and len(proof.q) <= MAX_WINDOWS
    # estimated accelerations of noisy positions do not count as measured
    assert evidence(noisy.with_derivatives()).kind == "weak"
    assert noisy.with_derivatives().estimated == {"v", "a"}
    assert evidence(clean, max_samples=100).q.shape == (100, 2)


def test_the_truth_leaves_only_the_predicted_noise(clean):
    truth = pikan.compile(WELL)
    assert evidence(clean).error(truth) < 1e-8
    noisy = positions(clean).with_noise(0.01, seed=2)
    proof = evidence(noisy)
    error = proof.error(truth)
    floor = float(np.sqrt(np.mean(proof.floor**2)))
    assert 0.6 * floor < error < 1.5 * floor  # the truth's error is the noise, as predicted
    assert proof.excess(truth) < 0.6 * error


def test_weak_evidence_rejects_a_missing_coupling_that_noisy_estimates_hide(clean):
    truth = pikan.compile(WELL)
    uncoupled = pikan.compile(WELL.replace(params={"g": 0.0}))
    noisy = positions(clean).with_noise(0.02, seed=3)
    weak = evidence(noisy)
    ratio_weak = weak.relative(uncoupled) / weak.relative(truth)
    pointwise = noisy.with_derivatives()
    a, _ = pointwise.accelerations()
    q, v, _ = pointwise.states()

    def rel(model):
        import torch
        pred = model.acceleration(torch.as_tensor(q), torch.as_tensor(v)).detach().numpy()
        return float(np.sqrt(np.mean((pred - a) ** 2) / np.mean(a**2)))

    ratio_pointwise = rel(uncoupled) / rel(truth)
    assert ratio_weak > 2.0
    assert ratio_weak > 2 * ratio_pointwise


def test_a_model_that_cannot_be_evaluated_has_infinite_error(clean):
    class Broken:
        def parameters(self):
            return iter(())

        def acceleration(self, q, v):
            raise RuntimeError("singular mass matrix")

    proof = evidence(positions(clean).with_noise(0.01, seed=4))
    assert proof.error(Broken()) == math.inf and proof.relative(Broken()) == math.inf
    assert proof.subset(np.arange(3)).target.shape == (3, 2)


def test_overlapping_windows_count_once_in_a_comparison(clean):
    noisy = positions(clean).with_noise(0.01, seed=5)
    proof = evidence(noisy)
    # blocks: stretches of one window's duration, each within one trajectory
    assert proof.blocks.shape == proof.groups.shape
    for block in np.unique(proof.blocks):
        assert np.unique(proof.groups[proof.blocks == block]).size == 1
    n_blocks = np.unique(proof.blocks).size
    assert len(noisy) <= n_blocks < len(proof.blocks)
    assert np.array_equal(proof.subset(np.arange(5)).blocks, proof.blocks[:5])


def test_worse_needs_a_difference_beyond_the_blocks_sway(clean):
    proof = evidence(positions(clean).with_noise(0.02, seed=6))
    truth = pikan.compile(WELL)
    uncoupled = pikan.compile(WELL.replace(params={"g": 0.0}))
    slightly = pikan.compile(WELL.replace(params={"g": 0.2899}))
    best = proof.row_errors(truth)
    assert best.shape == (len(proof.target),) and np.all(best >= 0)
    assert proof.worse(proof.row_errors(uncoupled), best)  # the missing coupling shows
    assert not proof.worse(best, proof.row_errors(uncoupled))
    assert not proof.worse(proof.row_errors(slightly), best)  # 0.03 % of a constant: noise
    assert not proof.worse(best, best)
    delta = float(best.mean())
    sign = np.where(proof.blocks % 2 == 0, 1.0, -1.0)
    assert not proof.worse(best + 0.3 * delta * sign, best)  # block to block sway, no trend
    assert proof.worse(best + 0.01 * delta, best)  # a small difference in every block


# ----------------------------------------------------------------------- first order

KINETICS = System("kinetics", coords=["a", "b"], order=1, modules=[
    pikan.Flow("fa", inputs=["a", "b"], outputs=["a"], law=["-0.83*a*b + 0.27*b"]),
    pikan.Flow("fb", inputs=["a", "b"], outputs=["b"], law=["0.41*a - 0.6*b"])])


@pytest.fixture(scope="module")
def kinetics():
    return pikan.simulate(KINETICS, n_trajectories=6, t=(0, 8), dt=0.02, seed=2,
                          initial=lambda rng: rng.uniform(0.2, 2.0, 2))


def test_first_order_evidence_is_weak_on_noisy_positions_and_tells_a_wrong_rate(kinetics):
    from pikan.laws.evidence import evidence_for, rate_evidence

    assert rate_evidence(kinetics).kind == "measured"
    assert rate_evidence(positions(kinetics)).kind == "estimated"
    noisy = positions(kinetics).with_noise(0.01, seed=4)
    proof = evidence_for(KINETICS, noisy)
    assert proof.kind == "weak" and proof.v.shape == (*proof.q.shape[:2], 0)
    truth = pikan.compile(KINETICS)
    error, floor = proof.error(truth), float(np.sqrt(np.mean(proof.floor**2)))
    assert 0.6 * floor < error < 1.5 * floor  # the truth's error is the noise, as predicted
    wrong = pikan.compile(KINETICS.with_laws({"fa": ["-0.83*a*b + 0.2*b"]}))
    assert proof.worse(proof.row_errors(wrong), proof.row_errors(truth))
    assert not proof.worse(proof.row_errors(truth), proof.row_errors(wrong))


def test_renoised_evidence_moves_each_sample_alike_in_every_window(clean):
    proof = evidence(positions(clean).with_noise(0.01, seed=1))
    assert proof.renoisable and proof.noise.shape == (len(clean), 2)
    more = proof.renoised(2.0, np.random.default_rng(0))
    moved = more.q - proof.q
    # one draw per sample: wherever two windows share a sample of a trajectory, it moved
    # alike in both
    first = {}
    for w, l in np.ndindex(proof.points.shape):
        key = (int(proof.groups[w]), int(proof.points[w, l]))
        first.setdefault(key, moved[w, l])
        np.testing.assert_array_equal(moved[w, l], first[key])
    assert len(first) < proof.points.size  # the windows do overlap
    # the data's side moved with its own positions
    np.testing.assert_allclose(more.target - proof.target,
                               np.einsum("bl,bln->bn", proof.coefficients, moved))
    # the extra noise has twice the data's variance
    spread = np.std(np.array(list(first.values())), axis=0)
    np.testing.assert_allclose(spread, math.sqrt(2.0) * np.median(proof.noise, axis=0),
                               rtol=0.1)
    with pytest.raises(ValueError):
        evidence(clean).renoised(1.0, np.random.default_rng(0))


def test_renoised_velocities_move_by_the_filters_estimate_of_the_added_noise(clean):
    """Velocities estimated from the positions are a linear filter of them: more noise on the
    positions moves them by the same filter applied to that noise. Given velocities stay."""
    proof = evidence(positions(clean).with_noise(0.01, seed=1), windows=None)
    assert proof.smoothing is not None and len(proof.smoothing) == len(clean)
    more = proof.renoised(2.0, np.random.default_rng(0))
    moved = more.q - proof.q
    for k, (step, windows, length) in enumerate(proof.smoothing):
        mine = proof.groups == k
        shake = np.full((length, 2), np.nan)
        shake[proof.points[mine]] = moved[mine]
        assert np.all(np.isfinite(shake))  # every sample is a point of some window
        expected = np.stack([savgol_derivative(shake[:, j], step, 1, w, POLYORDER)
                             for j, w in enumerate(windows)], axis=1)
        np.testing.assert_allclose((more.v - proof.v)[mine], expected[proof.points[mine]],
                                   rtol=1e-10, atol=1e-12)
    given = Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean],
                                     v=[r.v for r in clean], coords=["x", "y"])
    kept = evidence(given.with_noise(0.01, seed=1))
    assert kept.kind == "weak" and kept.smoothing is None
    np.testing.assert_array_equal(kept.renoised(2.0, np.random.default_rng(0)).v, kept.v)


def test_every_window_is_kept_when_asked(clean):
    noisy = positions(clean).with_noise(0.01, seed=1)
    capped, every = evidence(noisy), evidence(noisy, windows=None)
    assert capped.target.shape[0] == MAX_WINDOWS < every.target.shape[0]
    assert evidence(noisy, windows=50).target.shape[0] == 50


def test_evidence_apart_predicts_what_the_whole_model_would(clean):
    """A module held apart as an offset: the part's prediction with any law of the kept
    module is the whole model's with that law; a check that does not add up is refused."""
    spec = System("split", coords=["x", "y"],
                  modules=[Potential("V", inputs=["x"], law="0.73*(x**2 - 1.21)**2"),
                           Potential("W", inputs=["y"], law="0.685*y**2")])
    model = pikan.compile(spec.learn("V").learn("W"), seed=0).double()
    part = pikan.compile(spec.learn("V").learn("W"), seed=0).double()
    part.fix("W", "0", trainable=False)
    changed = [copy.deepcopy(m) for m in (model, part)]
    for m in changed:
        m.fix("V", "0", trainable=False)
    proof = evidence(positions(clean).with_noise(0.01, seed=6))
    apart = proof.apart(model, part, check=tuple(changed))
    assert apart is not None and apart.offset.shape == (proof.q[..., 0].size, 2)
    for law in ("0.73*(x**2 - 1.21)**2", "x**4 + sin(x)"):
        whole, alone = copy.deepcopy(model), copy.deepcopy(part)
        whole.fix("V", law, trainable=False)
        alone.fix("V", law, trainable=False)
        np.testing.assert_allclose(apart.predict(alone), proof.predict(whole),
                                   rtol=1e-10, atol=1e-12)
    assert np.abs(apart.predict(part) - proof.predict(part)).max() > 1e-3  # W's part held
    rows = np.arange(3, 40, 4)  # a subset keeps each window's part
    np.testing.assert_allclose(apart.subset(rows).predict(part), apart.predict(part)[rows],
                               rtol=1e-12)
    # a check whose offset differs (W's KAN retrained in between) is refused
    other = pikan.compile(spec.learn("V").learn("W"), seed=1).double()
    other.fix("V", "0", trainable=False)
    assert proof.apart(model, part, check=(other, changed[1])) is None
    with pytest.raises(ValueError, match="offset"):
        apart.renoised(1.0, np.random.default_rng(0))
