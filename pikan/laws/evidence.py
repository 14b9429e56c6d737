r"""What the data say about a model's forces: the comparison extraction and verification make.

Choosing between candidate laws, setting how exactly a law must follow the KAN, and
judging a law model all ask one question: how far are a model's accelerations from the
data's? :func:`evidence` answers it the way the training loss does
(:func:`pikan.train.losses.choose_loss`), as one of three kinds:

- ``"measured"``: the data carries accelerations: compared sample by sample;
- ``"estimated"``: clean positions (relative noise at most
  :data:`pikan.train.losses.CLEAN_NOISE`): Savitzky--Golay accelerations, accurate there,
  compared sample by sample;
- ``"weak"``: noisy positions: the weak-form averages of
  :mod:`pikan.train.losses.weak_form` on windows of the trajectories, the model's
  accelerations averaged with the same bumps. Pointwise estimates of noisy accelerations
  would bury every difference between laws under their noise (at 1 % position noise on a
  two-dimensional double well, the KAN's error against them was 13 % of the force, so a law
  missing a coupling term that carries 10 % of it looked as good as the truth).

:func:`rate_evidence` asks the same of a first-order system's rates ``dq/dt``, with the
same three kinds one derivative lower (:func:`evidence_for` picks by the system's order).

The averages still carry the position noise, attenuated: :attr:`Evidence.floor` predicts
its size from the noise level (:func:`pikan.data.derivatives.noise_level`) and the data's
weights, and :meth:`Evidence.excess` removes it from a model's error.

A velocity-dependent force is evaluated at velocities estimated from the noisy positions
(:func:`evidence_velocities`): Savitzky--Golay on windows narrower than the ones that
minimize their error, so that their error is mostly noise, which
:meth:`Evidence.renoised` reproduces, rather than smoothing, which nothing downstream sees.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from pikan.data.derivatives import noise_level, savgol_derivative, savgol_window, uniform_step
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.train.losses import CLEAN_NOISE, position_noise, weak_window, weak_windows

__all__ = ["KINDS", "MAX_WINDOWS", "SIGNIFICANCE", "VELOCITY_SHARE", "Evidence", "evidence",
           "evidence_for", "evidence_velocities", "rate_evidence", "worse_in_blocks"]

KINDS = ("measured", "estimated", "weak")
"""The kinds of :class:`Evidence`, from the most direct to the most filtered."""

SIGNIFICANCE = 2.0
"""Standard errors by which one model's fit must be worse than another's for
:meth:`Evidence.worse` to call it worse (about 95 % one-sided confidence)."""

MAX_WINDOWS = 400
"""Windows a weak-form evidence keeps by default (a seeded subset of every window of the
data), where a model is weighed many times over (extraction). The constants' estimates
(:func:`pikan.laws.uncertainty.with_error_bars`) take every window: a window's noise comes
through its bump's second derivative, which changes sign twice across it, so windows a few
samples apart carry nearly independent noise. On a two-dimensional double well at 5 %
position noise, every window (about 1900) rather than 400 narrowed the spread of the
coupling constant over noise draws from 2.5 % to 0.5 %."""

VELOCITY_SHARE = 0.35
"""The weak evidence's velocities are Savitzky--Golay estimates on windows this share of
the ones of least predicted error (:func:`pikan.data.derivatives.savgol_window`, at least
the smallest window). That window balances the estimate's noise against its smoothing; the
smoothing is a bias no resampling of the data reveals (a magnetic field's gradient and the
trap beside it came out 1.5-2 % high at 5 % noise, outside their intervals), while the noise
is what :meth:`Evidence.renoised` adds more of and the constants' estimates are corrected
for. Measured with the true laws of the generalization suite's velocity-dependent systems
at 5 % noise (six draws): the magnetic bottle's field constants came out 4.7 % and 20 %
high on average at the windows of least error, 4.8 % and 6.2 % at half of them, 1.4 % and
2.3 % at this share; the drags' constants moved by at most 0.2 %."""

