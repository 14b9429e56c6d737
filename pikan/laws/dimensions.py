r"""Dimensional analysis for static laws: the Buckingham pi reduction.

A law :math:`y = f(x_1, \dots, x_d)` between quantities with units can only be

.. math:: y = \prod_k x_k^{p_k} \; g(\pi_1, \dots, \pi_m), \qquad
          \pi_j = \prod_k x_k^{e_{jk}},

where :math:`\prod x^p` carries the unit of :math:`y` and each :math:`\pi_j` is a pure number:
the exponent vectors :math:`e_j` span the null space of the matrix :math:`D` whose column
:math:`k` holds the base-unit powers of :math:`x_k`, and :math:`m = d - \mathrm{rank}(D)`.
:func:`pi_form` finds :math:`p` and the :math:`e_j` (exact rationals, scaled to small whole
numbers); :func:`pikan.find_law` then searches :math:`g` in the :math:`m` groups, a smaller
problem, often one with no input left (:math:`m = 0`: the law is a constant times a
product of powers), and every law mapped back is dimensionally consistent by construction.

Which inputs carry the prefactor is a choice: the null space is read off the reduced row
echelon form of :math:`D`, whose pivots are the first inputs (in the order given) that are
independent in units; the rest each give one group, that input over a product of pivots.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from pikan.errors import DataError, SpecError
from pikan.laws.candidates import Target
from pikan.spec.units import Unit

__all__ = ["GROUP_PREFIX", "MAX_BASES", "PiForm", "pi_form", "pi_forms"]

GROUP_PREFIX = "pi_"
"""Names of the dimensionless groups in the reduced problem (``pi_1``, ``pi_2``, ...)."""


@dataclass(frozen=True)
class PiForm:
    r"""``y = prod(x**prefactor) * g(groups)``: a law's dimensionless form.

    Attributes
    ----------
    names : tuple of str
        The inputs :math:`x_k`.
    prefactor : tuple of Fraction
        The exponents :math:`p_k`.
    groups : tuple of tuple of Fraction
        One exponent vector :math:`e_j` per dimensionless group.
    """

    names: tuple[str, ...]
    prefactor: tuple[Fraction, ...]
    groups: tuple[tuple[Fraction, ...], ...]

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(f"{GROUP_PREFIX}{j + 1}" for j in range(len(self.groups)))

    def _monomial(self, exponents: Sequence[Fraction]) -> sympy.Expr:
        return sympy.Mul(*[sympy.Symbol(n) ** sympy.Rational(e.numerator, e.denominator)
                           for n, e in zip(self.names, exponents) if e])

    def prefactor_expr(self) -> sympy.Expr:
        """:math:`\\prod x^p` in the input names."""
        return self._monomial(self.prefactor)

    def group_exprs(self) -> tuple[sympy.Expr, ...]:
        """Each group :math:`\\pi_j` in the input names."""
        return tuple(self._monomial(e) for e in self.groups)

    def describe(self) -> str:
        """``"y = x1*x2 * g(pi_1 = x3/x1)"``-style text for messages and reports."""
        groups = ", ".join(f"{n} = {e}" for n, e in zip(self.group_names, self.group_exprs()))
        return f"{self.prefactor_expr()} * g({groups})"

    def orientations(self, max_flipped_groups: int = 3) -> list[PiForm]:
        """This form and the ones with groups turned upside down (``c/v`` for ``v/c``).

        Which way up a group enters a law is a matter of how it was written
        (``exp(h*nu/(kb*T))`` or ``exp(1/z)`` in ``z = kb*T/(h*nu)``), and a search finds
        a law far more easily in the right one. With at most ``max_flipped_groups`` groups
        every combination is listed (``2**m``), this form first and the all-flipped one
        second; with more, only those two.
        """
        ratios = [k for k, g in enumerate(self.groups) if sum(1 for e in g if e) > 1]
        m = len(ratios)  # a group that is one input as given stays as given
        if m == 0:
            return [self]
        masks = list(itertools.product((False, True), repeat=m)) if m <= max_flipped_groups \
            else [(False,) * m, (True,) * m]
        masks.sort(key=lambda mask: (mask != (False,) * m, mask != (True,) * m))
        forms = []
        for mask in masks:
            flipped = {k for k, flip in zip(ratios, mask) if flip}
            forms.append(PiForm(self.names, self.prefactor,
                                tuple(tuple(-e for e in g) if k in flipped else g
                                      for k, g in enumerate(self.groups))))
        return forms

    def law(self, g: sympy.Expr) -> sympy.Expr:
        """The law in the input names from ``g`` in the group names."""
        subs = {sympy.Symbol(n): e for n, e in zip(self.group_names, self.group_exprs())}
        return self.prefactor_expr() * sympy.sympify(g).xreplace(subs)

    def reduce(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The samples of the reduced problem: groups ``(N, m)`` and ``y / prod(x**p)``.

        Raises
        ------
        DataError
            An input with a fractional power that takes negative values, or a zero where
            it is divided by (the groups are not finite).
        """
        with np.errstate(all="ignore"):
            logs = [self._values(x, e) for e in (self.prefactor, *self.groups)]
            w = y / logs[0]
            z = np.stack(logs[1:], axis=1) if self.groups else np.empty((len(y), 0))
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(z))):
            raise DataError(f"find_law: the dimensionless form {self.describe()} is not "
                            "finite on the data (a fractional power of a negative input, or "
                            "a zero divided by); give inputs in another order or leave the "
                            "units out.")
        return z, w

    def target(self, target: Target) -> Target:
        """The value target of ``g``: the groups and ``y / prod(x**p)``, weighted by the
        prefactor (scaled to RMS 1) so that its residuals are those of ``y``.

        Raises
        ------
        DataError
            As :meth:`reduce`.
        """
        z, w = self.reduce(target.z, target.y)
        prefactor = self._values(target.z, self.prefactor)
        weights = np.abs(prefactor) / float(np.sqrt(np.mean(prefactor**2)))
        return Target(self.group_names, z, "values", w, weights=weights)

    def _values(self, x: np.ndarray, exponents: Sequence[Fraction]) -> np.ndarray:
        out = np.ones(x.shape[0])
        for k, e in enumerate(exponents):
            if e.denominator == 1:
                out = out * x[:, k] ** int(e)
            elif e:
                out = out * np.power(x[:, k], float(e))
        return out


