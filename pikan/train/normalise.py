r"""Normalisation: a KAN trains at order 1 whatever the units of the data.

A KAN is built for inputs and outputs of order 1: its grid is placed on the data's range,
but its base functions, its initial weights and the optimizer's steps are not scaled. On a
harmonic oscillator with positions scaled by ``s`` (the same law), fit recovered ``V`` for
``s`` from 1e-2 to 1e6 and lost it outside: at ``s = 1e-3`` an Adam step (of size ``lr`` in
the spline coefficients, on a grid of spacing about ``s``) moved the force ``dV/dx`` by
about ``lr / s``, far more than the forces themselves (of size ``s``), and training diverged
four times (an approximate law); at ``s = 1e9`` the KAN's outputs, of order 1, gave forces
of about ``1 / s`` where the data needed ``s``, and the fit ended at ``V = 0``. With the KAN
fed ``x / s`` and its output multiplied by ``s**2`` the same data gave the unit-size run's
loss and law.

So before the first step, a block learned by a KAN whose inputs, or the forces (rates) the
data ask of the system, have a typical size outside :data:`NORMAL_RANGE` is normalised:
the block becomes

.. math:: F(z) = c\,\mathrm{KAN}(z / s),

with ``s`` (per input) the typical size of each input and ``c`` (per output) the output
size that gives the data's forces at order-1 slopes of the KAN, both rounded to powers of
ten (:class:`~pikan.model.compile.Block` keeps them as buffers, saved with the weights). The
block stays a function of the data's units, so the loss, the extracted law and the
verification see the data's units; only what the KAN reads and returns is rescaled. Data
of ordinary size are left as they are (every scale 1), so their fits do not change.

Output sizes, with :math:`\bar F` the typical force (mass times acceleration; the rate in a
first-order system) on the coordinates a block acts on and :math:`\bar J` the typical
derivative of its scaled inputs ``z / s`` with respect to those coordinates (positions; the
velocities for a Dissipation):

- Potential, Lagrangian, Dissipation: :math:`c = \bar F / \bar J`, so the force
  :math:`c\,\nabla \mathrm{KAN} \cdot J` is of size :math:`\bar F`; a Lagrangian's
  accelerations do not depend on ``c`` at all;
- Dynamics (Flow): ``c`` is the force (rate) on each output coordinate;
- a passive Dissipation, :math:`D = \sum_k a_k^2 |z|^{\alpha_k} / \alpha_k` (its KAN reads
  directions and returns the :math:`a_k`): :math:`c_k = (\bar F / (\bar J |z|^{\alpha_k-1}))^{1/2}`;
- a learned gyroscopic field is not normalised (its extraction reads the KAN directly);
  fit warns when its data are far from unit size (:func:`left_as_they_are`).

Limits: a typical size is a root mean square, so positions far from the origin that hardly
move (``1e9 + sin t``) are scaled by their distance from the origin, not their motion, and
stay hard to learn. Sizes whose squares leave float64 are refused earlier
(:func:`pikan.train.batches.check_data`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from pikan.errors import DataError
from pikan.spec.system import VECTOR_KINDS

__all__ = ["NORMAL_RANGE", "Scaling", "describe", "left_as_they_are", "normalise", "scalings",
           "typical_size"]

NORMAL_RANGE = (1e-2, 1e2)
"""Typical sizes (root mean square over the training states) of a block's inputs and of the
forces the data ask for that fit leaves as they are. Outside, the block is normalised."""

_STATES = 512
"""Training states the derivatives of a block's inputs are measured on."""
_COLUMNS = 32
"""Input columns (bindings x inputs) whose derivatives are measured, at most."""
_LIMIT = 1e300
"""Scales beyond this (or below its inverse) are refused: the KAN's outputs would leave
float64."""


