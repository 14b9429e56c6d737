"""Evaluation of sympy expressions with numpy, for the many small fits of law extraction.

:func:`pikan.model.torch_expr.to_torch` compiles laws into torch for models and training; law
extraction instead evaluates thousands of small candidate expressions on a few thousand
samples, where numpy is several times faster than torch's per-operation overhead.
:func:`numpy_function` compiles a sympy tree into nested closures over numpy arrays
(the same node types as :func:`pikan.model.torch_expr.to_torch`); no text is ever evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import sympy

from pikan.spec.expr import double_value, overflowing_part

__all__ = ["numpy_function"]

_NP_UNARY: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.tan: np.tan,
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.Abs: np.abs,
    sympy.sign: np.sign,
    sympy.tanh: np.tanh,
    sympy.sinh: np.sinh,
    sympy.cosh: np.cosh,
    sympy.asin: np.arcsin,
    sympy.acos: np.arccos,
    sympy.atan: np.arctan,
    sympy.asinh: np.arcsinh,
    sympy.acosh: np.arccosh,
    sympy.atanh: np.arctanh,
}


def _constant(node: sympy.Expr) -> float:
    """A constant subtree's value: evalf rounded to double, as :func:`pikan.model.torch_expr`
    folds it; +-inf or nan (IEEE arithmetic, :func:`~pikan.spec.expr.double_value`) when a
    part of it is beyond double range, where evalf would overflow or need millions of
    digits; nan when it is complex."""
    if overflowing_part(node) is not None:
        return double_value(node)
    try:
        value = complex(node.evalf())
    except (TypeError, ValueError, ArithmeticError):
        return math.nan
    return value.real if value.imag == 0 else math.nan


def _compile(node: sympy.Expr, index: dict[str, int]) -> Callable[[Sequence], np.ndarray | float]:
    if not node.free_symbols:
        real = _constant(node)
        return lambda cols: real
    if isinstance(node, sympy.Symbol):
        i = index[node.name]
        return lambda cols: cols[i]
    if isinstance(node, (sympy.Add, sympy.Mul)):
        fns = [_compile(a, index) for a in node.args]
        if isinstance(node, sympy.Add):
            def add(cols):
                out = fns[0](cols)
                for fn in fns[1:]:
                    out = out + fn(cols)
                return out
            return add

        def mul(cols):
            out = fns[0](cols)
            for fn in fns[1:]:
                out = out * fn(cols)
            return out
        return mul
    if isinstance(node, sympy.Pow):
        base, exponent = node.args
        b = _compile(base, index)
        if exponent.is_Number:
            e = double_value(exponent)  # +-inf beyond double range (x**(10**400))
            if e == 0.5:
                return lambda cols: np.sqrt(b(cols))
            if e == -0.5:
                return lambda cols: 1.0 / np.sqrt(b(cols))
            if abs(e) <= 64 and e == int(e):
                n = int(e)
                if n >= 0:
                    return lambda cols: b(cols) ** n
                return lambda cols: 1.0 / b(cols) ** (-n)
            return lambda cols: np.power(b(cols), e)
        ex = _compile(exponent, index)
        return lambda cols: np.power(b(cols), ex(cols))
    if isinstance(node, sympy.atan2):
        y, x = (_compile(a, index) for a in node.args)
        return lambda cols: np.arctan2(y(cols), x(cols))
    if type(node) in _NP_UNARY:
        fn, arg = _NP_UNARY[type(node)], _compile(node.args[0], index)
        return lambda cols: fn(arg(cols))
    raise ValueError(f"cannot evaluate {type(node).__name__} in {node}")


def numpy_function(expr: sympy.Expr, names: Sequence[str]) -> Callable[..., np.ndarray]:
    """Compile a sympy expression to a numpy function of named columns.

    Parameters
    ----------
    expr : sympy.Expr
        Free symbols among ``names``.
    names : sequence of str
        Positional argument names.

    Returns
    -------
    callable
        ``f(*columns) -> ndarray``: columns are arrays of shape (N,) or scalars; the result
        has the broadcast shape (a constant expression returns a float). Evaluated under
        ``np.errstate(all="ignore")``: values outside a function's domain give NaN/inf,
        and so do constants beyond double range (``exp(exp(exp(exp(1000))))`` is inf);
        evaluation never raises for such values.
    """
    index = {name: i for i, name in enumerate(names)}
    missing = {s.name for s in expr.free_symbols} - set(index)
    if missing:
        raise ValueError(f"expression {expr} uses {sorted(missing)} not in {list(names)}")
    fn = _compile(expr, index)

    def call(*cols):
        with np.errstate(all="ignore"):
            return fn(cols)

    return call