POLYORDER = 4
"""Polynomial order of the Savitzky--Golay velocities (the estimator's default)."""


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The data's accelerations, or their weak-form averages, and where to compare a model.

    Attributes
    ----------
    kind : {"measured", "estimated", "weak"}
    q, v : ndarray, shape (N, n), or (W, L, n) for ``"weak"``
        The states where the model's accelerations are taken.
    target : ndarray, shape (N, n) or (W, n)
        The data's accelerations, or the data's average acceleration on each window.
    weights : ndarray, shape (W, L), or None
        How a model's accelerations on a window are averaged (``"weak"`` only).
    floor : ndarray, shape (n,)
        Predicted RMS of the noise in ``target`` per coordinate (0 where it is not known:
        given or clean accelerations).
    reason : str
        Why this kind.
    groups : ndarray of int, shape (N,) or (W,)
        The trajectory each sample or window comes from.
    blocks : ndarray of int, shape (W,), or None
        For ``"weak"``: the stretch of one window's duration of its trajectory that each
        window starts in. Windows overlap, so the windows of one block are one piece of
        evidence, not many (:meth:`worse`); None: every row is its own.
    t : ndarray, shape (N,) or (W, L), or None
        The time of every state (what a driven model reads).
    coefficients : ndarray, shape (W, L), or None
        For ``"weak"``: the data's side of each window, ``target = sum_l c_l q_l``.
    points : ndarray of int, shape (W, L), or None
        For ``"weak"``: the sample of its trajectory each point of a window is.
    noise : ndarray, shape (trajectories, n), or None
        For ``"weak"``: the estimated position noise of each trajectory and coordinate
        (absolute), which :meth:`renoised` adds more of.
    offset : ndarray, shape (states, n), or None
        Accelerations (rates) added to every model's at :meth:`states`, before they are
        averaged: the part of modules held apart from the models compared (set by
        :meth:`apart`).
    smoothing : tuple of (float, tuple of int, int), or None
        For ``"weak"`` with estimated velocities: per trajectory, the time step, the
        Savitzky--Golay window of each coordinate and the number of samples
        (:func:`evidence_velocities`), with which :meth:`renoised` moves the velocities
        with the positions.
    """

    kind: str
    q: np.ndarray
    v: np.ndarray
    target: np.ndarray
    weights: np.ndarray | None
    floor: np.ndarray
    reason: str
    groups: np.ndarray | None = None
    blocks: np.ndarray | None = None
    t: np.ndarray | None = None
    coefficients: np.ndarray | None = None
    points: np.ndarray | None = None
    noise: np.ndarray | None = None
    offset: np.ndarray | None = None
    smoothing: tuple | None = None

    @property
    def measured(self) -> bool:
        """Whether the targets are given accelerations."""
        return self.kind == "measured"

    def states(self, model=None) -> tuple:
        """Every state where a model is evaluated, ``(q, v, t)``: q and v (samples, n), t
        (samples,) or None: the samples, or every point of every window; torch tensors in
        ``model``'s dtype when a model is given, else arrays."""
        n = self.q.shape[-1]
        q = self.q.reshape(-1, n)
        v = self.v.reshape(q.shape[0], self.v.shape[-1])  # (N, 0) in a first-order system
        t = None if self.t is None else self.t.reshape(-1)
        if model is None:
            return q, v, t
        dtype = next((p.dtype for p in model.parameters()), torch.float64)
        return tuple(None if x is None else torch.as_tensor(x, dtype=dtype) for x in (q, v, t))

    def average(self, values: np.ndarray) -> np.ndarray:
        """Per-state values (:meth:`states` order, shape (states, n)) as the targets see them:
        unchanged pointwise, averaged over each window with :attr:`weights` for ``"weak"``."""
        if self.weights is None:
            return values
        return np.einsum("bl,bln->bn", self.weights, values.reshape(self.q.shape))

    def predict(self, model) -> np.ndarray | None:
        """The model's counterpart of :attr:`target` (same shape); None when the model
        cannot be evaluated there (e.g. a singular mass matrix)."""
        a = self.at_states(model)
        return None if a is None else self.average(a)

    def at_states(self, model) -> np.ndarray | None:
        """The model's accelerations (rates) at :meth:`states`, :attr:`offset` added, before
        any averaging: shape (states, n); None when the model cannot be evaluated there."""
        try:
            q, v, t = self.states(model)
            if t is None or not getattr(model, "driven", False):
                t = None
            if getattr(model, "order", 2) == 1:
                a = model.rate(q) if t is None else model.rate(q, t)
            else:
                a = model.acceleration(q, v) if t is None else model.acceleration(q, v, t)
            a = a.detach().cpu().numpy().astype(float)
        except (RuntimeError, ValueError):
            return None
        return a if self.offset is None else a + self.offset

    def apart(self, model, part, check: tuple | None = None) -> Evidence | None:
        """This evidence for ``part``, a copy of ``model`` with some modules set to zero:
        what those modules add to ``model``'s prediction becomes the :attr:`offset`, so
        ``part`` with any law of a module it kept predicts what ``model`` with that law
        would, at the cost of ``part``'s forward passes alone.

        That holds when the modules' accelerations add up (Newtonian forces over a mass
        matrix no learned module sets, first-order rates). ``check``, the pair ``(model,
        part)`` with the kept module changed (set to zero), tests it: the offset must come
        out the same. None when it does not, or when a model cannot be evaluated here.
        """
        full, kept = self.at_states(model), self.at_states(part)
        if full is None or kept is None:
            return None
        offset = full - kept
        if not np.all(np.isfinite(offset)):
            return None
        if check is not None:
            full_changed, kept_changed = (self.at_states(m) for m in check)
            if full_changed is None or kept_changed is None:
                return None
            scale = max(float(np.max(np.abs(full))), 1e-300)
            if not np.allclose(offset, full_changed - kept_changed, rtol=0.0,
                               atol=1e-9 * scale):
                return None
        return dataclasses.replace(self, offset=offset if self.offset is None
                                   else offset + self.offset)

    def error(self, model, masses=None) -> float:
        """Absolute RMS error of the model's forces ``m * a`` against the targets (``inf``
        when not finite); ``masses`` (n,) default 1."""
        pred = self.predict(model)
        if pred is None or not np.all(np.isfinite(pred)):
            return math.inf
        m = 1.0 if masses is None else np.asarray(masses, dtype=float)
        return float(np.sqrt(np.mean(((pred - self.target) * m) ** 2)))

    def excess(self, model, masses=None) -> float:
        """:meth:`error` with the predicted noise of the targets (:attr:`floor`) taken out:
        an estimate of how far the model's forces are from the true ones."""
        total = self.error(model, masses)
        m = 1.0 if masses is None else np.asarray(masses, dtype=float)
        noise = float(np.mean((self.floor * m) ** 2))
        return math.sqrt(max(total**2 - noise, 0.0)) if math.isfinite(total) else total

    def target_scale(self) -> np.ndarray:
        """Each coordinate's RMS target, floored at a tenth of the largest (as the loss
        scales): the units of :meth:`relative` and :meth:`row_errors`."""
        rms = np.sqrt(np.mean(self.target**2, axis=0))
        return np.maximum(rms, 0.1 * rms.max() if rms.max() > 0 else 1.0)

    def relative(self, model) -> float:
        """Relative RMS error, each coordinate over its own RMS target (floored at a tenth of
        the largest, as the loss scales); ``inf`` when not finite."""
        pred = self.predict(model)
        if pred is None or not np.all(np.isfinite(pred)):
            return math.inf
        rms = self.target_scale()
        return float(np.sqrt(np.mean(np.mean((pred - self.target) ** 2, axis=0) / rms**2)))

    def coordinate_errors(self, model) -> np.ndarray | None:
        """Each target row's squared error of the model per coordinate, over the
        coordinate's RMS target (as :meth:`relative`): shape (rows, n); None when the model
        cannot be evaluated or its predictions are not finite."""
        pred = self.predict(model)
        if pred is None or not np.all(np.isfinite(pred)):
            return None
        return ((pred - self.target) / self.target_scale()) ** 2

    def row_errors(self, model) -> np.ndarray | None:
        """:meth:`coordinate_errors` summed over the coordinates: shape (rows,)."""
        errors = self.coordinate_errors(model)
        return None if errors is None else errors.sum(axis=1)

    def worse(self, errors: np.ndarray, than: np.ndarray) -> bool:
        """Whether a model with row errors ``errors`` (:meth:`row_errors`) fits these data
        worse than one with ``than``, beyond what the data resolve.

        Each :attr:`block` gives one log ratio of the two models' mean errors there; the
        first is worse when the mean log ratio exceeds :data:`SIGNIFICANCE` standard errors
        of it. In ratios a law worse everywhere is worse whatever the motion's amplitude:
        along a damped trajectory the first block carried 50 times the last one's
        difference, and a t-test on the differences themselves let ``0.9 x**2`` pass for
        ``x**2/2 + x**4/4`` (Duffing at 1 % noise, 1000 times the error).
        """
        return worse_in_blocks(errors, than, self.row_blocks())

    def row_blocks(self) -> np.ndarray:
        """The piece of evidence each target row belongs to (:attr:`blocks`; each row its
        own when there are none)."""
        return self.blocks if self.blocks is not None else np.arange(len(self.target))

    def subset(self, rows: np.ndarray) -> Evidence:
        """The evidence on the samples (or windows) ``rows`` only."""

        def cut(x):
            return None if x is None else x[rows]

        offset = None if self.offset is None else self.offset.reshape(
            *self.q.shape[:-1], -1)[rows].reshape(-1, self.offset.shape[-1])
        return Evidence(self.kind, self.q[rows], self.v[rows], self.target[rows],
                        cut(self.weights), self.floor, self.reason, cut(self.groups),
                        cut(self.blocks), cut(self.t), cut(self.coefficients),
                        cut(self.points), self.noise, offset, self.smoothing)

    @property
    def renoisable(self) -> bool:
        """Whether :meth:`renoised` applies: weak-form evidence with its noise level known."""
        return self.noise is not None and self.points is not None \
            and self.coefficients is not None and self.groups is not None

    def renoised(self, extra: float, rng: np.random.Generator) -> Evidence:
        """The same windows on positions with more noise: Gaussian, of variance ``extra``
        times the data's own (:attr:`noise`), one draw per sample of each trajectory, so a
        sample shared by overlapping windows moves alike in all of them and in the data's
        side. Velocities estimated from the positions (:attr:`smoothing`) move by the same
        filter's estimate of the added noise (it is linear); given ones stay. What errors in
        the states do to an estimate (:func:`pikan.laws.uncertainty.constant_intervals`) is
        read from how it changes.

        Raises
        ------
        ValueError
            Not :attr:`renoisable`.
        """
        if not self.renoisable:
            raise ValueError("only weak-form evidence with a noise level can be renoised")
        if self.offset is not None:
            raise ValueError("evidence with an offset cannot be renoised: the offset is "
                             "the held modules' part at these positions")
        n = self.q.shape[-1]
        samples = int(self.points.max()) + 1
        if self.smoothing is not None:
            samples = max(samples, *(length for _, _, length in self.smoothing))
        draws = rng.standard_normal((self.noise.shape[0], samples, n))
        shake = math.sqrt(extra) * draws * self.noise[:, None, :]
        moved = shake[self.groups[:, None], self.points]  # (W, L, n)
        target = self.target + np.einsum("bl,bln->bn", self.coefficients, moved)
        if self.smoothing is None or self.v.shape[-1] == 0:
            return dataclasses.replace(self, q=self.q + moved, target=target)
        swerve = np.zeros_like(shake)
        for k, (step, windows, length) in enumerate(self.smoothing):
            for j, window in enumerate(windows):
                swerve[k, :length, j] = savgol_derivative(shake[k, :length, j], step, 1,
                                                          window, POLYORDER)
        return dataclasses.replace(self, q=self.q + moved, target=target,
                                   v=self.v + swerve[self.groups[:, None], self.points])


