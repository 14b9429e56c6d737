"""The generalization suite's systems: physics not in pikan's catalogue, examples or tests.

Each :class:`GenSystem` row carries everything a new user would bring to pikan:

- the equations of motion written by hand in numpy (:attr:`GenSystem.accel`, forces
  differentiated on paper, divided by the masses), used by scipy's ``solve_ivp`` to make the
  data. pikan's integrator and compiler are never used to make data;
- the true spec (:attr:`GenSystem.truth`, every module with its law), used to score the
  extracted laws and to check that the numpy equations and the spec say the same physics;
- the learning spec a user would write (:meth:`GenSystem.plain`: every module learned with
  pikan's defaults, no constraints, no per-system options; features such as ``r`` are kept
  because the physics says the user would write them);
- the region the initial conditions come from (:attr:`GenSystem.sample`, described in
  :attr:`GenSystem.region`): the physics' domain (bound orbits, swings short of the top),
  not a setting tuned for pikan.

Constants are deliberately not round numbers. Families (at least two systems each):
exponential, inverse_power, trigonometric, multiwell, nonseparable, magnetic, damping,
constant_force, nbody, radial.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from pikan import Dissipation, Dynamics, Potential, System, all_pairs, chain_pairs

Sampler = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]
Accel = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class GenSystem:
    """One row of the suite.

    Attributes
    ----------
    name, family : str
    truth : pikan.System
        Every module with its law (the ground truth).
    accel : callable ``(q, v) -> a``
        Hand-written numpy accelerations; ``q, v`` of shape ``(..., n)``, returns ``(..., n)``.
    sample : callable ``rng -> (q0, v0)``
        One initial state, shapes ``(n,)`` each, from the region described in ``region``.
    region : str
        Where the initial conditions come from, in words.
    """

    name: str
    family: str
    truth: System
    accel: Accel
    sample: Sampler
    region: str

    @property
    def coords(self) -> tuple[str, ...]:
        return tuple(self.truth.coords)

    def plain(self) -> System:
        """The learning spec: ``truth.learn(name)`` for every module, default options."""
        spec = self.truth
        for name in spec.module_names:
            spec = spec.learn(name)
        return spec

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """First-order form for ``solve_ivp``: ``y = (q, v)`` of shape ``(2 n,)``."""
        n = len(self.coords)
        return np.concatenate([y[n:], self.accel(y[:n], y[n:])])


# ------------------------------------------------------------------ samplers


def _box(q_low, q_high, v_low, v_high) -> Sampler:
    """Positions and velocities uniform in boxes (bounds broadcast over the coordinates)."""
    q_low, q_high = np.atleast_1d(q_low).astype(float), np.atleast_1d(q_high).astype(float)
    v_low, v_high = np.atleast_1d(v_low).astype(float), np.atleast_1d(v_high).astype(float)

    def sample(rng):
        n = max(len(q_low), len(q_high))
        return (rng.uniform(q_low, q_high, size=n), rng.uniform(v_low, v_high, size=n))

    return sample


def _orbit(r_low, r_high, speed_of_r, tangential, radial) -> Sampler:
    """A planar orbit about the origin: radius uniform in ``[r_low, r_high]``, any angle and
    sense of rotation, tangential speed ``uniform(tangential) * speed_of_r(r)`` and radial
    speed ``uniform(radial) * speed_of_r(r)``."""

    def sample(rng):
        r, phi = rng.uniform(r_low, r_high), rng.uniform(0.0, 2 * math.pi)
        speed = speed_of_r(r)
        vt = rng.uniform(*tangential) * speed * rng.choice([-1.0, 1.0])
        vr = rng.uniform(*radial) * speed
        e_r, e_t = np.array([math.cos(phi), math.sin(phi)]), np.array([-math.sin(phi),
                                                                       math.cos(phi)])
        return r * e_r, vr * e_r + vt * e_t

    return sample


def _centred(sampler: Sampler) -> Sampler:
    """Remove the mean velocity (the centre-of-mass frame of a free chain)."""

    def sample(rng):
        q, v = sampler(rng)
        return q, v - v.mean()

    return sample


# ------------------------------------------------------------------ force helpers


def _radial(q: np.ndarray, dV_dr: Callable[[np.ndarray], np.ndarray], m: float) -> np.ndarray:
    """Accelerations ``-V'(r) (x, y) / (r m)`` of a central potential in the plane."""
    r = np.sqrt(q[..., 0] ** 2 + q[..., 1] ** 2)
    return -(dV_dr(r) / (r * m))[..., None] * q


