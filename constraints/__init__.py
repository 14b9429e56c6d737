"""Constraints on modules and systems (installed as ``pikan.constraints``)."""
