"""Batched integrators and simulation of a system or model.

:func:`rk4`, :func:`rk4_step` and :func:`verlet` are pure functions of torch tensors: a batch
of initial states in, a trajectory with a leading time axis out, and autograd (or
``torch.func``) flows through every step, so a rollout loss can train the vector field.
:func:`solve_ivp` wraps scipy's adaptive solvers for accurate ground truth.
:func:`simulate` integrates any model that provides ``vector_field(t, y)`` and ``coords``
(a compiled system; a spec is compiled first) and returns :class:`pikan.data.trajectories.Trajectories`.

State layout: ``y = concat(q, v)``, shape (batch, 2n), and ``vector_field(t, y)`` returns
``dy/dt = concat(v, a)`` of the same shape.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable

import numpy as np
import scipy.integrate
import torch

from pikan.data.trajectories import Trajectories, Trajectory
from pikan.errors import DataError, SpecError
from pikan.model.compile import compile as compile_spec

VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def verlet_step(accel, q: torch.Tensor, v: torch.Tensor, a: torch.Tensor, h
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One velocity-Verlet step of size ``h`` (a number or a tensor broadcasting against
    ``q``): ``(q, v, a)`` after it, ``a`` the acceleration at the new state. ``accel`` is
    called as ``accel(q, v_half)`` (see :func:`verlet`)."""
    v_half = v + h / 2 * a
    q = q + h * v_half
    a = accel(q, v_half)
    return q, v_half + h / 2 * a, a