def _pairs_2d(q: np.ndarray, dV_dr: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Forces of one pair law on every pair of planar particles; ``q`` of shape (..., 2 N)."""
    n = q.shape[-1] // 2
    xy = q.reshape(*q.shape[:-1], n, 2)
    force = np.zeros_like(xy)
    for i in range(n):
        for j in range(i + 1, n):
            d = xy[..., j, :] - xy[..., i, :]
            r = np.sqrt(np.sum(d ** 2, axis=-1))
            f = (dV_dr(r) / r)[..., None] * d  # dV/d(x_j) = V'(r) d / r
            force[..., j, :] -= f
            force[..., i, :] += f
    return force.reshape(q.shape)


def _chain_bonds(q: np.ndarray, dV_dd: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Forces of one bond law on consecutive pairs (``d = q[i+1] - q[i]``), free ends."""
    d = np.diff(q, axis=-1)
    f = dV_dd(d)
    force = np.zeros_like(q)
    force[..., :-1] += f
    force[..., 1:] -= f
    return force


# ------------------------------------------------------------------ the systems


def _morse() -> GenSystem:
    D, a, x0, m = 1.73, 1.37, 0.83, 0.91
    truth = System("morse", coords=["x"], masses=m, params={"D": D, "a": a, "x0": x0},
                   modules=[Potential("V", inputs=["x"], law="D*(1 - exp(-a*(x - x0)))**2")])

    def accel(q, v):
        e = np.exp(-a * (q - x0))
        return -2 * D * a * (1 - e) * e / m

    return GenSystem("morse", "exponential", truth, accel, _box(0.62, 1.35, -0.5, 0.5),
                     "x in [0.62, 1.35], v in [-0.5, 0.5] (bound: energy below D)")


def _toda_chain() -> GenSystem:
    A, b, m = 0.87, 1.43, 1.17
    coords = ["x1", "x2", "x3"]
    truth = System("toda_chain", coords=coords, masses=m, params={"A": A, "b": b},
                   modules=[Potential("bond", inputs=["d"], law="A*exp(-b*d)/b + A*d",
                                      bindings=chain_pairs(coords, name="d"))])

    def accel(q, v):
        return _chain_bonds(q, lambda d: A - A * np.exp(-b * d)) / m

    return GenSystem("toda_chain", "exponential", truth, accel,
                     _centred(_box(-0.5, [0.5] * 3, -0.5, 0.5)),
                     "x_i in [-0.5, 0.5], v_i in [-0.5, 0.5] minus their mean (free chain, "
                     "centre-of-mass frame)")


def _yukawa_orbit() -> GenSystem:
    g, kappa, m = 1.21, 0.37, 0.77
    truth = System("yukawa_orbit", coords=["x", "y"], masses=m, params={"g": g, "kappa": kappa},
                   modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"},
                                      law="-g*exp(-kappa*r)/r")])

    def dV(r):
        return g * np.exp(-kappa * r) * (1 / r ** 2 + kappa / r)

    return GenSystem("yukawa_orbit", "exponential", truth, lambda q, v: _radial(q, dV, m),
                     _orbit(0.8, 1.4, lambda r: math.sqrt(r * dV(r) / m), (0.8, 1.05),
                            (-0.1, 0.1)),
                     "r in [0.8, 1.4], tangential speed 0.8-1.05 of circular, radial "
                     "+-0.1 of it (bound orbits)")


def _lj_1d() -> GenSystem:
    eps, s, m = 0.73, 1.13, 0.61
    truth = System("lj_1d", coords=["x"], masses=m, params={"eps": eps, "s": s},
                   modules=[Potential("V", inputs=["x"], law="4*eps*((s/x)**12 - (s/x)**6)")])

    def accel(q, v):
        return 4 * eps * (12 * s ** 12 / q ** 13 - 6 * s ** 6 / q ** 7) / m

    return GenSystem("lj_1d", "inverse_power", truth, accel, _box(1.18, 1.5, -0.3, 0.3),
                     "separation x in [1.18, 1.5], v in [-0.3, 0.3] (bound in the well)")


