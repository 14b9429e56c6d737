"""Tests for pikan/spec/bindings.py: the chain_pairs / all_pairs binding helpers."""

import pytest

from pikan.spec.bindings import all_pairs, chain_pairs
from pikan.errors import SpecError
from pikan.spec.system import Potential, System


def test_chain_and_all_pairs():
    assert chain_pairs(["x1", "x2", "x3"]) == [{"d": "x2 - x1"}, {"d": "x3 - x2"}]
    assert chain_pairs(["x1", "x2", "x3"], periodic=True)[-1] == {"d": "x1 - x3"}
    assert all_pairs(["x1", "x2", "x3"]) == [{"d": "x2 - x1"}, {"d": "x3 - x1"}, {"d": "x3 - x2"}]
    sites = [("x1", "y1"), ("x2", "y2"), ("x3", "y3")]
    r = all_pairs(sites, expr="sqrt(({b[0]} - {a[0]})**2 + ({b[1]} - {a[1]})**2)", name="r")
    assert len(r) == 3 and r[0] == {"r": "sqrt((x2 - x1)**2 + (y2 - y1)**2)"}
    both = chain_pairs(sites[:2], expr={"dx": "{b[0]} - {a[0]}", "dy": "{b[1]} - {a[1]}"})
    assert both == [{"dx": "x2 - x1", "dy": "y2 - y1"}]
    nbody = System("nbody", coords=[c for s in sites for c in s],
                   modules=[Potential("pair", inputs=["r"], law="-1/r", bindings=r)])
    assert len(nbody.module("pair").bindings) == 3
    for bad, match in [({"expr": "{c} - {a}"}, "unknown placeholder"),
                       ({"expr": "{a[2]}"}, "out of range"),
                       ({"expr": "{a}"}, "index them")]:
        with pytest.raises(SpecError, match=match):
            chain_pairs(sites, **bad)
    with pytest.raises(SpecError, match="at least two sites"):
        chain_pairs(["x1"])
    with pytest.raises(SpecError, match="single coordinate"):
        chain_pairs(["x1", "x2"], expr="{a[0]}")
