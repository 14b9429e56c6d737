"""Tests for pikan/spec/system.py: system specs, validation and immutability.

JSON is tested in test_json.py and the binding helpers in test_bindings.py;
test_json.py reuses the builders and constraint stand-ins defined here.
"""

import dataclasses

import numpy as np
import pytest
import sympy

from pikan.errors import SpecError
from pikan.kan.spline import MAX_ORDER
from pikan.spec.expr import parse, symbol
from pikan.spec.system import (
    KAN_OPTION_RANGES,
    MAX_HIDDEN_LAYERS,
    Dissipation,
    Dynamics,
    Flow,
    FrozenMap,
    Lagrangian,
    Module,
    Potential,
    System,
    all_pairs,
    chain_pairs,
    register_constraint,
)


@register_constraint
@dataclasses.dataclass(frozen=True)
class EvenIn:
    """A stand-in for a pikan.constraints class: the JSON layer only needs the registry."""

    name: str
    mode: str = "hard"
    weight: float = 1.0

    def check_spec(self, system, module):
        if module is not None and self.name not in module.inputs:
            raise SpecError(f"EvenIn({self.name!r}) on module {module.name!r}: no such input.")


@register_constraint
@dataclasses.dataclass(frozen=True)
class ConservedThing:
    quantity: str
    groups: tuple = ()


def trap(**changes):
    spec = System(
        "trap", coords=["x", "y"], masses=1.0, params={"k": 0.8, "w": 1.2},
        modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + y**2)/2"),
                 Dynamics("F", inputs=["v_x", "v_y"], outputs=["x", "y"],
                          law=["w*v_y", "-w*v_x"])])
    return spec.replace(**changes) if changes else spec


def double_pendulum():
    law = "v_a**2 + v_b**2/2 + v_a*v_b*cos(a - b) + 2*g*cos(a) + g*cos(b)"
    return System(
        "double_pendulum", coords=["a", "b"], params={"g": 9.81, "c": 0.1},
        modules=[Lagrangian("L", inputs=["a", "b", "v_a", "v_b"], law=law),
                 Dissipation("D", inputs={"s": "v_a**2 + v_b**2"}, law="c*s/2")],
        constraints=[ConservedThing("momentum", groups=(("a", "b"),))])


# ------------------------------------------------------------------ construction


def test_names_and_properties():
    spec = trap()
    assert spec.coords == ("x", "y")
    assert spec.velocities == ("v_x", "v_y")
    assert spec.accelerations == ("a_x", "a_y")
    assert spec.state_names == ("x", "y", "v_x", "v_y")
    assert spec.known == ("V", "F") and spec.learned == ()
    assert spec.formulation == "newtonian" and double_pendulum().formulation == "lagrangian"
    assert spec.module("F").outputs == ("x", "y")
    assert spec.module("V").law == parse("k*(x**2 + y**2)/2")
    assert spec.module("F").laws == (symbol("w") * symbol("v_y"), -symbol("w") * symbol("v_x"))
    custom = System("p", coords=["q"], velocities=["qdot"],
                    modules=[Dissipation("D", inputs=["qdot"])])
    assert custom.state_names == ("q", "qdot") and custom.accelerations == ("a_q",)
    # a spec is hashable data; lists become tuples
    assert hash(spec) == hash(trap()) and spec == trap()
    assert isinstance(spec.modules, tuple) and isinstance(spec.params, FrozenMap)


def test_inputs_features_and_bindings_normalize():
    m = Potential("V", inputs={"x": "x", "r": "sqrt(x**2 + y**2)"})
    assert m.input_names == ("x", "r")
    assert m.features == {"r": parse("sqrt(x**2 + y**2)")}
    assert m.input_bindings == (m.inputs,)
    assert Potential("V", inputs=["x"]) == Potential("V", inputs={"x": "x"})
    assert Potential("V", inputs="x").input_names == ("x",)
    b = Potential("bond", inputs=["dx", "dy"],
                  bindings=[{"dy": "y2 - y1", "dx": "x2 - x1"}])
    # binding keys are put in input order
    assert tuple(b.bindings[0]) == ("dx", "dy")
    assert b.input_bindings[0]["dy"] == symbol("y2") - symbol("y1")
    assert Potential("V", inputs=["x"], hidden=4).hidden == (4,)


