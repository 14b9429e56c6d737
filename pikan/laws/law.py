r"""Extracted laws: one closed form per module, with fit quality, alternatives and exports.

A :class:`Law` is what :func:`pikan.extract` returns for one module: a sympy expression in
the module's input names (a list, one per output, for a ``Dynamics`` module), the same law
written in the state (features and bindings substituted), its fit quality against the
module, its complexity, and the Pareto front of alternatives. :class:`Laws` maps module
names to laws, prints one line per module, round-trips through JSON (parsed back with the
safe parser :func:`pikan.spec.expr.parse`, never ``eval``), exports Markdown and LaTeX, and
writes the equations of motion with the laws substituted.

:func:`equivalent` decides whether a law matches a reference law: the test and benchmark
criterion "recovered symbolically with constants within ``rtol``".
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import sympy
from sympy.printing.str import StrPrinter

from pikan.errors import SpecError
from pikan.laws.numpy_expr import numpy_function
from pikan.spec.expr import parse, to_string
from pikan.spec.system import System
from pikan.spec.units import check_dimensions, parse_units

__all__ = ["VERDICTS", "Alternative", "Law", "Laws", "equivalent", "in_state"]

LAWS_VERSION = 1
"""Version of the JSON layout written by :meth:`Laws.to_json`."""

_UP_TO_CONSTANT = ("Potential", "Dissipation", "Lagrangian")

VERDICTS = ("recovered", "approximate", "not found")
"""What a check against the data says of a law (:func:`pikan.laws.verify.judge` decides):
``"recovered"``: the law model reproduces held-out data at least as well as the trained KAN
and within the data's noise; ``"approximate"``: it reproduces the motion roughly but a check
failed (the law may be a good approximation of another form); ``"not found"``: the law model
does not reproduce the data. ``None`` on a law means it was never checked against data."""
_DIGITS = 6


class _ShortPrinter(StrPrinter):
    """sympy's str printer with floats to 6 significant digits (for reading, not storage)."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return f"{float(expr):.{_DIGITS}g}"


def _short(expr: sympy.Expr) -> str:
    return _ShortPrinter().doprint(expr)


def _round_floats(expr: sympy.Expr) -> sympy.Expr:
    rep = {f: sympy.Float(float(f"{float(f):.{_DIGITS}g}"), _DIGITS)
           for f in expr.atoms(sympy.Float)}
    return expr.xreplace(rep)


@dataclass(frozen=True)
class Alternative:
    """One point of a module's Pareto front (complexity vs relative error).

    ``error`` is the relative RMS residual, ``rmse`` the absolute one; ``output`` names the
    Dynamics output the alternative is for (None for scalar modules).
    """

    expr: sympy.Expr
    complexity: int
    error: float
    source: str = ""
    output: str | None = None
    rmse: float = math.nan

    def __str__(self) -> str:
        out = f"[{self.output}] " if self.output else ""
        return f"{out}{_short(self.expr)}  (complexity {self.complexity}, error {self.error:.3g})"