def _plummer_orbit() -> GenSystem:
    g, c, m = 1.31, 0.47, 1.19
    truth = System("plummer_orbit", coords=["x", "y"], masses=m, params={"g": g, "c": c},
                   modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"},
                                      law="-g/sqrt(r**2 + c**2)")])

    def dV(r):
        return g * r / (r ** 2 + c ** 2) ** 1.5

    return GenSystem("plummer_orbit", "inverse_power", truth, lambda q, v: _radial(q, dV, m),
                     _orbit(0.5, 1.5, lambda r: math.sqrt(r * dV(r) / m), (0.8, 1.05),
                            (-0.1, 0.1)),
                     "r in [0.5, 1.5], tangential speed 0.8-1.05 of circular, radial "
                     "+-0.1 of it")


def _lj_orbit() -> GenSystem:
    eps, s, m = 0.61, 0.93, 0.87
    truth = System("lj_orbit", coords=["x", "y"], masses=m, params={"eps": eps, "s": s},
                   modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"},
                                      law="4*eps*((s/r)**12 - (s/r)**6)")])

    def dV(r):
        return 4 * eps * (-12 * s ** 12 / r ** 13 + 6 * s ** 6 / r ** 7)

    return GenSystem("lj_orbit", "inverse_power", truth, lambda q, v: _radial(q, dV, m),
                     _orbit(1.0, 1.25, lambda r: 1.0, (0.0, 0.3), (-0.2, 0.2)),
                     "r in [1.0, 1.25], tangential speed in [0, 0.3], radial in [-0.2, 0.2] "
                     "(bound in the 12-6 well around a fixed centre)")


def _pendulum_large() -> GenSystem:
    c, m = 2.37, 0.73
    truth = System("pendulum_large", coords=["theta"], masses=m, params={"c": c},
                   modules=[Potential("V", inputs=["theta"], law="-c*cos(theta)")])
    return GenSystem("pendulum_large", "trigonometric", truth,
                     lambda q, v: -c * np.sin(q) / m, _box(-2.5, 2.5, -0.5, 0.5),
                     "theta in [-2.5, 2.5] (swings to 143 degrees), v in [-0.5, 0.5]")


def _sine_gordon_chain() -> GenSystem:
    a, c, m = 1.19, 0.57, 0.89
    coords = ["th1", "th2", "th3"]
    truth = System("sine_gordon_chain", coords=coords, masses=m, params={"a": a, "c": c},
                   modules=[Potential("onsite", inputs=["th"], law="-a*cos(th)",
                                      bindings=[{"th": t} for t in coords]),
                            Potential("coupling", inputs=["d"], law="-c*cos(d)",
                                      bindings=chain_pairs(coords, name="d"))])

    def accel(q, v):
        return (-a * np.sin(q) + _chain_bonds(q, lambda d: c * np.sin(d))) / m

    return GenSystem("sine_gordon_chain", "trigonometric", truth, accel,
                     _box(-1.2, [1.2] * 3, -0.6, 0.6),
                     "angles in [-1.2, 1.2], angular velocities in [-0.6, 0.6]")


def _cosine_lattice() -> GenSystem:
    a, m = 1.43, 1.07
    truth = System("cosine_lattice", coords=["x", "y"], masses=m, params={"a": a},
                   modules=[Potential("V", inputs=["x", "y"], law="-a*cos(x)*cos(y)")])

    def accel(q, v):
        x, y = q[..., 0], q[..., 1]
        return np.stack([-a * np.sin(x) * np.cos(y), -a * np.cos(x) * np.sin(y)], -1) / m

    return GenSystem("cosine_lattice", "trigonometric", truth, accel,
                     _box(-0.9, [0.9] * 2, -0.4, 0.4),
                     "x, y in [-0.9, 0.9], v in [-0.4, 0.4] (inside one cell: energy below "
                     "the saddles)")


