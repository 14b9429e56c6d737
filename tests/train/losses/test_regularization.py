"""The KAN sparsity penalty and soft constraints (pikan/train/losses/regularization.py)."""

import pytest
import torch
from pikan.constraints import Even

from pikan.model.compile import compile
from pikan.train import losses


def states(data):
    q, v, _ = data.states()
    return torch.tensor(q), torch.tensor(v)


def test_sparsity_sums_learned_blocks_only(clean, oscillator_spec):
    q, v = states(clean)
    assert float(losses.sparsity(compile(oscillator_spec), q, v)) == 0.0
    model = compile(oscillator_spec.learn("V", hidden=[2], grid=3))
    assert list(losses.learned_kans(model)) == ["V"]
    kan = model.blocks["V"].kan
    expected = kan.regularization(model.module_inputs("V", q, v), l1=1.0, entropy=2.0)
    value = losses.sparsity(model, q, v).detach()
    assert float(value) == pytest.approx(float(expected.detach()), rel=1e-12) and float(value) > 0


def test_soft_penalties_follow_the_spec(clean, oscillator_spec):
    q, v = states(clean)
    hard = compile(oscillator_spec.learn("V", hidden=[], constraints=[Even("x")]))
    assert losses.soft_penalties(hard) == []
    soft_spec = oscillator_spec.learn("V", hidden=[],
                                      constraints=[Even("x", mode="soft", weight=3.0)])
    model = compile(soft_spec)
    (penalty,) = losses.soft_penalties(model)
    assert penalty.name == "V.Even" and penalty.weight == 3.0
    value = penalty.fn(model, q, v).detach()
    expected = Even("x", mode="soft", weight=3.0).penalty(model, q, v, module="V").detach()
    assert float(value) == pytest.approx(float(expected)) and float(value) > 0
