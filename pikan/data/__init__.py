"""Trajectories in and out: arrays and names, the HDF5 schema and CSV, derivative estimates, integrators and simulate()."""
