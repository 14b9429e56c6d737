"""The ``pikan`` command: demo, systems, simulate, discover, laws, plot.

Errors a user can cause (bad options, specs, data files, output paths) reach the terminal as
one line and exit code 2 (1 for other failures), never a traceback, unless ``--debug`` is
given. ``pikan discover --strict`` exits 3 when a law is short of "recovered" (its verdict,
checked against held-out data); an interrupt exits 130; a closed output pipe (``pikan laws
RUN | head``) exits 141 quietly. ``pikan help [COMMAND]`` prints the help.
"""

from __future__ import annotations

import argparse
import math
import os
import runpy
import sys
import time
from pathlib import Path

import torch

import pikan
import pikan.systems
from pikan._version import __version__
from pikan.data.trajectories import Trajectories
from pikan.discover import Run, discover, load_run, partial_path, write_plots
from pikan.errors import DataError, SpecError
from pikan.laws.law import Laws, equivalent
from pikan.spec.system import System
from pikan.train.memory import keep_freed_memory
from pikan.train.options import SEED_LIMIT

DEMO_SYSTEM = "anisotropic"
STRICT_EXIT = 3
"""Exit code of ``pikan discover --strict`` when a law is not recovered."""
CLOSED_PIPE_EXIT = 141
"""Exit code when the reader of the output closed the pipe (as for a process ended by
SIGPIPE: 128 + 13); nothing is printed."""
DEFAULT_TIME_LIMIT = 120.0
"""Default of ``--time-limit`` (the same as :func:`pikan.discover`'s)."""