def _double_well_2d() -> GenSystem:
    a, b, k, g, m = 0.73, 1.21, 1.37, 0.29, 0.97
    truth = System("double_well_2d", coords=["x", "y"], masses=m,
                   params={"a": a, "b": b, "k": k, "g": g},
                   modules=[Potential("V", inputs=["x", "y"],
                                      law="a*(x**2 - b)**2 + k*y**2/2 + g*x*y")])

    def accel(q, v):
        x, y = q[..., 0], q[..., 1]
        return -np.stack([4 * a * x * (x ** 2 - b) + g * y, k * y + g * x], -1) / m

    return GenSystem("double_well_2d", "multiwell", truth, accel,
                     _box([-1.6, -0.7], [1.6, 0.7], -0.5, 0.5),
                     "x in [-1.6, 1.6], y in [-0.7, 0.7], v in [-0.5, 0.5]")


def _four_well() -> GenSystem:
    a, b, c, d, e, m = 0.41, 1.17, 0.59, 0.83, 0.23, 1.09
    truth = System("four_well", coords=["x", "y"], masses=m,
                   params={"a": a, "b": b, "c": c, "d": d, "e": e},
                   modules=[Potential("V", inputs=["x", "y"],
                                      law="a*(x**2 - b)**2 + c*(y**2 - d)**2 + e*x*y")])

    def accel(q, v):
        x, y = q[..., 0], q[..., 1]
        return -np.stack([4 * a * x * (x ** 2 - b) + e * y,
                          4 * c * y * (y ** 2 - d) + e * x], -1) / m

    return GenSystem("four_well", "multiwell", truth, accel, _box(-1.5, [1.5] * 2, -0.5, 0.5),
                     "x, y in [-1.5, 1.5], v in [-0.5, 0.5]")


def _henon_variant() -> GenSystem:
    a, b, c, d, m = 1.13, 0.87, 0.61, 0.79, 1.0
    truth = System("henon_variant", coords=["x", "y"], masses=m,
                   params={"a": a, "b": b, "c": c, "d": d},
                   modules=[Potential("V", inputs=["x", "y"],
                                      law="(a*x**2 + b*y**2)/2 + c*x**2*y - d*y**3/3")])

    def accel(q, v):
        x, y = q[..., 0], q[..., 1]
        return -np.stack([a * x + 2 * c * x * y, b * y + c * x ** 2 - d * y ** 2], -1) / m

    return GenSystem("henon_variant", "nonseparable", truth, accel,
                     _box(-0.35, [0.35] * 2, -0.25, 0.25),
                     "x, y in [-0.35, 0.35], v in [-0.25, 0.25] (below the escape energy)")


def _coupled_quartic() -> GenSystem:
    k1, k2, c, m = 1.34, 0.93, 0.31, 0.79
    truth = System("coupled_quartic", coords=["x", "y"], masses=m,
                   params={"k1": k1, "k2": k2, "c": c},
                   modules=[Potential("V", inputs=["x", "y"],
                                      law="k1*x**2/2 + k2*y**2/2 + c*x**2*y**2")])

    def accel(q, v):
        x, y = q[..., 0], q[..., 1]
        return -np.stack([k1 * x + 2 * c * x * y ** 2, k2 * y + 2 * c * x ** 2 * y], -1) / m

    return GenSystem("coupled_quartic", "nonseparable", truth, accel,
                     _box(-1.3, [1.3] * 2, -0.6, 0.6), "x, y in [-1.3, 1.3], v in [-0.6, 0.6]")


def _magnetic(name: str, field: str, B: Callable, k: float, m: float,
              params: dict) -> GenSystem:
    truth = System(name, coords=["x", "y"], masses=m, params={"k": k, **params},
                   modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + y**2)/2"),
                            Dynamics("F", inputs=["x", "y", "v_x", "v_y"], outputs=["x", "y"],
                                     gyroscopic=True,
                                     law=[f"({field})*v_y", f"-({field})*v_x"])])

    def accel(q, v):
        b = B(q[..., 0], q[..., 1])
        return (-k * q + np.stack([b * v[..., 1], -b * v[..., 0]], -1)) / m

    return GenSystem(name, "magnetic", truth, accel, _box(-1.0, [1.0] * 2, -0.8, 0.8),
                     "x, y in [-1, 1], v in [-0.8, 0.8]")


