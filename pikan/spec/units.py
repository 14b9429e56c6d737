r"""Units: text such as ``"kg*m/s**2"`` -> a :class:`Unit` (powers of the SI base units).

pikan needs units for one thing: dimensional analysis. Which combinations of inputs are
dimensionless, what a constant in a law must carry, whether a candidate law can be right at
all. So a unit here is its dimension (the exponents of the seven SI base units
:data:`BASE`) and a scale to SI, nothing more: no quantities, no arrays with units, no
conversions behind the user's back. A units library such as pint would parse more
spellings, but it would be a dependency for a grammar of a dozen lines, and pikan's own
grammar lets every error name the offending piece of text.

Grammar
-------
- a unit is a product of factors separated by ``*``, ``/`` or spaces (``"kg m / s**2"``);
  ``/`` applies to the one factor after it (``"J/mol/K"`` is ``J mol^-1 K^-1``), and
  parentheses group (``"W/(m*K)"``);
- a factor is a unit name, a parenthesized unit or ``1`` (``"1/s"``; ``"1"`` alone is
  dimensionless), optionally raised to a power with ``**`` or ``^``: an integer
  (``m**-2``, ``m^2``) or a fraction in parentheses (``Hz**(1/2)``);
- names: the base units ``m kg s A K mol cd``, the derived units in :data:`DERIVED` (``N J
  W Pa Hz C V ohm F T Wb H S rad sr eV g L min h``, ...), and any of them after an SI prefix
  (:data:`PREFIXES`: ``km``, ``ns``, ``kJ``, ``MHz``; ``u`` is micro). An exact name wins
  over a prefixed reading (``T`` is tesla, ``Pa`` pascal, ``min`` minutes).

Angles (``rad``, ``sr``, ``deg``) are dimensionless, as SI defines them.

Expressions
-----------
:func:`check_dimensions` infers the unit of a sympy expression from the units of its names:
terms of a sum must agree, arguments of ``exp``, ``log``, ``sin``, ... and symbolic
exponents must be pure numbers. Numbers in a law are either pure (a law from
:func:`pikan.find_law` with units, where every dimensional constant is an input) or
constants that carry whatever unit the law needs (a fitted ``0.5`` in ``V = 0.5*x**2``
carries ``J/m**2``); the check reports the unit each such constant carries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import sympy

from pikan.errors import SpecError

__all__ = ["BASE", "DERIVED", "DIMENSIONLESS", "PREFIXES", "DimensionCheck", "Unit",
           "check_dimensions", "parse_units", "units_map"]

BASE = ("m", "kg", "s", "A", "K", "mol", "cd")
"""The SI base units, in the order of :attr:`Unit.powers`."""

_SHOWN = ("kg", "m", "s", "A", "K", "mol", "cd")
"""The order base units are printed in (``kg*m/s**2``)."""


@dataclass(frozen=True)
class Unit:
    """A physical unit: the powers of the SI base units and a scale to SI.

    Attributes
    ----------
    powers : tuple of Fraction, length 7
        Exponents of ``m, kg, s, A, K, mol, cd`` (:data:`BASE`).
    scale : float
        Size in SI units of the base powers (``km``: 1000).
    """

    powers: tuple[Fraction, ...] = (Fraction(0),) * len(BASE)
    scale: float = 1.0

    @classmethod
    def base(cls, name: str) -> Unit:
        """The base unit ``name`` (one of :data:`BASE`)."""
        return cls(tuple(Fraction(int(b == name)) for b in BASE))

    @property
    def dimensionless(self) -> bool:
        return not any(self.powers)

    def same_dimension(self, other: Unit) -> bool:
        """Whether the two units measure the same kind of quantity (scales aside)."""
        return self.powers == other.powers

    def __mul__(self, other: Unit) -> Unit:
        return Unit(tuple(a + b for a, b in zip(self.powers, other.powers)),
                    self.scale * other.scale)

    def __truediv__(self, other: Unit) -> Unit:
        return self * other ** -1

    def __pow__(self, exponent) -> Unit:
        e = Fraction(exponent)
        return Unit(tuple(p * e for p in self.powers), self.scale ** float(e))

    def dimension(self) -> str:
        """The base-unit spelling, scale left out: ``"kg*m/s**2"``; ``"1"`` when
        dimensionless."""
        order = [BASE.index(b) for b in _SHOWN]
        up = [_power(BASE[i], self.powers[i]) for i in order if self.powers[i] > 0]
        down = [_power(BASE[i], -self.powers[i]) for i in order if self.powers[i] < 0]
        text = "*".join(up) or "1"
        if len(down) == 1:
            text += "/" + down[0]
        elif down:
            text += "/(" + "*".join(down) + ")"
        return text

    def __str__(self) -> str:
        """A named derived unit when one has these powers (``"J"``), else the base-unit
        spelling; the scale is left out (what dimensional analysis needs, and text that
        :func:`parse_units` reads back)."""
        names = [n for n in _NAMED if DERIVED[n].powers == self.powers]
        return names[0] if names else self.dimension()

    def __repr__(self) -> str:
        scale = "" if math.isclose(self.scale, 1.0) else f", scale={self.scale:g}"
        return f"Unit({self.dimension()!r}{scale})"


def _power(name: str, p: Fraction) -> str:
    if p == 1:
        return name
    return f"{name}**{p}" if p.denominator == 1 else f"{name}**({p})"


def _derived(**powers) -> Unit:
    """A unit from keyword powers of base units (``kg=1, m=1, s=-2``) and ``scale``."""
    scale = powers.pop("scale", 1.0)
    return Unit(tuple(Fraction(powers.get(b, 0)) for b in BASE), scale)


DIMENSIONLESS = Unit()
"""The unit ``"1"``."""

DERIVED: dict[str, Unit] = {
    "N": _derived(kg=1, m=1, s=-2),
    "J": _derived(kg=1, m=2, s=-2),
    "W": _derived(kg=1, m=2, s=-3),
    "Pa": _derived(kg=1, m=-1, s=-2),
    "Hz": _derived(s=-1),
    "C": _derived(A=1, s=1),
    "V": _derived(kg=1, m=2, s=-3, A=-1),
    "ohm": _derived(kg=1, m=2, s=-3, A=-2),
    "F": _derived(kg=-1, m=-2, s=4, A=2),
    "T": _derived(kg=1, s=-2, A=-1),
    "Wb": _derived(kg=1, m=2, s=-2, A=-1),
    "H": _derived(kg=1, m=2, s=-2, A=-2),
    "S": _derived(kg=-1, m=-2, s=3, A=2),
    "g": _derived(kg=1, scale=1e-3),
    "L": _derived(m=3, scale=1e-3),
    "min": _derived(s=1, scale=60.0),
    "h": _derived(s=1, scale=3600.0),
    "eV": _derived(kg=1, m=2, s=-2, scale=1.602176634e-19),
    "atm": _derived(kg=1, m=-1, s=-2, scale=101325.0),
    "bar": _derived(kg=1, m=-1, s=-2, scale=1e5),
    "rad": _derived(),
    "sr": _derived(),
    "deg": _derived(scale=math.pi / 180),
}
"""Derived and common units by name (the base units are in :data:`BASE`)."""
DERIVED["Ohm"] = DERIVED["ohm"]

_NAMED = ("N", "J", "W", "Pa", "C", "V", "ohm", "F", "T", "Wb", "H", "S")
"""Derived units that :meth:`Unit.__str__` may print (coherent SI, scale 1)."""

PREFIXES = {"Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6,
            "k": 1e3, "h": 1e2, "da": 1e1, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6,
            "µ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18}
"""SI prefixes and their factors (``u`` and ``µ`` are micro)."""

_UNPREFIXED = {"min", "h", "atm", "bar", "deg"}
"""Units that take no prefix (``kmin`` is not a unit)."""


def _named(name: str) -> Unit | None:
    if name in BASE:
        return Unit.base(name)
    return DERIVED.get(name)


def _lookup(name: str, text: str) -> Unit:
    unit = _named(name)
    if unit is not None:
        return unit
    for prefix in sorted(PREFIXES, key=len, reverse=True):
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest and rest not in _UNPREFIXED:
            unit = _named(rest)
            if unit is not None:
                return Unit(unit.powers, unit.scale * PREFIXES[prefix])
    raise SpecError(f"units {text!r}: unknown unit {name!r}; known: "
                    f"{' '.join(BASE)} {' '.join(DERIVED)}, each with an SI prefix "
                    f"(km, ns, kJ, MHz; u for micro).")


_TOKEN = re.compile(r"\s*(?:(\*\*|\^)|([*/()])|([-+]?\d+)|([A-Za-zµ_]+)|(\S))")


def _tokens(text: str) -> list[str]:
    out = []
    for match in _TOKEN.finditer(text):
        power, op, number, name, bad = match.groups()
        if bad is not None:
            raise SpecError(f"units {text!r}: unexpected {bad!r}; write units as products "
                            "of names and powers, such as 'kg*m/s**2' or 'W/(m*K)'.")
        out.append("**" if power else op or number or name)
    return out


class _Parser:
    """Recursive descent over the tokens of one units text (see the module's grammar)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise SpecError(f"units {self.text!r}: ends too early.")
        self.i += 1
        return token

    def product(self) -> Unit:
        unit = self.factor()
        while self.peek() not in (None, ")"):
            if self.peek() == "/":
                self.take()
                unit = unit / self.factor()
            else:
                if self.peek() == "*":
                    self.take()
                unit = unit * self.factor()
        return unit

    def factor(self) -> Unit:
        token = self.take()
        if token == "(":
            unit = self.product()
            if self.take() != ")":
                raise SpecError(f"units {self.text!r}: unbalanced parentheses.")
        elif token == "1":
            unit = DIMENSIONLESS
        elif token[0].isalpha() or token[0] in "µ_":
            unit = _lookup(token, self.text)
        else:
            raise SpecError(f"units {self.text!r}: unexpected {token!r}; a number in units "
                            "can only be 1 or a power (for 1000 m write km).")
        if self.peek() == "**":
            self.take()
            unit = unit ** self.exponent()
        return unit

    def exponent(self) -> Fraction:
        token = self.take()
        if token == "(":
            top = self.take()
            value = Fraction(int(top)) if re.fullmatch(r"[-+]?\d+", top) else None
            if value is not None and self.peek() == "/":
                self.take()
                bottom = self.take()
                if not re.fullmatch(r"\d+", bottom) or int(bottom) == 0:
                    value = None
                else:
                    value /= int(bottom)
            if value is None or self.take() != ")":
                raise SpecError(f"units {self.text!r}: a power in parentheses must be a "
                                "fraction such as (1/2) or (-3/2).")
            return value
        if not re.fullmatch(r"[-+]?\d+", token):
            raise SpecError(f"units {self.text!r}: a power must be an integer (m**-2) or a "
                            f"fraction in parentheses (Hz**(1/2)), got {token!r}.")
        return Fraction(int(token))


def parse_units(text) -> Unit:
    """Parse units text (see the module's grammar); a :class:`Unit` passes through.

    Parameters
    ----------
    text : str or Unit
        ``"kg*m/s**2"``, ``"W/(m*K)"``, ``"1"`` (dimensionless), ``"km/h"``.

    Returns
    -------
    Unit

    Raises
    ------
    SpecError
        Text outside the grammar or an unknown unit name, the piece named.
    """
    if isinstance(text, Unit):
        return text
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"units must be text such as 'kg*m/s**2' ('1': dimensionless), got "
                        f"{text!r}.")
    parser = _Parser(text)
    unit = parser.product()
    if parser.peek() is not None:
        raise SpecError(f"units {text!r}: unexpected {parser.peek()!r}.")
    return unit


