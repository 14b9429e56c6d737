"""Distributed training (pikan.train.distributed + fit(distributed=True)), devices and compile=.

The multi-process tests start two worker processes the way torchrun does (environment
variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; gloo on the CPU), each
running this file as a script (``python tests/test_distributed.py worker ...``), and
compare what they did with a one-process fit run here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from pikan.constraints import Even

from pikan.data.integrate import simulate
from pikan.errors import DataError
from pikan.model.compile import compile
from pikan.spec.system import Potential, System
from pikan.train import distributed
from pikan.train import loop as train
from pikan.train.recipe import Recipe, Stage

ANISOTROPIC = System("anisotropic", coords=["x", "y"], params={"k": 1.0},
                     modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + 2*y**2)/2")])
# sparsity (whole-batch term), a soft penalty (sample mean), prune, adapt, refine, L-BFGS
RECIPE = Recipe([Stage.fit(5, "adam", sparsity=1e-3), Stage.prune(0.05), Stage.adapt(),
                 Stage.refine(6), Stage.fit(4, "adam"), Stage.fit(2, "lbfgs")])
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
LAUNCH_TIMEOUT = 120  # seconds for a whole two-process launch (the workers import torch)


def _spec():
    return ANISOTROPIC.learn("V", hidden=[3], grid=4, constraints=[Even("x", mode="soft")])


def _fit(case: str, noise_seed: int = 1, **kw):
    """The fits compared between one and two processes (same data, options and seed)."""
    if case == "acceleration":  # 8 trajectories, 1280 training states, batch 100 of them
        data = simulate(ANISOTROPIC, n_trajectories=8, t=(0, 2), dt=0.01, seed=0)
        options = {"recipe": RECIPE, "batch_size": 100, "eval_every": 2}
    else:  # noisy positions: rollout windows, velocity Verlet, batch 7 windows
        data = simulate(ANISOTROPIC, n_trajectories=8, t=(0, 2), dt=0.02, seed=0)
        data = data.with_noise(0.01, seed=noise_seed)
        options = {"recipe": Recipe([Stage.fit(3, "adam", sparsity=1e-3), Stage.fit(1, "lbfgs")]),
                   "loss": "rollout", "window": 5, "batch_size": 7, "eval_every": 1}
    model = compile(_spec(), seed=0)
    result = train.fit(model, data, seed=3, device="cpu", **options, **kw)
    return model, result


def _state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert value.shape == b[key].shape, key
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


# ----------------------------------------------------------------------------- the worker


def _worker(argv: list[str]) -> None:
    """One rank: fit the cases under torch.distributed and save what it did; then, with
    ``--fail-at``, fit once more with rank 1 raising at that step."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--cases", default="acceleration,rollout")
    parser.add_argument("--fail-at", type=int, default=0, help="rank 1 raises at this step")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    rank = int(os.environ["RANK"])
    saves = []
    real_save = train.write_checkpoint

    def counting_save(obj, path):
        saves.append(str(path))
        real_save(obj, path)

    train.write_checkpoint = counting_save
    ctx = distributed.init("cpu", timeout=timedelta(seconds=args.timeout))
    out = Path(args.out)

    report = {"rank": ctx.rank, "world_size": ctx.world_size, "backend": ctx.backend}
    for case in args.cases.split(","):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            model, result = _fit(case, checkpoint=out / case / "ckpt.pt", progress=True,
                                 log_every=1)
        report[case] = {"state": _state(model), "rows": result.history.rows,
                        "events": result.events, "best_val": result.best_val,
                        "choices": result.choices, "stderr": stderr.getvalue()}
    report["saves"] = saves
    torch.save(report, out / f"rank{rank}.pt")
    try:  # each rank with its own noise: not the same data
        _fit("rollout", noise_seed=1 + rank, progress=False)
    except DataError as error:
        (out / f"rank{rank}.mismatch").write_text(str(error))
    if args.fail_at:
        def callback(model, row):
            if rank == 1 and row["step"] == args.fail_at:
                raise RuntimeError(f"rank 1 broke on purpose at step {row['step']}")
            return False

        _fit("rollout", progress=False, callback=callback)
        (out / f"rank{rank}.survived").touch()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out: Path, *args: str, world_size: int = 2) -> list[subprocess.CompletedProcess]:
    """Start ``world_size`` ranks as torchrun would and wait for all (bounded time)."""
    port = _free_port()
    procs = []
    for rank in range(world_size):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                   LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, __file__, "worker", str(out), *args],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    done = []
    try:
        for rank, proc in enumerate(procs):
            stdout, stderr = proc.communicate(timeout=LAUNCH_TIMEOUT)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    except subprocess.TimeoutExpired:
        pytest.fail(f"rank {rank} still running after {LAUNCH_TIMEOUT} s: the job hangs")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


