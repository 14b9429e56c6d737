"""pikan: physics-informed modeling on Kolmogorov-Arnold Networks.

The public API is re-exported here; nothing is defined in this file.
"""

from pikan._version import __version__
from pikan.compile import Model, compile
from pikan.data import Trajectories
from pikan.errors import DataError, SpecError
from pikan.integrate import simulate
from pikan.kan import KAN
from pikan.spec import Dissipation, Dynamics, Lagrangian, Potential, System, all_pairs, chain_pairs

__all__ = [
    "__version__",
    "DataError", "SpecError",
    "System", "Potential", "Dynamics", "Dissipation", "Lagrangian", "chain_pairs", "all_pairs",
    "compile", "Model", "KAN",
    "Trajectories", "simulate",
]
