"""pikan: physics-informed modeling on Kolmogorov-Arnold Networks.

The public API is re-exported here; nothing is defined in this file.
"""

from pikan._version import __version__
from pikan.inspect.analysis import Importance, Structure, energy_drift, importance, structure
from pikan.inspect.check import ConstraintReport, check_constraints
from pikan.model.compile import Model, compile
from pikan.data.trajectories import Trajectories
from pikan.discover import Run, discover
from pikan.errors import DataError, IdentifiabilityWarning, SpecError, VerdictWarning
from pikan.laws.extract import extract
from pikan.laws.conserved import find_conserved
from pikan.laws.find_law import find_law
from pikan.data.integrate import simulate
from pikan.kan import KAN
from pikan.laws.law import Law, Laws, equivalent
from pikan.spec.system import (Dissipation, Dynamics, Flow, Lagrangian, Potential, System,
                                all_pairs, chain_pairs)
from pikan.train.loop import FitResult, Recipe, Stage, TrainingError, fit, load_model
from pikan.laws.verify import VerifyReport, verify

__all__ = [
    "__version__",
    "DataError", "SpecError", "IdentifiabilityWarning", "VerdictWarning",
    "System", "Potential", "Dynamics", "Dissipation", "Lagrangian", "Flow", "chain_pairs",
    "all_pairs",
    "compile", "Model", "KAN",
    "Trajectories", "simulate",
    "fit", "Recipe", "Stage", "FitResult", "TrainingError", "load_model",
    "check_constraints", "ConstraintReport",
    "importance", "Importance", "structure", "Structure", "energy_drift",
    "extract", "find_law", "find_conserved", "Law", "Laws", "equivalent", "verify", "VerifyReport",
    "discover", "Run",
]
