"""The `pikan` console script, run as a user would: through subprocess (usage errors, which
argparse raises before any work, also in-process through `pikan.cli.main`)."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from pikan.cli import main
from pikan.errors import DataError

PIKAN = shutil.which("pikan") or ""


def _run(*args, cwd=None):
    command = [PIKAN, *args] if PIKAN else [sys.executable, "-m", "pikan", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def test_help_and_version():
    result = _run("--help")
    assert result.returncode == 0
    for command in ("demo", "systems", "simulate", "discover", "laws", "plot"):
        assert command in result.stdout
    assert _run("--version").stdout.startswith("pikan ")


def test_systems_lists_the_catalogue():
    result = _run("systems")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"harmonic", "kepler", "double_pendulum", "charged_particle"} <= set(names)


def test_demo_quick_recovers_writes_a_run_and_redoes_its_own_folder(tmp_path):
    # the README's first command may be run twice: runs/<system> is the demo's own folder
    out = tmp_path / "runs" / "anisotropic"
    result = _run("demo", "--quick", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[matches the truth]" in result.stdout and "DIFFERS" not in result.stdout
    assert "[recovered]" in result.stdout  # the verdict, checked against held-out data
    for name in ("spec.json", "model.pt", "laws.json", "laws.md", "report.json", "data.h5"):
        assert (out / name).is_file(), name
    assert (out / "plots" / "activations_V.png").stat().st_size > 1000
    report = json.loads((out / "report.json").read_text())
    assert {"fit", "laws", "verification", "importance", "timings", "versions"} <= set(report)
    again = _run("demo", "--quick", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (out / "laws.json").is_file() and not (out.parent / "anisotropic.partial").exists()
    named = _run("demo", "--quick", "-o", str(out))  # a folder the user named: kept
    assert named.returncode == 2 and "--overwrite" in named.stderr


def test_simulate_discover_laws_plot_round_trip(tmp_path):
    data = tmp_path / "harmonic.h5"
    result = _run("simulate", "harmonic", "-o", str(data), "--n", "6", "--t-end", "6")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    result = _run("discover", "harmonic", str(data), "-o", str(run), "--steps", "200", "--quiet",
                  "--no-plots")
    assert result.returncode == 0, result.stderr
    assert "V(x)" in result.stdout
    result = _run("laws", str(run), "--format", "json")
    assert result.returncode == 0, result.stderr
    laws = json.loads(result.stdout)
    assert "V" in json.dumps(laws)
    result = _run("plot", str(run))
    assert result.returncode == 0, result.stderr
    assert (run / "plots" / "trajectories.png").is_file()


def test_spec_file_is_loaded(tmp_path):
    spec_file = tmp_path / "spec.py"
    spec_file.write_text(
        "import pikan\n"
        "spec = pikan.System('osc', coords=['x'], modules=[pikan.Potential('V', inputs=['x'])])\n")
    data = tmp_path / "d.h5"
    assert _run("simulate", "harmonic", "-o", str(data), "--n", "4", "--t-end", "4").returncode == 0
    result = _run("discover", str(spec_file), str(data), "-o", str(tmp_path / "r"), "--steps", "60",
                  "--quiet", "--no-plots")
    assert result.returncode == 0, result.stderr


def test_strict_exits_nonzero_when_a_law_is_not_recovered(tmp_path):
    # a potential alone cannot explain damped data: the verdict must say so, --strict fail
    spec_file = tmp_path / "spec.py"
    spec_file.write_text(
        "import pikan\n"
        "spec = pikan.System('duffing', coords=['x'], "
        "modules=[pikan.Potential('V', inputs=['x'])])\n")
    data = tmp_path / "d.h5"
    assert _run("simulate", "duffing", "-o", str(data), "--n", "5", "--t-end", "6").returncode == 0
    run = tmp_path / "r"
    result = _run("discover", str(spec_file), str(data), "-o", str(run), "--steps", "80",
                  "--quiet", "--no-plots", "--strict", "--time-limit", "20")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "WARNING: law 'V' is" in result.stderr and "--strict" in result.stderr
    report = json.loads((run / "report.json").read_text())
    assert report["verdicts"]["V"] in ("approximate", "not found")
    assert report["time_limit"] == 20


@pytest.mark.parametrize("value", ["-3", "soon"])
def test_time_limit_must_be_seconds(tmp_path, value):
    result = _run("discover", "harmonic", str(tmp_path / "d.h5"), "-o", str(tmp_path / "r"),
                  "--time-limit", value)
    assert result.returncode == 2 and "time-limit" in result.stderr


@pytest.mark.parametrize("case", ["missing data", "bad spec file", "corrupt hdf5", "unknown system",
                                  "not a run"])
def test_errors_are_one_line_with_exit_code(tmp_path, case):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    bad_spec = tmp_path / "bad.py"
    bad_spec.write_text("spec = 42\n")
    args = {
        "missing data": ["discover", "harmonic", str(tmp_path / "nope.h5"), "-o", str(tmp_path / "r")],
        "bad spec file": ["discover", str(bad_spec), str(corrupt), "-o", str(tmp_path / "r")],
        "corrupt hdf5": ["discover", "harmonic", str(corrupt), "-o", str(tmp_path / "r")],
        "unknown system": ["simulate", "keplr", "-o", str(tmp_path / "x.h5")],
        "not a run": ["laws", str(tmp_path)],
    }[case]
    result = _run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    expected = {"missing data": "not found", "bad spec file": "must define", "corrupt hdf5": "corrupt.h5",
                "unknown system": "kepler", "not a run": "laws.json"}[case]
    assert expected in result.stderr


# ------------------------------------------------------------------ issue 22: nothing lost


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("case", ["resume a missing checkpoint", "existing run"])
def test_discover_refuses_before_touching_an_existing_run(tmp_path, case):
    """`discover harmonic other.h5 -o runA --resume runA/modelX.pt` once exited 2 after
    replacing runA/data.h5; an existing run is now replaced only with --overwrite."""
    run, other = tmp_path / "runA", tmp_path / "other.h5"
    import pikan.systems

    pikan.systems.get("harmonic").simulate(n_trajectories=3, t=(0.0, 2.0), seed=4).save(other)
    run.mkdir()
    for name in ("spec.json", "data.h5", "model.pt", "laws.json"):
        (run / name).write_text(f"the old run's {name}")
    before = _files(run)
    extra = {"resume a missing checkpoint": ["--resume", str(run / "modelX.pt")],
             "existing run": []}[case]
    result = _run("discover", "harmonic", str(other), "-o", str(run), "--quiet", *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    expected = {"resume a missing checkpoint": "no such checkpoint",
                "existing run": "--overwrite"}[case]
    assert expected in result.stderr
    assert _files(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.h5", "runA"]


def test_simulate_replaces_a_file_only_with_overwrite(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("a week of lab notes")
    result = _run("simulate", "harmonic", "-o", str(notes), "--n", "2", "--t-end", "1")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "--overwrite" in result.stderr
    assert notes.read_text() == "a week of lab notes"
    result = _run("simulate", "harmonic", "-o", str(notes), "--n", "2", "--t-end", "1",
                  "--overwrite")
    assert result.returncode == 0, result.stderr
    assert notes.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------ issue 22: numbers


@pytest.mark.parametrize("args, option, expected", [
    (["--threads", "-2", "systems"], "--threads", "a whole number >= 1"),
    (["--threads", "two", "systems"], "--threads", "a whole number >= 1"),
    (["simulate", "harmonic", "-o", "x.h5", "--n", "0"], "--n", "a whole number >= 1"),
    (["simulate", "harmonic", "-o", "x.h5", "--n", "2.5"], "--n", "a whole number >= 1"),
    (["simulate", "harmonic", "-o", "x.h5", "--dt", "-0.1"], "--dt", "a finite number > 0"),
    (["simulate", "harmonic", "-o", "x.h5", "--dt", "nan"], "--dt", "a finite number > 0"),
    (["simulate", "harmonic", "-o", "x.h5", "--t-end", "0"], "--t-end", "a finite number > 0"),
    (["simulate", "harmonic", "-o", "x.h5", "--t-end", "inf"], "--t-end", "a finite number"),
    (["simulate", "harmonic", "-o", "x.h5", "--noise", "-0.1"], "--noise", "a finite number >= 0"),
    (["simulate", "harmonic", "-o", "x.h5", "--seed", "-1"], "--seed",
     r"a whole number in \[0, 2\*\*64 - 1\)"),
    (["demo", "--seed", "1.5"], "--seed", "a whole number in"),
    (["demo", "--noise", "inf"], "--noise", "a finite number >= 0"),
    (["discover", "harmonic", "d.h5", "-o", "r", "--steps", "-5"], "--steps",
     "a whole number >= 1"),
    (["discover", "harmonic", "d.h5", "-o", "r", "--seed", "x"], "--seed", "a whole number"),
])
def test_numbers_out_of_range_are_usage_errors(tmp_path, monkeypatch, capsys, args, option,
                                               expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert re.search(f"argument {option}: expected {expected}", err), err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_omp_num_threads_is_a_usage_error_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "abc")
    with pytest.raises(SystemExit) as exit_:
        main(["systems"])
    assert exit_.value.code == 2
    assert "OMP_NUM_THREADS='abc' is not a whole number >= 1" in capsys.readouterr().err
    # --threads wins over the environment, and OpenMP's per-level list gives its first entry
    before = torch.get_num_threads()
    try:
        assert main(["--threads", "1", "systems"]) == 0
        monkeypatch.setenv("OMP_NUM_THREADS", "1,1")
        assert main(["systems"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_save_interval_longer_than_the_span_exits_2(tmp_path):
    out = tmp_path / "x.h5"
    result = _run("simulate", "harmonic", "-o", str(out), "--dt", "5", "--t-end", "1")
    assert result.returncode == 2, result.stderr
    assert "dt=5.0 is longer than the time span" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


# ------------------------------------------------------------------ issue 21: a user's first hour


def test_help_command_explains_pikan_or_one_command(capsys):
    assert main(["help"]) == 0
    assert "discover" in capsys.readouterr().out
    assert main(["help", "laws"]) == 0
    assert "--format" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["help", "nope"])
    assert exit_.value.code == 2 and "no command 'nope'" in capsys.readouterr().err


def test_an_output_folder_that_does_not_exist_exits_2_naming_the_file(tmp_path):
    target = tmp_path / "nonexistent" / "x.h5"
    result = _run("simulate", "harmonic", "-o", str(target), "--n", "2", "--t-end", "1")
    assert result.returncode == 2, result.stderr
    assert f"{target}: the folder" in result.stderr and ".tmp" not in result.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    data = tmp_path / "d.h5"
    assert _run("simulate", "harmonic", "-o", str(data), "--n", "2", "--t-end", "1").returncode == 0
    command = [PIKAN, "systems"] if PIKAN else [sys.executable, "-m", "pikan", "systems"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    process.stdout.close()  # the reader is gone before pikan writes a line (like `| head -0`)
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert stderr == ""


def test_discover_reads_a_csv_recognising_its_columns(tmp_path):
    import pikan.systems

    data = pikan.systems.get("harmonic").simulate(n_trajectories=6, t=(0.0, 6.0), seed=2)
    lines = ["traj,time,x"]
    for k, record in enumerate(data):
        lines += [f"{k},{float(t)!r},{float(q)!r}" for t, q in zip(record.t, record.q[:, 0])]
    table = tmp_path / "lab.csv"
    table.write_text("\n".join(lines) + "\n")
    result = _run("discover", "harmonic", str(table), "-o", str(tmp_path / "run"), "--steps",
                  "200", "--quiet", "--no-plots")
    assert result.returncode == 0, result.stderr
    assert ("[pikan] read lab.csv: time 'time' (recognised), coordinates ['x'] (recognised), "
            "6 trajectories by column 'traj' (recognised)") in result.stdout
    assert "V(x)" in result.stdout


def test_column_options_name_what_is_not_recognised(tmp_path):
    import argparse

    from pikan.cli import _load_data

    t = np.linspace(0.0, 1.0, 5)
    np.savez(tmp_path / "lab.npz", seconds=t, a=np.cos(t)[None].repeat(2, 0),
             b=np.sin(t)[None].repeat(2, 0))
    args = argparse.Namespace(data=str(tmp_path / "lab.npz"), time="seconds", coords="b",
                              trajectory="none")
    data = _load_data(args)
    assert data.coords == ("b",) and len(data) == 2  # named: 'a' is not wanted
    args.coords = "b, a"
    assert _load_data(args).coords == ("b", "a")
    args.trajectory = "run"
    with pytest.raises(DataError, match=r"missing column\(s\) \['run'\]"):
        _load_data(args)
    h5 = argparse.Namespace(data=str(tmp_path / "x.h5"), time="t", coords=None, trajectory="auto")
    with pytest.raises(DataError, match=r"apply to \.csv and \.npz files"):
        _load_data(h5)


def test_plot_rewrites_every_file_discover_wrote_the_loss_curves_too(tmp_path, capsys):
    """`pikan plot RUN` once skipped loss.png: a run read from disk has no FitResult; the
    training history comes from the run's model.pt."""
    import pikan.systems

    entry = pikan.systems.get("harmonic")
    data = entry.simulate(n_trajectories=3, t=(0, 2), dt=0.05, seed=0)
    run = tmp_path / "run"
    pikan.discover(entry.model(), data, out=run, steps=40, refine_steps=0, verify_laws=False,
                   progress=False, seed=0)
    written = {p.name: p.stat().st_size for p in (run / "plots").iterdir()}
    assert {"loss.png", "trajectories.png", "energy.png", "activations_V.png"} <= set(written)
    shutil.rmtree(run / "plots")
    capsys.readouterr()
    assert main(["plot", str(run)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(os.path.basename(p) for p in printed) == sorted(written)
    assert all((run / "plots" / name).stat().st_size > 1000 for name in written)