def _noise_sigma(q: np.ndarray) -> np.ndarray:
    """Absolute position noise per coordinate of one trajectory: the smallest estimate of
    6th, 8th and 10th differences (as :func:`pikan.train.losses.position_noise`)."""
    sigma = np.atleast_1d(noise_level(q)).astype(float)
    for order in (8, 10):
        sigma = np.minimum(sigma, noise_level(q, order))
    return sigma


def rate_evidence(data: Trajectories, max_samples: int | None = None, seed: int = 0, *,
                  windows: int | None = MAX_WINDOWS) -> Evidence:
    """The data's evidence about a first-order system: its rates ``dq/dt`` at states ``q``
    with no velocities (``v`` of shape (N, 0)), of the kind :func:`evidence` would choose one
    derivative lower: measured rates (the velocities), Savitzky--Golay estimates of clean
    positions, or weak-form averages of the rates on windows of noisy positions
    (:func:`pikan.train.losses.weak_weights` with ``order=1``).

    Parameters
    ----------
    data : Trajectories
    max_samples : int, optional
        Keep a seeded subset of at most this many samples.
    seed : int
    windows : int or None
        As :func:`evidence`.
    """
    rng = np.random.default_rng(seed)
    measured = data.has_velocities and "v" not in data.estimated
    if not measured and position_noise(data) > CLEAN_NOISE:
        return _weak_evidence(data, max_samples, rng, 1, windows)
    full = data if data.has_velocities else data.with_derivatives()
    q, rate, ids = full.states()
    times = full.times()
    if max_samples is not None and q.shape[0] > max_samples:
        rows = np.sort(rng.choice(q.shape[0], max_samples, replace=False))
        q, rate, ids, times = q[rows], rate[rows], ids[rows], times[rows]
    zero = np.zeros(q.shape[1])
    return Evidence("measured" if measured else "estimated", q, q[:, :0], rate, None, zero,
                    "the data carries rates" if measured else
                    "rates estimated from the positions by Savitzky-Golay", ids, t=times)