@dataclass(frozen=True, eq=False)
class Law:
    """The closed-form law of one module.

    Attributes
    ----------
    module : str
        Module name (or the output name, for :func:`pikan.find_law`).
    kind : str
        ``"Potential"``, ``"Dynamics"``, ``"Dissipation"``, ``"Lagrangian"`` or
        ``"Function"`` (static regression).
    inputs : tuple of str
        The module's input names: the free names of ``expr``.
    expr : sympy.Expr or list of sympy.Expr
        The law in the input names; one expression per output for Dynamics. Potentials,
        dissipation functions and Lagrangians are defined up to an additive constant,
        which is left out.
    in_state : sympy.Expr or list or None
        The law with features substituted: a function of coordinates, velocities and
        params. For a module with several bindings, the sum over bindings.
    r2 : float
        Coefficient of determination against the module (its gradient for Potential,
        Dissipation and Lagrangian).
    rmse : float
        Root mean square residual against the same target (absolute units).
    error : float
        Relative RMS residual (``rmse`` over the target's RMS spread).
    complexity : int
        See :func:`pikan.laws.candidates.complexity`.
    alternatives : tuple of Alternative
        The Pareto front (complexity vs error) the law was selected from.
    outputs : tuple of str
        Coordinates a Dynamics law pushes on (empty otherwise).
    verdict : str or None
        One of :data:`VERDICTS`, from a check of the law model against held-out data
        (:func:`pikan.laws.verify.judge`); None when the law was not checked (``extract`` alone).
    verdict_reason : str
        Why, in words: the numbers the verdict rests on, and the first check that failed.
    caveats : tuple of str
        What extraction found doubtful about the law (e.g. constants that two halves of the
        data set differently); a law with a caveat is never "recovered".
    template : sympy.Expr or list or None
        ``expr`` with its constants as the symbols ``c0, c1, ...`` (None: no error bars;
        :func:`pikan.laws.uncertainty.with_error_bars` sets them).
    constants : dict
        ``{"c0": (value, low, high), ...}``: each constant of ``template`` with its interval
        at :attr:`level` (``low``, ``high`` NaN when the data do not determine it).
    covariance : tuple of tuple of float
        Covariance of the constants, in the order of :attr:`constants` (for
        :meth:`interval`).
    level : float
        Confidence level of the intervals in :attr:`constants`.
    units : dict of str -> str
        Units by name (the module or output name, and its inputs) when the law was found
        with units (:func:`pikan.find_law` ``units=``); empty otherwise.
    """

    module: str
    kind: str
    inputs: tuple[str, ...]
    expr: sympy.Expr | list
    in_state: sympy.Expr | list | None = None
    r2: float = math.nan
    rmse: float = math.nan
    error: float = math.nan
    complexity: int = 0
    alternatives: tuple[Alternative, ...] = ()
    outputs: tuple[str, ...] = ()
    verdict: str | None = None
    verdict_reason: str = ""
    caveats: tuple[str, ...] = ()
    template: sympy.Expr | list | None = None
    constants: dict = field(default_factory=dict)
    covariance: tuple = ()
    level: float = 0.9
    units: dict = field(default_factory=dict)

    @property
    def up_to_constant(self) -> bool:
        """True for energies (defined up to an additive constant)."""
        return self.kind in _UP_TO_CONSTANT

    def _exprs(self) -> list[sympy.Expr]:
        return list(self.expr) if isinstance(self.expr, (list, tuple)) else [self.expr]

    def _head(self) -> str:
        unit = f" [{self.units[self.module]}]" if self.module in self.units else ""
        return f"{self.module}({', '.join(self.inputs)}){unit}"

    def formula(self) -> str:
        """The law as one line of text, ``V(x) = x**2/2 + const`` (no verdict)."""
        if isinstance(self.expr, (list, tuple)):
            parts = [f"{o}: {_short(e)}" for o, e in zip(self.outputs or self.inputs, self.expr)]
            return f"{self._head()} = [{'; '.join(parts)}]"
        tail = " + const" if self.up_to_constant else ""
        return f"{self._head()} = {_short(self.expr)}{tail}"

    def _with_errors(self, show) -> list[sympy.Expr] | None:
        """The template's expressions with each constant replaced by ``show(value,
        half_width)`` (a sympy atom), or None without error bars."""
        if self.template is None or not self.constants:
            return None
        swap = {}
        for name, (value, low, high) in self.constants.items():
            half = (high - low) / 2 if math.isfinite(low) and math.isfinite(high) else math.nan
            swap[sympy.Symbol(name)] = show(value, half)
        templates = self.template if isinstance(self.template, (list, tuple)) \
            else [self.template]
        return [t.xreplace(swap) for t in templates]

    def formula_with_errors(self) -> str:
        """The law with each constant and its error bar, ``V(x) = (0.499 ± 0.004)*x**2 +
        const`` (the half width of the interval at :attr:`level`; ``?`` where the data do
        not determine a constant; no bar on a constant the data fix exactly, as noise-free
        data can); :meth:`formula` when the law has no error bars."""
        def show(value, half):
            if half == 0:  # exact as far as the data tell (noise-free data): no "± 0"
                return sympy.Symbol(f"{value:.6g}")
            text = f"{_precise(value, half)} ± {half:.2g}" if math.isfinite(half) else \
                f"{value:.6g} ± ?"
            return sympy.Symbol(f"({text})")

        exprs = self._with_errors(show)
        if exprs is None:
            return self.formula()
        if isinstance(self.expr, (list, tuple)):
            parts = [f"{o}: {sympy.sstr(e)}" for o, e in zip(self.outputs or self.inputs, exprs)]
            return f"{self._head()} = [{'; '.join(parts)}]"
        tail = " + const" if self.up_to_constant else ""
        return f"{self._head()} = {sympy.sstr(exprs[0])}{tail}"

    def interval(self, inputs: Mapping[str, np.ndarray], level: float = 0.9):
        """Interval of the law's value at ``inputs`` from the constants' covariance.

        Linear propagation: the value's variance is ``g C g^T`` with ``g`` the gradient of
        the template in the constants and ``C`` :attr:`covariance`; the interval is the
        value plus or minus the normal quantile of ``level`` times its standard deviation.

        Parameters
        ----------
        inputs : dict of str to ndarray
            Every input name of the law, arrays of one shape.
        level : float
            In (0, 1).

        Returns
        -------
        (low, high) : ndarrays
            The shape of the inputs, with a last axis over the outputs for a Dynamics law.

        Raises
        ------
        SpecError
            A law without error bars, a missing input, or a level outside (0, 1).
        """
        if self.template is None or not self.covariance:
            raise SpecError(f"law {self.module!r} has no error bars; they come from "
                            "pikan.discover, or pikan.laws.uncertainty.with_error_bars.")
        if not 0.0 < float(level) < 1.0:
            raise SpecError(f"interval: level must be in (0, 1), got {level!r}.")
        missing = [n for n in self.inputs if n not in inputs]
        if missing:
            raise SpecError(f"interval of law {self.module!r}: inputs {missing} are missing.")
        names = list(self.constants)
        symbols = [sympy.Symbol(n) for n in names]
        values = {s: self.constants[n][0] for s, n in zip(symbols, names)}
        arrays = [np.asarray(inputs[n], dtype=float) for n in self.inputs]
        shape = np.broadcast(*arrays).shape if arrays else ()
        cov = np.asarray(self.covariance, dtype=float)
        z = NormalDist().inv_cdf(0.5 + float(level) / 2)
        lows, highs = [], []
        templates = self.template if isinstance(self.template, (list, tuple)) \
            else [self.template]
        for template in templates:
            exprs = [template] + [sympy.diff(template, s) for s in symbols]
            columns = []
            for e in exprs:
                fn = numpy_function(e.xreplace(values), self.inputs)
                columns.append(np.broadcast_to(np.asarray(fn(*arrays), dtype=float), shape))
            center, grad = columns[0], np.stack(columns[1:], axis=-1)
            spread = z * np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", grad, cov, grad), 0))
            lows.append(center - spread)
            highs.append(center + spread)
        if len(templates) == 1 and not isinstance(self.template, (list, tuple)):
            return lows[0], highs[0]
        return np.stack(lows, axis=-1), np.stack(highs, axis=-1)

    def __str__(self) -> str:
        return self.formula_with_errors() + (f"   [{self.verdict}]" if self.verdict else "")

    def constant_units(self) -> list[tuple[sympy.Expr, str]]:
        """Each number of the law with the unit it carries, from :attr:`units` (a law of a
        spec with units: the ``0.5`` of ``V = 0.5*x**2`` carries ``kg/s**2`` when ``x`` is in
        m and ``V`` in J); empty without units, and for :func:`pikan.find_law` laws, whose
        numbers are pure."""
        if not self.units or self.kind == "Function":
            return []
        units = {n: parse_units(u) for n, u in self.units.items()}
        outputs = [f"{self.module}[{o}]" for o in self.outputs] if self.outputs \
            else [self.module]
        found = []
        for expr, output in zip(self._exprs(), outputs):
            check = check_dimensions(expr, units, units.get(output), implicit_units=True)
            found += [(c, str(u)) for c, u in check.constants]
        return found

    def best_alternatives(self, count: int = 3) -> list[Alternative]:
        """The ``count`` most accurate other points of the Pareto front (for a law short of
        "recovered", the candidates a user should look at next)."""
        chosen = {to_string(e) for e in self._exprs()}
        others = [a for a in self.alternatives if to_string(a.expr) not in chosen
                  and math.isfinite(a.error)]
        return sorted(others, key=lambda a: (a.error, a.complexity))[:count]

    def latex(self) -> str:
        """The law as a LaTeX equation (floats to 6 significant digits)."""
        head, law = self._latex_sides()
        return f"{head} = {law}"

    def _latex_sides(self) -> tuple[str, str]:
        """The two sides of :meth:`latex`: ``V(x)`` and the law (for aligned equations)."""
        args = ", ".join(sympy.latex(sympy.Symbol(n)) for n in self.inputs)
        head = f"{sympy.latex(sympy.Symbol(self.module))}({args})"
        if isinstance(self.expr, (list, tuple)):
            rows = r" \\ ".join(sympy.latex(_round_floats(e)) for e in self.expr)
            return head, f"\\begin{{pmatrix}} {rows} \\end{{pmatrix}}"
        tail = r" + \mathrm{const}" if self.up_to_constant else ""
        errors = self._with_errors(lambda value, half: sympy.Symbol(
            f"{value:.6g}" if half == 0  # fixed exactly by the data, as formula_with_errors
            else rf"\left({_precise(value, half)} \pm {half:.2g}\right)" if math.isfinite(half)
            else rf"\left({value:.6g} \pm ?\right)"))
        if errors is not None:
            return head, f"{sympy.latex(errors[0])}{tail}"
        return head, f"{sympy.latex(_round_floats(self.expr))}{tail}"

    def _repr_latex_(self) -> str:
        """Jupyter display: the law as a displayed equation with its verdict,
        ``$$V(x) = \\frac{x^{2}}{2} + \\mathrm{const} \\qquad \\text{[recovered]}$$``."""
        return f"$${self.latex()} \\qquad {_latex_verdict(self.verdict)}$$"

    def to_dict(self) -> dict:
        """A JSON-ready dict (expressions as exact text)."""

        def text(e):
            if e is None:
                return None
            return [to_string(x) for x in e] if isinstance(e, (list, tuple)) else to_string(e)

        def number(v):
            return float(v) if math.isfinite(v) else None

        return {
            "module": self.module, "kind": self.kind, "inputs": list(self.inputs),
            "outputs": list(self.outputs), "expr": text(self.expr),
            "in_state": text(self.in_state), "r2": number(self.r2), "rmse": number(self.rmse),
            "error": number(self.error), "complexity": int(self.complexity),
            "alternatives": [{"expr": to_string(a.expr), "complexity": a.complexity,
                              "error": number(a.error), "rmse": number(a.rmse),
                              "source": a.source, "output": a.output}
                             for a in self.alternatives],
            "verdict": self.verdict, "verdict_reason": self.verdict_reason,
            "caveats": list(self.caveats),
            "template": text(self.template),
            "constants": {k: [number(x) for x in v] for k, v in self.constants.items()},
            "covariance": [[float(x) for x in row] for row in self.covariance],
            "level": float(self.level),
            **({"units": dict(self.units)} if self.units else {}),
        }

    @classmethod
    def from_dict(cls, data: object, state_names: Sequence[str] | None = None) -> Law:
        """Read a law written by :meth:`to_dict`; expressions go through the safe parser.

        Raises
        ------
        SpecError
            A missing field, a wrong type, or expression text the parser rejects.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"a law must be a JSON object, got {type(data).__name__}.")
        for key in ("module", "kind", "inputs", "expr"):
            if key not in data:
                raise SpecError(f"law {data.get('module')!r}: the field {key!r} is missing.")
        module, kind = data["module"], data["kind"]
        if not isinstance(module, str) or not isinstance(kind, str):
            raise SpecError(f"law {module!r}: 'module' and 'kind' must be strings.")
        inputs = data["inputs"]
        if not isinstance(inputs, list) or not all(isinstance(n, str) for n in inputs):
            raise SpecError(f"law {module!r}: 'inputs' must be a list of names, got {inputs!r}.")
        where = f"law {module!r}"

        def read(value, allowed, what):
            if value is None:
                return None
            if isinstance(value, list):
                return [parse(_text(v, where), allowed, where=f"{where} {what}") for v in value]
            return parse(_text(value, where), allowed, where=f"{where} {what}")

        expr = read(data["expr"], inputs, "expr")
        in_state = read(data.get("in_state"), state_names, "in_state")
        alternatives = []
        for alt in data.get("alternatives") or []:
            if not isinstance(alt, Mapping) or "expr" not in alt:
                raise SpecError(f"{where}: an alternative must be an object with an 'expr'.")
            alternatives.append(Alternative(
                parse(_text(alt["expr"], where), inputs, where=f"{where} alternative"),
                int(alt.get("complexity") or 0), _float(alt.get("error")),
                str(alt.get("source") or ""), alt.get("output"), _float(alt.get("rmse"))))
        constants = data.get("constants") or {}
        if not isinstance(constants, Mapping) or not all(
                isinstance(v, list) and len(v) == 3 for v in constants.values()):
            raise SpecError(f"{where}: 'constants' must map names to [value, low, high].")
        constants = {str(k): tuple(_float(x) for x in v) for k, v in constants.items()}
        template = read(data.get("template"), [*inputs, *constants], "template")
        covariance = tuple(tuple(_float(x) for x in row) for row in data.get("covariance") or ())
        if covariance and (len(covariance) != len(constants)
                           or any(len(row) != len(constants) for row in covariance)):
            raise SpecError(f"{where}: 'covariance' must be square, one row per constant.")
        return cls(module, kind, tuple(inputs), expr, in_state, _float(data.get("r2")),
                   _float(data.get("rmse")), _float(data.get("error")),
                   int(data.get("complexity") or 0), tuple(alternatives),
                   tuple(data.get("outputs") or ()), _verdict(data.get("verdict"), where),
                   str(data.get("verdict_reason") or ""),
                   tuple(str(c) for c in data.get("caveats") or ()), template, constants,
                   covariance, _float(data.get("level", 0.9)), _units(data.get("units"), where))


def _units(value: object, where: str) -> dict:
    """A law's ``units`` field: names to units text."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SpecError(f"{where}: 'units' must map names to units text, got {value!r}.")
    return dict(value)


