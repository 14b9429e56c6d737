r"""The candidate-generator interface: one signature for every family of law candidates.

A *generator* proposes closed forms for a fit target (:class:`pikan.laws.candidates.Target`:
values or gradients of a function on samples of its inputs). Every generator is an object
with a ``name`` and one method::

    generate(target: Target, options: Options) -> list[Candidate]

so :func:`pikan.extract` and :func:`pikan.find_law` run a list of them that the caller can
change (their ``generators=`` argument), and a new family is one new file. The candidates'
constants are refit afterwards by :func:`pikan.laws.candidates.fit_candidates`, whatever
generator proposed them.

:class:`Options` carries what a generator may need besides the target: the symbolic
library, the selection tolerance, the seed and the :class:`~pikan.laws.candidates.Deadline`
of an anytime search, and what the caller knows about the function behind the target (a
differentiable ``function`` for the structure tests, the ``kan`` to read edge by edge, the
degrees of a passive Dissipation). A generator that finds nothing it needs in the options
returns no candidates. Generators honour ``options.deadline`` themselves: each returns
what it found so far once it has passed (sparse regression still runs its first library,
so that a law comes back at all).

The families, one file each in :mod:`pikan.laws.generators`:

- :mod:`~pikan.laws.generators.regression`: sparse regression over term libraries;
- :mod:`~pikan.laws.generators.rational`: rational functions :math:`P/Q`;
- :mod:`~pikan.laws.generators.power_law`: power laws, their exponentials, and power laws
  split off a product (the rest solved by other generators);
- :mod:`~pikan.laws.generators.varpro`: one scanned nonlinear constant (a rate, a width, a shift);
- :mod:`~pikan.laws.generators.additive_model`: an additive spline model of the samples;
- :mod:`~pikan.laws.generators.separability`: structure tests on a differentiable function;
- :mod:`~pikan.laws.generators.curve`: the edge library's forms of a one-input curve;
- :mod:`~pikan.laws.generators.kan_edges`: a KAN read edge by edge;
- :mod:`~pikan.laws.generators.passive`: a passive Dissipation's own terms.

Euler--Lagrange regression (:mod:`~pikan.laws.generators.euler_lagrange`) is not behind
this interface: its candidates are judged by the accelerations they predict through the
model, not refit against a target, and it needs the model and the data's accelerations.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy

__all__ = ["EXACT", "Candidate", "Generator", "Options", "propose"]


@dataclass(frozen=True)
class Candidate:
    """A proposed law before the common refit.

    Attributes
    ----------
    expr : sympy.Expr
        In the target's input names; ``sympy.Float`` constants are the ones the refit moves.
    error : float
        The generator's own relative error (in the space it fitted, possibly transformed);
        NaN when it measured none.
    source : str
        The family that proposed it (``"regression:poly2:identity"``, ``"kan"``, ...).
    """

    expr: sympy.Expr
    error: float
    source: str


@dataclass(frozen=True)
class Options:
    """What a generator may read besides its target.

    Attributes
    ----------
    library : sequence of str, optional
        Symbolic primitives allowed (None: the whole library, :func:`pikan.kan.symbolic.names`).
    tolerance : float
        Relative error treated as negligible (the selection's, see
        :func:`pikan.laws.candidates.select`).
    seed : int
        Seeds sample subsets and edge fits.
    deadline : Deadline, optional
        Anytime search: generators stop when it passes (None: no limit).
    function : callable, optional
        A differentiable stand-in for the target's function, Tensor (N, d) -> (N,) in
        float64 (a module's block, or the KAN surrogate of static data); the structure tests
        need it.
    kan : KanReading, optional
        The KAN behind the target, to be read edge by edge
        (:class:`pikan.laws.generators.kan_edges.KanReading`).
    output : int
        Which output of ``kan`` the target holds (a Dynamics module has several).
    passive_degrees : tuple of float
        The degrees of a passive Dissipation block
        (:func:`pikan.model.compile.passive_dissipation`); empty for any other function.
    dimensionless : bool
        The target's values are pure numbers (:func:`pikan.find_law` with units searches a
        dimensionless group), so 1 is a natural offset: sparse regression also tries
        ``log(1 - y)``, ``log(1/y + 1)``, ``sin(y)``, ...
        (:data:`pikan.laws.generators.regression.UNIT_TRANSFORMS`).
    """

    library: Sequence[str] | None = None
    tolerance: float = 1e-6
    seed: int = 0
    deadline: object = None
    function: Callable | None = None
    kan: object = None
    output: int = 0
    passive_degrees: tuple[float, ...] = ()
    dimensionless: bool = False

    def replace(self, **changes) -> Options:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


class Generator(abc.ABC):
    """A family of law candidates (see the module docstring).

    Subclasses are small frozen dataclasses: their fields are the family's own settings
    (``SparseRegression(transforms=True)``), ``name`` says which family it is.
    """

    name: str = ""

    @abc.abstractmethod
    def generate(self, target, options: Options) -> list[Candidate]:
        """Candidates for ``target`` (a :class:`pikan.laws.candidates.Target`)."""


EXACT = 1e-10
"""A candidate whose own error is within this (relative, in the space its generator
fitted) is a law to rounding: :func:`propose` asks no later generator, and sparse regression
tries no further library (:func:`pikan.laws.generators.regression.regression_candidates`);
the others would only add longer forms and their refits, in the time the search needs."""


def propose(generators: Sequence[Generator], target, options: Options) -> list[Candidate]:
    """The candidates of every generator in turn, in their order (cheapest families first:
    under a deadline, :func:`pikan.laws.candidates.fit_candidates` keeps the first ones),
    up to the first generator that proposes a law to rounding (:data:`EXACT`)."""
    out: list[Candidate] = []
    for generator in generators:
        found = generator.generate(target, options)
        out += found
        if any(c.error <= EXACT for c in found):  # NaN (not measured) claims nothing
            break
    return out