# --------------------------------------------------------- learn / with_laws


def test_learn_and_with_laws_are_immutable():
    truth = trap()
    spec = truth.learn("V", hidden=[4], grid=7, constraints=[EvenIn("x")]).learn("F")
    assert truth == trap() and truth.known == ("V", "F")  # unchanged
    assert spec.learned == ("V", "F") and spec.known == ()
    v = spec.module("V")
    assert v.law is None and v.is_learned and v.hidden == (4,) and v.grid == 7
    assert v.constraints == (EvenIn("x"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"

    class Law:  # what pikan.laws.law will hand over: an object with .expr
        def __init__(self, expr):
            self.expr = expr

    filled = spec.with_laws({"V": Law(parse("0.4*x**2 + 0.4*y**2")),
                             "F": [sympy.Symbol("w") * sympy.Symbol("v_y"), "-w*v_x"]})
    assert spec.learned == ("V", "F")
    assert filled.module("V").law == parse("0.4*x**2 + 0.4*y**2")
    assert filled.module("F").law == truth.module("F").law
    assert filled.module("V").hidden == (4,)  # KAN options survive
    assert spec.with_laws({"F": Law([sympy.Integer(0), "w*v_x"])}).module("F").laws[0] == 0
    assert spec.with_laws({"V": "k*x**2"}).with_laws({"V": None}) == spec
    assert truth.replace(params={"k": 1.0, "w": 1.2}).params["k"] == 1.0


def test_learn_and_with_laws_errors():
    spec = trap()
    with pytest.raises(SpecError, match=r"no module 'VV'.*Did you mean 'V'\?"):
        spec.learn("VV")
    with pytest.raises(SpecError, match=r"unknown option 'gird'.*Did you mean 'grid'\?"):
        spec.learn("V", gird=5)
    with pytest.raises(SpecError, match=r"no module 'G'"):
        spec.with_laws({"G": "x"})
    with pytest.raises(SpecError, match=r"module 'V' law: unknown name 'kk'.*Did you mean 'k'\?"):
        spec.with_laws({"V": "kk*x**2"})


def test_with_laws_writes_laws_on_rewritten_inputs_in_the_modules_own():
    # a hard invariance feeds the KAN invariant features; extracted laws use their names
    from pikan.constraints import RotationInvariant, TranslationInvariant

    coords = ["x1", "y1", "x2", "y2"]
    spec = System("pair", coords=coords, modules=[Potential(
        "V", inputs=coords, constraints=[TranslationInvariant(["x1", "x2"], ["y1", "y2"]),
                                         RotationInvariant(("x1", "y1"), ("x2", "y2"))])])
    feature = "x2_y2_minus_x1_y1_sq"
    filled = spec.with_laws({"V": f"-1/sqrt({feature})"})
    expected = parse("-1/sqrt((x2 - x1)**2 + (y2 - y1)**2)")
    assert sympy.simplify(filled.module("V").law - expected) == 0
    with pytest.raises(SpecError, match="unknown name 'r_typo'"):
        spec.with_laws({"V": "r_typo**2"})


# --------------------------------------------------------------- validation

SPEC_ERRORS = [
    # unknown names, with suggestions
    (lambda: System("s", coords=["x", "y"], modules=[Potential("V", inputs=["x", "yy"])]),
     r"module 'V' input 'yy' is not a coordinate.*Did you mean 'y'\?"),
    (lambda: System("s", coords=["x", "y"],
                    modules=[Potential("V", inputs={"r": "sqrt(x**2 + yy**2)"})]),
     r"module 'V' feature 'r': unknown name 'yy'.*Did you mean 'y'\?"),
    (lambda: System("s", coords=["x1", "x2", "x3"],
                    modules=[Potential("b", inputs=["d"], bindings=chain_pairs(["x1", "x2", "x4"]))]),
     r"module 'b' binding 1 input 'd': unknown name 'x4'"),
    (lambda: System("s", coords=["x"], params={"k": 1.0},
                    modules=[Potential("V", inputs=["x"], law="kk*x**2")]),
     r"module 'V' law: unknown name 'kk'.*Did you mean 'k'\?"),
    (lambda: System("s", coords=["x", "y"], modules=[Potential("V", inputs=["x"], law="x*y")]),
     r"module 'V' law: unknown name 'y'.*add it to the module's inputs"),
    (lambda: System("s", coords=["x"], modules=[Dynamics("F", inputs=["x"], outputs=["x"],
                                                           law=["q*x"])]),
     r"module 'F' law.*unknown name 'q'"),
    # duplicates and collisions
    (lambda: System("s", coords=["x", "x"]), r"coords: the name 'x' appears twice"),
    (lambda: System("s", coords=["x"], modules=[Potential("V", inputs=["x"]),
                                                Potential("V", inputs=["x"])]),
     r"'V' is used by two modules"),
    (lambda: System("s", coords=["x"], params={"x": 1.0}),
     r"'x' is used both as a coordinate and as a param"),
    (lambda: System("s", coords=["x"], modules=[Potential("x", inputs=["x"])]),
     r"'x' is used both as a coordinate and as a module"),
    (lambda: System("s", coords=["x", "v_x"]),
     r"'v_x' is used both as a coordinate and as a velocity"),
    (lambda: System("s", coords=["x", "y"], modules=[Potential("V", inputs={"y": "x**2"})]),
     r"module 'V' feature 'y' shadows"),
    (lambda: Potential("V", inputs=["x", "x"]), r"module 'V' inputs: the name 'x' appears twice"),
    # what each kind may depend on
    (lambda: System("s", coords=["x"], modules=[Dynamics("F", inputs=["x"], outputs=["z"])]),
     r"module 'F' output 'z' is not a coordinate"),
    (lambda: System("s", coords=["x"], modules=[Dissipation("D", inputs=["x", "v_x"])]),
     r"module 'D': a Dissipation depends on velocities only.*x"),
    (lambda: System("s", coords=["x"], modules=[Dissipation("D", inputs={"e": "v_x*x"})]),
     r"module 'D': a Dissipation depends on velocities only"),
    (lambda: System("s", coords=["x"], modules=[Potential("V", inputs=["x", "v_x"])]),
     r"module 'V': a Potential depends on coordinates only.*v_x"),
    (lambda: System("s", coords=["a"], modules=[Lagrangian("L", inputs=["a", "v_a"]),
                                                Potential("V", inputs=["a"])]),
     r"Potential module\(s\) 'V' beside a Lagrangian would count the potential energy twice"),
    (lambda: System("s", coords=["a"], masses=2.0, modules=[Lagrangian("L", inputs=["a"])]),
     r"masses are not used"),
    # masses and coords
    (lambda: System("s", coords=["x", "y"], masses=[1.0, -1.0]), r"mass of 'y' is -1.0"),
    (lambda: System("s", coords=["x", "y"], masses=0.0), r"mass of 'x' is 0.0"),
    (lambda: System("s", coords=["x", "y"], masses=[1.0, 2.0, 3.0]), r"expected 2 masses"),
    (lambda: System("s", coords=["x"], masses="heavy"), r"masses: expected a number"),
    (lambda: System("s", coords=["x"], masses=float("nan")), r"finite"),
    (lambda: System("s", coords=[]), r"coords: expected at least one name"),
    (lambda: System("s", coords=["x"], velocities=["u", "w"]), r"velocities: expected one name per coordinate"),
    (lambda: System("s", coords=["pi"]), r"'pi' is reserved"),
    (lambda: System("s", coords=["sin"]), r"'sin' is reserved"),
    (lambda: System("s", coords=["E"]), r"'E' is reserved"),
    (lambda: System("s", coords=["1x"]), r"'1x' is not a valid name"),
    (lambda: System("s", coords=["x"], params={"k": "big"}), r"param 'k': expected a number"),
    (lambda: System("", coords=["x"]), r"System name"),
    # module structure
    (lambda: Potential("b", inputs=["d"], bindings=[{"e": "x2 - x1"}]),
     r"module 'b' binding 0: keys must be the module's inputs.*missing: d.*'e'"),
    (lambda: Potential("b", inputs={"d": "x2 - x1"}, bindings=[{"d": "x2 - x1"}]),
     r"module 'b': give either feature expressions in inputs or bindings"),
    (lambda: System("s", coords=["x1", "x2"],
                    modules=[Potential("b", inputs=["x1"], bindings=[{"x1": "x2 - x1"}])]),
     r"module 'b' binding input 'x1' shadows"),
    (lambda: Dynamics("F", inputs=["x", "y"], outputs=["x", "y"], law=["x"]),
     r"module 'F' law: expected 2 expressions, one per output"),
    (lambda: Dynamics("F", inputs=["x"]), r"module 'F' outputs: expected at least one name"),
    (lambda: Dynamics("F", inputs=["x"], outputs=["x"], gyroscopic=True),
     r"module 'F'.*at least two outputs"),
    (lambda: System("s", coords=["x", "y"], modules=[
        Dynamics("F", inputs=["x"], outputs=["x", "y"], gyroscopic=True, law=["v_y", "v_x"])]),
     r"module 'F' law: a gyroscopic force must do no work"),
    (lambda: Dynamics("F", inputs=["d"], outputs=["x"], bindings=[{"d": "x"}]),
     r"module 'F': bindings are supported on Potential"),
    (lambda: Dynamics("F", inputs=["v_x"], outputs=["x"], vanish_at_rest="no"),
     r"module 'F' vanish_at_rest: expected True or False.*Hint"),
    (lambda: Dissipation("D", inputs=["v_x"], passive=1),
     r"module 'D' passive: expected True or False.*Hint"),
    (lambda: Potential("V", inputs=["x"], grid=0), r"module 'V' grid: expected an integer in 1\.\.1000"),
    (lambda: Potential("V", inputs=["x"], hidden=[4, 0]), r"module 'V' hidden"),
    (lambda: Potential("V", inputs=["x"], hidden=[], mult=2), r"module 'V' mult"),
    (lambda: Potential("V", inputs=[]), r"module 'V' inputs: expected at least one"),
    (lambda: Potential("V", inputs=["x"], law="x.__class__"), r"module 'V' law.*attribute"),
    (lambda: Potential("V", inputs=["x"], constraints=[EvenIn]), r"module 'V' constraints"),
    (lambda: Potential("my V", inputs=["x"]), r"'my V' is not a valid name"),
    (lambda: Module("V", inputs=["x"]), r"Module is the base class"),
    (lambda: System("s", coords=["x"], modules=[Potential]), r"modules: expected"),
    # constraint hooks see the spec
    (lambda: System("s", coords=["x"], modules=[Potential("V", inputs=["x"],
                                                          constraints=[EvenIn("y")])]),
     r"EvenIn\('y'\) on module 'V': no such input"),
]


@pytest.mark.parametrize("build, match", SPEC_ERRORS)
def test_spec_errors_name_the_offender(build, match):
    with pytest.raises(SpecError, match=match):
        build()


def test_allowed_combinations():
    # Dynamics and Dissipation beside a Lagrangian are generalized forces
    spec = double_pendulum().replace(modules=double_pendulum().modules + (
        Dynamics("drive", inputs=["a"], outputs=["a"], law=["0.1*sin(a)"]),))
    assert spec.formulation == "lagrangian"
    # params may be module inputs; a module may have no law and no modules is a free particle
    System("s", coords=["x"], params={"k": 1.0}, modules=[Potential("V", inputs=["x", "k"])])
    assert System("free", coords=["x"]).modules == ()
    # a gyroscopic law may use the outputs' velocities and must be work-free up to algebra
    System("s", coords=["x", "y"], modules=[Dynamics(
        "F", inputs=["x"], outputs=["x", "y"], gyroscopic=True,
        law=["cos(x)**2*v_y + sin(x)**2*v_y", "-v_x"])])


def test_specs_survive_copy_deepcopy_and_pickle():
    import copy
    import pickle

    from pikan.spec.system import FrozenMap, Potential, System

    spec = System("s", coords=["x"], params={"k": 2.0},
                  modules=[Potential("V", inputs={"r": "sqrt(x**2)"}, law="k*r**2/2")])
    for clone in (copy.copy(spec), copy.deepcopy(spec), pickle.loads(pickle.dumps(spec))):
        assert clone == spec
    frozen = FrozenMap({"a": 1})
    assert copy.deepcopy(frozen) == frozen


def test_names_moved_out_of_spec_are_re_exported():
    # JSON and the binding helpers live in json.py and bindings.py; spec keeps the names
    from pikan.spec import bindings
    from pikan.spec import system as spec
    from pikan.spec import json as spec_json

    assert all_pairs is bindings.all_pairs and chain_pairs is bindings.chain_pairs
    assert register_constraint is spec_json.register_constraint
    assert spec.SPEC_VERSION == spec_json.SPEC_VERSION == 1
    assert [name for name in spec.__all__ if not hasattr(spec, name)] == []


# ------------------------------------------------------- KAN options: types and ranges


@pytest.mark.parametrize("options, match", [
    # each names the module, the option and the allowed range (issue 22: order=1000 passed
    # validation and failed in compile; jump="yes" and grid=10**9 were accepted)
    ({"order": 1000}, r"module 'V' order: expected an integer in 1\.\.5, got 1000\."),
    ({"order": 0}, r"module 'V' order: expected an integer in 1\.\.5, got 0\."),
    ({"order": 3.0}, r"module 'V' order: expected an integer in 1\.\.5, got 3\.0\."),
    ({"jump": "yes"}, r"module 'V' jump: expected True or False, got 'yes'\."),
    ({"jump": 1}, r"module 'V' jump: expected True or False, got 1\."),
    ({"grid": 10**9}, r"module 'V' grid: expected an integer in 1\.\.1000, got 1000000000\."),
    ({"grid": "5"}, r"module 'V' grid: expected an integer in 1\.\.1000, got '5'\."),
    ({"grid": True}, r"module 'V' grid: expected an integer in 1\.\.1000, got True\."),
    ({"hidden": [10**9]}, r"module 'V' hidden: expected a layer width in 1\.\.10000, got 1000000000\."),
    ({"hidden": [4, 2.5]}, r"module 'V' hidden: expected a layer width in 1\.\.10000, got 2\.5\."),
    ({"hidden": "4"}, r"module 'V' hidden: expected a list of layer widths \(integers in 1\.\.10000\)"),
    ({"hidden": None}, r"module 'V' hidden: expected a list of layer widths"),
    ({"hidden": [4] * 65}, r"module 'V' hidden: expected at most 64 hidden layers, got 65\."),
    ({"mult": -1}, r"module 'V' mult: expected an integer in 0\.\.10000, got -1\."),
    ({"hidden": [2], "mult": 10**6}, r"module 'V' mult: expected an integer in 0\.\.10000"),
])
def test_kan_options_are_checked_at_construction(options, match):
    with pytest.raises(SpecError, match=match):
        Potential("V", inputs=["x"], **options)
    # learn() builds the module again, so it checks them too
    truth = System("s", coords=["x"], modules=[Potential("V", inputs=["x"], law="x**2/2")])
    with pytest.raises(SpecError, match=match):
        truth.learn("V", **options)


def test_kan_option_ranges_bounds_are_accepted_and_match_the_kan():
    assert KAN_OPTION_RANGES["order"] == (1, MAX_ORDER)
    low = Potential("V", inputs=["x"], hidden=[1], grid=1, order=1, mult=0, jump=False)
    high = Potential("V", inputs=["x"], hidden=[10_000] * MAX_HIDDEN_LAYERS, grid=1000,
                     order=5, mult=10_000, jump=True)
    assert (low.hidden, low.grid, low.order, low.mult) == ((1,), 1, 1, 0)
    assert (high.grid, high.order, high.mult, high.jump) == (1000, 5, 10_000, True)
    assert Potential("V", inputs=["x"], hidden=[]).hidden == ()
    assert Potential("V", inputs=["x"], hidden=3).hidden == (3,)


def test_numpy_integers_are_kan_options_stored_as_int():
    m = Potential("V", inputs=["x"], hidden=np.array([4, 3]), grid=np.int64(7),
                  order=np.int32(2), mult=np.int64(1))
    assert (m.hidden, m.grid, m.order, m.mult) == ((4, 3), 7, 2, 1)
    assert all(type(v) is int for v in (*m.hidden, m.grid, m.order, m.mult))
    assert m == Potential("V", inputs=["x"], hidden=[4, 3], grid=7, order=2, mult=1)


@pytest.mark.parametrize("law, match", [
    ("exp(exp(exp(exp(1000))))*x", r"module 'V' law .*exp\(1000\) is outside double precision"),
    ("x**(10**300)", r"module 'V' law .*the exponent 1\.00e\+300 is beyond \+-1024"),
])
def test_laws_beyond_double_range_are_spec_errors_naming_the_module(law, match):
    # issue 22: these passed validation, then compile or evaluation raised OverflowError
    with pytest.raises(SpecError, match=match):
        System("s", coords=["x"], modules=[Potential("V", inputs=["x"], law=law)])
    truth = System("s", coords=["x"], modules=[Potential("V", inputs=["x"], law="x**2/2")])
    with pytest.raises(SpecError, match=match):
        truth.with_laws({"V": law})


# ------------------------------------------------------------------ units


def _oscillator(**changes):
    options = {"coords": ["x"], "params": {"k": 1.3, "c": 0.2},
               "units": {"x": "m", "k": "N/m", "c": "kg/s"},
               "modules": [Potential("V", inputs=["x"], law="k*x**2/2"),
                           Dissipation("D", inputs=["v_x"], law="c*v_x**2/2")]}
    options.update(changes)
    return System("osc", **options)


def test_units_give_every_module_its_input_and_value_units():
    spec = _oscillator()
    assert dict(spec.units) == {"x": "m", "k": "N/m", "c": "kg/s", "t": "s", "energy": "J"}
    assert spec.unit_of("v_x").dimension() == "m/s"
    v, d = spec.module_units("V"), spec.module_units("D")
    assert str(v["V"]) == "J" and str(d["D"]) == "W" and d["v_x"].dimension() == "m/s"
    pendulum = System("pendulum", coords=["th"], params={"g": 9.8, "l": 1.0},
                      units={"th": "rad", "g": "m/s**2", "l": "m", "energy": "J/kg"},
                      modules=[Potential("V", inputs={"c": "cos(th)"}, law="-g*l*c")])
    assert pendulum.module_units("V")["c"].dimensionless
    force = System("push", coords=["x"], units={"x": "m"},
                   modules=[Dynamics("F", inputs=["v_x"], outputs=["x"], law=["-0.3*v_x"])])
    assert str(force.module_units("F")["F[x]"]) == "N"


def test_units_round_trip_and_no_units_by_default():
    spec = _oscillator()
    assert System.from_json(spec.to_json()) == spec
    plain = _oscillator(units=None)
    assert dict(plain.units) == {} and "units" not in plain.to_dict()
    assert plain.module_units("V") == {}
    with pytest.raises(SpecError, match="has no units"):
        plain.unit_of("x")


@pytest.mark.parametrize("changes, match", [
    ({"units": {"x": "m", "k": "N/m"}}, "no units for 'c'"),
    ({"units": {"x": "m", "k": "N/m", "c": "kg/s", "y": "m"}}, "'y' is not a coordinate"),
    ({"units": {"x": "m", "k": "N/mm2", "c": "kg/s"}}, "units of 'k'"),
    ({"units": ["m"]}, "expected a dict"),
    ({"modules": [Potential("V", inputs=["x"], law="k*x**2/2 + x")]}, "not dimensionally"),
    ({"modules": [Potential("V", inputs=["x"], law="exp(x)")]}, "argument carries m"),
    ({"modules": [Dissipation("D", inputs=["v_x"], law="k*v_x**2")]}, "must carry"),
])
def test_unit_errors_are_named(changes, match):
    with pytest.raises(SpecError, match=match):
        _oscillator(**changes)


def test_numbers_in_a_law_may_carry_units():
    spec = _oscillator(modules=[Potential("V", inputs=["x"], law="0.65*x**2")])
    assert spec.module("V").law is not None


# ------------------------------------------------------------------ time as an input

def _driven(**changes):
    modules = [Potential("V", inputs=["x"], law="x**2/2"),
               Dynamics("drive", inputs=["t"], outputs=["x"], law=["0.3*cos(1.2*t)"])]
    return System("driven", coords=changes.pop("coords", ["x"]),
                  modules=changes.pop("modules", modules), **changes)


def test_a_module_of_time_makes_the_system_driven_and_time_ends_the_state():
    spec = _driven()
    assert spec.driven and spec.state_names == ("x", "v_x", "t")
    assert not System("free", coords=["x"], modules=[
        Potential("V", inputs=["x"], law="x**2/2")]).driven
    potential = _driven(modules=[Potential("V", inputs={"u": "x*cos(t)"}, law="u**2/2")])
    assert potential.driven  # a potential of time: allowed, energy not conserved
    back = System.from_json(spec.to_json())
    assert back.driven and back.module("drive").law == spec.module("drive").law


@pytest.mark.parametrize("changes, match", [
    ({"coords": ["t"], "modules": []}, "'t' is time"),
    ({"params": {"t": 1.0}}, "'t' is time"),
    ({"modules": [Lagrangian("L", inputs=["x", "v_x", "t"], law="v_x**2/2 - t*x")]},
     "Lagrangian that depends on time"),
])
def test_time_is_a_reserved_name_and_lagrangians_do_not_read_it(changes, match):
    with pytest.raises(SpecError, match=match):
        _driven(**changes)


# ------------------------------------------------------------------ first-order systems

def _lotka_volterra(**changes):
    modules = [Flow("prey", inputs=["x", "y"], outputs=["x"], law=["1.1*x - 0.4*x*y"]),
               Flow("predator", inputs=["x", "y"], outputs=["y"], law=["0.1*x*y - 0.4*y"])]
    return System("lv", coords=["x", "y"], order=1, modules=changes.pop("modules", modules),
                  **changes)


def test_a_first_order_system_has_no_velocities_and_round_trips():
    spec = _lotka_volterra()
    assert spec.order == 1 and spec.velocities == () and spec.state_names == ("x", "y")
    back = System.from_json(spec.to_json())
    assert back.order == 1 and back.module("prey").kind == "Flow"
    assert back.module("predator").law == spec.module("predator").law
    flow = System("flow", coords=["x"], order=1, modules=[
        Potential("V", inputs=["x"], law="x**4/4 - x**2/2"),
        Flow("drive", inputs=["t"], outputs=["x"], law=["0.2*sin(t)"])])
    assert flow.driven and flow.state_names == ("x", "t")


@pytest.mark.parametrize("build, match", [
    (lambda: _lotka_volterra(modules=[Dynamics("F", inputs=["x"], outputs=["x"])]),
     "first-order system .* not 'F' \\(Dynamics\\)"),
    (lambda: _lotka_volterra(masses=2.0), "no masses"),
    (lambda: System("s", coords=["x"], modules=[Flow("f", inputs=["x"], outputs=["x"])]),
     "only a first-order system"),
    (lambda: System("s", coords=["x"], order=3), "order"),
    (lambda: _lotka_volterra(modules=[Flow("f", inputs=["v_x"], outputs=["x"])]),
     "v_x"),
])
def test_first_order_rules_are_named(build, match):
    with pytest.raises(SpecError, match=match):
        build()