def _precise(value: float, half: float) -> str:
    """``value`` with as many digits as its error bar ``half`` warrants (two of the bar)."""
    if not (math.isfinite(half) and half > 0) or value == 0:
        return f"{value:.6g}"
    digits = max(1, min(12, math.floor(math.log10(abs(value)))
                        - math.floor(math.log10(half)) + 2))
    return f"{value:.{digits}g}"


def _latex_verdict(verdict: str | None) -> str:
    """The verdict as LaTeX text, ``\\text{[recovered]}`` (``[unchecked]`` for None)."""
    return rf"\text{{[{verdict or 'unchecked'}]}}"


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{where}: expected expression text, got {type(value).__name__}.")
    return value


def _verdict(value: object, where: str) -> str | None:
    if value is None or value in VERDICTS:
        return value
    raise SpecError(f"{where}: verdict {value!r} is not one of {list(VERDICTS)} or null.")


def _float(value: object) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpecError(f"expected a number, got {value!r}.") from None


class Laws(Mapping):
    """Module name -> :class:`Law`, as returned by :func:`pikan.extract`.

    Parameters
    ----------
    laws : mapping of str to Law, or sequence of Law
    spec : System, optional
        The system the laws belong to; needed by :meth:`equations` (or pass it there).
    note : str
        A sentence about the set as a whole, printed after the laws (what was searched
        when :func:`pikan.find_conserved` found nothing).
    """

    def __init__(self, laws: Mapping[str, Law] | Sequence[Law] = (), spec=None,
                 note: str = "") -> None:
        items = laws.values() if isinstance(laws, Mapping) else laws
        self._laws: dict[str, Law] = {law.module: law for law in items}
        self.spec = spec
        self.note = str(note)

    def __getitem__(self, name: str) -> Law:
        try:
            return self._laws[name]
        except KeyError:
            known = ", ".join(self._laws) or "none"
            raise SpecError(f"no law for module {name!r}; laws: {known}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._laws)

    def __len__(self) -> int:
        return len(self._laws)

    def __str__(self) -> str:
        lines = [str(law) for law in self._laws.values()]
        return "\n".join(lines + ([self.note] if self.note else []))

    def __repr__(self) -> str:
        return f"Laws({', '.join(self._laws)})"

    def _repr_latex_(self) -> str | None:
        """Jupyter display: one aligned row per law with its verdict (None when empty, so
        Jupyter shows the text ``repr``)."""
        if not self._laws:
            return None
        rows = []
        for law in self._laws.values():
            head, body = law._latex_sides()
            rows.append(f"{head} &= {body} && {_latex_verdict(law.verdict)}")
        return "$$\\begin{aligned} " + r" \\ ".join(rows) + r" \end{aligned}$$"

    def with_exprs(self, exprs: Mapping[str, object]) -> Laws:
        """A copy with some laws' expressions replaced (e.g. after end-to-end refinement).

        ``in_state`` is recomputed when the spec is known; fit statistics and alternatives
        are kept (they describe the extraction, not the replacement).
        """
        out = dict(self._laws)
        for name, expr in exprs.items():
            law = self[name]
            if isinstance(law.expr, (list, tuple)) and not isinstance(expr, (list, tuple)):
                expr = [expr]  # a one-output Dynamics or Flow stays a list of one
            if isinstance(expr, (list, tuple)):
                expr = [parse(e, law.inputs + tuple(getattr(self.spec, "params", ())))
                        for e in expr]
            else:
                expr = parse(expr, law.inputs + tuple(getattr(self.spec, "params", ())))
            state = law.in_state
            if self.spec is not None:
                module = self.spec.module(name)
                state = ([in_state(e, module) for e in expr] if isinstance(expr, list)
                         else in_state(expr, module))
            out[name] = dataclasses.replace(law, expr=expr, in_state=state)
        return Laws(out, spec=self.spec, note=self.note)

    def with_error_bars(self, bars: Mapping[str, tuple]) -> Laws:
        """A copy with ``{module: (template, constants, covariance, level)}`` set on the named
        laws (:func:`pikan.laws.uncertainty.with_error_bars` computes them)."""
        out = dict(self._laws)
        for name, (template, constants, covariance, level) in bars.items():
            out[name] = dataclasses.replace(self[name], template=template,
                                            constants=dict(constants),
                                            covariance=tuple(covariance), level=float(level))
        return Laws(out, spec=self.spec, note=self.note)

    def with_verdicts(self, verdicts: Mapping[str, tuple[str, str]]) -> Laws:
        """A copy with ``{module: (verdict, reason)}`` set on the named laws."""
        out = dict(self._laws)
        for name, (verdict, reason) in verdicts.items():
            if verdict not in VERDICTS:
                raise SpecError(f"verdict {verdict!r} is not one of {list(VERDICTS)}.")
            out[name] = dataclasses.replace(self[name], verdict=verdict, verdict_reason=reason)
        return Laws(out, spec=self.spec, note=self.note)

    # ------------------------------------------------------------------ exports

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text: every law (and the system spec when known)."""
        data = {"version": LAWS_VERSION,
                "system": None if self.spec is None else self.spec.to_dict(),
                "laws": [law.to_dict() for law in self._laws.values()]}
        if self.note:
            data["note"] = self.note
        return json.dumps(data, indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Laws:
        """Read :meth:`to_json` output; every expression goes through the safe parser.

        Raises
        ------
        SpecError
            Invalid JSON, a wrong layout, or expression text that is not a plain formula
            in the law's names (``__import__('os')`` and the like are rejected).
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise SpecError(f"laws JSON could not be read: {error}.") from None
        if not isinstance(data, Mapping) or not isinstance(data.get("laws"), list):
            raise SpecError("laws JSON must be an object with a 'laws' list (written by "
                            "Laws.to_json).")
        if data.get("version", LAWS_VERSION) != LAWS_VERSION:
            raise SpecError(f"laws JSON has version {data.get('version')!r}; this pikan reads "
                            f"version {LAWS_VERSION}.")
        spec = None
        if data.get("system") is not None:
            spec = System.from_dict(data["system"])
        names = None if spec is None else list(spec.state_names) + list(spec.params)
        note = data.get("note", "")
        if not isinstance(note, str):
            raise SpecError("laws JSON: 'note' must be a string.")
        return cls([Law.from_dict(item, names) for item in data["laws"]], spec=spec, note=note)

    def to_markdown(self) -> str:
        """A Markdown table: module, kind, law, complexity, R^2, relative error and verdict."""
        with_units = any(law.units for law in self._laws.values())
        extra = " constants' units |" if with_units else ""
        lines = [f"| module | kind | law | complexity | R^2 | error | verdict |{extra}",
                 "|---|---|---|---|---|---|---|" + ("---|" if with_units else "")]
        for law in self._laws.values():
            text = law.formula_with_errors().split(" = ", 1)[1].replace("|", "\\|")
            units = ", ".join(f"{_short(c)}: {u}" for c, u in law.constant_units())
            lines.append(f"| {law._head()} | {law.kind} | `{text}` | {law.complexity} | "
                         f"{law.r2:.6g} | {law.error:.3g} | {law.verdict or 'unchecked'} |"
                         + (f" {units} |" if with_units else ""))
        return "\n".join(lines)

    # ------------------------------------------------------------------ equations of motion

    def equations(self, spec=None) -> list[sympy.Eq]:
        r"""Equations of motion with the laws substituted: one ``Eq(a_q, ...)`` per coordinate.

        Newtonian systems: :math:`m_i a_i = -\partial V/\partial q_i - \partial D/\partial v_i
        + F_i`. Lagrangian systems: the Euler--Lagrange equations
        :math:`\sum_j \partial^2 L/\partial v_i \partial v_j\, a_j = \partial L/\partial q_i -
        \sum_j \partial^2 L/\partial v_i \partial q_j\, v_j + Q_i` solved for the accelerations.
        Modules the laws do not cover keep their spec law; learned masses appear as symbols
        ``m_<coord>``.

        Parameters
        ----------
        spec : System, optional
            Default: the spec stored in the laws.
        """
        spec = spec if spec is not None else self.spec
        if spec is None:
            raise SpecError("Laws.equations needs the system: pass equations(spec) (laws "
                            "returned by extract know their system).")
        sym = sympy.Symbol
        q = [sym(c) for c in spec.coords]
        v = [sym(c) for c in spec.velocities]
        potential, dissipation, lagrangian = sympy.Integer(0), sympy.Integer(0), sympy.Integer(0)
        force = [sympy.Integer(0)] * len(q)
        for module in spec.modules:
            exprs = self._module_exprs(module)
            if module.kind == "Potential":
                potential += exprs[0]
            elif module.kind == "Dissipation":
                dissipation += exprs[0]
            elif module.kind == "Lagrangian":
                lagrangian += exprs[0]
            else:
                for out, e in zip(module.outputs, exprs):
                    force[spec.coords.index(out)] += e
        accelerations = [sym(a) for a in spec.accelerations]
        if spec.formulation == "lagrangian":
            n = len(q)
            m = sympy.Matrix(n, n, lambda i, j: sympy.diff(lagrangian, v[i], v[j]))
            rhs = sympy.Matrix([sympy.diff(lagrangian, q[i])
                                - sum(sympy.diff(lagrangian, v[i], q[j]) * v[j] for j in range(n))
                                - sympy.diff(dissipation, v[i]) + force[i] for i in range(n)])
            solution = m.LUsolve(rhs)
            return [sympy.Eq(a, sympy.simplify(s)) for a, s in zip(accelerations, solution)]
        if spec.masses == "learn":
            masses = [sym(f"m_{c}") for c in spec.coords]
        elif isinstance(spec.masses, tuple):
            masses = [sympy.nsimplify(m) for m in spec.masses]
        else:
            masses = [sympy.nsimplify(spec.masses)] * len(q)
        out = []
        for i, a in enumerate(accelerations):
            f = -sympy.diff(potential, q[i]) - sympy.diff(dissipation, v[i]) + force[i]
            out.append(sympy.Eq(a, sympy.expand(f / masses[i])))
        return out

    def _module_exprs(self, module) -> list[sympy.Expr]:
        """The module's law in the state (summed over bindings), one expression per output."""
        if module.name in self._laws:
            law = self._laws[module.name]
            exprs = law._exprs()
        elif module.law is not None:
            exprs = list(module.laws)
        else:
            raise SpecError(f"module {module.name!r} is learned and has no extracted law; "
                            f"laws: {', '.join(self._laws) or 'none'}. Hint: extract it first.")
        return [in_state(e, module) for e in exprs]


def in_state(expr: sympy.Expr, module) -> sympy.Expr:
    """A module law in its input names -> the same law in the state, summed over bindings."""
    total = sympy.Integer(0)
    for binding in module.input_bindings:
        total += expr.xreplace({sympy.Symbol(k): v for k, v in binding.items()})
    return total


# ------------------------------------------------------------------ equivalence


def _as_list(e) -> list:
    return list(e) if isinstance(e, (list, tuple)) else [e]


def _prepare(expr, up_to_constant: bool) -> sympy.Expr:
    expr = parse(expr) if isinstance(expr, str) else sympy.sympify(getattr(expr, "expr", expr))
    expr = sympy.expand(expr)
    if up_to_constant:
        expr = sympy.Add(*[t for t in sympy.Add.make_args(expr) if t.free_symbols])
    return expr


def _close(a: float, b: float, rtol: float) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b)) or a == b