def _magnetic_gradient() -> GenSystem:
    b0, b1 = 1.37, 0.41
    return _magnetic("magnetic_gradient", "b0 + b1*x", lambda x, y: b0 + b1 * x, 1.19, 0.83,
                     {"b0": b0, "b1": b1})


def _magnetic_bottle() -> GenSystem:
    b0, b2 = 0.93, 0.57
    return _magnetic("magnetic_bottle", "b0 + b2*(x**2 + y**2)",
                     lambda x, y: b0 + b2 * (x ** 2 + y ** 2), 0.71, 1.13, {"b0": b0, "b2": b2})


def _damped(name: str, coord: str, potential: str, dV: Callable, damping: str,
            dD: Callable, params: dict, m: float, sample: Sampler, region: str) -> GenSystem:
    v_name = f"v_{coord}"
    truth = System(name, coords=[coord], masses=m, params=params,
                   modules=[Potential("V", inputs=[coord], law=potential),
                            Dissipation("D", inputs=[v_name], law=damping)])
    return GenSystem(name, "damping", truth, lambda q, v: -(dV(q) + dD(v)) / m, sample, region)


def _damped_pendulum() -> GenSystem:
    c, g = 1.83, 0.19
    return _damped("damped_pendulum", "theta", "-c*cos(theta)", lambda q: c * np.sin(q),
                   "g*v_theta**2/2", lambda v: g * v, {"c": c, "g": g}, 0.67,
                   _box(-2.4, 2.4, -0.5, 0.5), "theta in [-2.4, 2.4], v in [-0.5, 0.5]")


def _damped_oscillator() -> GenSystem:
    k, c = 0.83, 0.13
    return _damped("damped_oscillator", "x", "k*x**2/2", lambda q: k * q, "c*v_x**2/2",
                   lambda v: c * v, {"k": k, "c": c}, 1.27, _box(-1.5, 1.5, -0.7, 0.7),
                   "x in [-1.5, 1.5], v in [-0.7, 0.7]")


def _quadratic_drag() -> GenSystem:
    k, c = 1.37, 0.31
    return _damped("quadratic_drag", "x", "k*x**2/2", lambda q: k * q, "c*abs(v_x)**3/3",
                   lambda v: c * np.abs(v) * v, {"k": k, "c": c}, 0.91,
                   _box(-1.6, 1.6, -0.8, 0.8), "x in [-1.6, 1.6], v in [-0.8, 0.8]")


def _mixed_drag() -> GenSystem:
    k, c1, c2 = 0.67, 0.11, 0.23
    return _damped("mixed_drag", "x", "k*x**2/2", lambda q: k * q,
                   "c1*v_x**2/2 + c2*abs(v_x)**3/3", lambda v: c1 * v + c2 * np.abs(v) * v,
                   {"k": k, "c1": c1, "c2": c2}, 1.21, _box(-1.8, 1.8, -0.8, 0.8),
                   "x in [-1.8, 1.8], v in [-0.8, 0.8]")


def _spring_weight() -> GenSystem:
    k, w, m = 1.73, 0.91, 0.67
    truth = System("spring_weight", coords=["x"], masses=m, params={"k": k, "w": w},
                   modules=[Potential("V", inputs=["x"], law="k*x**2/2 + w*x")])
    return GenSystem("spring_weight", "constant_force", truth, lambda q, v: -(k * q + w) / m,
                     _box(-1.2, 0.4, -0.6, 0.6), "x in [-1.2, 0.4], v in [-0.6, 0.6]")


