"""Candidate generators, one file per family, behind one interface (:mod:`.base`): sparse
regression, rational functions, power laws, variable projection, the additive spline model,
structure tests, one-input curves, KAN edge formulas, passive Dissipation terms; and
Euler--Lagrange regression for Lagrangians."""
