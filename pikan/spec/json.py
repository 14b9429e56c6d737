"""The JSON side of specs: the constraint registry and the layout of a spec as JSON.

:meth:`pikan.spec.system.System.to_json` / :meth:`~pikan.spec.system.System.from_json` (and the
``to_dict`` / ``from_dict`` pairs of systems and modules) delegate here. A spec is
written as plain JSON values with every expression as text, and read back through
the safe expression parser (:func:`pikan.spec.expr.parse`), never ``eval``. Constraints are
written as ``{"type": ClassName, **fields}`` and found again by name in the registry
that :func:`register_constraint` fills.

:mod:`pikan.spec.system` imports this file (and re-exports :func:`register_constraint`);
this file never imports it: it writes a module from its dataclass fields (plus the
kind's ``JSON_EXTRA`` fields), and the reader is handed the classes to build (the module
kinds by name, the system class). It never imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pikan.errors import SpecError
from pikan.spec.expr import did_you_mean, to_string

__all__ = [
    "MAX_NESTING",
    "SPEC_VERSION",
    "module_to_dict",
    "register_constraint",
    "system_from_dict",
    "system_from_json",
    "system_to_dict",
    "system_to_json",
]

SPEC_VERSION = 1
"""Version of the JSON layout written by :meth:`System.to_json`."""

MAX_NESTING = 64
"""Deepest nesting of JSON arrays and objects accepted in a spec; a spec written by
:meth:`System.to_json` nests at most about 8 deep."""


# ----------------------------------------------------------------- constraint registry

_CONSTRAINT_TYPES: dict[str, type] = {}


def register_constraint(cls: type) -> type:
    """Class decorator: make a constraint class known to the JSON layer.

    A constraint is a frozen dataclass whose init fields are JSON values (str, numbers,
    bool, None, and tuples/lists/dicts of those; store sequences as tuples so a spec
    read back from JSON compares equal). It is written as
    ``{"type": ClassName, **fields}`` and read back through this registry.

    If the class defines ``check_spec(system, module)``, :meth:`System.validate` calls it
    for every instance attached to a module (``module`` is that module) or to the
    system (``module`` is None); it raises :class:`SpecError` when the constraint does
    not fit the spec (an unknown input name, a contradiction).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"register_constraint expects a dataclass type, got {cls!r}")
    known = _CONSTRAINT_TYPES.get(cls.__name__)
    if known is not None and known is not cls and (
        (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__)
    ):
        raise SpecError(f"constraint type {cls.__name__!r} is already registered by "
                        f"{known.__module__}.{known.__qualname__}; rename one of them.")
    _CONSTRAINT_TYPES[cls.__name__] = cls
    return cls


def _json_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"{where}: the value {value!r} is not finite and cannot be written "
                            "to JSON.")
        return value
    if isinstance(value, (tuple, list)):
        return [_json_value(v, where) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v, where) for k, v in value.items()}
    raise SpecError(f"{where}: cannot write a {type(value).__name__} to JSON; constraint fields "
                    "must be strings, numbers, booleans, None or sequences of those.")


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _constraint_to_dict(constraint: Any, where: str) -> dict:
    cls = type(constraint)
    if _CONSTRAINT_TYPES.get(cls.__name__) is not cls:
        raise SpecError(f"{where}: constraint type {cls.__name__!r} is not registered; decorate "
                        "its class with @pikan.spec.system.register_constraint to write it to JSON.")
    out = {"type": cls.__name__}
    for f in dataclasses.fields(constraint):
        value = getattr(constraint, f.name)
        if value is None and f.metadata.get("json_omit_none"):
            continue  # a field added later: the JSON of specs without it stays as it was
        if f.init:
            out[f.name] = _json_value(value, f"{where} {cls.__name__}")
    return out


def _constraint_from_dict(data: Any, where: str) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise SpecError(f"{where}: a constraint must be a JSON object with a 'type', got "
                        f"{data!r}.")
    name = data["type"]  # pikan.constraints registers its classes when pikan is imported
    if name not in _CONSTRAINT_TYPES:
        raise SpecError(f"{where}: unknown constraint type {name!r}; known types: "
                        f"{', '.join(sorted(_CONSTRAINT_TYPES)) or 'none'}."
                        + did_you_mean(name, _CONSTRAINT_TYPES))
    fields = {k: _tuples(v) for k, v in data.items() if k != "type"}
    try:
        return _CONSTRAINT_TYPES[name](**fields)
    except TypeError as error:
        raise SpecError(f"{where}: constraint {name} cannot be built from {fields}: {error}.") from None


# ------------------------------------------------------------------------ modules