# ----------------------------------------------------------------------------- two processes


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One launch of two ranks (each process start costs seconds): the compared fits, then
    a fit in which rank 1 raises at step 2."""
    out = tmp_path_factory.mktemp("ddp")
    done = _launch(out, "--fail-at", "2")
    for rank, proc in enumerate(done):
        assert (out / f"rank{rank}.pt").is_file(), f"rank {rank} failed:\n{proc.stderr[-3000:]}"
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)], done


@pytest.mark.parametrize("case", ["acceleration", "rollout"])
def test_two_processes_take_the_steps_of_one(two_ranks, case):
    _, reports, _ = two_ranks
    model, result = _fit(case, progress=False, distributed=False)
    one = _state(model)
    zero, first = reports[0][case], reports[1][case]
    assert reports[0]["world_size"] == 2 and reports[0]["backend"] == "gloo"
    assert zero["choices"]["distributed"] == {"world_size": 2, "rank": 0, "backend": "gloo"}
    # every rank holds the same model, and it is the one-process model
    assert _max_difference(zero["state"], first["state"]) == 0.0
    difference = _max_difference(zero["state"], one)
    print(f"{case}: largest parameter difference, 2 processes vs 1: {difference:.1e}")
    assert difference < 1e-6
    # same losses step by step (gradients and validation reduced over ranks)
    assert len(zero["rows"]) == len(result.history.rows) == result.steps
    for two, single in zip(zero["rows"], result.history.rows):
        assert two["step"] == single["step"] and two["optimizer"] == single["optimizer"]
        for key in ("loss", "train", "V.Even") + (("sparsity",) if "sparsity" in single else ()):
            assert two[key] == pytest.approx(single[key], rel=1e-9, abs=1e-15), key
        assert (two["val"] is None) == (single["val"] is None)
        if single["val"] is not None:
            assert two["val"] == pytest.approx(single["val"], rel=1e-9)
    assert zero["best_val"] == pytest.approx(result.best_val, rel=1e-9)
    assert first["rows"] == zero["rows"]
    # rank 0's structural decisions reached rank 1 (events and refined grid shapes)
    kinds = [e["kind"] for e in result.events]
    assert [e["kind"] for e in zero["events"]] == kinds == [e["kind"] for e in first["events"]]
    if case == "acceleration":
        assert {"prune", "refine"} <= set(kinds)
        knots = zero["state"]["blocks.V.core.layers.0.knots"]  # refined to 6 intervals
        assert knots.shape == one["blocks.V.core.layers.0.knots"].shape == (2, 6 + 2 * 3 + 1)


def test_only_rank_zero_writes_checkpoints_and_progress(two_ranks):
    out, reports, _ = two_ranks
    for case in ("acceleration", "rollout"):
        assert sorted(p.name for p in (out / case).iterdir()) == ["ckpt.pt"]  # no temp files
        ck = train.read_checkpoint(out / case / "ckpt.pt")
        assert _max_difference(ck["model"], reports[0][case]["state"]) == 0.0
        assert ck["position"]["global_step"] == len(reports[0][case]["rows"])
        assert "[pikan fit] step 1/" in reports[0][case]["stderr"]
        assert reports[1][case]["stderr"] == ""
    assert reports[1]["saves"] == []
    assert reports[0]["saves"] and all(Path(p).name == "ckpt.pt" for p in reports[0]["saves"])


def test_different_data_on_the_ranks_is_refused(two_ranks):
    out, _, _ = two_ranks
    for rank in range(2):
        message = (out / f"rank{rank}.mismatch").read_text()
        assert "the training data or options differ between processes" in message
        assert "rank 0: (66, 22, (" in message and "rank 1: (66, 22, (" in message


def test_a_failing_rank_takes_the_job_down_with_a_clear_error(two_ranks):
    out, _, (rank0, rank1) = two_ranks  # the launch ended within LAUNCH_TIMEOUT: no hang
    assert rank1.returncode != 0 and "rank 1 broke on purpose at step 2" in rank1.stderr
    assert rank0.returncode != 0
    (line,) = [s for s in rank0.stderr.splitlines() if "DistributedError:" in s]
    print(f"rank 0 ended with: {line}")
    assert "rank 0 of 2: the all-reduce" in line and "Another process probably stopped" in line
    assert "timeout of 0:00:30" in line
    assert not list(out.glob("*.survived"))


# ----------------------------------------------------------------------------- one process


def test_shard_partitions_every_batch():
    for world in (1, 2, 3, 5):
        for n in (1, 2, 4, 5, 7, 100, 101):
            parts = [distributed.shard(n, distributed.Context(r, world, r, torch.device("cpu"),
                                                              "gloo")) for r in range(world)]
            if n < world:  # every rank takes the whole batch, weighted 1/K
                assert all(p == (0, n, 1.0 / world) for p in parts)
                continue
            assert [p[0] for p in parts] == [0] + [p[1] for p in parts[:-1]]
            assert parts[-1][1] == n and all(p[1] > p[0] for p in parts)
            sizes = [p[1] - p[0] for p in parts]
            assert max(sizes) - min(sizes) <= 1
            assert sum(p[2] for p in parts) == pytest.approx(1.0, abs=1e-15)
            assert all(p[2] == (p[1] - p[0]) / n for p in parts)


def test_distributed_without_torchrun_environment_is_refused(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.requested("auto") is False and distributed.is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.requested("auto") is True
    with pytest.raises(ValueError, match="RANK, MASTER_ADDR, MASTER_PORT missing.*torchrun"):
        train.fit(compile(_spec()), simulate(ANISOTROPIC, n_trajectories=2, t=(0, 0.2), dt=0.02),
                  steps=2, progress=False)
    with pytest.raises(ValueError, match="distributed must be"):
        distributed.requested("yes")


@pytest.mark.parametrize("device", DEVICES)
def test_fit_on_each_device_matches_the_cpu(device):
    data = simulate(ANISOTROPIC, n_trajectories=4, t=(0, 1), dt=0.01, seed=0)
    recipe = Recipe([Stage.fit(6, "adam", sparsity=1e-3), Stage.fit(2, "lbfgs")])
    states = {}
    for where in ("cpu", device):
        model = compile(_spec(), seed=0)
        result = train.fit(model, data, recipe=recipe, batch_size=64, device=where,
                           dtype=torch.float64, progress=False)
        assert result.choices["device"].startswith(where)
        assert all(p.device.type == where for p in model.parameters())
        states[where] = _state(model)
    assert _max_difference(states["cpu"], states[device]) < 1e-8


def test_compiled_loss_trains_like_the_eager_one():
    # aot_eager: dynamo traces the loss (forces by torch.func.grad inside) and AOTAutograd
    # its backward, without inductor's C++ build (the speed option is compile=True)
    data = simulate(ANISOTROPIC, n_trajectories=2, t=(0, 1), dt=0.02, seed=0)
    states, graphs = {}, {}
    for option in (False, "aot_eager"):
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        model = compile(ANISOTROPIC.learn("V", hidden=[], grid=4), seed=0)
        result = train.fit(model, data, recipe=Recipe([Stage.fit(4, "adam", sparsity=1e-3)]),
                           batch_size=32, compile=option, device="cpu", progress=False)
        assert result.choices["compile"] == option
        states[option] = _state(model)
        graphs[option] = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs == {False: 0, "aot_eager": 1}  # one graph: no break at torch.func.grad
    assert _max_difference(states[False], states["aot_eager"]) < 1e-12


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    _worker(sys.argv[2:])
