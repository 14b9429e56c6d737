"""Compiling safe expressions to torch: plain functions and modules with trainable constants.

:func:`pikan.spec.expr.parse` turns text into a checked sympy tree; this module turns such a
tree into pure tensor code. :func:`to_torch` gives a :class:`CompiledExpr`, a function of
named tensors for features, known laws and constraint checks; :func:`to_module` gives an
:class:`ExprModule`, an ``nn.Module`` whose numeric constants are parameters (the
"kanpiler"), so a law's constants can be fine-tuned by gradient descent and read back as
sympy. Both compile the same node types: ``+ * **``, numbers, symbols and the functions
of :data:`pikan.spec.expr.FUNCTIONS`. The compiled code is closures over tensors, nothing is
evaluated from text, and it works under ``torch.func`` (``vmap``, ``grad``, ``jacrev``)
and double backward.

The four public names are also importable from :mod:`pikan.spec.expr`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import sympy
import torch

from pikan.errors import SpecError
from pikan.spec.expr import did_you_mean, overflowing_part, parse, shorten, symbol, to_string

__all__ = ["CompiledExpr", "ExprModule", "lift_constants", "to_module", "to_torch"]

# the sympy functions that pikan.spec.expr's grammar admits (its _SYMPY_FUNCTIONS, less atan2,
# which takes two arguments), and their torch counterparts
_TORCH_UNARY: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    sympy.sin: torch.sin,
    sympy.cos: torch.cos,
    sympy.tan: torch.tan,
    sympy.exp: torch.exp,
    sympy.log: torch.log,
    sympy.Abs: torch.abs,
    sympy.sign: torch.sign,
    sympy.tanh: torch.tanh,
    sympy.sinh: torch.sinh,
    sympy.cosh: torch.cosh,
    sympy.asin: torch.asin,
    sympy.acos: torch.acos,
    sympy.atan: torch.atan,
    sympy.asinh: torch.asinh,
    sympy.acosh: torch.acosh,
    sympy.atanh: torch.atanh,
}

_Fn = Callable[[Sequence[torch.Tensor], torch.Tensor | None], "torch.Tensor | float"]


class _Compiler:
    """Turns a validated sympy tree into nested closures over (input tensors, constants).

    Subtrees without inputs or trainable constants are folded to Python floats, which
    torch broadcasts against tensors in the input's dtype and device.
    """

    def __init__(self, inputs: Sequence[str], params: Mapping[str, float],
                 constants: Mapping[sympy.Symbol, int], label: str):
        self.index = {name: i for i, name in enumerate(inputs)}
        self.params = {symbol(name): sympy.Float(float(value)) for name, value in params.items()}
        self.param_values = {name: float(value) for name, value in params.items()}
        self.constants = constants
        self.label = label

    def compile(self, node: sympy.Expr) -> _Fn:
        if not (node.free_symbols - set(self.params)):
            value = self._fold(node)
            return lambda xs, cs: value
        if isinstance(node, sympy.Symbol):
            if node in self.constants:
                k = self.constants[node]
                return lambda xs, cs: cs[k]
            i = self.index[node.name]
            return lambda xs, cs: xs[i]
        if isinstance(node, sympy.Add):
            terms = [self.compile(arg) for arg in node.args]

            def add(xs, cs):
                total = terms[0](xs, cs)
                for term in terms[1:]:
                    total = total + term(xs, cs)
                return total

            return add
        if isinstance(node, sympy.Mul):
            return self._mul(node)
        if isinstance(node, sympy.Pow):
            return self._pow(*node.args)
        if isinstance(node, sympy.atan2):
            y, x = (self.compile(arg) for arg in node.args)

            def atan2(xs, cs):
                a, b = y(xs, cs), x(xs, cs)
                like = a if isinstance(a, torch.Tensor) else b
                a = torch.as_tensor(a, dtype=like.dtype, device=like.device)
                b = torch.as_tensor(b, dtype=like.dtype, device=like.device)
                return torch.atan2(a, b)

            return atan2
        if type(node) in _TORCH_UNARY:
            function = _TORCH_UNARY[type(node)]
            arg = self.compile(node.args[0])
            return lambda xs, cs: function(arg(xs, cs))
        raise SpecError(f"{self.label}: cannot compile {type(node).__name__} to torch.")

    def _fold(self, node: sympy.Expr) -> float:
        # a part beyond double range (exp(exp(k)) with k = 1000) makes sympy overflow, or
        # need millions of digits (sin(exp(exp(k))), k = 15): refuse it before sympy sees it
        overflow = overflowing_part(node, self.param_values)
        if overflow is not None:
            raise SpecError(f"{self.label}: the constant {shorten(str(overflow), 40)} is outside "
                            "double precision range (its value is beyond +-1.8e308).")
        try:
            value = complex(node.xreplace(self.params).evalf(30))
        except (TypeError, ValueError, ArithmeticError):
            raise SpecError(f"{self.label}: the constant {node!s} has no numeric value.") from None
        if value.imag != 0 or not math.isfinite(value.real):
            raise SpecError(f"{self.label}: the constant {node!s} is not a finite real number "
                            f"({value}).")
        return value.real

    def _mul(self, node: sympy.Mul) -> _Fn:
        # factors with negative exponents go to a denominator: x/y, not x*y**-1
        numerator, denominator = [], []
        for factor in node.args:
            if (isinstance(factor, sympy.Pow) and factor.exp.is_Number and factor.exp < 0
                    and factor.base.free_symbols - set(self.params)):
                denominator.append(self._pow(factor.base, -factor.exp))
            else:
                numerator.append(self.compile(factor))

        def product(fns, xs, cs):
            out = fns[0](xs, cs)
            for fn in fns[1:]:
                out = out * fn(xs, cs)
            return out

        if not denominator:
            return lambda xs, cs: product(numerator, xs, cs)
        if not numerator:
            return lambda xs, cs: 1.0 / product(denominator, xs, cs)
        return lambda xs, cs: product(numerator, xs, cs) / product(denominator, xs, cs)

    def _pow(self, base: sympy.Expr, exponent: sympy.Expr) -> _Fn:
        b = self.compile(base)
        if exponent == 1:
            return b
        if exponent == sympy.Rational(1, 2):
            return lambda xs, cs: torch.sqrt(b(xs, cs))
        if exponent == sympy.Rational(-1, 2):
            return lambda xs, cs: torch.rsqrt(b(xs, cs))
        if exponent.is_Integer:
            n = int(exponent)
            return lambda xs, cs: b(xs, cs) ** n
        if exponent.is_Rational:
            q = float(exponent)
            return lambda xs, cs: torch.pow(b(xs, cs), q)
        e = self.compile(exponent)
        return lambda xs, cs: b(xs, cs) ** e(xs, cs)


def _prepare(expr: sympy.Expr | str, inputs: Sequence[str], params: Mapping[str, float] | None,
             label: str) -> tuple[sympy.Expr, tuple[str, ...], dict[str, float]]:
    inputs = tuple(inputs)
    params = dict(params or {})
    if len(set(inputs)) != len(inputs):
        raise SpecError(f"{label}: duplicate input names in {list(inputs)}.")
    # a param fed to a block as an input (inputs=["x", "k"]) is an input there
    params = {name: value for name, value in params.items() if name not in inputs}
    expr = parse(expr, set(inputs) | set(params), where="compiling")
    return expr, inputs, params


def _gather(inputs: tuple[str, ...], args: tuple, kwargs: dict, label: str) -> list[torch.Tensor]:
    if args and kwargs:
        raise SpecError(f"{label}: pass inputs either by position or by name, not both.")
    if args:
        if len(args) != len(inputs):
            raise SpecError(f"{label}: expected {len(inputs)} inputs ({', '.join(inputs)}), "
                            f"got {len(args)}.")
        values = list(args)
    else:
        unknown = set(kwargs) - set(inputs)
        if unknown:
            name = min(unknown)
            raise SpecError(f"{label}: unknown input {name!r}; expected {', '.join(inputs)}."
                            + did_you_mean(name, inputs))
        missing = [name for name in inputs if name not in kwargs]
        if missing:
            raise SpecError(f"{label}: missing input(s) {', '.join(missing)}.")
        values = [kwargs[name] for name in inputs]
    out = []
    for value in values:
        tensor = torch.as_tensor(value)
        if not tensor.is_floating_point():
            tensor = tensor.to(torch.get_default_dtype())
        out.append(tensor)
    return out


def _finish(result: torch.Tensor | float, xs: list[torch.Tensor]) -> torch.Tensor:
    """Broadcast the result to the common shape, dtype and device of the inputs."""
    if xs:
        shape = torch.broadcast_shapes(*(x.shape for x in xs))
        dtype = functools.reduce(torch.promote_types, (x.dtype for x in xs))
        device = xs[0].device
    else:
        shape, dtype, device = torch.Size(()), torch.get_default_dtype(), None
    if not isinstance(result, torch.Tensor):
        # through float64: a constant beyond float32's range becomes inf, as in arithmetic
        return torch.full(shape, result, dtype=torch.float64, device=device).to(dtype)
    if result.shape != shape:
        result = torch.broadcast_to(result, shape)
    return result


class CompiledExpr:
    """A sympy expression compiled to a torch function of named tensors.

    Call it with tensors in the order of ``inputs`` or by name; all inputs broadcast
    together and the result has their common shape, dtype and device. Pure tensor
    code: works under ``torch.func.vmap``, ``grad``, ``jacrev`` and double backward.

    Attributes
    ----------
    expr : sympy.Expr
    inputs : tuple of str
    params : dict of str to float
        Values substituted for the parameter names.
    """

    def __init__(self, expr: sympy.Expr | str, inputs: Sequence[str],
                 params: Mapping[str, float] | None = None):
        label = f"compiling {shorten(str(expr))!r}"
        self.expr, self.inputs, self.params = _prepare(expr, inputs, params, label)
        self._label = label
        self._fn = _Compiler(self.inputs, self.params, {}, label).compile(self.expr)

    def __call__(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        xs = _gather(self.inputs, args, kwargs, self._label)
        return _finish(self._fn(xs, None), xs)

    def __repr__(self) -> str:
        return f"CompiledExpr({to_string(self.expr)!r}, inputs={list(self.inputs)})"


def to_torch(expr: sympy.Expr | str, inputs: Sequence[str],
             params: Mapping[str, float] | None = None) -> CompiledExpr:
    """Compile an expression to a torch function of named tensors.

    Parameters
    ----------
    expr : sympy.Expr or str
        Its free names must be ``inputs`` or ``params``.
    inputs : sequence of str
        Argument names, in positional order.
    params : mapping of str to float, optional
        Fixed values for named constants; a name that is also an input is an input.

    Returns
    -------
    CompiledExpr
        ``f(*tensors)`` or ``f(**named_tensors)``; inputs of shape ``(...)`` broadcast
        together, output of the broadcast shape ``(...)``.

    Examples
    --------
    >>> f = to_torch("k*x**2/2", ["x"], {"k": 2.0})
    >>> f(torch.tensor([1.0, 2.0]))
    tensor([1., 4.])
    """
    return CompiledExpr(expr, inputs, params)


def free_scaled(node: sympy.Expr) -> bool:
    """Whether a sum has a constant on every term, a number or a coefficient other than a
    sign (its scale is a free constant)."""
    return isinstance(node, sympy.Add) and _all_free(node.args)


def _all_free(terms) -> bool:
    return bool(terms) and all(t.is_Number or t.as_coeff_Mul()[0] not in (1, -1)
                               for t in terms)


def _scaled_quotient(node: sympy.Mul) -> sympy.Pow | None:
    """The denominator ``(sum)**-1`` of a product whose numerator carries a free scale (a
    coefficient other than a sign, or a factor :func:`free_scaled`) and whose denominator
    is an exact number plus terms with such coefficients; None if there is none."""
    dens = [a for a in node.args if isinstance(a, sympy.Pow) and a.args[1] == -1
            and isinstance(a.args[0], sympy.Add)]
    if len(dens) != 1:
        return None
    terms = dens[0].args[0].args
    exact = [t for t in terms if t.is_Number and not t.is_Float]
    rest = [t for t in terms if not (t.is_Number and not t.is_Float)]
    if len(exact) != 1 or exact[0] == 0 or not _all_free(rest):
        return None
    others = [a for a in node.args if a is not dens[0]]
    if not any((a.is_Number and a not in (1, -1)) or free_scaled(a) for a in others):
        return None
    return dens[0]


def _walk_denominator(pow_node: sympy.Pow, walk) -> sympy.Pow:
    """A denominator of :func:`_scaled_quotient` lifted but for its exact number."""
    base = pow_node.args[0]
    args = [t if t.is_Number and not t.is_Float else walk(t) for t in base.args]
    return sympy.Pow(sympy.Add(*args, evaluate=False), -1, evaluate=False)


def lift_constants(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Dummy], list[sympy.Number]]:
    """Replace trainable numbers by dummy symbols, keeping the tree's structure.

    Trainable: every Float, the numeric term of a sum, and the numeric coefficient of
    a product unless it is +-1 (a sign). Integer and rational exponents (``x**2``, ``sqrt``) and pi, E stay fixed.
    So does the exact numeric term of a denominator whose other terms all have
    coefficients, in a quotient whose numerator is such a sum too (or has a coefficient):
    ``(a x y + b y)/(q x + 1)`` scaled top and bottom alike is the same law,
    and a free ``1`` there is a constant no data can fix (:func:`free_scaled`).
    """
    dummies: list[sympy.Dummy] = []
    originals: list[sympy.Number] = []

    def lift(number: sympy.Number) -> sympy.Dummy:
        dummy = sympy.Dummy(f"c{len(dummies)}")
        dummies.append(dummy)
        originals.append(number)
        return dummy

    def walk(node: sympy.Expr) -> sympy.Expr:
        if node.is_Float:
            return lift(node)
        if node.is_Atom:
            return node
        denominator = _scaled_quotient(node) if isinstance(node, sympy.Mul) else None
        if denominator is not None:
            args = [_walk_denominator(a, walk) if a is denominator
                    else lift(a) if a.is_Number and not a.is_Float and a not in (1, -1)
                    else walk(a) for a in node.args]
            return node.func(*args, evaluate=False)
        if isinstance(node, (sympy.Add, sympy.Mul)):
            # a sign (-x) is structure, an additive 1 or a factor 2 is a constant
            fixed = (1, -1) if isinstance(node, sympy.Mul) else ()
            args = [lift(a) if a.is_Number and not a.is_Float and a not in fixed else walk(a)
                    for a in node.args]
            return node.func(*args, evaluate=False)
        if isinstance(node, sympy.Pow):
            base, exponent = node.args
            exponent = walk(exponent) if not exponent.is_Rational else exponent
            return sympy.Pow(walk(base), exponent, evaluate=False)
        return node.func(*(walk(a) for a in node.args), evaluate=False)

    return walk(expr), dummies, originals


def fold_irrational_factors(expr: sympy.Expr) -> sympy.Expr:
    """Products of a decimal constant and exact irrational numbers as one decimal.

    ``pi/4 a b`` is trained as ``c pi a b`` (pi stays fixed, :func:`lift_constants`); once
    ``c`` has moved off ``1/4`` the pi means nothing, and ``pi*0.2546*a*b`` reads as the
    ``0.8*a*b`` it is. Products without a decimal (``pi r**2/4``) stay exact.
    """
    def irrational(arg: sympy.Expr) -> bool:
        return arg.is_number and not arg.is_Rational and not arg.is_Float

    def foldable(node: sympy.Expr) -> bool:
        return isinstance(node, sympy.Mul) and any(a.is_Float for a in node.args) \
            and any(irrational(a) for a in node.args)

    def fold(node: sympy.Mul) -> sympy.Expr:
        numbers = [a for a in node.args if a.is_Float or irrational(a)]
        value = sympy.Float(float(sympy.Mul(*numbers)))
        return sympy.Mul(value, *[a for a in node.args if a not in numbers])

    return expr.replace(foldable, fold)


class ExprModule(torch.nn.Module):
    """An expression as a ``torch.nn.Module`` whose numeric constants are parameters.

    This is the "kanpiler": a law's constants can be fine-tuned end to end by gradient
    descent, then read back with :meth:`expr`.

    Call it like :class:`CompiledExpr`: tensors in the order of ``inputs`` or by name.

    Attributes
    ----------
    constants : torch.nn.Parameter, shape (n_constants,)
        The trainable constants, in the order found in the tree (see :func:`to_module`);
        an empty buffer when ``trainable_constants=False``.
    inputs : tuple of str
    """

    def __init__(self, expr: sympy.Expr | str, inputs: Sequence[str],
                 params: Mapping[str, float] | None = None, trainable_constants: bool = True):
        super().__init__()
        label = f"compiling {shorten(str(expr))!r}"
        expr, self.inputs, self.params = _prepare(expr, inputs, params, label)
        self._label = label
        if trainable_constants:
            self._lifted, self._dummies, self._originals = lift_constants(expr)
        else:
            self._lifted, self._dummies, self._originals = expr, [], []
        values = torch.tensor([float(v) for v in self._originals], dtype=torch.get_default_dtype())
        if trainable_constants:
            self.constants = torch.nn.Parameter(values)
        else:  # a buffer, so a fixed law adds nothing to model.parameters()
            self.register_buffer("constants", values)
        index = {d: k for k, d in enumerate(self._dummies)}
        self._fn = _Compiler(self.inputs, self.params, index, label).compile(self._lifted)

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        xs = _gather(self.inputs, args, kwargs, self._label)
        return _finish(self._fn(xs, self.constants), xs)

    def expr(self) -> sympy.Expr:
        """The expression with the current constant values (unchanged ones keep their
        original exact form, e.g. the integer 2; a changed one absorbs the fixed irrational
        factors beside it, :func:`fold_irrational_factors`)."""
        values = self.constants.detach().cpu()
        replace = {}
        for dummy, original, value in zip(self._dummies, self._originals, values):
            # unchanged: the original rounded to the parameter's dtype (float32 too)
            unchanged = torch.tensor(float(original), dtype=value.dtype) == value
            replace[dummy] = original if unchanged else sympy.Float(value.item())
        return fold_irrational_factors(self._lifted.xreplace(replace))

    def extra_repr(self) -> str:
        return f"{to_string(self.expr())!r}, inputs={list(self.inputs)}"


def to_module(expr: sympy.Expr | str, inputs: Sequence[str],
              params: Mapping[str, float] | None = None, *,
              trainable_constants: bool = True) -> ExprModule:
    """Compile an expression to an ``nn.Module`` whose numeric constants are parameters.

    Parameters
    ----------
    expr : sympy.Expr or str
    inputs : sequence of str
        Argument names, in positional order.
    params : mapping of str to float, optional
        Named constants; these stay fixed.
    trainable_constants : bool
        If True, every Float, the numeric term of every sum and the numeric coefficient
        of every product (other than a sign +-1) becomes an entry of ``module.constants``; integer and rational
        exponents stay fixed. If False the module has no trainable parameters.

    Returns
    -------
    ExprModule
        ``module(*tensors)`` or ``module(**named_tensors)`` -> tensor of the broadcast
        input shape; ``module.expr()`` gives the sympy expression back with the current
        constants.
    """
    return ExprModule(expr, inputs, params, trainable_constants=trainable_constants)
