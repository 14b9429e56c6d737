"""The package's layout keeps: imports run one way, no cycles, no hidden seams.

DESIGN.md's order is ``spec <- kan <- model <- data <- train <- laws <- inspect <-
discover <- cli``; ``constraints`` sit between ``kan`` and the model's compiler (they
depend on the spec, the KAN and the expression compiler ``model.torch_expr``, and
``model.compile`` applies them), and ``systems`` use the public API only. The imports
are read with :mod:`ast` from the source files (nothing is imported), so the rules hold
for every file, including ones no test imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"pikan": REPO / "pikan", "pikan.constraints": REPO / "constraints",
         "pikan.systems": REPO / "systems"}

LAYERS = [
    ("pikan._version", "pikan.errors"),
    ("pikan.spec",),
    ("pikan.kan",),
    ("pikan.model.torch_expr", "pikan.model.mechanics"),
    ("pikan.constraints",),
    ("pikan.model",),
    ("pikan.data",),
    ("pikan.train",),
    ("pikan.laws",),
    ("pikan.inspect",),
    ("pikan.discover",),
    ("pikan",),
    ("pikan.systems",),
    ("pikan.cli", "pikan.__main__"),
]
"""Layers from the bottom up; a module may import its own layer and those below it.
A module belongs to the layer of the longest prefix that names it."""

LAZY_ALLOWED = {"matplotlib", "matplotlib.pyplot", "pandas", "pykan", "kan", "pysindy",
                "gplearn", "sklearn", "tqdm"}
"""Heavy optional dependencies a function may import lazily, where it needs them."""


def _modules() -> dict[str, Path]:
    out = {}
    for package, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _layer(name: str) -> int:
    best, rank = -1, None
    for index, names in enumerate(LAYERS):
        for prefix in names:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank is not None, f"{name} is in no layer of LAYERS: add it"
    return rank


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


class _Imports(ast.NodeVisitor):
    """Every import of a file: (target module, imported names, in a function?, line)."""

    def __init__(self, module: str):
        self.module, self.depth, self.found = module, 0, []

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((alias.name, (), self.depth > 0, node.lineno))

    def visit_ImportFrom(self, node):
        target = _resolve(self.module, node)
        names = tuple(a.name for a in node.names)
        for name in names:  # `from pikan.x import y` with y a module is an import of x.y
            if f"{target}.{name}" in MODULES:
                self.found.append((f"{target}.{name}", (), self.depth > 0, node.lineno))
                names = tuple(n for n in names if n != name)
        if names:
            self.found.append((target, names, self.depth > 0, node.lineno))


def _imports(module: str) -> list[tuple[str, tuple, bool, int]]:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    visitor = _Imports(module)
    visitor.visit(tree)
    return visitor.found


def _ours(target: str) -> str | None:
    """The module of this package that an import target names, or None."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


IMPORTS = {m: _imports(m) for m in MODULES}


def test_every_module_is_in_a_layer_and_every_package_is_installed():
    for module in MODULES:
        _layer(module)
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    installed = set(config["tool"]["setuptools"]["packages"])
    packages = {m for m in MODULES if _is_package(m)}
    assert packages == installed, ("pyproject's [tool.setuptools] packages must list every "
                                   f"package folder: missing {packages - installed}, "
                                   f"extra {installed - packages}")


def test_imports_run_down_the_layers():
    upward = []
    for module, found in IMPORTS.items():
        for target, _, _, line in found:
            ours = _ours(target)
            if ours is None or ours == module:
                continue
            if ours.startswith(module + ".") and _is_package(module):
                continue  # a package's __init__ re-exporting its own modules
            if _layer(ours) > _layer(module):
                upward.append(f"{MODULES[module].relative_to(REPO)}:{line} {module} imports "
                              f"{ours} (layer {_layer(ours)} > {_layer(module)})")
    assert not upward, "imports must run one way (DESIGN.md):\n" + "\n".join(upward)


def test_there_are_no_import_cycles():
    graph = {m: sorted({_ours(t) for t, *_ in found} - {None, m}) for m, found in IMPORTS.items()}
    # a package's __init__ importing its own modules is how it re-exports them, not a cycle
    graph = {m: [t for t in ts if not (_is_package(m) and t.startswith(m + "."))]
             for m, ts in graph.items()}
    for m, ts in list(graph.items()):  # importing pikan.a.b runs pikan/a/__init__.py first
        graph[m] = sorted(set(ts) | {p for t in ts for p in _parents(t) if p != m
                                     and not m.startswith(p + ".")})
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]


def test_no_imports_hidden_in_function_bodies_and_no_importlib():
    hidden = []
    for module, found in IMPORTS.items():
        for target, _, in_function, line in found:
            where = f"{MODULES[module].relative_to(REPO)}:{line}"
            if target == "importlib" or target.startswith("importlib."):
                hidden.append(f"{where} imports importlib (import the module by name)")
            elif in_function and target.split(".")[0] not in {t.split(".")[0]
                                                              for t in LAZY_ALLOWED}:
                hidden.append(f"{where} imports {target} inside a function")
    assert not hidden, "\n".join(hidden)


def test_no_module_imports_another_modules_private_names():
    private = []
    for module, found in IMPORTS.items():
        for target, names, _, line in found:
            ours = _ours(target)
            if ours is None or ours == module:
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    private.append(f"{MODULES[module].relative_to(REPO)}:{line} imports "
                                   f"{name} from {ours}")
    assert not private, "\n".join(private)


def test_no_module_reaches_into_an_imported_modules_private_names():
    # `alias._name` where alias is a pikan module imported by this file
    reach = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, node)
                aliases |= {a.asname or a.name for a in node.names
                            if f"{target}.{a.name}" in MODULES}
            elif isinstance(node, ast.Import):
                aliases |= {(a.asname or a.name).split(".")[0] for a in node.names
                            if _ours(a.name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                    and node.value.id in aliases):
                reach.append(f"{path.relative_to(REPO)}:{node.lineno} "
                             f"{node.value.id}.{node.attr}")
    assert not reach, "\n".join(reach)


def test_the_spec_layer_never_imports_torch():
    offenders = [f"{m}:{line}" for m, found in IMPORTS.items() if m.startswith("pikan.spec")
                 for target, _, _, line in found if target.split(".")[0] == "torch"]
    assert not offenders, offenders


def test_the_rules_catch_what_they_claim(tmp_path):
    # the checks themselves: an upward import, a private import and a hidden import are seen
    assert _layer("pikan.spec.system") < _layer("pikan.model.compile") < _layer("pikan.laws.law")
    assert _layer("pikan.model.torch_expr") < _layer("pikan.constraints.base") \
        < _layer("pikan.model.compile")
    source = ("from pikan.laws.law import Law\n"
              "from pikan.spec.expr import _private\n"
              "def f():\n    from pikan.model import compile\n")
    tree = ast.parse(source)
    visitor = _Imports("pikan.spec.system")
    visitor.visit(tree)
    found = {(t, names, inside) for t, names, inside, _ in visitor.found}
    assert ("pikan.laws.law", ("Law",), False) in found
    assert ("pikan.spec.expr", ("_private",), False) in found
    assert ("pikan.model.compile", (), True) in found