def _whole(vector: Sequence[Fraction], lead: int) -> tuple[Fraction, ...]:
    """A rational vector scaled to coprime whole numbers, entry ``lead`` positive."""
    scale = math.lcm(*[v.denominator for v in vector])
    ints = [int(v * scale) for v in vector]
    common = (math.gcd(*ints) or 1) * (1 if ints[lead] > 0 else -1)
    return tuple(Fraction(i, common) for i in ints)


def _solve(columns: Sequence[Sequence[Fraction]], rhs: Sequence[Fraction]
           ) -> list[Fraction] | None:
    """Exact solution ``c`` of ``sum_k c_k columns[k] = rhs`` for independent columns, or
    None when ``rhs`` is not in their span (Gaussian elimination on Fractions)."""
    n = len(columns)
    rows = [[col[i] for col in columns] + [rhs[i]] for i in range(len(rhs))]
    pivot_rows = []
    for k in range(n):
        r = next((i for i in range(len(rows)) if i not in pivot_rows and rows[i][k]), None)
        if r is None:
            return None
        pivot_rows.append(r)
        lead = rows[r][k]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][k]:
                factor = rows[i][k]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r])]
    if any(rows[i][n] for i in range(len(rows)) if i not in pivot_rows):
        return None
    return [rows[r][n] for r in pivot_rows]


def _rank(columns: Sequence[Sequence[Fraction]]) -> int:
    return sympy.Matrix([[sympy.Rational(v.numerator, v.denominator) for v in c]
                         for c in columns]).rank() if columns else 0