def _elastic_pendulum() -> GenSystem:
    k, l0, w, m = 3.17, 1.07, 0.96, 0.59
    truth = System("elastic_pendulum", coords=["x", "y"], masses=m,
                   params={"k": k, "l0": l0, "w": w},
                   modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)", "y": "y"},
                                      law="k*(r - l0)**2/2 + w*y")])

    def accel(q, v):
        spring = _radial(q, lambda r: k * (r - l0), m)
        return spring - np.stack([np.zeros_like(q[..., 1]), np.full_like(q[..., 1], w / m)], -1)

    def sample(rng):
        r, phi = rng.uniform(1.2, 1.5), rng.uniform(-0.8, 0.8)
        return np.array([r * math.sin(phi), -r * math.cos(phi)]), rng.uniform(-0.4, 0.4, 2)

    return GenSystem("elastic_pendulum", "constant_force", truth, accel, sample,
                     "length in [1.2, 1.5], angle from the downward vertical in [-0.8, 0.8], "
                     "v in [-0.4, 0.4]")


def _gas(name: str, n: int, pair: str, dV: Callable, k: float, m: float,
         params: dict) -> GenSystem:
    sites = [(f"x{i}", f"y{i}") for i in range(1, n + 1)]
    coords = [c for site in sites for c in site]
    truth = System(name, coords=coords, masses=m, params={"k": k, **params},
                   modules=[Potential("trap", inputs=["x", "y"], law="k*(x**2 + y**2)/2",
                                      bindings=[{"x": x, "y": y} for x, y in sites]),
                            Potential("pair", inputs=["r"], law=pair, bindings=all_pairs(
                                sites, expr="sqrt(({b[0]} - {a[0]})**2 + ({b[1]} - {a[1]})**2)",
                                name="r"))])

    def accel(q, v):
        return (-k * q + _pairs_2d(q, dV)) / m

    return GenSystem(name, "nbody", truth, accel,
                     _box(-1.2, [1.2] * (2 * n), -0.5, 0.5),
                     f"{n} particles, positions in [-1.2, 1.2]^2, velocities in [-0.5, 0.5]^2")


def _gas_gauss() -> GenSystem:
    A, b = 0.93, 1.27
    return _gas("gas_gauss", 4, "A*exp(-b*r**2)", lambda r: -2 * A * b * r * np.exp(-b * r ** 2),
                1.13, 0.79, {"A": A, "b": b})


def _gas_softcore() -> GenSystem:
    A, c = 0.61, 0.43
    return _gas("gas_softcore", 5, "A/(r**2 + c)", lambda r: -2 * A * r / (r ** 2 + c) ** 2,
                0.87, 1.21, {"A": A, "c": c})


def _mexican_hat() -> GenSystem:
    a, b, m = 0.57, 1.13, 0.93
    truth = System("mexican_hat", coords=["x", "y"], masses=m, params={"a": a, "b": b},
                   modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"},
                                      law="a*r**4/4 - b*r**2/2")])

    def accel(q, v):
        return -(a * np.sum(q ** 2, -1, keepdims=True) - b) * q / m

    return GenSystem("mexican_hat", "radial", truth, accel, _box(-1.6, [1.6] * 2, -0.5, 0.5),
                     "x, y in [-1.6, 1.6], v in [-0.5, 0.5]")


def _radial_log() -> GenSystem:
    c, m = 0.89, 0.71
    truth = System("radial_log", coords=["x", "y"], masses=m, params={"c": c},
                   modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"},
                                      law="c*log(r)")])
    return GenSystem("radial_log", "radial", truth, lambda q, v: _radial(q, lambda r: c / r, m),
                     _orbit(0.6, 1.5, lambda r: math.sqrt(c / m), (0.7, 1.2), (-0.2, 0.2)),
                     "r in [0.6, 1.5], tangential speed 0.7-1.2 of circular, radial +-0.2 of it")


SYSTEMS: dict[str, GenSystem] = {s.name: s for s in (
    _morse(), _toda_chain(), _yukawa_orbit(),
    _lj_1d(), _plummer_orbit(), _lj_orbit(),
    _pendulum_large(), _sine_gordon_chain(), _cosine_lattice(),
    _double_well_2d(), _four_well(),
    _henon_variant(), _coupled_quartic(),
    _magnetic_gradient(), _magnetic_bottle(),
    _damped_pendulum(), _damped_oscillator(), _quadratic_drag(), _mixed_drag(),
    _spring_weight(), _elastic_pendulum(),
    _gas_gauss(), _gas_softcore(),
    _mexican_hat(), _radial_log(),
)}
"""Every system of the suite by name, in table order (families grouped)."""