def module_to_dict(module) -> dict:
    """A JSON-ready dict of one module; :func:`system_from_dict` reads it back.

    Parameters
    ----------
    module : pikan.spec.system.Module
        Its kind's ``JSON_EXTRA`` fields are written too: a :class:`Dynamics` its
        ``outputs``, ``gyroscopic`` and ``vanish_at_rest``, a :class:`Dissipation` its
        ``passive`` (files without them read back with the defaults, True).

    Returns
    -------
    dict
        ``kind``, ``name``, ``inputs`` (a list of names, or name -> expression text
        when the module has features), ``law`` (text, a list of text per output, or
        None), the KAN options, ``constraints`` and ``bindings``.
    """
    where = f"module {module.name!r}"
    if module.features:
        inputs: Any = {k: to_string(e) for k, e in module.inputs.items()}
    else:
        inputs = list(module.inputs)
    if module.law is None:
        law: Any = None
    elif isinstance(module.law, tuple):
        law = [to_string(e) for e in module.law]
    else:
        law = to_string(module.law)
    out = {"kind": module.kind, "name": module.name, "inputs": inputs, "law": law,
           "hidden": list(module.hidden), "grid": module.grid, "order": module.order,
           "mult": module.mult, "jump": module.jump,
           "constraints": [_constraint_to_dict(c, where) for c in module.constraints],
           "bindings": [{k: to_string(e) for k, e in b.items()} for b in module.bindings]}
    for name in module.JSON_EXTRA:
        value = getattr(module, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _check_fields(where: str, data, allowed: set, required: Sequence[str]) -> None:
    """SpecError for a key of ``data`` not in ``allowed`` or a ``required`` key missing."""
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}: unknown field {key!r}." + did_you_mean(key, allowed))
    for key in required:
        if key not in data:
            raise SpecError(f"{where}: the field {key!r} is missing.")


def _module_from_dict(data: Any, where: str, kinds: Mapping[str, type]) -> Any:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a JSON object for a module, got {data!r}.")
    kind = data.get("kind")
    if kind not in kinds:
        raise SpecError(f"{where}: unknown module kind {kind!r}; expected one of "
                        f"{', '.join(kinds)}." + did_you_mean(str(kind), kinds))
    cls = kinds[kind]
    where = f"{where} ({kind} {data.get('name')!r})"
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {k: v for k, v in data.items() if k != "kind"}
    _check_fields(where, kwargs, allowed, ("name", "inputs"))
    kwargs["constraints"] = tuple(_constraint_from_dict(c, f"{where} constraints")
                                  for c in kwargs.get("constraints") or ())
    return cls(**kwargs)


# ------------------------------------------------------------------------- system


def system_to_dict(system) -> dict:
    """A JSON-ready dict of a system (expressions as text); :func:`system_from_dict` reads it."""
    where = f"system {system.name!r}"
    return {
        "pikan_spec": SPEC_VERSION,
        "name": system.name,
        "coords": list(system.coords),
        "velocities": list(system.velocities),
        "masses": list(system.masses) if isinstance(system.masses, tuple) else system.masses,
        "params": dict(system.params),
        "constraints": [_constraint_to_dict(c, where) for c in system.constraints],
        "modules": [m.to_dict() for m in system.modules],
        **({"units": dict(system.units)} if system.units else {}),
        **({"order": system.order} if system.order != 2 else {}),
    }


def system_to_json(system, indent: int | None = 2) -> str:
    """A system as JSON text; ``system_from_json(System, system_to_json(s)) == s``."""
    return json.dumps(system.to_dict(), indent=indent, allow_nan=False)


def system_from_dict(cls: type, data: Any, kinds: Mapping[str, type]) -> Any:
    """Read a spec written by :func:`system_to_dict`; expressions go through the safe parser.

    Parameters
    ----------
    cls : type
        :class:`pikan.spec.system.System` (or a subclass) to build.
    data : dict
        The JSON object.
    kinds : mapping
        Module kind name -> module class (:data:`pikan.spec.system.MODULE_KINDS`).
    """
    if not isinstance(data, dict):
        raise SpecError(f"spec JSON: expected an object, got {type(data).__name__}.")
    _check_nesting(data)
    version = data.get("pikan_spec")
    if version != SPEC_VERSION:
        raise SpecError(f"spec JSON: 'pikan_spec' is {version!r}; this pikan reads version "
                        f"{SPEC_VERSION}.")
    allowed = {f.name for f in dataclasses.fields(cls)} | {"pikan_spec"}
    _check_fields("spec JSON", data, allowed, ("name", "coords"))
    where = f"spec JSON system {data['name']!r}"
    modules = data.get("modules") or []
    if not isinstance(modules, list):
        raise SpecError(f"{where}: 'modules' must be a list.")
    return cls(
        name=data["name"],
        coords=data["coords"],
        modules=tuple(_module_from_dict(m, f"{where} module {i}", kinds)
                      for i, m in enumerate(modules)),
        masses=data.get("masses", 1.0),
        params=data.get("params") or {},
        constraints=tuple(_constraint_from_dict(c, f"{where} constraints")
                          for c in data.get("constraints") or ()),
        velocities=data.get("velocities") or None,
        units=data.get("units") or {},
        order=data.get("order", 2),
    )


def _check_nesting(data: Any) -> None:
    """SpecError when lists and dicts nest deeper than :data:`MAX_NESTING` (walked
    without recursion, so a self-containing dict is refused too)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth > MAX_NESTING:
            raise SpecError(f"spec JSON: arrays and objects nested deeper than {MAX_NESTING} "
                            "levels; a spec nests about 8 deep.")
        stack.extend((child, depth + 1) for child in children)


def system_from_json(cls: type, text: str) -> Any:
    """Read a spec written by :func:`system_to_json` (through ``cls.from_dict``)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as error:
        raise SpecError(f"spec JSON: not valid JSON ({error}).") from None
    except RecursionError:  # the decoder recurses once per level of nesting
        raise SpecError(f"spec JSON: arrays and objects nested deeper than {MAX_NESTING} "
                        "levels; a spec nests about 8 deep.") from None
    return cls.from_dict(data)