MAX_BASES = 400
"""Pivot sets :func:`pi_form` scores at most (all of them for up to 10 inputs in 7 units)."""


def _form(names: Sequence[str], columns, output, pivots: Sequence[int]) -> PiForm | None:
    basis = [columns[k] for k in pivots]
    solved = _solve(basis, output)
    if solved is None:
        return None
    prefactor = [Fraction(0)] * len(names)
    for k, c in zip(pivots, solved):
        prefactor[k] = c
    groups = []
    for f in range(len(names)):
        if f in pivots:
            continue
        vector = [Fraction(0)] * len(names)
        vector[f] = Fraction(1)
        for k, c in zip(pivots, _solve(basis, columns[f])):
            vector[k] = -c
        groups.append(_whole(vector, f))
    return PiForm(tuple(names), tuple(prefactor), tuple(groups))


def _score(form: PiForm) -> tuple[int, Fraction]:
    """Fewer fractional prefactor powers first, then smaller powers overall."""
    fractional = sum(p.denominator != 1 for p in form.prefactor)
    size = sum(abs(p) for p in form.prefactor) + sum(abs(e) for g in form.groups for e in g)
    return fractional, size


def pi_forms(units: Mapping[str, Unit], names: Sequence[str], output: Unit,
             count: int = 3, who: str = "find_law") -> list[PiForm]:
    """The ``count`` best Buckingham pi forms of ``output = f(names)``, best first.

    Each set of inputs independent in units that can carry the prefactor gives one form;
    they are ranked by :func:`_score`: the fewest fractional powers in the prefactor, then
    the smallest powers in all (earlier inputs win ties): ``kappa*T1*d * g(T2/T1, A/d**2)``
    before ``kappa*T1*sqrt(A) * g(...)``. Each group is one input (a positive power) over
    the prefactor's inputs. Forms with the same groups up to orientation and the same
    prefactor count once.

    Parameters
    ----------
    units : dict of str -> Unit
        The unit of every input.
    names : sequence of str
        The inputs, in order (earlier inputs are preferred in the prefactor).
    output : Unit
        The unit of the law's value.
    count : int
        Forms returned at most.
    who : str
        The function named in messages.

    Returns
    -------
    list of PiForm

    Raises
    ------
    SpecError
        An input without units, or an output unit that no product of the inputs' powers
        makes (a dimensional constant such as G or k_B is missing from the inputs).
    """
    missing = [n for n in names if n not in units]
    if missing:
        raise SpecError(f"{who}: no units for {missing}; give units for every input "
                        "('1' for a pure number) or none at all.")
    columns = [units[n].powers for n in names]
    rank = _rank(columns)
    forms: dict[tuple, PiForm] = {}
    for n_bases, pivots in enumerate(itertools.combinations(range(len(names)), rank)):
        if n_bases >= MAX_BASES and forms:
            break
        if _rank([columns[k] for k in pivots]) < rank:
            continue
        form = _form(names, columns, output.powers, pivots)
        if form is None:
            break  # the output is outside the span of every basis
        key = (form.prefactor, tuple(sorted(form.groups)))
        forms.setdefault(key, form)
    if not forms:
        shown = ", ".join(f"{n} [{units[n].dimension()}]" for n in names)
        raise SpecError(f"{who}: the output's unit {output.dimension()} is no product of "
                        f"powers of the inputs' units ({shown}): a dimensional constant "
                        "(such as G, k_B or c) is missing from the inputs. Add it as an input "
                        "column with its units, or leave the units out.")
    return sorted(forms.values(), key=_score)[:count]


def pi_form(units: Mapping[str, Unit], names: Sequence[str], output: Unit,
            who: str = "find_law") -> PiForm:
    """The best Buckingham pi form of ``output = f(names)`` (the first of
    :func:`pi_forms`; see there)."""
    return pi_forms(units, names, output, 1, who)[0]
