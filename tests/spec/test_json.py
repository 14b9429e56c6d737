"""Tests for pikan/spec/json.py: specs to JSON and back, and the constraint registry.

The systems (``trap``, ``double_pendulum``) and the registered constraint stand-in
``EvenIn`` are the ones tests/test_spec.py builds; a constraint class may be
registered only once under its name, so they are imported from there rather than
defined again.
"""

import dataclasses
import json

import pytest
from test_system import EvenIn, double_pendulum, trap

from pikan.spec.bindings import chain_pairs
from pikan.errors import SpecError
from pikan.spec.json import MAX_NESTING
from pikan.spec.system import Dissipation, Dynamics, Potential, System


def chain():
    coords = ["x1", "x2", "x3"]
    return System("chain", coords=coords, masses=[1.0, 2.0, 3.0], params={"k": 2.0},
                  modules=[Potential("bond", inputs=["d"], law="k*d**2/2",
                                     bindings=chain_pairs(coords)),
                           Potential("wall", inputs={"u": "x1**2 + x3**2"}, law="u/2",
                                     constraints=[EvenIn("u")])])


@pytest.mark.parametrize("build", [
    trap,
    lambda: trap().learn("V", hidden=[4, 3], grid=7, order=2, mult=1).learn("F"),
    double_pendulum,
    lambda: double_pendulum().learn("L", constraints=[EvenIn("v_a")]),
    chain,
    lambda: chain().learn("bond").replace(masses="learn"),
    lambda: System("magnet", coords=["x", "y"], params={"B": 0.3}, velocities=["u", "w"],
                   modules=[Dynamics("Lorentz", inputs=["x", "y"], outputs=["x", "y"],
                                     gyroscopic=True, law=["B*w*(1 + x**2)", "-B*u*(1 + x**2)"]),
                            Dissipation("D", inputs=["u", "w"], law="0.05*(u**2 + w**2)")]),
])
def test_json_round_trip(build):
    spec = build()
    text = spec.to_json()
    json.loads(text)  # plain JSON
    again = System.from_json(text)
    assert again == spec
    assert again.to_json() == text
    assert hash(again) == hash(spec)


def test_identifiability_options_round_trip_and_default_when_absent():
    spec = System("s", coords=["x"], modules=[
        Potential("V", inputs=["x"]),
        Dynamics("F", inputs=["v_x"], outputs=["x"], vanish_at_rest=False),
        Dissipation("D", inputs=["v_x"], passive=False)])
    data = spec.to_dict()
    fields = {m["name"]: m for m in data["modules"]}
    assert fields["F"]["vanish_at_rest"] is False and fields["D"]["passive"] is False
    assert System.from_json(spec.to_json()) == spec
    for m in data["modules"]:  # a file written before the options: the defaults, True
        m.pop("vanish_at_rest", None)
        m.pop("passive", None)
    again = System.from_dict(data)
    assert again.module("F").vanish_at_rest and again.module("D").passive
    data["modules"][2]["passive"] = "yes"
    with pytest.raises(SpecError, match="passive: expected True or False"):
        System.from_dict(data)


def test_json_covers_every_module_kind():
    kinds = {m.kind for b in (trap, double_pendulum, chain) for m in b().modules}
    assert kinds == {"Potential", "Dynamics", "Dissipation", "Lagrangian"}


def test_json_floats_are_exact():
    value = 0.1 + 0.2  # not representable in 15 digits
    spec = System("s", coords=["x"], params={"k": value},
                  modules=[Potential("V", inputs=["x"], law=f"{value!r}*k*x**2")])
    again = System.from_json(spec.to_json())
    assert again == spec and again.params["k"] == value


