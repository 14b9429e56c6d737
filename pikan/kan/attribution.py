r"""KAN 2.0 attribution scores: how much each edge, node and input matters for the outputs.

On a batch of inputs, let :math:`\sigma^{e}_{l,ij}` be the standard deviation of edge
:math:`(i, j)` of layer ``l`` and :math:`\sigma^{s}_{l,j}` that of subnode ``j`` (the sum of
its incoming edges). Scores flow from the outputs (each scores 1) back to the inputs:

.. math:: E_{l,ij} = \sigma^{e}_{l,ij} \, \frac{A_{l+1,j}}{\sigma^{s}_{l,j} + \epsilon}, \qquad
          A_{l,i} = \sum_j E_{l,ij},

where a multiplication node passes its score to both factors. A skip path
(``jump=True``) adds :math:`\sigma(x_i W_{ij}) / \sigma(y_j)` to input ``i``. ``E`` is the edge score (a
share of the downstream score carried by the edge), ``A`` the node score. The input scores
:math:`A_{0,i}` are reported normalized to sum to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

_EPS = 1e-4


@dataclass(frozen=True)
class Scores:
    """Attribution scores of a KAN on a batch.

    Attributes
    ----------
    edges : list of Tensor, each (in_dim, out_dim)
        Edge scores per layer.
    nodes : list of Tensor
        Node scores per layer boundary: ``nodes[0]`` the inputs, ``nodes[-1]`` the outputs.
    inputs : dict
        Input name -> normalized score (sums to 1 unless every score is 0).
    """

    edges: list[Tensor]
    nodes: list[Tensor]
    inputs: dict[str, float]


@torch.no_grad()
def scores(kan, x: Tensor) -> Scores:
    """Attribution scores of ``kan`` (a :class:`~pikan.kan.network.KAN`) on inputs ``x``.

    Parameters
    ----------
    kan : KAN
    x : Tensor of shape (batch, in_dim)
        Inputs drawn from the distribution the scores should describe (the data).

    Returns
    -------
    Scores
    """
    if x.shape[0] < 2:
        raise ValueError(f"attribution needs at least 2 samples in x, got {x.shape[0]}")
    acts = kan.activations(x)
    node_score = torch.ones(kan.out_dim, dtype=x.dtype, device=x.device)
    edges, nodes = [], [node_score]
    for index in reversed(range(len(acts))):
        act = acts[index]
        n_sum = kan.widths[index + 1][0]
        sub_score = torch.cat([node_score[:n_sum], node_score[n_sum:].repeat_interleave(2)])
        sub_std = act.subnodes.std(0)
        edge = act.edges.std(0) * (sub_score / (sub_std + _EPS))[None, :]
        edges.insert(0, edge)
        node_score = edge.sum(1)
        nodes.insert(0, node_score)
    if kan.jump is not None:  # the skip path carries its own share of each output
        out_std = (acts[-1].nodes + x @ kan.jump).std(0)
        jump = (kan.jump_outputs(x).std(0) / (out_std + _EPS)[None, :]).sum(1)
        node_score = node_score + jump
        nodes[0] = node_score
    total = float(node_score.sum())
    values = (node_score / total if total > 0 else node_score).tolist()
    return Scores(edges, nodes, dict(zip(kan.input_names, values)))
