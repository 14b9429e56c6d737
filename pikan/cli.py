"""The ``pikan`` command."""

from __future__ import annotations

import argparse
import sys

from pikan._version import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pikan",
        description="Physics-informed KANs: learn mechanical systems and extract their laws.",
    )
    parser.add_argument("--version", action="version", version=f"pikan {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pikan`` console script; returns the exit code."""
    parser = _parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
