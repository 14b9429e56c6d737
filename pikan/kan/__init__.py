"""Kolmogorov-Arnold Networks: splines, layers, networks, symbolic edges, attribution.

Independent of the physics: ``pikan.kan.KAN`` is usable on its own.
"""

from pikan.kan.attribution import Scores, scores
from pikan.kan.layer import KANLayer
from pikan.kan.network import KAN, LayerActivations
from pikan.kan.symbolic import LIBRARY, EdgeFit, Primitive, fit_edge

__all__ = ["KAN", "KANLayer", "LayerActivations", "LIBRARY", "EdgeFit", "Primitive",
           "Scores", "fit_edge", "scores"]