def _match(a: sympy.Expr, b: sympy.Expr, rtol: float) -> bool:
    """Tree comparison with numbers equal within ``rtol`` and sums/products unordered."""
    if a.is_Number and b.is_Number:
        return _close(float(a), float(b), rtol)
    if isinstance(a, sympy.Mul) or isinstance(b, sympy.Mul):  # also 1.0*x against x
        ca, ra = a.as_coeff_Mul()
        cb, rb = b.as_coeff_Mul()
        if not _close(float(ca), float(cb), rtol):
            return False
        return _multiset(sympy.Mul.make_args(ra), sympy.Mul.make_args(rb), rtol)
    if isinstance(a, sympy.Add) or isinstance(b, sympy.Add):
        if not (isinstance(a, sympy.Add) and isinstance(b, sympy.Add)):
            return False
        return _multiset(a.args, b.args, rtol)
    if a.is_Atom or b.is_Atom:
        return a == b
    if a.func != b.func or len(a.args) != len(b.args):
        return False
    return all(_match(x, y, rtol) for x, y in zip(a.args, b.args))


def _multiset(xs: Sequence, ys: Sequence, rtol: float) -> bool:
    if len(xs) != len(ys):
        return False
    remaining = list(ys)
    for x in xs:
        for k, y in enumerate(remaining):
            if _match(x, y, rtol):
                del remaining[k]
                break
        else:
            return False
    return True