def _seconds(text: str) -> float | None:
    """``--time-limit`` value: positive seconds, or 0 / "none" for no limit."""
    if text.strip().lower() in ("0", "none", "inf"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (e.g. 60) or 0 for no limit, "
                                         f"got {text!r}") from None
    if not value > 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _whole(least: int, most: int | None = None, most_text: str | None = None):
    """An argparse type: a whole number >= ``least`` (and < ``most``, written
    ``most_text``)."""
    bound = f">= {least}" if most is None else f"in [{least}, {most_text or most})"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {bound}, got "
                                             f"{text!r}") from None
        if value < least or (most is not None and value >= most):
            raise argparse.ArgumentTypeError(f"expected a whole number {bound}, got {text!r}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its messages
    return parse


def _real(*, positive: bool):
    """An argparse type: a finite number > 0 (``positive``) or >= 0."""
    bound = "> 0" if positive else ">= 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got "
                                             f"{text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


_COUNT = _whole(1)
_SEED = _whole(0, SEED_LIMIT, "2**64 - 1")
_POSITIVE = _real(positive=True)
_LEVEL = _real(positive=False)


def _threads(args, parser: argparse.ArgumentParser) -> int:
    """torch's CPU threads: ``--threads``, else ``$OMP_NUM_THREADS`` (its first entry: OpenMP
    also takes a list per nesting level), else 1; a bad environment value is a usage error
    (exit 2) naming the variable."""
    if args.threads is not None:
        return args.threads
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not text:
        return 1
    try:
        return _COUNT(text.split(",")[0])
    except argparse.ArgumentTypeError:
        parser.error(f"OMP_NUM_THREADS={text!r} is not a whole number >= 1; hint: set it to a "
                     "thread count, unset it, or pass --threads N")
    raise AssertionError("parser.error exits")  # pragma: no cover


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pikan",
        description="Physics-informed KANs: learn mechanical systems and extract their laws.",
    )
    parser.add_argument("--version", action="version", version=f"pikan {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--threads", type=_COUNT, default=None,
                        help="CPU threads for torch (default: $OMP_NUM_THREADS, else 1: physics "
                             "models are small and thread synchronization costs more than it "
                             "gains, badly so on a busy machine)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulate a catalogue system, discover its laws, write plots")
    demo.add_argument("system", nargs="?", default=DEMO_SYSTEM,
                      help=f"catalogue name (default: {DEMO_SYSTEM}; see `pikan systems`)")
    demo.add_argument("-o", "--out", default=None, help="run directory (default: runs/<system>)")
    demo.add_argument("--quick", action="store_true", help="a small, fast run (smoke test)")
    demo.add_argument("--seed", type=_SEED, default=0)
    demo.add_argument("--noise", type=_LEVEL, default=0.0, help="relative position noise")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace an existing run directory given with -o (the default "
                           "runs/<system> is always redone)")

    sub.add_parser("systems", help="list the systems catalogue")

    simulate = sub.add_parser("simulate", help="simulate a catalogue system to an HDF5 file")
    simulate.add_argument("system", help="catalogue name")
    simulate.add_argument("-o", "--out", required=True, help="output .h5 file")
    simulate.add_argument("--n", type=_COUNT, default=None, help="number of trajectories")
    simulate.add_argument("--t-end", type=_POSITIVE, default=None, help="end time")
    simulate.add_argument("--dt", type=_POSITIVE, default=None, help="time step of the samples")
    simulate.add_argument("--noise", type=_LEVEL, default=0.0, help="relative position noise")
    simulate.add_argument("--seed", type=_SEED, default=0)
    simulate.add_argument("--overwrite", action="store_true",
                          help="replace an existing file")

    discover = sub.add_parser("discover", help="learn a spec from data and extract its laws")
    discover.add_argument("spec", help="catalogue name, or a Python file that defines `spec` "
                                       "(the file is run, like any Python config)")
    discover.add_argument("data", help="trajectories: .h5 (pikan schema), .csv or .npz (columns "
                                       "recognised by name, or named with the options below)")
    discover.add_argument("--time", default=None, metavar="COLUMN",
                          help="CSV/NPZ: the time column (default: 't' or 'time')")
    discover.add_argument("--coords", default=None, metavar="X,Y",
                          help="CSV/NPZ: the position columns, comma-separated (default: every "
                               "column but the time, the trajectory id and v_/a_ columns)")
    discover.add_argument("--trajectory", default="auto", metavar="COLUMN",
                          help="CSV/NPZ: the trajectory-id column (default: one named id, traj, "
                               "trajectory, run, ... if present; 'none': one trajectory)")
    discover.add_argument("-o", "--out", required=True,
                          help="run directory (built in RUN.partial, moved into place when "
                               "complete; an existing run is replaced only with --overwrite "
                               "or --resume of its checkpoint)")
    discover.add_argument("--steps", type=_COUNT, default=None)
    discover.add_argument("--device", default="auto")
    discover.add_argument("--seed", type=_SEED, default=0)
    discover.add_argument("--resume", default=None,
                          help="model.pt of an interrupted run (RUN.partial/model.pt), or of "
                               "a finished one to train further (RUN/model.pt)")
    discover.add_argument("--overwrite", action="store_true",
                          help="replace an existing run directory")
    discover.add_argument("--no-plots", action="store_true")
    discover.add_argument("--quiet", action="store_true", help="no progress display")
    discover.add_argument("--time-limit", type=_seconds, default=DEFAULT_TIME_LIMIT,
                          metavar="S", help=f"seconds for the whole run (default "
                          f"{DEFAULT_TIME_LIMIT:g}; 0: no limit); the best result found in "
                          "time is returned, with its verdicts")
    discover.add_argument("--strict", action="store_true",
                          help="exit with code 3 unless every law's verdict is 'recovered'")

    laws = sub.add_parser("laws", help="print the laws of a run directory")
    laws.add_argument("run")
    laws.add_argument("--format", choices=["text", "markdown", "json", "latex"], default="text")

    plot = sub.add_parser("plot", help="(re)write the plots of a run directory")
    plot.add_argument("run")

    helper = sub.add_parser("help", help="show the help of pikan or of one command")
    helper.add_argument("topic", nargs="?", metavar="COMMAND", help="a command to explain")
    return parser


def _cmd_help(parser: argparse.ArgumentParser, topic: str | None) -> int:
    """``pikan help [COMMAND]``: the help of pikan, or of one command (an unknown one is a
    usage error, exit 2)."""
    if topic is None:
        parser.print_help()
        return 0
    commands = next(action.choices for action in parser._actions
                    if isinstance(action, argparse._SubParsersAction))
    if topic not in commands:
        parser.error(f"help: no command {topic!r}; choose from {', '.join(commands)}")
    commands[topic].print_help()
    return 0


