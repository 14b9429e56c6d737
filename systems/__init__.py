"""Catalogue of ready-made mechanical systems (installed as ``pikan.systems``)."""
