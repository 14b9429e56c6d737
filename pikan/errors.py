"""Errors a user can cause: bad specs and bad data.

Both subclass ``ValueError`` so code that already catches ``ValueError`` keeps working.
Messages name the offending item, what was expected, and a hint.
"""


class SpecError(ValueError):
    """A system spec, module, constraint, expression or law is invalid."""


class DataError(ValueError):
    """Trajectory data (arrays, files) is invalid or does not match the spec."""


class IdentifiabilityWarning(UserWarning):
    """Two learned modules of a spec can trade a term the data cannot tell apart.

    Issued by :func:`pikan.compile` once per such pair; ``Model.exchanges`` lists them.
    """


class VerdictWarning(UserWarning):
    """A discovered law is short of "recovered" (see :data:`pikan.laws.law.VERDICTS`).

    Issued by :func:`pikan.discover` without a progress display (with one, it prints the
    warning instead), with the law's verdict, its reason and its best alternatives.
    """