def _catalogue():
    return pikan.systems


def _load_spec(source: str):
    """A catalogue name -> its learning spec; a .py file -> the `spec` it defines."""

    path = Path(source)
    if path.suffix == ".py":
        if not path.is_file():
            raise SpecError(f"spec file {source!r} not found")
        try:
            namespace = runpy.run_path(str(path))
        except SpecError:
            raise
        except Exception as error:  # noqa: BLE001 - a config file may fail in any way
            raise SpecError(f"running spec file {source!r} failed: {type(error).__name__}: "
                            f"{error}") from error
        spec = namespace.get("spec")
        if not isinstance(spec, System):
            raise SpecError(f"spec file {source!r} must define `spec = pikan.System(...)`; "
                            f"found {type(spec).__name__ if spec is not None else 'no spec'}.")
        return spec
    return _catalogue().get(source).model()


def _load_data(args):
    """The data file of ``pikan discover``, read by its suffix with the column options
    (:meth:`Trajectories.read`); what was read from a table's columns is printed."""
    columns = {}
    if Path(args.data).suffix.lower() in (".csv", ".npz"):
        coords = None
        if args.coords is not None:
            coords = [name.strip() for name in args.coords.split(",") if name.strip()]
        trajectory = None if args.trajectory.lower() == "none" else args.trajectory
        columns = {"time": args.time, "coords": coords, "trajectory": trajectory}
    elif args.time is not None or args.coords is not None or args.trajectory != "auto":
        raise DataError(f"{args.data}: --time, --coords and --trajectory apply to .csv and "
                        ".npz files; an HDF5 file names its own coordinates")
    data = Trajectories.read(args.data, **columns)
    if data.source:
        print(f"[pikan] read {data.source}")
    return data


def _simulate(name: str, n=None, t_end=None, dt=None, noise=0.0, seed=0):
    entry = _catalogue().get(name)
    settings = dict(entry.simulation)
    if n is not None:
        settings["n_trajectories"] = n
    if t_end is not None:
        settings["t"] = (settings["t"][0], t_end)
    if dt is not None:
        settings["dt"] = dt
    return pikan.simulate(entry.truth(), noise=noise, seed=seed,
                          initial=entry.sample_initial, **settings), entry


def _cmd_systems(args) -> int:
    catalogue = _catalogue()
    for name in catalogue.names():
        entry = catalogue.get(name)
        summary = entry.description.strip().splitlines()[0]
        print(f"{name:18s} {summary}")
    return 0


def _cmd_simulate(args) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise DataError(f"{args.out} is a folder; hint: name an .h5 file with -o")
    if out.exists() and not args.overwrite:
        raise DataError(f"{args.out} exists; hint: pass --overwrite to replace it, or choose "
                        "another file")
    data, _ = _simulate(args.system, args.n, args.t_end, args.dt, args.noise, args.seed)
    data.save(args.out)
    print(f"wrote {args.out}: {data}")
    return 0


def _print_laws(laws, truth: dict | None = None) -> None:
    for name, law in laws.items():
        line = f"  {law}"
        if truth and name in truth:
            match = equivalent(law.expr, truth[name])
            line += (f"\n      truth: {truth[name]}   "
                     f"[{'matches the truth' if match else 'DIFFERS from the truth'}]")
        print(line)


def _cmd_demo(args) -> int:
    entry = _catalogue().get(args.system)
    out = Path(args.out or f"runs/{args.system}")
    settings = dict(entry.simulation)
    steps = None
    if args.quick:
        settings["n_trajectories"] = min(settings["n_trajectories"], 6)
        settings["t"] = (settings["t"][0], min(settings["t"][1], 4.0))
        steps = 150
    start = time.perf_counter()
    print(f"[pikan] simulating {entry.name}: {settings['n_trajectories']} trajectories, "
          f"t = {settings['t']}, dt = {settings['dt']}, noise = {args.noise}")

    data = pikan.simulate(entry.truth(), noise=args.noise, seed=args.seed,
                          initial=entry.sample_initial, **settings)
    # the demo's own folder (runs/<system>) is redone on every run; a folder the user named
    # is replaced only with --overwrite
    run = discover(entry.model(), data, out=out, steps=steps, seed=args.seed,
                   progress=not args.quick, refine_steps=50 if args.quick else 200,
                   overwrite=args.overwrite or args.out is None)
    print(f"\nlaws of {entry.name} (discovered in {time.perf_counter() - start:.0f} s):")
    _print_laws(run.laws, entry.laws())
    verification = run.report.get("verification", {})
    if verification.get("summary"):
        print(f"\n{verification['summary']}")
    print(f"\nrun directory: {out}  (laws.json, laws.md, report.json, plots/)")
    return 0


