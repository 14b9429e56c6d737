import torch

from pikan.kan.attribution import scores
from pikan.kan.network import KAN


def test_irrelevant_input_scores_near_zero_and_ranking():
    """Fit V = x^2 + 0.3 y^2 (z irrelevant) and check the input scores."""
    torch.manual_seed(0)
    kan = KAN([3, 4, 1], seed=0, input_names=["x", "y", "z"])
    q = torch.rand(512, 3) * 2 - 1
    target = q[:, :1] ** 2 + 0.3 * q[:, 1:2] ** 2
    opt = torch.optim.Adam(kan.parameters(), lr=2e-2)
    for _ in range(400):
        opt.zero_grad()
        loss = ((kan(q) - target) ** 2).mean() + 1e-3 * kan.regularization()
        loss.backward()
        opt.step()
    s = scores(kan, q)
    assert s.inputs["z"] < 0.05 * s.inputs["x"]
    assert s.inputs["x"] > s.inputs["y"] > s.inputs["z"]
    assert abs(sum(s.inputs.values()) - 1) < 1e-12


def test_scores_of_single_layer_are_edge_stds_over_output_std():
    kan = KAN([2, 1], seed=0)
    layer = kan.layers[0]
    x = torch.linspace(-1, 1, 200)[:, None].expand(-1, 2).clone()
    x[:, 1] = x[:, 1] ** 2
    s = scores(kan, x)
    edges = layer.edge_outputs(x)
    expected = edges.std(0)[:, 0] / (edges.sum(1).std(0)[0] + 1e-4)
    torch.testing.assert_close(s.edges[0][:, 0], expected)
    torch.testing.assert_close(s.nodes[0], expected)