def test_json_errors_and_unsafe_text():
    data = chain().to_dict()
    data["modules"][0]["law"] = "__import__('os').system('touch pwned')"
    with pytest.raises(SpecError, match="module 'bond' law"):
        System.from_dict(data)
    cases = [
        (lambda d: d.update(pikan_spec=99), "pikan_spec"),
        (lambda d: d.update(colour="red"), "unknown field 'colour'"),
        (lambda d: d["modules"][0].update(kind="Potentail"), r"Did you mean 'Potential'\?"),
        (lambda d: d["modules"][0].update(gird=5), r"unknown field 'gird'.*Did you mean 'grid'"),
        (lambda d: d["modules"][1]["constraints"].append({"type": "Evenn", "name": "u"}),
         r"unknown constraint type 'Evenn'.*Did you mean 'EvenIn'\?"),
        (lambda d: d["modules"][1]["constraints"].append({"type": "EvenIn", "nme": "u"}),
         "constraint EvenIn cannot be built"),
        (lambda d: d["modules"][0].pop("inputs"), "'inputs' is missing"),
    ]
    for change, match in cases:
        data = chain().to_dict()
        change(data)
        with pytest.raises(SpecError, match=match):
            System.from_dict(data)
    with pytest.raises(SpecError, match="not valid JSON"):
        System.from_json("{not json")


def test_unregistered_constraint_cannot_be_written():
    @dataclasses.dataclass(frozen=True)
    class Private:
        name: str

    spec = trap().learn("V", constraints=[Private("x")])
    with pytest.raises(SpecError, match="'Private' is not registered"):
        spec.to_json()


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # was a RecursionError from the JSON decoder
    '{"pikan_spec": 1, "name": "s", "coords": ["x"], "params": '
    + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}",
    '{"pikan_spec": 1, "name": "s", "coords": ["x"], "params": '
    + '{"a": ' * 200 + "1" + "}" * 200 + "}",  # decodes, then refused by depth
])
def test_deeply_nested_json_is_a_spec_error(text):
    with pytest.raises(SpecError, match=f"nested deeper than {MAX_NESTING} levels"):
        System.from_json(text)


def test_from_dict_refuses_self_containing_and_deep_dicts():
    data = chain().to_dict()
    data["params"] = data  # a cycle: walked without recursion, refused by depth
    with pytest.raises(SpecError, match="nested deeper than"):
        System.from_dict(data)
    data = chain().to_dict()
    deep = []
    for _ in range(MAX_NESTING):
        deep = [deep]
    data["modules"][1]["constraints"][0]["name"] = deep
    with pytest.raises(SpecError, match="nested deeper than"):
        System.from_dict(data)


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(order=1000), r"module 'bond' order: expected an integer in 1\.\.5, "
                                     r"got 1000"),
    (lambda m: m.update(jump="yes"), r"jump: expected True or False, got 'yes'"),
    (lambda m: m.update(grid=5.5), r"grid: expected an integer in 1\.\.1000, got 5\.5"),
    (lambda m: m.update(hidden={"a": 1}), r"hidden: expected a list of layer widths"),
    (lambda m: m.update(law="exp(exp(exp(exp(1000))))*d"),
     r"module 'bond' law .*exp\(1000\) is outside double precision range"),
    (lambda m: m.update(law="d**(10**300)"), r"module 'bond' law .*the exponent 1\.00e\+300"),
])
def test_bad_kan_options_and_laws_in_json_are_spec_errors(change, match):
    data = chain().to_dict()
    change(data["modules"][0])
    with pytest.raises(SpecError, match=match):
        System.from_json(json.dumps(data))


def test_a_field_added_later_leaves_the_json_of_older_specs_unchanged():
    # Conserved gained `weights` (first-order sums); checkpoints compare spec JSON as text,
    # so specs without it must write what they wrote before
    from pikan.constraints import Conserved

    energy = System("h", coords=["x"], constraints=[Conserved("energy")],
                    modules=[Potential("V", inputs=["x"], law="x**2/2")])
    data = json.loads(energy.to_json())
    assert data["constraints"][0] == {"type": "Conserved", "mode": "hard", "weight": 1.0,
                                      "quantity": "energy", "groups": None, "vectors": None}
    assert System.from_json(energy.to_json()) == energy