def units_map(units: Mapping | None, who: str) -> dict[str, Unit]:
    """``{name: units text}`` parsed into ``{name: Unit}``; errors name ``who`` and the name.

    Raises
    ------
    SpecError
        ``units`` not a mapping of names to units text, or text that does not parse.
    """
    if units is None:
        return {}
    if not isinstance(units, Mapping):
        raise SpecError(f"{who}: units must be a dict of name -> units text such as "
                        f"{{'m': 'kg', 'v': 'm/s'}}, got {units!r}.")
    parsed = {}
    for name, text in units.items():
        try:
            parsed[str(name)] = parse_units(text)
        except SpecError as err:
            raise SpecError(f"{who}: units of {name!r}: {err}") from None
    return parsed


# ------------------------------------------------------------------ units of expressions


@dataclass(frozen=True)
class DimensionCheck:
    """The outcome of :func:`check_dimensions`.

    Attributes
    ----------
    unit : Unit or None
        The expression's unit; None when constants leave it open (``0.5*x`` without an
        expected unit).
    problems : tuple of str
        What is inconsistent, in words (empty: consistent).
    constants : tuple of (sympy.Expr, Unit)
        Each number that carries a unit, with that unit (only with ``pure_numbers=False``
        and a known expected unit).
    """

    unit: Unit | None
    problems: tuple[str, ...] = ()
    constants: tuple[tuple[sympy.Expr, Unit], ...] = ()

    @property
    def consistent(self) -> bool:
        return not self.problems


