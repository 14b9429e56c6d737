r"""What a trained model says about the physics: importance, structure, energy drift.

- :func:`importance`: per module, how much each named input matters (KAN 2.0 attribution
  for KAN blocks; gradient sensitivity for law blocks), and for the whole system how much
  each state variable matters for each acceleration (through features, gradient nodes and
  modules).
- :func:`structure`: tests on one learned module (additive and multiplicative
  separability, by the same statistics as law extraction's structure tests; swap symmetry,
  parity), each with a statistic and a verdict, and spec rewrites that
  :meth:`Suggestion.apply` performs.
- :func:`energy_drift`: relative change of the model's energy along trajectories.

Sensitivity of output ``y`` to input ``z_i`` on data is
:math:`S_i = \mathrm{mean}|\partial y / \partial z_i| \cdot \mathrm{std}(z_i)`: the change of
``y`` when ``z_i`` moves by its typical spread. Scores are normalized to sum to one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from pikan import constraints as library
from pikan.errors import SpecError
from pikan.kan.attribution import scores as kan_scores
from pikan.laws.generators.separability import (
    additive_coupling,
    derivatives,
    groups,
    multiplicative_coupling,
)


def model_states(model, data) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(q, v, t)`` tensors in the model's dtype from Trajectories, a ``(q, v)`` pair or a
    ``(q, v, t)`` triple; ``t`` (N,) is None for a pair."""
    dtype = next(iter(model.buffers()), torch.zeros((), dtype=torch.float64)).dtype
    device = next(iter(model.buffers()), torch.zeros(())).device
    if hasattr(data, "states"):
        data.check_coords(model.coords)
        if getattr(model, "order", 2) == 1 and not data.has_velocities:
            data = data.with_derivatives()  # a first-order system's velocities are its rates
        q, v, _ = data.states()
        t = data.times()
    else:
        q, v, t = (*data, None) if len(data) == 2 else data

    def tensor(x):
        if x is None or isinstance(x, torch.Tensor):
            return None if x is None else x.detach().to(dtype=dtype, device=device)
        # a copy: Trajectories arrays are read-only, torch wants writable memory
        return torch.tensor(np.array(x), dtype=dtype, device=device)

    return tensor(q), tensor(v), tensor(t)


def _subsample(q: Tensor, v: Tensor, t: Tensor | None, limit: int, seed: int
               ) -> tuple[Tensor, Tensor, Tensor | None]:
    if q.shape[0] <= limit:
        return q, v, t
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(q.shape[0], generator=g)[:limit].to(q.device)
    return q[idx], v[idx], None if t is None else t[idx]


def _normalized(values: dict[str, float]) -> dict[str, float]:
    total = sum(values.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in values.items()}


def _sensitivity(fn, z: Tensor) -> Tensor:
    """mean |d fn / d z_i| * std(z_i) per input, summed over outputs: (n_inputs,)."""
    zg = z.detach().clone().requires_grad_(True)
    out = fn(zg)
    out = out.reshape(out.shape[0], -1)
    total = torch.zeros(z.shape[1], dtype=z.dtype, device=z.device)
    for k in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[:, k].sum(), zg, retain_graph=True)
        total = total + grad.abs().mean(0) * z.std(0)
    return total.detach()


@dataclass(frozen=True)
class Importance:
    """Importance scores of a model on data.

    Attributes
    ----------
    modules : dict
        ``modules[name][input]``: normalized importance of each named input of each module
        (sums to one per module). KAN blocks use KAN 2.0 attribution scores; law blocks use
        gradient sensitivity (module docstring).
    system : dict
        ``system[acceleration][state]``: normalized sensitivity of each acceleration to each
        state variable (coordinates and velocities), through the whole model.
    """

    modules: dict[str, dict[str, float]]
    system: dict[str, dict[str, float]]

    def __getitem__(self, name: str) -> dict[str, float]:
        if name in self.modules:
            return self.modules[name]
        if name in self.system:
            return self.system[name]
        raise SpecError(f"importance has no module or acceleration {name!r}; modules: "
                        f"{sorted(self.modules)}, accelerations: {sorted(self.system)}.")

    def __str__(self) -> str:
        lines = []
        for name, table in {**self.modules, **self.system}.items():
            ranked = sorted(table.items(), key=lambda kv: -kv[1])
            lines.append(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in ranked))
        return "\n".join(lines)