def _cmd_discover(args) -> int:
    spec = _load_spec(args.spec)
    data = _load_data(args)
    run = discover(spec, data, out=args.out, steps=args.steps, seed=args.seed,
                   device=args.device, resume=args.resume, plots=not args.no_plots,
                   progress=not args.quiet, time_limit=args.time_limit,
                   overwrite=args.overwrite)
    if run.laws is None:  # a rank other than 0 of a torchrun launch: rank 0 reports
        return 0
    print("\nlaws:")
    _print_laws(run.laws)
    summary = run.report.get("verification", {}).get("summary")
    if summary:
        print(f"\nverification on held-out trajectories:\n{summary}")
    short = [name for name, law in run.laws.items() if law.verdict != "recovered"]
    for name in short:
        law = run.laws[name]
        print(f"WARNING: law {name!r} is {law.verdict or 'unchecked'}: {law.verdict_reason}",
              file=sys.stderr)
    print(f"\nrun directory: {args.out}")
    if args.strict and short:
        print(f"pikan discover: --strict: not recovered: {', '.join(short)}", file=sys.stderr)
        return STRICT_EXIT
    return 0


def _cmd_laws(args) -> int:
    path = Path(args.run) / "laws.json"
    if not path.is_file():
        raise DataError(f"{args.run} has no laws.json; hint: pass a run directory written by "
                        "`pikan discover` or `pikan demo`.")
    laws = Laws.from_json(path.read_text())
    if args.format == "json":
        print(laws.to_json())
    elif args.format == "markdown":
        print(laws.to_markdown())
    elif args.format == "latex":
        for name, law in laws.items():
            print(f"{name}: {law.latex()}")
    else:
        print(laws)
    return 0


def _cmd_plot(args) -> int:
    spec, model, laws, report, data = load_run(args.run)
    law_model = None
    if laws is not None:
        law_model = pikan.compile(spec.with_laws(laws))
    run = Run(model, laws or {}, report, Path(args.run), None, law_model)
    for path in write_plots(run, data):
        print(path)
    return 0


_COMMANDS = {"demo": _cmd_demo, "systems": _cmd_systems, "simulate": _cmd_simulate,
             "discover": _cmd_discover, "laws": _cmd_laws, "plot": _cmd_plot}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pikan`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "help":
        return _cmd_help(parser, args.topic)
    torch.set_num_threads(_threads(args, parser))
    keep_freed_memory()  # the command owns its process (see pikan.train.memory)
    started = time.time()
    try:
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except BrokenPipeError:  # `pikan laws RUN | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
        return CLOSED_PIPE_EXIT
    except (SpecError, DataError) as error:
        if args.debug:
            raise
        print(f"pikan {args.command}: error: {error}{_resume_hint(args, started)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pikan {args.command}: interrupted{_resume_hint(args, started)}", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line, not a traceback, unless --debug
        if args.debug:
            raise
        print(f"pikan {args.command}: failed: {type(error).__name__}: {error} "
              f"(run with --debug for the traceback){_resume_hint(args, started)}",
              file=sys.stderr)
        return 1


def _resume_hint(args, started: float) -> str:
    """For a discover that stopped after writing a checkpoint: how to continue it."""
    if args.command != "discover":
        return ""
    checkpoint = partial_path(args.out) / "model.pt"
    try:
        fresh = checkpoint.stat().st_mtime >= started - 1.0
    except OSError:
        return ""
    return (f"; the unfinished run is kept in {checkpoint.parent}: --resume {checkpoint} "
            "continues it") if fresh else ""


if __name__ == "__main__":
    sys.exit(main())


