"""Units text -> Unit, and the units of expressions (pikan.spec.units)."""

from fractions import Fraction

import pytest
import sympy

from pikan.errors import SpecError
from pikan.spec.units import BASE, DIMENSIONLESS, Unit, check_dimensions, parse_units, units_map


def powers(**named) -> tuple:
    return tuple(Fraction(named.get(b, 0)) for b in BASE)


@pytest.mark.parametrize("text, expected", [
    ("kg*m/s**2", powers(kg=1, m=1, s=-2)),
    ("kg m / s^2", powers(kg=1, m=1, s=-2)),
    ("N", powers(kg=1, m=1, s=-2)),
    ("W/(m*K)", powers(kg=1, m=1, s=-3, K=-1)),
    ("J/mol/K", powers(kg=1, m=2, s=-2, mol=-1, K=-1)),
    ("1/s", powers(s=-1)),
    ("1", powers()),
    ("rad", powers()),
    ("Hz**(1/2)", powers(s=Fraction(-1, 2))),
    ("m**-2", powers(m=-2)),
    ("N*m**2/C**2", powers(kg=1, m=3, s=-4, A=-2)),
    ("F/m", powers(kg=-1, m=-3, s=4, A=2)),
    ("ohm", powers(kg=1, m=2, s=-3, A=-2)),
])
def test_parse_gives_base_powers(text, expected):
    assert parse_units(text).powers == expected


def test_prefixes_scale_and_exact_names_win():
    assert parse_units("km").scale == pytest.approx(1e3)
    assert parse_units("km").same_dimension(parse_units("m"))
    assert parse_units("mg").scale == pytest.approx(1e-6)  # a prefixed gram, in kg
    assert parse_units("keV").scale == pytest.approx(1.602176634e-16)
    assert parse_units("T").powers == powers(kg=1, s=-2, A=-1)  # tesla, not a prefix
    assert parse_units("Pa").powers == powers(kg=1, m=-1, s=-2)  # pascal, not peta-year
    assert parse_units("min").scale == pytest.approx(60.0)
    assert parse_units("ms").powers == powers(s=1)
    assert parse_units("km/h").scale == pytest.approx(1000 / 3600)


def test_arithmetic_and_printing():
    newton = parse_units("N")
    assert newton * parse_units("m") == parse_units("J")
    assert (parse_units("J") / parse_units("s")).same_dimension(parse_units("W"))
    assert (parse_units("m") ** 2).powers == powers(m=2)
    assert str(parse_units("kg*m**2/s**2")) == "J"
    assert str(parse_units("kg/s**2")) == "kg/s**2"
    assert parse_units("W/(m*K)").dimension() == "kg*m/(s**3*K)"
    assert DIMENSIONLESS.dimension() == "1"
    assert parse_units(Unit.base("m")) == Unit.base("m")


@pytest.mark.parametrize("text, match", [
    ("kgg", "unknown unit 'kgg'"),
    ("m**x", "a power must be an integer"),
    ("2*m", "a number in units can only be 1"),
    ("(m", "ends too early"),
    ("m)", "unexpected"),
    ("m**(1/0)", "fraction"),
    ("m$", "unexpected '\\$'"),
    ("", "units must be text"),
    (3.0, "units must be text"),
])
def test_bad_units_name_the_piece(text, match):
    with pytest.raises(SpecError, match=match):
        parse_units(text)


def test_units_map_names_the_input():
    assert units_map({"m": "kg"}, "find_law") == {"m": Unit.base("kg")}
    assert units_map(None, "find_law") == {}
    with pytest.raises(SpecError, match="units of 'v'"):
        units_map({"v": "m/sec"}, "find_law")
    with pytest.raises(SpecError, match="must be a dict"):
        units_map(["m"], "find_law")


UNITS = {"x": parse_units("m"), "t": parse_units("s"), "m": parse_units("kg"),
         "v": parse_units("m/s"), "k": parse_units("N/m"), "theta": parse_units("rad")}


def check(text, output=None, pure=False):
    return check_dimensions(sympy.sympify(text), UNITS,
                            parse_units(output) if output else None, pure_numbers=pure)


@pytest.mark.parametrize("text, output", [
    ("m*v**2/2", "J"), ("k*x**2/2 + m*v**2/2", "J"), ("sqrt(k/m)", "Hz"),
    ("x*sin(theta)", "m"), ("exp(-k*t**2/m)", "1"), ("atan2(x, v*t)", "1"),
    ("Abs(x) + v*t", "m"),
])
def test_consistent_laws_with_pure_numbers(text, output):
    result = check(text, output, pure=True)
    assert result.consistent, result.problems
    assert result.unit.same_dimension(parse_units(output))


@pytest.mark.parametrize("text, output, match", [
    ("x + t", None, "adds"),
    ("exp(x)", None, "argument carries m"),
    ("m*v**2", "W", "where"),
    ("x**t", None, "t carries s"),
    ("0.5*x**2", "J", "0.5"),  # a pure 0.5 cannot turn m**2 into J
    ("log(v)", None, "argument carries"),
    ("y*x", None, "y has no units"),
])
def test_inconsistent_laws_are_named(text, output, match):
    result = check(text, output, pure=True)
    assert not result.consistent
    assert any(match in p for p in result.problems), result.problems


def test_constants_carry_the_units_their_place_needs():
    result = check("0.5*x**2 + 0.25*x**4", "J")
    assert result.consistent
    units = {float(c): u.dimension() for c, u in result.constants}
    assert units == {0.5: "kg/s**2", 0.25: "kg/(m**2*s**2)"}
    assert {float(c): u.dimension() for c, u in check("exp(-0.3*x)", "1").constants} == \
        {-0.3: "1/m"}
    assert {float(c): u.dimension() for c, u in check("(x + 0.3)*v", "m**2/s").constants} \
        == {0.3: "m"}
    # without the expected unit a coefficient leaves the unit open, and nothing is claimed
    open_ = check("0.5*x**2")
    assert open_.unit is None and open_.consistent and not open_.constants
