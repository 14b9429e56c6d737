"""What every example script does around its own story: the command line, a run
directory that is temporary unless ``--out`` keeps it, and the found-vs-truth report.

The scripts in ``examples/`` import it as ``_story`` (Python puts a script's own folder on
the import path); it is not part of the pikan package.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pikan


def arguments(doc: str, argv=None, extra=()) -> argparse.Namespace:
    """``--quick``, ``--out`` and ``--seed`` (plus ``extra``: (flag, kwargs) pairs)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (seconds)")
    parser.add_argument("--out", default=None,
                        help="run directory to keep (default: a temporary one, removed)")
    for flag, kwargs in extra:
        parser.add_argument(flag, **kwargs)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


@contextlib.contextmanager
def run_directory(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """``--out`` if given, else ``<temporary folder>/name``, removed on exit."""
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(args.out) if args.out else Path(scratch) / name


def discover(spec, data, out: Path, args: argparse.Namespace, steps, refine_steps):
    """``pikan.discover`` as the examples run it: quiet, no plots and no verification in
    quick mode, plots only into a kept run directory, which a rerun of the story replaces."""
    return pikan.discover(spec, data, out=out, steps=steps, seed=args.seed,
                          refine_steps=refine_steps, progress=not args.quick,
                          plots=args.out is not None, verify_laws=not args.quick,
                          overwrite=True)


@contextlib.contextmanager
def discovery(args: argparse.Namespace, name: str, spec, data, steps, refine_steps):
    """Discover in a run directory and yield the run for the script's found-vs-truth
    report; after the report, the verification summary and where the run is."""
    with run_directory(args, name) as out:
        run = discover(spec, data, out, args, steps, refine_steps)
        print()
        yield run
        check(run)
        where(out, args)


def compare(law, truth: str, label: str, rtol: float = 0.01) -> bool:
    """Print the law found and the truth; whether they are equivalent (constants within
    ``rtol``)."""
    recovered = pikan.equivalent(law.expr, truth, rtol=rtol)
    print(f"found:  {law}")
    print(f"truth:  {label} = {truth}   [{'recovered' if recovered else 'NOT recovered'}]")
    return recovered


def check(run) -> None:
    """The verification summary, when the run verified its laws."""
    if "verification" in run.report:
        print(f"check:  {run.report['verification']['summary']}")


def where(out: Path, args: argparse.Namespace) -> None:
    print(f"run directory: {out}" + ("" if args.out else " (temporary; --out keeps it)"))