def importance(model, data, max_samples: int = 2000, seed: int = 0) -> Importance:
    """Per-module input importance and system-level state importance.

    Parameters
    ----------
    model : pikan.Model
    data : Trajectories or (q, v) arrays of shape (N, n)
    max_samples : int
        States are subsampled to at most this many (seeded).

    Returns
    -------
    Importance
    """
    q, v, t = _subsample(*model_states(model, data), max_samples, seed)
    modules = {}
    for name, block in model.blocks.items():
        z = model.module_inputs(name, q, v, t).detach()
        kan = block.kan
        if kan is not None and not block.gyroscopic_learned and not block.wrappers:
            raw = kan_scores(kan, z / block.input_scale).inputs
            values = dict(zip(block.input_names, raw.values()))
        else:
            values = dict(zip(block.input_names, _sensitivity(block.function, z).tolist()))
        modules[name] = _normalized(values)
    first_order = getattr(model, "order", 2) == 1
    state = (q if first_order else torch.cat([q, v], dim=1)).detach()
    n = model.n_coords
    names = list(model.coords) + list(model.velocities)
    system = {}
    sg = state.clone().requires_grad_(True)
    acc = model.derivative(sg[:, :n], sg[:, n:], t)
    for j, coord in enumerate(model.coords):
        (grad,) = torch.autograd.grad(acc[:, j].sum(), sg, retain_graph=True)
        values = (grad.abs().mean(0) * state.std(0)).tolist()
        key = f"d{coord}/dt" if first_order else f"a_{coord}"
        system[key] = _normalized(dict(zip(names, values)))
    return Importance(modules, system)


# ---------------------------------------------------------------------- structure
@dataclass(frozen=True)
class Suggestion:
    """A spec rewrite suggested by a structure test.

    Attributes
    ----------
    kind : str
        ``"split"`` (additive separability: one module per group of inputs),
        ``"constraint"`` (add a constraint to the module).
    module : str
    text : str
        Human-readable description, e.g. ``"V(x, y) = f(x) + g(y): split into two Potentials"``.
    groups : tuple of tuple of str
        For ``"split"``: the input groups of the new modules.
    constraint : object, optional
        For ``"constraint"``: the constraint to add.
    """

    kind: str
    module: str
    text: str
    groups: tuple[tuple[str, ...], ...] = ()
    constraint: object = None

    def apply(self, spec):
        """The spec with this rewrite applied (a new System)."""
        module = spec.module(self.module)
        if self.kind == "constraint":
            new = module.replace(constraints=(*module.constraints, self.constraint))
            return spec.replace(modules=tuple(new if m.name == module.name else m
                                              for m in spec.modules))
        if self.kind != "split":
            raise SpecError(f"unknown suggestion kind {self.kind!r}")
        parts = []
        for group in self.groups:
            inputs = {k: e for k, e in module.inputs.items() if k in group}
            parts.append(module.replace(name=f"{module.name}_{'_'.join(group)}",
                                        inputs=inputs, law=None))
        modules = []
        for m in spec.modules:
            modules += parts if m.name == module.name else [m]
        return spec.replace(modules=tuple(modules))

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Test:
    """One structure test: its statistic (0 = property holds exactly) and verdict."""

    name: str
    inputs: tuple[str, ...]
    statistic: float
    holds: bool


@dataclass(frozen=True)
class Structure:
    """Results of :func:`structure` on one module."""

    module: str
    tests: list[Test]
    suggestions: list[Suggestion] = field(default_factory=list)

    def get(self, name: str, *inputs: str) -> Test:
        """The test called ``name`` on these inputs (e.g. ``get("additive", "x", "y")``)."""
        for test in self.tests:
            if test.name == name and (not inputs or test.inputs == tuple(inputs)):
                return test
        raise SpecError(f"no structure test {name!r} on {inputs} for module {self.module!r}.")

    def __str__(self) -> str:
        lines = [f"structure of module {self.module!r}:"]
        for t in self.tests:
            verdict = "yes" if t.holds else "no"
            lines.append(f"  {t.name:>15}({', '.join(t.inputs)}): {verdict:>3}  "
                         f"(statistic {t.statistic:.2e})")
        lines += [f"  suggestion: {s}" for s in self.suggestions]
        return "\n".join(lines)