def _numeric(a: sympy.Expr, b: sympy.Expr, up_to_constant: bool, rtol: float) -> dict:
    """Agreement on random points of two boxes, ``[-2, 2]`` and ``[0.5, 2]`` (positive).

    Returns ``{"mixed": bool | None, "positive": bool | None}``: None where fewer than 16
    points are finite and real for both.
    """
    names = sorted({s.name for s in a.free_symbols | b.free_symbols})
    if not names:
        same = _close(complex(a.evalf()).real, complex(b.evalf()).real, rtol)
        return {"mixed": same, "positive": same}
    rng = np.random.default_rng(0)
    fa, fb = numpy_function(a, names), numpy_function(b, names)
    out = {}
    for box, low in (("mixed", -2.0), ("positive", 0.5)):
        z = rng.uniform(low, 2.0, size=(256, len(names)))
        va = np.asarray(fa(*z.T), dtype=np.complex128) * np.ones(len(z))
        vb = np.asarray(fb(*z.T), dtype=np.complex128) * np.ones(len(z))
        ok = np.isfinite(va) & np.isfinite(vb) & (np.abs(va.imag) < 1e-12) & \
            (np.abs(vb.imag) < 1e-12)
        if ok.sum() < 16:
            out[box] = None
            continue
        va, vb = va[ok].real, vb[ok].real
        if up_to_constant:
            va, vb = va - va.mean(), vb - vb.mean()
        scale = max(float(np.sqrt(np.mean(vb**2))), 1e-300)
        out[box] = float(np.sqrt(np.mean((va - vb) ** 2))) <= 2 * rtol * scale
    return out


