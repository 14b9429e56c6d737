"""Kolmogorov-Arnold Networks: splines, layers, networks, symbolic edges, attribution."""