def evidence_for(system, data: Trajectories, max_samples: int | None = None, seed: int = 0,
                 *, windows: int | None = MAX_WINDOWS) -> Evidence:
    """:func:`rate_evidence` for a first-order ``system`` (a spec or a model), else
    :func:`evidence`."""
    order = getattr(system, "order", 2)
    return (rate_evidence if order == 1 else evidence)(data, max_samples, seed,
                                                       windows=windows)


def evidence(data: Trajectories, max_samples: int | None = None, seed: int = 0, *,
             windows: int | None = MAX_WINDOWS) -> Evidence:
    """The data's evidence about forces, of the kind the data call for (module docstring).

    Parameters
    ----------
    data : Trajectories
        Positions, with or without velocities and accelerations; estimated ones
        (``data.estimated``) count as not given.
    max_samples : int, optional
        Keep a seeded subset of at most this many samples (pointwise) or ``max_samples //
        4`` windows, at most ``windows`` (weak); None: all samples, and at most ``windows``
        windows.
    seed : int
    windows : int or None
        The most weak-form windows kept (:data:`MAX_WINDOWS`); None: every window.

    Returns
    -------
    Evidence

    Raises
    ------
    DataError
        Data whose velocities or accelerations cannot be estimated.
    """
    rng = np.random.default_rng(seed)
    if data.measured_accelerations or position_noise(data) <= CLEAN_NOISE:
        full = data if data.has_accelerations else data.with_derivatives()
        q, v, ids = full.states()
        a, _ = full.accelerations()
        times = full.times()
        if max_samples is not None and q.shape[0] > max_samples:
            rows = np.sort(rng.choice(q.shape[0], max_samples, replace=False))
            q, v, a, ids, times = q[rows], v[rows], a[rows], ids[rows], times[rows]
        zero = np.zeros(q.shape[1])
        if data.measured_accelerations:
            return Evidence("measured", q, v, a, None, zero, "the data carries accelerations",
                            ids, t=times)
        return Evidence("estimated", q, v, a, None, zero,
                        "positions are clean: Savitzky-Golay accelerations", ids, t=times)
    return _weak_evidence(data, max_samples, rng, 2, windows)