def structure(model, data, module: str, threshold: float = 0.05, max_samples: int = 1000,
              seed: int = 0) -> Structure:
    r"""Test separability, symmetry and parity of a scalar module on its data.

    Statistics (0 when the property holds exactly):

    - additive separability of inputs ``i, j``: the coupling :math:`C_{ij}` of law
      extraction's structure tests (:mod:`pikan.laws.generators.separability`), the RMS of
      the mixed partial :math:`f_{ij}\,\sigma_i\sigma_j` over the RMS size of the whole
      gradient :math:`(\sum_k \mathrm{RMS}(f_k \sigma_k)^2)^{1/2}` (:math:`\sigma` the
      spread of the inputs; the larger of :math:`C_{ij}, C_{ji}`);
    - multiplicative separability: the same coupling of :math:`\log|f|` (zero iff
      ``log|f|`` is additively separable), on the samples where :math:`f` is not near 0
      (:func:`~pikan.laws.generators.separability.multiplicative_coupling`);
    - swap symmetry of ``i, j``: :math:`\mathrm{rms}(f(z) - f(z_{i \leftrightarrow j})) /
      \mathrm{std}(f)`;
    - parity (even) in ``i``: :math:`\mathrm{rms}(f(z) - f(z_i 	o -z_i)) / \mathrm{std}(f)`.

    A property is accepted when its statistic is below ``threshold``. The split suggestion
    groups the inputs that are not additively separable (connected components).

    Parameters
    ----------
    model : pikan.Model
    data : Trajectories or (q, v)
    module : str
        Name of a scalar module (Potential, Dissipation, Lagrangian).

    Returns
    -------
    Structure
    """
    block = model.block(module)
    if not block.scalar:
        raise SpecError(f"structure tests need a scalar module; {module!r} is a {block.kind} "
                        "with vector output. Hint: test one of its outputs by hand.")
    q, v, t = _subsample(*model_states(model, data), max_samples, seed)
    z = model.module_inputs(module, q, v, t).detach()
    names = block.input_names

    def fn(zt: Tensor) -> Tensor:  # float64 on the CPU in, as the separability tests work
        return block.function(zt.to(dtype=z.dtype, device=z.device))[:, 0].to(
            dtype=torch.float64, device="cpu")

    samples = z.to(dtype=torch.float64, device="cpu").numpy()
    derivs = derivatives(fn, samples)
    additive = additive_coupling(derivs, samples)
    additive = np.maximum(additive, additive.T)
    multiplicative = multiplicative_coupling(derivs, samples)
    multiplicative = np.maximum(multiplicative, multiplicative.T)
    with torch.no_grad():
        f = block.function(z)[:, 0]
    scale = float(f.std()) + 1e-300
    tests = []
    for i, j in itertools.combinations(range(len(names)), 2):
        pair = (names[i], names[j])
        stat = float(additive[i, j])
        tests.append(Test("additive", pair, stat, stat < threshold))
        stat = float(multiplicative[i, j])
        tests.append(Test("multiplicative", pair, stat, stat < threshold))
        swapped = z.clone()
        swapped[:, [i, j]] = z[:, [j, i]]
        with torch.no_grad():
            diff = block.function(swapped)[:, 0] - f
        stat = float(diff.pow(2).mean().sqrt() / scale)
        tests.append(Test("swap symmetric", pair, stat, stat < threshold))
    for i, name in enumerate(names):
        flipped = z.clone()
        flipped[:, i] = -z[:, i]
        with torch.no_grad():
            diff = block.function(flipped)[:, 0] - f
        stat = float(diff.pow(2).mean().sqrt() / scale)
        tests.append(Test("even", (name,), stat, stat < threshold))
    parts = groups(additive, threshold)
    return Structure(module, tests, _suggest(block, names, tests, parts))


def _suggest(block, names, tests, parts: list[list[int]]) -> list[Suggestion]:
    """Spec rewrites: a split into the groups ``parts`` (input indices) of additively
    separable inputs, and the symmetry and parity constraints that hold."""
    suggestions = []
    if len(parts) > 1:
        split = tuple(tuple(names[i] for i in part) for part in parts)
        pieces = " + ".join(f"f{k + 1}({', '.join(g)})" for k, g in enumerate(split))
        suggestions.append(Suggestion(
            "split", block.name,
            f"{block.name}({', '.join(names)}) = {pieces}: split into {len(split)} "
            f"{block.kind} modules", groups=split))
    declared = set(block.spec.constraints)
    for t in tests:
        if t.name == "swap symmetric" and t.holds and hasattr(library, "Symmetric"):
            if library.Symmetric(*t.inputs) in declared:
                continue
            suggestions.append(Suggestion(
                "constraint", block.name, f"{block.name} is symmetric in {', '.join(t.inputs)}: "
                f"add Symmetric{t.inputs}", constraint=library.Symmetric(*t.inputs)))
        if t.name == "even" and t.holds and hasattr(library, "Even"):
            if library.Even(t.inputs[0]) in declared:
                continue
            suggestions.append(Suggestion(
                "constraint", block.name, f"{block.name} is even in {t.inputs[0]}: add "
                f"Even({t.inputs[0]!r})", constraint=library.Even(t.inputs[0])))
    return suggestions


# ---------------------------------------------------------------------- energy
def energy_drift(model, data) -> float:
    """Largest relative change of the model's energy along each trajectory of ``data``.

    ``max_t |E(t) - E(0)| / (|E(0)| + std_E)`` with ``std_E`` the spread of energies over the
    data (so a trajectory near zero energy does not blow the ratio up). 0 for an exactly
    conserving model on exact data.
    """
    worst = 0.0
    energies = []
    for trajectory in data:
        q, v, t = model_states(model, (trajectory.q, trajectory.v, trajectory.t))
        with torch.no_grad() if model.formulation != "lagrangian" else torch.enable_grad():
            energies.append(model.energy(q, v, t).detach())
    spread = float(torch.cat(energies).std()) if len(energies) else 0.0
    for e in energies:
        worst = max(worst, float((e - e[0]).abs().max() / (e[0].abs() + spread + 1e-300)))
    return worst
