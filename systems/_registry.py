"""The catalogue's record and registry: one :class:`CatalogueEntry` per system file.

Every system file in this folder (``harmonic.py``, ``kepler.py``, ...) defines the same
names, with one set of keyword parameters (the system's physical constants, e.g.
``GM=1.0``) shared by all of its functions:

``truth(**params) -> System``
    The ground truth: every module has its law.
``model(*, hidden=..., grid=..., **params) -> System``
    The learning spec: the same system with the unknown modules learned, with sensible
    inputs (features, bindings) and constraints.
``sample_initial(rng, **params) -> (q0, v0)``
    One initial state, numpy arrays of shape ``(n_coords,)`` each, drawn with a numpy
    ``Generator`` (what :func:`pikan.simulate` calls with ``initial=``); ``q0`` alone for
    a first-order system (``truth().order == 1``: no velocities).
``SIMULATION``
    Default ``simulate`` settings: ``n_trajectories``, ``t`` and ``dt``, sized so that a
    simulation plus a quick discovery fit on two CPU cores (a few thousand states).
``laws(**params) -> dict``
    The true law of every module of ``truth``, in the module's input names with the
    constants filled in: expression text (a list of texts, one per output, for a Dynamics).
``CONSERVED``
    Quantities the truth conserves: ``"energy"``, ``"momentum"``, ``"angular_momentum"``.

The module docstring is the entry's description (physics and a textbook reference).
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from pikan.systems import (
    anisotropic,
    charged_particle,
    double_pendulum,
    double_well_flow,
    duffing,
    harmonic,
    kepler,
    lotka_volterra,
    mass_action,
    pendulum,
    spring_chain,
    two_body,
    van_der_pol,
)

import pikan
from pikan import SpecError, System

_SOURCES = {source.__name__.rpartition(".")[2]: source for source in (
    harmonic, pendulum, anisotropic, duffing, kepler, two_body, spring_chain, double_pendulum,
    charged_particle, lotka_volterra, van_der_pol, double_well_flow, mass_action)}
"""System name -> its file ``systems/<name>.py``, in catalogue order."""

_CATALOGUE = tuple(_SOURCES)
"""System names in catalogue order."""


@dataclass(frozen=True)
class CatalogueEntry:
    """A ready-made system: ground truth, learning spec, sampler, settings and laws.

    Attributes
    ----------
    name : str
        Catalogue name (also the ``System`` name of ``truth()``).
    truth : callable ``(**params) -> System``
        Ground-truth spec, every law known.
    model : callable ``(**options) -> System``
        Learning spec (KAN options such as ``hidden``, ``grid`` and the truth's params).
    sample_initial : callable ``(rng, **params) -> (q0, v0)``
        One initial state, two arrays of shape ``(n_coords,)`` (``q0`` alone for a
        first-order system).
    simulation : mapping
        Default :func:`pikan.simulate` settings (``n_trajectories``, ``t``, ``dt``).
    laws : callable ``(**params) -> dict``
        Module name -> true law as text (a list of texts for a Dynamics), in the module's
        input names with the params substituted.
    description : str
        The physics and a reference.
    conserved : tuple of str
        What the truth conserves (``"energy"``, ``"momentum"``, ``"angular_momentum"``).
    """

    name: str
    truth: Callable[..., System]
    model: Callable[..., System]
    sample_initial: Callable[..., tuple[np.ndarray, np.ndarray]]
    simulation: Mapping[str, Any]
    laws: Callable[..., dict]
    description: str
    conserved: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, Any]:
        """The keyword parameters of ``truth`` with their defaults."""
        return {p.name: p.default for p in inspect.signature(self.truth).parameters.values()}

    def initial(self, **params: Any) -> Callable[[np.random.Generator], tuple]:
        """The sampler with ``params`` bound: ``rng -> (q0, v0)``, for ``simulate(initial=...)``."""
        self._check_params(params)
        return functools.partial(self.sample_initial, **params)

    def simulate(self, *, params: Mapping[str, Any] | None = None, **settings: Any):
        """Simulate the ground truth with the catalogue's defaults.

        Parameters
        ----------
        params : mapping, optional
            Physical parameters passed to ``truth`` and ``sample_initial`` (e.g. ``{"n": 7}``
            for the spring chain).
        **settings
            Override :attr:`simulation` or pass other :func:`pikan.simulate` arguments
            (``seed``, ``noise``, ``method``, ...).

        Returns
        -------
        pikan.Trajectories
        """
        params = dict(params or {})
        self._check_params(params)
        options = {**self.simulation, **settings}
        options.setdefault("initial", self.initial(**params))
        return pikan.simulate(self.truth(**params), **options)

    def _check_params(self, params: Mapping[str, Any]) -> None:
        known = self.params
        for key in params:
            if key not in known:
                raise SpecError(
                    f"system {self.name!r}: unknown parameter {key!r}; parameters: "
                    f"{', '.join(known)}." + _did_you_mean(key, known))


def _did_you_mean(name: str, candidates) -> str:
    close = difflib.get_close_matches(str(name), sorted(candidates), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _description(doc: str | None) -> str:
    return inspect.cleandoc(doc or "")


@functools.cache
def _entry(name: str) -> CatalogueEntry:
    source = _SOURCES[name]
    return CatalogueEntry(
        name=name,
        truth=source.truth,
        model=source.model,
        sample_initial=source.sample_initial,
        simulation=MappingProxyType(dict(source.SIMULATION)),
        laws=source.laws,
        description=_description(source.__doc__),
        conserved=tuple(source.CONSERVED),
    )


def names() -> tuple[str, ...]:
    """Names of the catalogue's systems, in catalogue order."""
    return _CATALOGUE


def get(name: str) -> CatalogueEntry:
    """The catalogue entry called ``name``.

    Raises
    ------
    SpecError
        For an unknown name, listing the catalogue with a did-you-mean.
    """
    if name not in _CATALOGUE:
        raise SpecError(f"unknown system {name!r}; the catalogue has: {', '.join(_CATALOGUE)}."
                        + _did_you_mean(name, _CATALOGUE)
                        + " Hint: pikan.systems.names() lists them.")
    return _entry(name)


def entries() -> tuple[CatalogueEntry, ...]:
    """Every catalogue entry, in catalogue order."""
    return tuple(_entry(name) for name in _CATALOGUE)