def evidence_velocities(data: Trajectories, share: float = VELOCITY_SHARE
                        ) -> tuple[list[np.ndarray], tuple]:
    """Velocities of noisy positions for the weak evidence (:data:`VELOCITY_SHARE`).

    Each trajectory and coordinate gets the Savitzky--Golay derivative (order
    :data:`POLYORDER`) on ``share`` times its window of least predicted error
    (:func:`pikan.data.derivatives.savgol_window`), rounded to an odd number of samples, at
    least the smallest window.

    Returns
    -------
    (velocities, smoothing)
        One (T, n) array per trajectory, and :attr:`Evidence.smoothing`.

    Raises
    ------
    DataError
        Steps that are not uniform, or a trajectory too short for the filter.
    """
    smallest = POLYORDER + 1 + POLYORDER % 2
    velocities, smoothing = [], []
    for record in data:
        step = uniform_step(record.t)
        windows = []
        for column in record.q.T:
            window = round(share * savgol_window(column, step, 1, POLYORDER)) | 1
            windows.append(max(window, smallest))
        v = np.stack([savgol_derivative(column, step, 1, window, POLYORDER)
                      for column, window in zip(record.q.T, windows)], axis=1)
        velocities.append(v)
        smoothing.append((step, tuple(windows), len(record)))
    return velocities, tuple(smoothing)