ROUNDINGS = 8
"""Most ways of rounding a law's constants the symbolic zero test of :func:`equivalent`
tries (the simplest first)."""
SMALL_LAW = 40
"""Operations (``sympy.count_ops``) up to which a law gets more than the one simplest
rounding: ``simplify`` of a large law's difference can take minutes and gigabytes, and
each further rounding is another such call."""


def _exact_numbers(expr: sympy.Expr) -> list[sympy.Expr]:
    """The numbers a reference law is written with, exactly, and their negatives: every
    numeric part of it (``log(2)``, ``sqrt(2)``, ``2*pi``, ``1.17`` as ``117/100``) and the
    numeric factor of every product (``-log(2)`` in ``-log(2)*t/t_half``)."""
    found = set()
    for node in sympy.preorder_traversal(expr):
        if node.is_number:
            found.add(node)
        if isinstance(node, sympy.Mul):
            factor = sympy.Mul(*[a for a in node.args if a.is_number])
            if factor != 1:
                found.add(factor)
    out = []
    for number in found | {-n for n in found}:
        exact = number.xreplace({f: sympy.nsimplify(f, rational=True)
                                 for f in number.atoms(sympy.Float)})
        value = complex(exact.evalf())
        if value.imag == 0 and math.isfinite(value.real) and value.real != 0:
            out.append(exact)
    return sorted(set(out), key=lambda n: (float(n), sympy.count_ops(n)))


