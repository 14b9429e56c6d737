"""Binding helpers: the ``bindings=`` lists for modules applied to pairs of sites.

A module with ``bindings`` is applied, with one set of weights, to several
assignments of its inputs (see :class:`pikan.spec.system.Module`). The helpers here write
those assignments from a template: :func:`chain_pairs` for nearest neighbours along a
chain or ring, :func:`all_pairs` for every pair (the N-body way). They return plain
lists of dicts of expression text and never import torch; :mod:`pikan.spec.system`
re-exports them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pikan.errors import SpecError

__all__ = ["all_pairs", "chain_pairs"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SITE = re.compile(r"(?P<site>[ab])(?:\[(?P<index>\d+)\])?")


def _fill(template: str, a: str | tuple[str, ...], b: str | tuple[str, ...]) -> str:
    def one(match: re.Match) -> str:
        site = _SITE.fullmatch(match.group(1))
        if site is None:
            raise SpecError(f"binding template {template!r}: unknown placeholder "
                            f"{match.group(0)!r}; use {{a}}, {{b}} or {{a[0]}}, {{b[1]}}.")
        value = a if site["site"] == "a" else b
        if site["index"] is None:
            if not isinstance(value, str):
                raise SpecError(f"binding template {template!r}: sites have several "
                                f"coordinates {value}; index them as {{a[0]}}.")
            return value
        if isinstance(value, str):
            raise SpecError(f"binding template {template!r}: the site {value!r} is a single "
                            f"coordinate; write {{{site['site']}}} without an index.")
        index = int(site["index"])
        if index >= len(value):
            raise SpecError(f"binding template {template!r}: index {index} is out of range for "
                            f"the site {value}.")
        return value[index]

    return _PLACEHOLDER.sub(one, template)


def _pair_bindings(pairs: Iterable[tuple[Any, Any]], expr: str | Mapping[str, str],
                   name: str) -> list[dict[str, str]]:
    templates = dict(expr) if isinstance(expr, Mapping) else {name: expr}
    return [{key: _fill(t, a, b) for key, t in templates.items()} for a, b in pairs]


def _sites(coords: Sequence[str | Sequence[str]]) -> list[str | tuple[str, ...]]:
    sites = [c if isinstance(c, str) else tuple(c) for c in coords]
    if len(sites) < 2:
        raise SpecError(f"pair bindings need at least two sites, got {sites}.")
    return sites


def chain_pairs(coords: Sequence[str | Sequence[str]], expr: str | Mapping[str, str] = "{b} - {a}",
                name: str = "d", periodic: bool = False) -> list[dict[str, str]]:
    """Bindings for nearest neighbours along a chain: one per consecutive pair (a, b).

    Parameters
    ----------
    coords : list of str, or list of tuples of str
        The sites in chain order: coordinate names, or one tuple of coordinates per
        particle (``[("x1", "y1"), ("x2", "y2")]``).
    expr : str or dict of str to str
        Template of the input's expression: ``{a}`` and ``{b}`` are the two sites, and
        ``{a[0]}``, ``{b[1]}`` their components when sites are tuples. A dict maps
        several input names to templates (then ``name`` is unused).
    name : str
        The module input the template defines.
    periodic : bool
        Also bind the last site to the first (a ring).

    Returns
    -------
    list of dict
        One binding per pair, for a module's ``bindings=``.

    Examples
    --------
    >>> chain_pairs(["x1", "x2", "x3"])
    [{'d': 'x2 - x1'}, {'d': 'x3 - x2'}]
    >>> chain_pairs([("x1", "y1"), ("x2", "y2")], expr="sqrt(({b[0]}-{a[0]})**2 + ({b[1]}-{a[1]})**2)", name="r")
    [{'r': 'sqrt((x2-x1)**2 + (y2-y1)**2)'}]
    """
    sites = _sites(coords)
    pairs = list(itertools.pairwise(sites))
    if periodic:
        if len(sites) < 3:
            raise SpecError(f"a periodic chain needs at least three sites, got {sites}.")
        pairs.append((sites[-1], sites[0]))
    return _pair_bindings(pairs, expr, name)


def all_pairs(coords: Sequence[str | Sequence[str]], expr: str | Mapping[str, str] = "{b} - {a}",
              name: str = "d") -> list[dict[str, str]]:
    """Bindings for every unordered pair of sites (a, b), a before b: the N-body way.

    Same parameters as :func:`chain_pairs`.

    Examples
    --------
    >>> all_pairs(["x1", "x2", "x3"])
    [{'d': 'x2 - x1'}, {'d': 'x3 - x1'}, {'d': 'x3 - x2'}]
    """
    sites = _sites(coords)
    return _pair_bindings(itertools.combinations(sites, 2), expr, name)