_SAME_UNIT_FUNCTIONS = (sympy.Abs, sympy.Max, sympy.Min)
"""Functions whose value carries their arguments' (common) unit."""


class _Inference:
    """One walk of :func:`check_dimensions` (records problems and constants' units)."""

    def __init__(self, units: Mapping[str, Unit], pure_numbers: bool,
                 implicit_units: bool = False) -> None:
        self.units = units
        self.pure = pure_numbers
        self.implicit = implicit_units
        self.problems: list[str] = []
        self.constants: list[tuple[sympy.Expr, Unit]] = []

    def expect(self, expr, got: Unit | None, want: Unit | None) -> Unit | None:
        if want is not None and got is not None and not got.same_dimension(want):
            if self.implicit:  # a coefficient 1 (snapped) that carries the missing unit
                self.constants.append((sympy.Integer(1), want / got))
                return want
            self.problems.append(f"{expr} carries {got.dimension()} where {want.dimension()} "
                                 "is needed")
        return want if got is None else got

    def number(self, expr, want: Unit | None) -> Unit | None:
        if self.pure:
            return self.expect(expr, DIMENSIONLESS, want)
        if want is not None and not want.dimensionless:
            self.constants.append((expr, want))
        return want

    def infer(self, expr, want: Unit | None = None) -> Unit | None:
        if not expr.free_symbols:
            return self.number(expr, want)
        if expr.is_Symbol:
            unit = self.units.get(expr.name)
            if unit is None:
                self.problems.append(f"{expr.name} has no units")
                return want
            return self.expect(expr, unit, want)
        if expr.is_Add:
            return self.add(expr, want)
        if expr.is_Mul:
            return self.mul(expr, want)
        if expr.is_Pow:
            return self.power(expr, want)
        if isinstance(expr, _SAME_UNIT_FUNCTIONS):
            found = [self.infer(a) for a in expr.args]
            known = next((u for u in found if u is not None), want)
            for a, u in zip(expr.args, found):
                if u is None or known is not None:
                    self.infer(a, known)
            return self.expect(expr, known, want)
        if isinstance(expr, sympy.sign):
            self.infer(expr.args[0])
            return self.expect(expr, DIMENSIONLESS, want)
        if isinstance(expr, sympy.atan2):
            found = [self.infer(a) for a in expr.args]
            known = next((u for u in found if u is not None), None)
            for a in expr.args:
                self.infer(a, known)
            return self.expect(expr, DIMENSIONLESS, want)
        for a in expr.args:  # exp, log, sin, ...: pure numbers in, a pure number out
            got = self.infer(a, DIMENSIONLESS)
            if got is not None and not got.dimensionless:
                self.problems[-1:] = [(f"{expr}: the argument carries {got.dimension()}, a "
                                       "function of it needs a pure number")]
        return self.expect(expr, DIMENSIONLESS, want)

    def add(self, expr, want: Unit | None) -> Unit | None:
        first = _Inference(self.units, self.pure, self.implicit)
        found = [first.infer(t) for t in expr.args]
        known = want if want is not None else next((u for u in found if u is not None), None)
        for term, unit in zip(expr.args, found):
            if unit is not None and known is not None and not unit.same_dimension(known) \
                    and not self.implicit:
                self.problems.append(f"{expr}: adds {unit.dimension()} ({term}) to "
                                     f"{known.dimension()}")
            else:
                self.infer(term, known)
        return known

    def mul(self, expr, want: Unit | None) -> Unit | None:
        numbers = [a for a in expr.args if not a.free_symbols]
        factors = [a for a in expr.args if a.free_symbols]
        units = [self.infer(a) for a in factors]
        if any(u is None for u in units):
            return want
        product = DIMENSIONLESS
        for u in units:
            product = product * u
        if numbers and not self.pure:
            if want is None:
                return None
            coefficient = sympy.Mul(*numbers)
            if not (want / product).dimensionless:
                self.constants.append((coefficient, want / product))
            return want
        return self.expect(expr, product, want)

    def power(self, expr, want: Unit | None) -> Unit | None:
        base, exponent = expr.args
        if exponent.free_symbols:
            self.infer(exponent, DIMENSIONLESS)
            self.infer(base, DIMENSIONLESS)
            return self.expect(expr, DIMENSIONLESS, want)
        try:
            e = Fraction(str(sympy.nsimplify(exponent, rational=True)))
        except (ValueError, TypeError):
            self.infer(base, DIMENSIONLESS)
            return self.expect(expr, DIMENSIONLESS, want)
        inner = want ** (1 / e) if want is not None and e != 0 else None
        unit = self.infer(base, inner)
        return None if unit is None else self.expect(expr, unit ** e, want)


def check_dimensions(expr, units: Mapping[str, Unit], output: Unit | None = None,
                     pure_numbers: bool = False, implicit_units: bool = False
                     ) -> DimensionCheck:
    """The unit of ``expr`` and whether it is dimensionally consistent.

    Parameters
    ----------
    expr : sympy.Expr
    units : dict of str -> Unit
        The unit of every name in ``expr`` (a name without one is a problem).
    output : Unit, optional
        The unit the expression must have (a law's output: ``J`` for a potential).
    pure_numbers : bool
        True: every number in ``expr`` is a pure number (a law whose dimensional constants
        are all inputs). False: a number may carry the unit its place needs, and the
        check reports which (``constants``).
    implicit_units : bool
        True: also a factor 1 that a law leaves unwritten may carry a unit (``x**2`` in a
        potential: a snapped coefficient of an extracted law); such a place is reported as
        the constant 1 with its unit, and nothing is inconsistent.

    Returns
    -------
    DimensionCheck
    """
    walk = _Inference(units, pure_numbers, implicit_units)
    unit = walk.infer(sympy.sympify(expr), output)
    return DimensionCheck(unit, tuple(dict.fromkeys(walk.problems)), tuple(walk.constants))