def _simple_values(v: float, references: Sequence[sympy.Expr], rtol: float
                   ) -> list[sympy.Expr]:
    """Exact numbers within ``rtol`` of ``v``, the likeliest first: the reference's own
    numbers (:func:`_exact_numbers`), sympy's simplest guess (rationals and multiples of
    pi), then fractions ``p/q`` and ``p pi/q`` with small ``q`` (a phase fitted as ``19/12``
    is ``pi/2`` within 1 %)."""
    out = [r for r in references if _close(v, float(r), rtol)][:1]
    guess = sympy.nsimplify(v, [sympy.pi], tolerance=rtol * abs(v), rational=False)
    if _close(float(guess), v, rtol):
        out.append(guess)
    for unit, denominators in ((sympy.pi, (1, 2, 3, 4, 6)), (sympy.Integer(1), range(1, 13))):
        for q in denominators:
            p = round(v * q / float(unit))
            candidate = sympy.Rational(p, q) * unit
            if p and _close(float(candidate), v, rtol):
                out.append(candidate)
    return list(dict.fromkeys(out))


def _roundings(expr: sympy.Expr, references: Sequence[sympy.Expr], rtol: float
               ) -> Iterator[sympy.Expr]:
    """``expr`` with every constant replaced by an exact number within ``rtol``
    (:func:`_simple_values`), in up to :data:`ROUNDINGS` ways (one for a law larger than
    :data:`SMALL_LAW`), the simplest first; nothing
    when a constant has no such number. The law's exact fractions count as constants too
    (a snapped ``5/8`` may be the reference's 0.63), not its integers or exponents."""
    fractions = {n: sympy.Float(n) for n in expr.atoms(sympy.Rational)
                 if not n.is_Integer and not any(isinstance(p, sympy.Pow) and p.exp == n
                                                 for p in expr.atoms(sympy.Pow))}
    expr = expr.xreplace(fractions)
    floats = sorted(expr.atoms(sympy.Float), key=float)
    choices = [_simple_values(float(f), references, rtol) for f in floats]
    if any(not c for c in choices):
        return
    # the simplest rounding, then each constant alone on its next choice, then pairs (the
    # full product of the choices has too many members for a law of many constants)
    picks = [(0,) * len(floats)]
    for size in (1, 2):
        for moved in itertools.combinations(range(len(floats)), size):
            pick = tuple(1 if k in moved else 0 for k in range(len(floats)))
            if all(pick[k] < len(choices[k]) for k in moved):
                picks.append(pick)
            if len(picks) >= ROUNDINGS:
                break
        if len(picks) >= ROUNDINGS:
            break
    tries = ROUNDINGS if sympy.count_ops(expr) <= SMALL_LAW else 1
    for pick in picks[:tries]:
        yield expr.xreplace({f: c[i] for f, c, i in zip(floats, choices, pick)})


_NEGLIGIBLE = 1e-9
"""A coefficient of a rational form below this share of the largest one of its polynomial is
numerical noise (:func:`_rational_match`)."""


def _normal_rational(expr: sympy.Expr, symbols: list) -> tuple[dict, dict] | None:
    """``expr`` as ``P/Q`` with ``Q``'s lowest monomial (graded) scaled to 1: the monomials
    and coefficients of both, negligible ones dropped; None when not a rational function."""
    if not expr.is_rational_function(*symbols):
        return None
    num, den = sympy.fraction(sympy.together(expr))
    try:
        p, q = sympy.Poly(num, *symbols), sympy.Poly(den, *symbols)
    except sympy.PolynomialError:
        return None
    lowest = min(q.monoms(), key=lambda m: (sum(m), tuple(-e for e in m)))
    unit = complex(q.coeff_monomial(lowest))
    if unit == 0 or unit.imag != 0:
        return None

    def terms(poly):
        coeffs = {m: float(c) / unit.real for m, c in zip(poly.monoms(), poly.coeffs())}
        top = max((abs(c) for c in coeffs.values()), default=0.0)
        return {m: c for m, c in coeffs.items() if abs(c) > _NEGLIGIBLE * top}

    return terms(p), terms(q)


