"""The spec language: systems, modules, expressions, bindings and their JSON; plain data, no torch."""