def _weak_evidence(data: Trajectories, max_samples: int | None, rng, order: int,
                   windows: int | None) -> Evidence:
    """The ``"weak"`` evidence of noisy positions: weak-form averages of the accelerations
    (``order=2``) or of a first-order system's rates (``order=1``, no velocities), on a
    seeded subset of the windows (:func:`evidence`). Velocities the data do not carry are
    :func:`evidence_velocities`."""
    full = data if data.has_velocities or order == 1 else data.with_derivatives()
    length, every, why = weak_window(full, order=order)
    w = weak_windows(full, length, every, order)
    t, q, v = w.t, w.q, w.v
    smoothing = None
    if order == 2 and (not data.has_velocities or "v" in data.estimated):
        velocities, smoothing = evidence_velocities(data)
        padded = np.zeros((len(velocities), max(map(len, velocities)), q.shape[-1]))
        for k, velocity in enumerate(velocities):
            padded[k, :len(velocity)] = velocity
        v = padded[w.trajectory[:, None], w.points]
    sigma = np.stack([_noise_sigma(record.q) for record in data])  # (trajectories, n)
    cap = math.inf if windows is None else windows
    if max_samples is not None:
        cap = max(1, min(cap, max_samples // 4))
    rows = np.arange(t.shape[0])
    if rows.size > cap:
        rows = np.sort(rng.choice(rows.size, cap, replace=False))
    weights, c = w.weights[rows], w.c[rows]
    target = np.einsum("bl,bln->bn", c, q[rows])
    gain = np.sum(c**2, axis=1)  # (W,)
    floor = np.sqrt(np.mean(gain[:, None] * sigma[w.trajectory[rows]] ** 2, axis=0))
    if not np.all(np.isfinite(target)):
        raise DataError("the weak-form averages of the data are not finite")
    starts, ends = t[rows, 0], t[rows, -1]
    stretch = np.floor((starts - starts.min()) / max(float(np.median(ends - starts)), 1e-300))
    _, blocks = np.unique(np.stack([w.trajectory[rows], stretch.astype(np.int64)], axis=1),
                          axis=0, return_inverse=True)
    return Evidence("weak", q[rows], v[rows], target, weights, floor,
                    f"positions are noisy: weak-form averages on windows of {why}",
                    w.trajectory[rows], blocks.reshape(-1), t[rows], c, w.points[rows], sigma,
                    smoothing=smoothing)


def worse_in_blocks(errors: np.ndarray, than: np.ndarray, blocks: np.ndarray) -> bool:
    """:meth:`Evidence.worse` for row errors whose rows belong to ``blocks`` (one id per
    row, shape (rows,)): the mean log ratio of the two models' mean errors per block beyond
    :data:`SIGNIFICANCE` standard errors of it. Rows of several evidences are judged
    together by giving their blocks distinct ids."""
    _, index = np.unique(blocks, return_inverse=True)
    counts = np.bincount(index)
    mine = np.bincount(index, weights=np.asarray(errors, float)) / counts
    theirs = np.bincount(index, weights=np.asarray(than, float)) / counts
    ratios = np.log((mine + 1e-300) / (theirs + 1e-300))
    if ratios.size < 2:
        return bool(ratios.sum() > 0)
    spread = float(np.std(ratios, ddof=1)) / math.sqrt(ratios.size)
    return bool(ratios.mean() > SIGNIFICANCE * spread)