def _rational_match(a: sympy.Expr, b: sympy.Expr, rtol: float, up_to_constant: bool) -> bool:
    """Whether two rational functions of the inputs are equal with every coefficient within
    ``rtol``, each written ``P/Q`` with the denominator's lowest term 1 (up to a constant:
    their partial derivatives are). ``y (0.351 x - 0.37)/(1 + 0.7 x)`` is ``0.61 x y/(1 +
    0.7 x) - 0.37 y`` (Holling's predation), though neither its tree nor its rounded
    constants show it. The comparison is complete, so it needs no numeric check: near a
    pole inside the checked box (``x = -1.43`` here) the values of two such laws differ by
    any amount."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    if not symbols:
        return False
    pairs = [(sympy.diff(a, s), sympy.diff(b, s)) for s in symbols] if up_to_constant \
        else [(a, b)]
    for x, y in pairs:
        nx, ny = _normal_rational(x, symbols), _normal_rational(y, symbols)
        if nx is None or ny is None:
            return False
        for px, py in zip(nx, ny):
            if set(px) != set(py) or not all(_close(px[m], py[m], rtol) for m in px):
                return False
    return True


def _equivalent_one(expr, truth, up_to_constant: bool, rtol: float, positive: bool) -> bool:
    a = _prepare(expr, up_to_constant)
    b = _prepare(truth, up_to_constant)
    if {s.name for s in a.free_symbols} != {s.name for s in b.free_symbols}:
        return False
    if _rational_match(a, b, rtol, up_to_constant):  # complete: no numeric check needed
        return True
    numeric = _numeric(a, b, up_to_constant, rtol)
    boxes = ("positive",) if positive else ("mixed", "positive")
    if any(numeric[box] is False for box in boxes) or all(numeric[b] is None for b in boxes):
        return False
    fa, fb = a.evalf(), b.evalf()
    if _match(fa, fb, rtol):
        return True
    # different but equal forms: round the law's constants, then a symbolic zero test
    references = _exact_numbers(b)
    exact = b.xreplace({f: sympy.nsimplify(f, rational=True)
                        for f in b.atoms(sympy.Float)})  # 1.17 as 117/100, as rounded
    for rounded in _roundings(a, references, rtol):
        difference = rounded - exact
        if sympy.simplify(difference) == 0:
            return True
        if positive:
            symbols = {s: sympy.Symbol(s.name, positive=True) for s in difference.free_symbols}
            if sympy.simplify(difference.xreplace(symbols)) == 0:
                return True
            # equal squares, and equal on the positive box (the numeric check): the same
            # law there, with a sign sympy cannot settle alone
            # (2*sqrt(g*l)*sin(theta/2) and sqrt(2*g*l*(1 - cos(theta))))
            squares = (rounded**2 - exact**2).xreplace(symbols)
            if not squares.has(sympy.I) and sympy.simplify(squares) == 0:
                return True
    return False


def equivalent(expr, truth, up_to_constant: bool = True, rtol: float = 0.01,
               positive: bool = False) -> bool:
    """Whether a law matches a reference law: same structure, constants within ``rtol``.

    Both sides are expanded (and, with ``up_to_constant``, stripped of their additive
    constant: energies are defined up to one). They match when

    1. they agree numerically on random points (within ``2 * rtol`` of the reference's
       RMS; the check that catches everything the symbolic steps could miss), on the box
       ``[-2, 2]^d`` and on the positive box ``[0.5, 2]^d`` (where both are finite and
       real), and
    2. either their trees match with every number equal within ``rtol`` (sums and
       products compared as unordered), or, after rounding the law's constants to the
       reference's numbers or simple rationals within ``rtol``, their difference
       simplifies to 0: equal laws written differently, such as
       ``(m1*r1 + m2*r2)/(m1 + m2)`` and ``(-m1*r1 - m2*r2)/(-m1 - m2)``.

    Rational functions of the inputs also match, without step 1, when their coefficients,
    each written ``P/Q`` with the denominator's lowest term 1, agree within ``rtol``
    (``y (0.351 x - 0.37)/(1 + 0.7 x)`` and ``0.61 x y/(1 + 0.7 x) - 0.37 y``): a complete
    test, and near a pole inside the boxes two such laws differ by any amount.

    With ``positive=True`` the inputs are taken as positive (masses, lengths): only the
    positive box is checked and the symbolic test uses positive symbols, so
    ``1/sqrt(m0**-2 - v**2/(c**2*m0**2))`` matches ``m0/sqrt(1 - v**2/c**2)`` (they differ
    in sign for ``m0 < 0``); by default it does not, nor ``x*abs(x)`` and ``x**2``. Two laws
    whose squares simplify to the same expression match there too, the numeric check on
    the positive box settling the sign: ``2*sqrt(g*l)*sin(theta/2)`` and
    ``sqrt(2*g*l*(1 - cos(theta)))``.

    Parameters
    ----------
    expr, truth : sympy.Expr, str, Law, or a list of those (Dynamics, compared in order)
    up_to_constant : bool
        Ignore additive constants.
    rtol : float
        Relative tolerance on every constant.
    positive : bool
        Compare for positive inputs only (see above).

    Returns
    -------
    bool
    """
    a = getattr(expr, "expr", expr)
    b = getattr(truth, "expr", truth)
    a_list, b_list = _as_list(a), _as_list(b)
    if len(a_list) != len(b_list):
        return False
    return all(_equivalent_one(x, y, up_to_constant, rtol, positive)
               for x, y in zip(a_list, b_list))
