"""pikan's calls run torch on one thread unless the user chose a count, and give the
caller's count back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pikan
from pikan.train import threads
from pikan.train.threads import call_threads, with_call_threads


@pytest.fixture
def torch_default_two(monkeypatch):
    """torch's default as if it were 2 threads, no $OMP_NUM_THREADS; 1 thread afterwards
    (the suite's setting, see conftest.py)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_TORCH_DEFAULT", 2)
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(1)


def test_a_call_runs_on_one_thread_and_restores_the_default(torch_default_two):
    with call_threads() as count:
        assert count == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_the_count_is_restored_when_the_call_fails(torch_default_two):
    @with_call_threads
    def failing():
        assert torch.get_num_threads() == 1
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        failing()
    assert torch.get_num_threads() == 2


def test_a_count_set_by_the_user_is_kept(torch_default_two):
    torch.set_num_threads(3)
    with call_threads() as count:
        assert count == 3 and torch.get_num_threads() == 3
    assert torch.get_num_threads() == 3


def test_omp_num_threads_is_kept(torch_default_two, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with call_threads() as count:
        assert count == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("entry", [pikan.fit, pikan.extract, pikan.verify, pikan.find_law,
                                   pikan.discover])
def test_every_entry_point_runs_inside_call_threads(entry):
    assert entry.__code__ is with_call_threads(lambda: None).__code__  # the wrapper's body
    assert entry.__wrapped__.__name__ == entry.__name__


def test_find_law_gives_back_the_callers_count(torch_default_two):
    rng = np.random.default_rng(0)
    x = rng.uniform(1.0, 2.0, size=(200, 1))
    law = pikan.find_law(x, 3.0 * x[:, 0] ** 2, ["x"], seed=0, steps=50, time_limit=10)
    assert law.expr is not None
    assert torch.get_num_threads() == 2
