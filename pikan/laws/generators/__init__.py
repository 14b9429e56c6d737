"""Candidate generators: each proposes closed forms for a target (sparse regression, separability, KAN edge formulas, Euler-Lagrange regression, variable projection)."""