@dataclass(frozen=True)
class Scaling:
    """The normalisation of one block (see the module docstring).

    Attributes
    ----------
    module : str
    inputs : dict of str to float
        Input name -> the divisor ``s`` of what its KAN reads.
    outputs : dict of str to float
        Output name -> the factor ``c`` of the KAN's output.
    sizes : dict of str to float
        The typical sizes that asked for it: each input's, and ``"force"`` (``"rate"``).
    """

    module: str
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One line: what the KAN reads and what multiplies its outputs."""
        reads = ", ".join(f"{n}/{s:g}" if s != 1 else n for n, s in self.inputs.items())
        times = ", ".join(f"{n} = {c:g}*KAN" for n, c in self.outputs.items())
        return f"module {self.module!r}: its KAN reads {reads}; {times}"


def typical_size(x: Tensor) -> Tensor:
    """Root mean square over the first axis, computed without overflow: ``(N, k) -> (k,)``."""
    top = x.abs().amax(0)
    unit = x / torch.where(top > 0, top, torch.ones_like(top))
    return top * unit.pow(2).mean(0).sqrt()


def _power_of_ten(size: float) -> float:
    """``size`` rounded to a power of ten (1 for zero or a size that is not finite)."""
    if not (size > 0 and math.isfinite(size)):
        return 1.0
    return 10.0 ** round(math.log10(size))


def _outside(size: float) -> bool:
    low, high = NORMAL_RANGE
    return size > 0 and math.isfinite(size) and not low <= size <= high


def _responses(model, data) -> Tensor:
    """Typical size per coordinate of what the data ask the system for, shape (n,): the
    force ``m a`` (the rate ``dq/dt`` of a first-order system). Without accelerations in
    the training samples, ``a`` is estimated as ``std(v)**2 / std(q)`` (exact in size for
    an oscillation, and ``g`` for a fall from rest)."""
    q, v, _ = data.states()
    if getattr(model, "order", 2) == 1:
        return typical_size(v)
    a = data.tensors.get("a")
    if a is not None and a.dim() == 2 and a.shape[1] == q.shape[1]:
        size = typical_size(a)
    else:
        spread_q = typical_size(q - q.mean(0))
        spread_v = typical_size(v - v.mean(0))
        size = torch.where(spread_q > 0, spread_v / torch.where(spread_q > 0, spread_q, 1.0)
                           * spread_v, torch.zeros_like(spread_q))
    return model.masses.detach().to(size) * size


def _slopes(model, name: str, q: Tensor, v: Tensor, t, wrt: str, divisors: Tensor
            ) -> tuple[float, Tensor]:
    """Typical derivative of the block's scaled inputs ``z / divisors`` with respect to the
    positions (``wrt="q"``) or velocities, and which coordinates they depend on ``(n,)``."""
    x = (q if wrt == "q" else v).detach().clone().requires_grad_(True)
    pair = (x, v) if wrt == "q" else (q, x)
    with torch.enable_grad():
        z = model.module_inputs(name, *pair, t).reshape(-1, q.shape[0], divisors.numel())
        columns = [(b, k) for b in range(z.shape[0]) for k in range(z.shape[2])]
        step = max(1, len(columns) // _COLUMNS)
        squares, touched = [], torch.zeros(q.shape[1], dtype=torch.bool, device=q.device)
        for b, k in columns[::step][:_COLUMNS]:
            if not z.requires_grad:
                break
            (g,) = torch.autograd.grad(z[b, :, k].sum(), x, retain_graph=True,
                                       allow_unused=True)
            if g is None:
                continue
            g = g / divisors[k]
            touched |= (g != 0).any(0)
            squares.append(g.pow(2).sum(1))
    if not squares:
        return 0.0, touched
    return float(torch.cat(squares).mean().sqrt()), touched


def _scaling(model, name: str, block, data, responses: Tensor) -> Scaling | None:
    """The normalisation of one block, or None when it is left as it is."""
    q, v, t = data.states()
    if q.shape[0] > _STATES:
        rows = torch.linspace(0, q.shape[0] - 1, _STATES, device=q.device).long()
        q, v, t = q[rows], v[rows], t[rows]
    z = model.module_inputs(name, q, v, t).detach()
    sizes = typical_size(z)
    first_order = getattr(model, "order", 2) == 1
    what = "rate" if first_order else "force"
    if block.kind in VECTOR_KINDS:
        coords = list(model.coords)
        forces = [float(responses[coords.index(c)]) for c in block.output_names]
        asked = max(forces)
    else:
        wrt = "v" if block.kind == "Dissipation" and not first_order else "q"
        divisors = torch.ones_like(sizes) if block.passive else torch.tensor(
            [_power_of_ten(float(s)) for s in sizes], dtype=z.dtype, device=z.device)
        slope, touched = _slopes(model, name, q, v, t, wrt, divisors)
        if block.kind == "Lagrangian" and slope == 0:  # L(v): sized by the velocities
            slope, touched = _slopes(model, name, q, v, t, "v", divisors)
        acted = responses[touched]
        asked = float(typical_size(acted[:, None])[0]) if acted.numel() else 0.0
    reasons = {n: float(s) for n, s in zip(block.input_names, sizes) if _outside(float(s))}
    if _outside(asked):
        reasons[what] = asked
    if not reasons:
        return None
    inputs = {n: 1.0 if block.passive else _power_of_ten(float(s))
              for n, s in zip(block.input_names, sizes)}
    if block.kind in VECTOR_KINDS:
        outputs = {n: _power_of_ten(f) for n, f in zip(block.output_names, forces)}
    elif slope == 0 or asked == 0:
        outputs = {n: 1.0 for n in block.kan.output_names}
    elif block.passive:
        radius = float(typical_size(z.norm(dim=1, keepdim=True))[0])
        outputs = {f"a{k}": _power_of_ten(math.sqrt(asked / (slope * radius ** (alpha - 1))))
                   for k, alpha in enumerate(block.passive_degrees)}
    else:
        outputs = {block.name: _power_of_ten(asked / slope)}
    for key, value in {**inputs, **outputs}.items():
        if not 1 / _LIMIT <= value <= _LIMIT:
            raise DataError(f"module {name!r}: the data ask its KAN for values of size about "
                            f"{value:.3g} in {key!r}, beyond what float64 holds with room for "
                            "products; hint: express the data in units where positions, "
                            "velocities and forces are nearer to 1")
    return Scaling(name, inputs, outputs, {**{n: float(s) for n, s in zip(block.input_names,
                                                                           sizes)},
                                           what: asked})


@torch.no_grad()
def normalise(model, data, names) -> list[Scaling]:
    """Normalise the blocks ``names`` of ``model`` whose data are far from unit size.

    Call it before the first step, while the KANs hold their initial functions: it sets each
    chosen block's ``input_scale`` and ``output_scale`` (the grids are placed afterwards, on
    what the KANs read).

    Parameters
    ----------
    model : Model
        Changed in place.
    data : FitData
        The fit's training data (:class:`pikan.train.batches.FitData`): its states and, when
        its loss reads them, accelerations.
    names : iterable of str
        Learned blocks that may be normalised (KANs never trained).

    Returns
    -------
    list of Scaling
        One per normalised block.

    Raises
    ------
    DataError
        A scale beyond :data:`_LIMIT`.
    """
    responses = _responses(model, data)
    out = []
    for name in names:
        block = model.blocks[name]
        if block.kan is None or block.gyroscopic_learned:
            continue
        scaling = _scaling(model, name, block, data, responses)
        if scaling is None:
            continue
        block.input_scale.copy_(torch.tensor(list(scaling.inputs.values())))
        block.output_scale.copy_(torch.tensor(list(scaling.outputs.values())))
        out.append(scaling)
    return out


@torch.no_grad()
def left_as_they_are(model, data, names) -> list[str]:
    """Warnings (``"data: ..."``) for the blocks ``names`` that :func:`normalise` cannot
    rescale although their data are far from unit size: learned gyroscopic fields, whose
    law extraction reads their KAN directly."""
    responses = _responses(model, data)
    q, v, t = data.states()
    out = []
    for name in names:
        block = model.blocks[name]
        if not block.gyroscopic_learned:
            continue
        z = block.field_inputs(model.module_inputs(name, q, v, t))
        fields = [block.input_names[i] for i in block.field_slots]
        sizes = dict(zip(fields, typical_size(z).tolist())) if fields else {}
        coords = list(model.coords)
        sizes["force"] = max(float(responses[coords.index(c)]) for c in block.output_names)
        far = {n: f"{size:.3g}" for n, size in sizes.items() if _outside(size)}
        if far:
            out.append(f"data: module {name!r} is a learned gyroscopic field, which fit does "
                       f"not normalise, and its data are far from unit size (RMS "
                       f"{', '.join(f'{n} {s}' for n, s in far.items())}): training may "
                       "diverge or return a wrong law; hint: express the data in units where "
                       "positions, velocities and forces are of order 1")
    return out


def scalings(model) -> list[Scaling]:
    """The normalised blocks of ``model``: one :class:`Scaling` per block learned by a KAN
    whose scales are not all 1 (without ``sizes``, which only :func:`normalise` measures)."""
    out = []
    for name, block in model.blocks.items():
        if block.kan is None:
            continue
        scales = block.input_scale, block.output_scale
        if all(bool((s == 1).all()) for s in scales):
            continue
        out.append(Scaling(name, dict(zip(block.input_names, scales[0].tolist())),
                           dict(zip(block.kan.output_names, scales[1].tolist()))))
    return out


def describe(model) -> list[str]:
    """The warnings of a normalised model: one per block whose scales are not all 1, each
    starting with ``"data: "`` (discover adds them to every law's verdict reason)."""
    return [f"data: values far from unit size, so fit trained in rescaled units: "
            f"{scaling.describe()}. The model and its law are in the data's units"
            for scaling in scalings(model)]