def rk4_step(f: VectorField, t, y: torch.Tensor, dt) -> torch.Tensor:
    r"""One classical fourth-order Runge–Kutta step.

    .. math:: y_{n+1} = y_n + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)

    Parameters
    ----------
    f : callable ``f(t, y) -> dy``
        Vector field, y and dy of shape (batch, dim).
    t : float, 0-d tensor, or tensor of shape (batch, 1)
        Time at the start of the step (per row: windows that start at different times).
    y : Tensor, shape (batch, dim)
    dt : float or tensor broadcastable to y
        Step size.

    Returns
    -------
    Tensor, shape (batch, dim)
    """
    half = dt / 2
    k1 = f(t, y)
    k2 = f(t + half, y + half * k1)
    k3 = f(t + half, y + half * k2)
    k4 = f(t + dt, y + dt * k3)
    return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def _times(t, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim != 1 or t.shape[0] < 1:
        raise DataError(f"integration times must be a 1-D sequence, got shape {tuple(t.shape)}")
    return t


def rk4(f: VectorField, y0: torch.Tensor, t, substeps: int = 1) -> torch.Tensor:
    """Integrate ``dy/dt = f(t, y)`` with fixed-step RK4, saving at the times ``t``.

    Parameters
    ----------
    f : callable ``f(t, y) -> dy``, shapes (batch, dim)
    y0 : Tensor, shape (batch, dim)
        State at ``t[0]``.
    t : 1-D tensor or sequence, shape (T,)
        Save times, increasing; steps may differ.
    substeps : int
        RK4 steps between consecutive save times.

    Returns
    -------
    Tensor, shape (T, batch, dim)
        ``y[0] = y0``.
    """
    t = _times(t, y0)
    states, y = [y0], y0
    for i in range(t.shape[0] - 1):
        h = (t[i + 1] - t[i]) / substeps
        for s in range(substeps):
            y = rk4_step(f, t[i] + s * h, y, h)
        states.append(y)
    return torch.stack(states)


def verlet(
    accel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    q0: torch.Tensor,
    v0: torch.Tensor,
    t,
    substeps: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Velocity Verlet (leapfrog) for separable Newtonian systems :math:`\ddot q = a(q)`.

    .. math::
        v_{n+1/2} = v_n + \tfrac{h}{2} a(q_n), \quad q_{n+1} = q_n + h\, v_{n+1/2}, \quad
        v_{n+1} = v_{n+1/2} + \tfrac{h}{2} a(q_{n+1})

    Second order, symplectic and time-reversible: the energy error stays bounded (no drift)
    over long runs. The acceleration must not depend on v (and the system must be
    autonomous); ``accel`` is still called as ``accel(q, v)`` so model APIs taking (q, v) fit,
    with the half-step velocity :math:`v_{n+1/2}` as ``v``. Velocity-dependent forces make the
    method first order and lose the symplectic property: use :func:`rk4` for them.

    Parameters
    ----------
    accel : callable ``accel(q, v) -> a``, shapes (batch, n)
    q0, v0 : Tensor, shape (batch, n)
    t : 1-D tensor or sequence, shape (T,)
        Save times.
    substeps : int
        Verlet steps between consecutive save times.

    Returns
    -------
    q, v : Tensor, shape (T, batch, n)
    """
    t = _times(t, q0)
    q, v = q0, v0
    a = accel(q, v)
    qs, vs = [q], [v]
    for i in range(t.shape[0] - 1):
        h = (t[i + 1] - t[i]) / substeps
        for _ in range(substeps):
            q, v, a = verlet_step(accel, q, v, a, h)
        qs.append(q)
        vs.append(v)
    return torch.stack(qs), torch.stack(vs)


def solve_ivp(
    f_numpy: Callable[[float, np.ndarray], np.ndarray],
    y0,
    t_eval,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> np.ndarray:
    """Accurate reference solution of a batch of initial value problems with scipy.

    The batch is integrated as one flattened system (one call of ``f_numpy`` per stage for
    the whole batch, which is much faster than a loop when ``f_numpy`` is vectorized). scipy
    measures the error by an RMS over all components, so a batch of B trajectories runs with
    tolerances divided by sqrt(B): then every trajectory's own error norm meets ``rtol`` and
    ``atol``, as if it were integrated alone.

    Parameters
    ----------
    f_numpy : callable ``f(t, y) -> dy``
        Vectorized vector field, y and dy of shape (batch, dim) numpy arrays.
    y0 : array, shape (batch, dim) or (dim,)
    t_eval : array, shape (T,)
        Increasing save times; integration runs from ``t_eval[0]`` to ``t_eval[-1]``.
    method, rtol, atol
        Passed to ``scipy.integrate.solve_ivp``.

    Returns
    -------
    ndarray, shape (T, batch, dim), or (T, dim) for a 1-D y0

    Raises
    ------
    DataError
        When the solver fails or the solution becomes non-finite (for example a collision
        singularity reached from the given initial states).
    """
    y0 = np.asarray(y0, dtype=np.float64)
    single = y0.ndim == 1
    batch = y0.reshape(1, -1) if single else y0
    B, D = batch.shape
    t_eval = np.asarray(t_eval, dtype=np.float64)
    if t_eval.shape[0] == 1:
        out = batch[None].copy()
        return out[:, 0] if single else out

    def rhs(t, y):
        return np.asarray(f_numpy(t, y.reshape(B, D)), dtype=np.float64).reshape(-1)

    scale = np.sqrt(B)
    solution = scipy.integrate.solve_ivp(
        rhs,
        (t_eval[0], t_eval[-1]),
        batch.reshape(-1),
        method=method,
        t_eval=t_eval,
        rtol=max(rtol / scale, 1e-13),
        atol=atol / scale,
    )
    if solution.status != 0 or not np.isfinite(solution.y).all():
        raise DataError(
            f"the {method} solver failed: {solution.message}; hint: the initial states may "
            "run into a singularity (a collision, an escape) within the time span"
        )
    out = solution.y.T.reshape(-1, B, D)
    return out[:, 0] if single else out


# ----------------------------------------------------------------------------- simulate


def _is_model(obj) -> bool:
    return callable(getattr(obj, "vector_field", None)) and getattr(obj, "coords", None) is not None


def _model_dtype(model) -> torch.dtype:
    if isinstance(model, torch.nn.Module):
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                return tensor.dtype
    return torch.float64


def _on_device(model, device: torch.device):
    if not isinstance(model, torch.nn.Module):
        return model
    tensors = [*model.parameters(), *model.buffers()]
    if all(x.device == device for x in tensors):
        return model
    return copy.deepcopy(model).to(device)  # never move the caller's model behind their back


def _time_grid(t, dt: float) -> np.ndarray:
    if isinstance(t, (tuple, list)) and len(t) == 2:
        t0, t1 = float(t[0]), float(t[1])
        if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0 and dt > 0):
            raise DataError(
                f"simulate needs t=(t0, t1) with t1 > t0 and dt > 0, got t={t}, dt={dt}"
            )
        steps = round((t1 - t0) / dt)
        return t0 + dt * np.arange(max(steps, 1) + 1)
    times = np.asarray(t, dtype=np.float64)
    if times.ndim != 1 or times.shape[0] < 2 or not (np.diff(times) > 0).all():
        raise DataError(
            f"simulate needs t=(t0, t1) or a strictly increasing 1-D array of save times, got {t!r}"
        )
    return times


def _initial_states(initial, model, spec, n: int, n_trajectories: int | None, rng,
                    width: int | None = None) -> np.ndarray:
    """Initial states, (N, width): ``width`` 2n (q then v) or n (a first-order system)."""
    width = 2 * n if width is None else width
    where = "initial"
    if initial is None:
        for owner in (model, spec):
            sampler = getattr(owner, "sample_initial", None)
            if callable(sampler):
                initial = np.asarray(sampler(rng, 16 if n_trajectories is None else n_trajectories))
                where = f"{type(owner).__name__}.sample_initial(rng, n)"
                break
            default = getattr(owner, "default_initial", None)
            if default is not None:
                initial, where = default, f"{type(owner).__name__}.default_initial"
                break
    if initial is None:
        return rng.uniform(
            -1.0, 1.0, size=(16 if n_trajectories is None else n_trajectories, width)
        )
    if callable(initial):
        count = 16 if n_trajectories is None else n_trajectories
        states = []
        for _ in range(count):
            drawn = initial(rng)
            if isinstance(drawn, tuple) and len(drawn) == 2 and width == 2 * n:
                drawn = np.concatenate([np.ravel(drawn[0]), np.ravel(drawn[1])])
            states.append(np.asarray(drawn, dtype=np.float64).ravel())
        shapes = {s.shape for s in states}
        if shapes != {(width,)}:
            raise DataError(
                f"{where} returned states of shape {sorted(shapes)}, expected (q0, v0) with "
                f"{n} values each or one array of {2 * n} values" if width == 2 * n else
                f"{where} returned states of shape {sorted(shapes)}, expected q0 with {n} "
                "values (a first-order system)"
            )
        y0 = np.stack(states)
    else:
        y0 = np.asarray(initial, dtype=np.float64)
        y0 = y0[None] if y0.ndim == 1 else y0
        if y0.ndim != 2 or y0.shape[1] != width:
            raise DataError(
                f"{where} has shape {y0.shape}, expected (n_trajectories, {width}): "
                + (f"positions then velocities of {n} coordinates" if width == 2 * n else
                   f"the {n} coordinates of a first-order system")
            )
        if n_trajectories is not None and y0.shape[0] != n_trajectories:
            raise DataError(
                f"{where} holds {y0.shape[0]} initial states but n_trajectories={n_trajectories}; "
                "hint: leave n_trajectories out when passing an array"
            )
    if not np.isfinite(y0).all():
        raise DataError(f"{where} contains NaN or infinite values")
    return y0


def _metadata(model, spec, n: int) -> dict:
    meta = {}
    for owner in (spec, model):
        if owner is None:
            continue
        name = getattr(owner, "name", None)
        if isinstance(name, str) and "system" not in meta:
            meta["system"] = name
        masses = getattr(owner, "masses", None)
        if masses is not None and "masses" not in meta:
            try:
                array = np.asarray(masses, dtype=np.float64)
                if array.shape in ((), (n,)) and np.isfinite(array).all():
                    meta["masses"] = float(array) if array.ndim == 0 else array
            except (TypeError, ValueError):
                pass  # a learned mass has no number to record
        params = getattr(owner, "params", None)
        if isinstance(params, dict) and "params" not in meta:
            numbers = {}
            for key, value in params.items():
                try:
                    numbers[str(key)] = float(value)
                except (TypeError, ValueError):
                    pass
            meta["params"] = numbers
    return meta


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_device(device, option: str = "device") -> None:
    """``device`` is "auto" or names a device this machine has: a ``torch.device``, a name
    such as ``"cpu"`` or ``"cuda:1"``, or a CUDA index.

    Raises
    ------
    TypeError
        ``device`` is none of these types (``option`` named).
    ValueError
        Naming ``option``: a name torch does not know, or a CUDA device that is not there.
    """
    if isinstance(device, str) and device == "auto":
        return
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(f"{option} must be 'auto', a device name such as 'cpu' or 'cuda:0', "
                        f"or a torch.device, got {device!r}")
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{option}={device!r} is not a device name ({error}); hint: 'auto', "
                         "'cpu' or 'cuda:0'") from None
    if isinstance(device, int) or parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = device if isinstance(device, int) else (parsed.index or 0)
        if index >= count:
            raise ValueError(f"{option}={device!r}: this machine has {count} CUDA device(s) "
                             f"usable by torch; hint: {option}='auto' or 'cpu'")


def _check_options(n_trajectories, t, dt, noise, seed, method, device, substeps) -> str:
    """simulate's options, checked before anything is compiled or integrated.

    Returns
    -------
    str
        ``method`` in lower case.

    Raises
    ------
    DataError
        The first option out of its range, named with the range.
    """
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise DataError(f"unknown method {method!r}; expected 'dop853', 'rk4' or 'verlet'")
    if n_trajectories is not None and not (_whole(n_trajectories) and n_trajectories >= 1):
        raise DataError(f"n_trajectories must be a whole number >= 1 (or None: 16, or the rows "
                        f"of initial), got {n_trajectories!r}")
    if not (_real(noise) and np.isfinite(noise) and noise >= 0):
        raise DataError(f"noise must be a relative level >= 0 (0.01 for 1 %), got {noise!r}")
    if not (_real(dt) and np.isfinite(dt) and dt > 0):
        raise DataError(f"dt must be a finite number of time units > 0, got {dt!r}")
    if isinstance(t, (tuple, list)) and len(t) == 2:
        try:
            t0, t1 = (float(x) if not isinstance(x, (str, bool)) else np.nan for x in t)
        except (TypeError, ValueError):
            t0 = t1 = np.nan
        if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
            raise DataError(f"simulate needs t=(t0, t1) with finite t1 > t0, got t={t!r}")
        if dt > t1 - t0:
            raise DataError(f"dt={dt!r} is longer than the time span t={t!r}: the samples would "
                            f"run past t1; hint: dt <= t1 - t0 = {t1 - t0:g}")
    if not (seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence))
            or (_whole(seed) and seed >= 0)):
        raise DataError(f"seed must be a whole number >= 0, a numpy Generator or None, got "
                        f"{seed!r}")
    if not (_whole(substeps) and substeps >= 1):
        raise DataError(f"substeps must be a whole number >= 1 (integrator steps per save "
                        f"interval), got {substeps!r}")
    check_device(device)
    return method.lower()


METHODS = ("dop853", "rk4", "verlet")
"""simulate's integrators (its ``method=``)."""


def _check_laws_given(spec) -> None:
    """A spec to simulate must give every module's law: a module still to be learned would
    be an untrained KAN, whose motion means nothing (and often blows up, which the solver
    reported as a singularity of the system)."""
    modules = getattr(spec, "modules", None)
    if modules is None:
        return  # not a System: compile_spec says what it is
    learned = [m.name for m in modules if m.is_learned]
    if learned:
        raise SpecError(
            f"simulate: module(s) {learned} of {getattr(spec, 'name', 'the spec')!r} have no "
            "law: they are to be learned, and an untrained KAN has no motion to simulate; "
            "hint: give every module a law (spec.with_laws(...)), or simulate a trained "
            "model (run.model, or run.law_model for the extracted laws)")


def simulate(
    system_or_model,
    n_trajectories: int | None = None,
    t=(0.0, 10.0),
    dt: float = 0.01,
    noise: float = 0.0,
    seed: int = 0,
    initial=None,
    method: str = "dop853",
    device="cpu",
    substeps: int = 1,
) -> Trajectories:
    """Simulate trajectories of a system spec (all laws known) or of a model.

    Parameters
    ----------
    system_or_model
        A model providing ``vector_field(t, y)`` (y = concat(q, v), shape (batch, 2n)) and
        ``coords``, such as a compiled system; anything else is compiled with
        ``pikan.model.compile.compile`` first.
    n_trajectories : int, optional
        Number of trajectories; default 16, or the number of rows of an ``initial`` array.
    t : (t0, t1) or 1-D array
        Time span as a tuple or list of two numbers, saved every ``dt`` (the last save time
        is t0 + round((t1 - t0)/dt) dt); or a numpy array or tensor of explicit save times.
    dt : float
        Save interval; also the step of "rk4" and "verlet" (divided by ``substeps``).
    noise : float
        Relative measurement noise, see :meth:`Trajectories.with_noise`. With noise > 0 the
        result looks like a measurement: noisy q and v and no accelerations (estimate them
        with :meth:`Trajectories.with_derivatives`). With noise = 0 the exact accelerations,
        the vector field at the saved states, are included.
    seed : int
        Seeds the initial states and then the noise.
    initial : array (N, 2n), callable, or None
        Initial states (q0, v0) per row; or a callable ``rng -> (q0, v0)`` or ``rng -> (2n,)``
        called once per trajectory with a seeded numpy Generator. Default: the model's (or its
        spec's) ``sample_initial(rng, n_trajectories) -> (N, 2n)`` if it has one, else its
        ``default_initial`` (an array or callable as above), else q and v uniform in [-1, 1].
    method : {"dop853", "rk4", "verlet"}
        Adaptive DOP853 (rtol 1e-10, atol 1e-12; accurate ground truth), fixed-step RK4, or
        velocity Verlet (symplectic; only for accelerations independent of v).
    device : str or torch.device
        Where the vector field is evaluated ("auto": CUDA when available). A model on another
        device is copied, never moved.
    substeps : int
        Integrator steps per save interval for "rk4" and "verlet".

    Returns
    -------
    Trajectories
        t (T,), q and v (T, n) per trajectory, a (T, n) when noise = 0; system name, masses
        and params copied from the spec or model when they provide them.
    """
    method = _check_options(n_trajectories, t, dt, noise, seed, method, device, substeps)
    if _is_model(system_or_model):
        model, spec = system_or_model, getattr(system_or_model, "spec", None)
    else:
        spec = system_or_model
        _check_laws_given(spec)
        model = compile_spec(spec)
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    coords = list(model.coords)
    n = len(coords)
    times = _time_grid(t, dt)
    rng = np.random.default_rng(seed)
    first_order = getattr(model, "order", 2) == 1
    y0 = _initial_states(initial, model, spec, n, n_trajectories, rng,
                         n if first_order else 2 * n)
    model = _on_device(model, device)
    dtype = _model_dtype(model)

    def field(time, y):
        return model.vector_field(time, y).detach()

    def tensor(x):
        return torch.as_tensor(np.array(x), dtype=dtype, device=device)  # copy: inputs may be read-only

    if method == "dop853":

        def f_numpy(time, y):
            return field(tensor(time), tensor(y)).cpu().numpy()

        states = solve_ivp(f_numpy, y0, times)
    elif method == "rk4":
        states = rk4(field, tensor(y0), tensor(times), substeps).cpu().numpy()
    else:
        if first_order:
            raise SpecError("method='verlet' integrates second-order systems; this one is "
                            "first order; use 'dop853' or 'rk4'")
        if getattr(model, "driven", False):
            raise SpecError("method='verlet' steps carry no time, and this system is driven "
                            "(a module depends on t); use 'dop853' or 'rk4'")
        t0 = tensor(times[0])

        def accel(q, v):
            return field(t0, torch.cat([q, v], dim=-1))[:, n:]

        q, v = verlet(accel, tensor(y0[:, :n]), tensor(y0[:, n:]), tensor(times), substeps)
        states = torch.cat([q, v], dim=-1).cpu().numpy()
    states = states.astype(np.float64)
    if not np.isfinite(states).all():
        raise DataError(
            f"the {method} integration produced non-finite states; hint: reduce dt, add "
            "substeps, or use method='dop853'"
        )
    if first_order:  # the rates are the velocities; measured positions come alone
        rates = None if noise > 0 else np.stack(
            [field(tensor(time), tensor(y)).cpu().numpy() for time, y in zip(times, states)]
        ).astype(np.float64)
        records = [Trajectory(times, states[:, k], None if rates is None else rates[:, k], None)
                   for k in range(states.shape[1])]
        data = Trajectories(records, coords, **_metadata(model, spec, n))
        return data.with_noise(noise, seed=rng) if noise > 0 else data
    accelerations = None
    if noise == 0:
        accelerations = np.stack(
            [field(tensor(time), tensor(y))[:, n:].cpu().numpy() for time, y in zip(times, states)]
        ).astype(np.float64)
    records = [
        Trajectory(
            times,
            states[:, k, :n],
            states[:, k, n:],
            None if accelerations is None else accelerations[:, k],
        )
        for k in range(states.shape[1])
    ]
    data = Trajectories(records, coords, **_metadata(model, spec, n))
    return data.with_noise(noise, seed=rng) if noise > 0 else data
