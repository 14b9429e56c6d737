"""Safe expressions: text -> sympy without ``eval``.

Features, laws and extracted laws are all written as expressions. This module is the
only place that turns such text into sympy (:func:`parse`); :mod:`pikan.model.torch_expr`
compiles the result into torch (``to_torch``, ``to_module``). Text is never handed to ``eval``, ``exec`` or ``sympy.sympify``: it is parsed
by :mod:`ast` and every node is checked against a small grammar before a sympy object
is built from it.

This module imports no torch (:mod:`pikan.spec.system` builds on it and stays torch-free).

Grammar
-------
- names: the declared variables (``allowed``) and the constants ``pi`` and ``E``;
- numbers: integers, decimals and scientific notation (``3``, ``0.5``, ``1e-3``);
- operators: ``+ - * / **``, unary ``-`` and ``+``, parentheses. ``^`` is read as a
  power, as a physicist means it (``x^2 + 1`` is ``x**2 + 1``; Python's XOR is never
  meant in a formula);
- calls of the functions in :data:`FUNCTIONS` with positional arguments only:
  ``sin cos tan exp log sqrt abs sign tanh sinh cosh asin acos atan asinh acosh atanh
  atan2 gaussian sigmoid`` and the aliases in :data:`ALIASES` (``arcsin``, ``Abs``, ...).
  ``gaussian(u) = exp(-u**2)`` and ``sigmoid(u) = 1/(1 + exp(-u))`` are expanded when
  parsed.

Everything else (attribute access, subscripts, strings, lambdas, comprehensions,
comparisons, keyword arguments, unknown names) raises :class:`~pikan.errors.SpecError`.

Numbers must fit double precision, the arithmetic every compiled law runs in: a
constant part of an expression whose value overflows a double (``exp(1000)``,
``exp(exp(exp(exp(1000))))``, a 400-digit integer) and a power ``u**n`` of a
non-constant ``u`` with ``|n| > MAX_EXPONENT`` (``x**(10**300)``) raise
:class:`~pikan.errors.SpecError`. :func:`overflowing_part` finds such a constant by
evaluating it in double precision, which is fast for any input (never the arbitrary
precision that ``sin(exp(exp(15)))`` would need).

Every variable becomes the plain ``sympy.Symbol(name)`` (no assumptions; see
:func:`symbol`), so code elsewhere can build matching symbols with ``sympy.Symbol``;
symbols with assumptions in sympy input are replaced by plain ones. Floats are kept in
double precision, and :func:`to_string` prints them exactly, so
``parse(to_string(e)) == e``.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import sympy
from sympy.printing.str import StrPrinter

from pikan.errors import SpecError

__all__ = [
    "ALIASES",
    "CONSTANTS",
    "FUNCTIONS",
    "RESERVED",
    "Function",
    "did_you_mean",
    "double_value",
    "free_names",
    "is_valid_name",
    "overflowing_part",
    "parse",
    "substitute",
    "symbol",
    "to_string",
]

MAX_LENGTH = 20_000
"""Longest expression text accepted, in characters."""

MAX_DEPTH = 100
"""Deepest nesting accepted (function calls, parentheses, powers); long sums are flat."""

_MAX_CONSTANT_BITS = 1024  # a numeric power beyond double range is a typo, not physics

MAX_EXPONENT = 1024
"""Largest ``|n|`` accepted in a power ``u**n`` of a non-constant ``u``: beyond it,
``|u|**n`` overflows double precision for every ``|u| >= 2`` (and underflows for
``|u| <= 1/2``), so such an exponent is a typo, not physics."""


@dataclass(frozen=True)
class Function:
    """A function allowed in expressions.

    Attributes
    ----------
    name : str
        The name written in text.
    arity : int
        Number of positional arguments.
    build : callable
        Builds the sympy expression from sympy arguments.
    summary : str
        One line for error messages and docs.
    """

    name: str
    arity: int
    build: Callable[..., sympy.Expr]
    summary: str


def _gaussian(u: sympy.Expr) -> sympy.Expr:
    return sympy.exp(-(u**2))


def _sigmoid(u: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-u))


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in [
        Function("sin", 1, sympy.sin, "sine"),
        Function("cos", 1, sympy.cos, "cosine"),
        Function("tan", 1, sympy.tan, "tangent"),
        Function("exp", 1, sympy.exp, "exponential"),
        Function("log", 1, sympy.log, "natural logarithm"),
        Function("sqrt", 1, sympy.sqrt, "square root"),
        Function("abs", 1, sympy.Abs, "absolute value"),
        Function("sign", 1, sympy.sign, "sign (-1, 0 or 1)"),
        Function("tanh", 1, sympy.tanh, "hyperbolic tangent"),
        Function("sinh", 1, sympy.sinh, "hyperbolic sine"),
        Function("cosh", 1, sympy.cosh, "hyperbolic cosine"),
        Function("asin", 1, sympy.asin, "arcsine"),
        Function("acos", 1, sympy.acos, "arccosine"),
        Function("atan", 1, sympy.atan, "arctangent"),
        Function("asinh", 1, sympy.asinh, "inverse hyperbolic sine"),
        Function("acosh", 1, sympy.acosh, "inverse hyperbolic cosine"),
        Function("atanh", 1, sympy.atanh, "inverse hyperbolic tangent"),
        Function("atan2", 2, sympy.atan2, "atan2(y, x): angle of the point (x, y)"),
        Function("gaussian", 1, _gaussian, "gaussian(u) = exp(-u**2)"),
        Function("sigmoid", 1, _sigmoid, "sigmoid(u) = 1/(1 + exp(-u))"),
    ]
}
"""Functions allowed in expression text, by name."""

ALIASES: dict[str, str] = {
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "arctan2": "atan2",
    "Abs": "abs",
    "sgn": "sign",
}
"""Other spellings of functions in :data:`FUNCTIONS` (``Abs`` is how sympy prints ``abs``)."""

CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
"""Named constants allowed in expression text."""

RESERVED: frozenset[str] = frozenset(FUNCTIONS) | frozenset(ALIASES) | frozenset(CONSTANTS)
"""Names that cannot be used as variables."""


# sympy function classes that may appear in a validated tree; pikan.model.torch_expr and
# pikan.laws.numpy_expr compile exactly these (and Add, Mul, Pow, numbers, symbols)
_SYMPY_FUNCTIONS: frozenset[type] = frozenset({
    sympy.sin, sympy.cos, sympy.tan, sympy.exp, sympy.log, sympy.Abs, sympy.sign,
    sympy.tanh, sympy.sinh, sympy.cosh, sympy.asin, sympy.acos, sympy.atan,
    sympy.asinh, sympy.acosh, sympy.atanh, sympy.atan2,
})

_NODE_WORDS: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Slice: "slice",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.Starred: "starred argument",
    ast.NamedExpr: "assignment",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_OPERATOR_WORDS: dict[type, str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.Not: "not",
    ast.Invert: "~",
}


def symbol(name: str) -> sympy.Symbol:
    """The canonical sympy symbol for a variable: the plain ``sympy.Symbol(name)``.

    Every expression that passes through :func:`parse` uses these symbols, so two
    expressions over the same names compare equal.
    """
    return sympy.Symbol(name)


def is_valid_name(name: object) -> bool:
    """Whether ``name`` can be a variable: an identifier, not a keyword, not reserved,
    not starting with ``__``."""
    return (
        isinstance(name, str)
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and name not in RESERVED
        and not name.startswith("__")
    )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ``" Did you mean 'k'?"`` hint for a misspelled name, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(names: Iterable[str], limit: int = 20) -> str:
    names = sorted(set(names))
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ---------------------------------------------------------------------------- parsing


def parse(
    source: str | sympy.Basic | float,
    allowed: Iterable[str] | None = None,
    *,
    where: str = "",
) -> sympy.Expr:
    """Parse expression text (or check a sympy expression) without evaluating any code.

    Parameters
    ----------
    source : str, sympy.Expr, int or float
        Text in the grammar of this module, a sympy expression, or a number.
    allowed : iterable of str, optional
        Variable names the expression may use. ``None`` accepts any valid name
        (:func:`is_valid_name`); callers that know the namespace later check
        :func:`free_names` themselves.
    where : str
        Where the expression comes from, for error messages (``"module 'V' law"``).

    Returns
    -------
    sympy.Expr
        With canonical plain symbols (:func:`symbol`) and double-precision floats.

    Raises
    ------
    SpecError
        Naming the offending token, ``where``, and a hint (a did-you-mean for
        misspelled names).
    """
    allowed_set = None if allowed is None else frozenset(allowed)
    if isinstance(source, bool):
        raise SpecError(f"{where or 'expression'}: got the boolean {source!r}; expected a number "
                        "or an expression such as 'k*x**2/2'.")
    if isinstance(source, int):
        return sympy.Integer(source)
    if isinstance(source, float):
        if not math.isfinite(source):
            raise SpecError(f"{where or 'expression'}: the number {source!r} is not finite.")
        return sympy.Float(source)
    if isinstance(source, sympy.Basic):
        return _check_sympy(source, allowed_set, where or f"expression {shorten(str(source))!r}")
    if not isinstance(source, str):
        raise SpecError(
            f"{where or 'expression'}: expected expression text or a sympy expression, got "
            f"{type(source).__name__}."
        )
    text = source.strip()
    label = f"{where} {shorten(text)!r}" if where else f"expression {shorten(text)!r}"
    if not text:
        raise SpecError(f"{where or 'expression'}: the expression is empty.")
    if len(text) > MAX_LENGTH:
        raise SpecError(f"{where or 'expression'}: the expression has {len(text)} characters, "
                        f"more than the {MAX_LENGTH} accepted.")
    text = text.replace("^", "**")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise SpecError(f"{label}: not a valid expression ({error.msg}).") from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise SpecError(f"{label}: the expression is too deeply nested or too large "
                        f"({type(error).__name__}).") from None
    try:
        expr = _TextParser(text, allowed_set, label).visit(tree.body, 0)
    except SpecError:
        raise
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError) as error:
        # sympy evaluates numeric subexpressions eagerly (exp(1e308), ...)
        raise SpecError(f"{label}: a constant in the expression cannot be evaluated "
                        f"({type(error).__name__}).") from None
    return _check_sympy(expr, allowed_set, label)


class _TextParser:
    """Builds sympy from an ast, node by node, refusing anything outside the grammar."""

    def __init__(self, text: str, allowed: frozenset[str] | None, label: str):
        self.text = text
        self.allowed = allowed
        self.label = label

    def fail(self, node: ast.AST, problem: str, hint: str = "") -> SpecError:
        segment = ast.get_source_segment(self.text, node) or type(node).__name__
        message = f"{self.label}: {problem} {shorten(segment, 40)!r} is not allowed in expressions."
        return SpecError(message + (" " + hint if hint else ""))

    def visit(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise SpecError(f"{self.label}: nested deeper than {MAX_DEPTH} levels.")
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return self._chain(node, depth, (ast.Add, ast.Sub))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            return self._chain(node, depth, (ast.Mult, ast.Div))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return self._power(self.visit(node.left, depth + 1),
                               self.visit(node.right, depth + 1), node)
        if isinstance(node, ast.BinOp):
            word = _OPERATOR_WORDS.get(type(node.op), type(node.op).__name__)
            raise self.fail(node, f"the operator {word!r} in", "Use + - * / ** only.")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.visit(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return self.visit(node.operand, depth + 1)
            word = _OPERATOR_WORDS.get(type(node.op), type(node.op).__name__)
            raise self.fail(node, f"the operator {word!r} in")
        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        word = _NODE_WORDS.get(type(node), type(node).__name__)
        raise self.fail(node, word)

    def _chain(self, node: ast.BinOp, depth: int, ops: tuple[type, type]) -> sympy.Expr:
        # a long sum or product is a left spine in the ast: walk it without recursing
        items = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ops):
            right = self.visit(node.right, depth + 1)
            if isinstance(node.op, ast.Sub):
                right = -right
            elif isinstance(node.op, ast.Div):
                right = self._power(right, sympy.Integer(-1), node)
            items.append(right)
            node = node.left
        items.append(self.visit(node, depth + 1))
        items.reverse()
        return sympy.Add(*items) if ops[0] is ast.Add else sympy.Mul(*items)

    def _power(self, base: sympy.Expr, exponent: sympy.Expr, node: ast.AST) -> sympy.Expr:
        # sympy evaluates number**number exactly: 10**10**10 would never finish
        if base.is_Number and exponent.is_Number and not base.is_zero and abs(base) != 1:
            try:
                bits = abs(float(exponent)) * abs(_log2_abs(base))
            except OverflowError:
                bits = math.inf
            if bits > _MAX_CONSTANT_BITS:
                raise self.fail(node, "the constant", "It is outside double precision range.")
        return sympy.Pow(base, exponent)

    def _number(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.fail(node, "the constant")
        if isinstance(value, int):
            return sympy.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(node, "the non-finite number")
            return sympy.Float(value)
        if isinstance(value, complex):
            raise self.fail(node, "the complex number")
        raise self.fail(node, "the string literal" if isinstance(value, (str, bytes)) else
                        f"the {type(value).__name__} literal")

    def _name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS or name in ALIASES:
            raise self.fail(node, "the bare function name",
                            f"Call it with an argument, e.g. {name}(x).")
        if self.allowed is None:
            if not is_valid_name(name):
                raise self.fail(node, "the name")
            return symbol(name)
        if name in self.allowed:
            return symbol(name)
        raise SpecError(
            f"{self.label}: unknown name {name!r}; expected one of: {_listing(self.allowed)}."
            + did_you_mean(name, set(self.allowed) | set(CONSTANTS))
        )

    def _call(self, node: ast.Call, depth: int) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "the call",
                            "Only calls of known functions such as sin(x) are allowed.")
        name = ALIASES.get(node.func.id, node.func.id)
        if name not in FUNCTIONS:
            raise SpecError(
                f"{self.label}: unknown function {node.func.id!r}; expected one of: "
                f"{_listing(FUNCTIONS)}." + did_you_mean(node.func.id, set(FUNCTIONS) | set(ALIASES))
            )
        if node.keywords:
            raise self.fail(node, "the keyword argument in", "Pass arguments by position.")
        function = FUNCTIONS[name]
        if len(node.args) != function.arity:
            raise self.fail(node, f"{name} with {len(node.args)} argument(s) in",
                            f"{name} takes {function.arity}: {function.summary}.")
        args = [self.visit(arg, depth + 1) for arg in node.args]
        return function.build(*args)


def _log2_abs(number: sympy.Number) -> float:
    if number.is_Rational:
        return math.log2(abs(int(number.p))) - math.log2(int(number.q))
    return math.log2(abs(float(number)))


# ------------------------------------------------------------- double precision range

_MATH_UNARY: dict[type, Callable[[float], float]] = {
    sympy.sin: math.sin, sympy.cos: math.cos, sympy.tan: math.tan, sympy.exp: math.exp,
    sympy.log: math.log, sympy.Abs: abs, sympy.tanh: math.tanh, sympy.sinh: math.sinh,
    sympy.cosh: math.cosh, sympy.asin: math.asin, sympy.acos: math.acos, sympy.atan: math.atan,
    sympy.asinh: math.asinh, sympy.acosh: math.acosh, sympy.atanh: math.atanh,
    sympy.sign: lambda u: math.copysign(1.0, u) if u else 0.0,
}


def _apply(node: sympy.Expr, args: list[float]) -> float:
    """One node in IEEE double arithmetic: +-inf on overflow, nan outside the domain."""
    inf = math.inf
    try:
        if isinstance(node, sympy.Add):
            return math.fsum(args) if all(map(math.isfinite, args)) else sum(args)
        if isinstance(node, sympy.Mul):
            return math.prod(args)
        if isinstance(node, sympy.Pow):
            value = args[0] ** args[1]
            return value if isinstance(value, float) else math.nan  # complex: not real
        if isinstance(node, sympy.atan2):
            return math.atan2(*args)
        return _MATH_UNARY[type(node)](*args)
    except OverflowError:
        if isinstance(node, sympy.Add):  # fsum's intermediate overflow: the sum's sign
            return math.copysign(inf, sum(args))
        if isinstance(node, sympy.Pow):
            negative = args[0] < 0 and float(args[1]).is_integer() and args[1] % 2 == 1
            return -inf if negative else inf
        if type(node) is sympy.cosh or args[0] > 0 or type(node) is sympy.exp:
            return inf
        return -inf  # sinh of a large negative number
    except (ValueError, ZeroDivisionError, KeyError, TypeError, IndexError):
        return math.nan


def _leaf_double(node: sympy.Expr, overflows: list[sympy.Expr],
                 values: Mapping[str, float]) -> float:
    if isinstance(node, sympy.Symbol):
        return float(values.get(node.name, math.nan))
    if node.is_Number:  # Integer, Rational, Float (and sympy's oo, nan)
        try:
            value = float(node)
        except OverflowError:
            value = math.inf if node.is_positive else -math.inf
        except (TypeError, ValueError):  # zoo
            return math.nan
        if math.isinf(value) and node.is_finite:  # a 400-digit integer, not sympy's oo
            overflows.append(node)
        return value
    if node is sympy.pi or node is sympy.E:
        return float(node)
    return math.nan  # anything else without a numeric value


def _double(node: sympy.Expr, overflows: list[sympy.Expr],
            values: Mapping[str, float]) -> float:
    """``node``'s value in double precision; appends the subexpressions whose finite
    arguments give an infinite value to ``overflows`` (innermost first).

    Iterative (post-order), so a tree of any depth is evaluated without recursion.
    """
    results: list[float] = []
    stack: list[tuple[sympy.Expr, bool]] = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        if not current.args:
            results.append(_leaf_double(current, overflows, values))
        elif not expanded:
            stack.append((current, True))
            stack.extend((arg, False) for arg in reversed(current.args))
        else:
            n = len(current.args)
            args = results[-n:]
            del results[-n:]
            value = _apply(current, args)
            if math.isinf(value) and all(map(math.isfinite, args)):
                overflows.append(current)
            results.append(value)
    return results[0]


def double_value(expr: sympy.Expr, values: Mapping[str, float] | None = None) -> float:
    """The value of an expression evaluated node by node in double precision.

    ``values`` gives the symbols' values by name (the system's params).

    Each operation is rounded to a double as compiled code would round it: an overflow
    gives +-inf (``exp(-exp(1000))`` is 0.0), a value outside a function's domain, a
    complex value or a free symbol gives nan. Unlike ``expr.evalf()`` it takes
    microseconds for any input (``sin(exp(exp(15)))`` is nan at once, where evalf would
    need millions of digits).
    """
    return _double(expr, [], values or {})


def overflowing_part(expr: sympy.Expr,
                     values: Mapping[str, float] | None = None) -> sympy.Expr | None:
    """The innermost constant subexpression of ``expr`` whose value overflows double
    precision (its arguments are finite, its value is not), or None.

    Symbols named in ``values`` (the system's params) count as constants with those
    values: ``overflowing_part(exp(exp(k))*x, {"k": 1000.0})`` is ``exp(k)``.

    ``overflowing_part(exp(exp(exp(1000))))`` is ``exp(1000)``;
    ``overflowing_part(x*exp(3))`` is None. Constants are evaluated with
    :func:`double_value`, so the answer comes in microseconds for any input.
    """
    values = values or {}
    stack = [expr]
    while stack:
        node = stack.pop()
        if any(s.name not in values for s in node.free_symbols):
            stack.extend(node.args)
            continue
        overflows: list[sympy.Expr] = []
        _double(node, overflows, values)
        if overflows:
            return overflows[0]
    return None


def _show(node: sympy.Expr) -> str:
    """A short text for an error message: large numbers in scientific notation."""
    if node.is_Number and node.is_finite and len(str(node)) > 12:
        return str(sympy.Float(node, 3))
    return shorten(str(node), 40)


def _check_sympy(expr: sympy.Basic, allowed: frozenset[str] | None, label: str) -> sympy.Expr:
    """Check a sympy tree against the grammar; return it with canonical symbols and floats."""
    if not isinstance(expr, sympy.Expr):
        raise SpecError(f"{label}: expected a scalar sympy expression, got {type(expr).__name__}.")
    replace: dict[sympy.Basic, sympy.Basic] = {}
    stack = [(expr, 0, False)]  # (node, depth, inside a constant already checked for range)
    while stack:
        node, depth, in_range = stack.pop()
        if depth > MAX_DEPTH:
            raise SpecError(f"{label}: nested deeper than {MAX_DEPTH} levels.")
        if not in_range and not node.free_symbols:
            overflows: list[sympy.Expr] = []
            _double(node, overflows, {})
            if overflows:
                raise SpecError(f"{label}: {_show(overflows[0])} is outside double precision "
                                "range (its value is beyond +-1.8e308).")
            in_range = True
        if isinstance(node, sympy.Symbol):
            name = node.name
            if isinstance(node, sympy.Dummy) or not is_valid_name(name):
                raise SpecError(f"{label}: {name!r} is not a valid variable name.")
            if allowed is not None and name not in allowed:
                raise SpecError(f"{label}: unknown name {name!r}; expected one of: "
                                f"{_listing(allowed)}." + did_you_mean(name, allowed))
            if node != symbol(name):
                replace[node] = symbol(name)
            continue
        if node.is_Float:
            if not math.isfinite(float(node)):
                raise SpecError(f"{label}: the number {node!s} is not finite.")
            if node != sympy.Float(float(node)) or node._prec != 53:
                replace[node] = sympy.Float(float(node))
            continue
        if node.is_Rational or node in (sympy.pi, sympy.E):
            continue
        if node in (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise SpecError(f"{label}: the expression contains {node!s} (a division by zero or an "
                            "infinite value).")
        if node == sympy.I:
            raise SpecError(f"{label}: the expression is complex (contains I); only real "
                            "expressions are supported.")
        if isinstance(node, sympy.Pow):
            base, exponent = node.args
            if base.is_Number and base.is_negative and exponent.is_Number and not exponent.is_integer:
                raise SpecError(f"{label}: {node!s} is complex (a fractional power of a negative "
                                "number).")
            if exponent.is_Number and base.free_symbols and abs(exponent) > MAX_EXPONENT:
                raise SpecError(f"{label}: the exponent {_show(exponent)} is beyond "
                                f"+-{MAX_EXPONENT}; so large a power leaves double precision "
                                "range unless its base is within a factor 2 of +-1.")
        elif not isinstance(node, (sympy.Add, sympy.Mul)) and type(node) not in _SYMPY_FUNCTIONS:
            raise SpecError(f"{label}: {type(node).__name__} ({shorten(str(node), 40)}) is not "
                            f"supported; expressions may use + - * / ** and {_listing(FUNCTIONS)}.")
        stack.extend((arg, depth + 1, in_range) for arg in node.args)
    return expr.xreplace(replace) if replace else expr


def free_names(expr: sympy.Basic | str) -> set[str]:
    """Names of the free symbols of an expression (text is parsed first)."""
    if isinstance(expr, str):
        expr = parse(expr)
    return {s.name for s in expr.free_symbols}


def substitute(expr: sympy.Expr | str, mapping: Mapping[str, sympy.Expr | str | float]) -> sympy.Expr:
    """Replace variables by expressions, simultaneously, matching symbols by name.

    Parameters
    ----------
    expr : sympy.Expr or str
    mapping : mapping of str to sympy.Expr, str or number
        ``{"d": "x2 - x1"}``; text values are parsed with :func:`parse`.
    """
    expr = parse(expr) if isinstance(expr, str) else expr
    by_name = {name: parse(value) if not isinstance(value, sympy.Basic) else value
               for name, value in mapping.items()}
    return expr.xreplace({s: by_name[s.name] for s in expr.free_symbols if s.name in by_name})


class _Printer(StrPrinter):
    """sympy's str printer, with floats printed exactly (shortest round-trip repr)."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))


def to_string(expr: sympy.Expr) -> str:
    """Text for an expression that :func:`parse` reads back to an equal expression."""
    return _Printer().doprint(expr)
